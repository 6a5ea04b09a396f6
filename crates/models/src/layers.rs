//! The layers the built-in backbones are made of, with PyTorch's parameter naming
//! (`<name>.weight`, `<name>.bias`, `<name>.running_mean`, …) and He-normal (fan-out)
//! convolution weights drawn from one seeded generator.

use ortl_onnx::{DataType, Dim, Graph, GraphBuilder, Tensor, ValueInfo};
use ortl_onnx::{builder::Conv, builder::Pool};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::init::{filled, he_normal_fan_out};
use crate::{Backbone, Layout, Normalization};

/// A convolution's shape: kernel, stride, padding (each side) and groups.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub kernel: (usize, usize),
    pub stride: usize,
    pub pad: (usize, usize),
    pub groups: usize,
    pub bias: bool,
}

impl ConvSpec {
    /// A `kernel` convolution with explicit padding per side, no bias, no groups.
    pub fn new(kernel: (usize, usize), stride: usize, pad: (usize, usize)) -> Self {
        Self {
            kernel,
            stride,
            pad,
            groups: 1,
            bias: false,
        }
    }

    /// A square `k`×`k` convolution padded to keep the size at stride 1 (`k / 2`), no bias.
    pub fn square(k: usize, stride: usize) -> Self {
        Self {
            kernel: (k, k),
            stride,
            pad: (k / 2, k / 2),
            groups: 1,
            bias: false,
        }
    }

    pub fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    pub fn bias(self) -> Self {
        Self { bias: true, ..self }
    }
}

/// A graph under construction with its input and weight generator.
pub struct Net {
    pub b: GraphBuilder,
    rng: ChaCha8Rng,
    seed: u64,
    pub input: String,
    /// BatchNormalization epsilon of this family.
    pub bn_eps: f32,
}

impl Net {
    /// A float `[N, 3, H, W]` input named `pixels`.
    pub fn new(name: &str, seed: u64, bn_eps: f32) -> Self {
        let mut b = GraphBuilder::new(name);
        let input = b.input(
            "pixels",
            DataType::Float,
            vec![
                Dim::Symbolic("N".into()),
                Dim::Fixed(3),
                Dim::Unknown,
                Dim::Unknown,
            ],
        );
        Self {
            b,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            input,
            bn_eps,
        }
    }

    pub fn conv(&mut self, x: &str, name: &str, cin: usize, cout: usize, spec: ConvSpec) -> String {
        let (kh, kw) = (spec.kernel.0 as i64, spec.kernel.1 as i64);
        let w = self.b.param(
            &format!("{name}.weight"),
            he_normal_fan_out(
                &[cout as i64, (cin / spec.groups) as i64, kh, kw],
                &mut self.rng,
            ),
        );
        let bias = spec.bias.then(|| {
            self.b
                .param(&format!("{name}.bias"), filled(&[cout as i64], 0.0))
        });
        let (ph, pw) = (spec.pad.0 as i64, spec.pad.1 as i64);
        let s = spec.stride as i64;
        let attrs = Conv {
            kernel_shape: Some(vec![kh, kw]),
            strides: Some(vec![s, s]),
            pads: Some(vec![ph, pw, ph, pw]),
            group: Some(spec.groups as i64),
            ..Conv::default()
        };
        self.b.conv(x, &w, bias.as_deref(), &attrs)
    }

    /// Inference-mode BatchNormalization with fresh statistics.
    pub fn bn(&mut self, x: &str, name: &str, channels: usize) -> String {
        let c = [channels as i64];
        let scale = self.b.param(&format!("{name}.weight"), filled(&c, 1.0));
        let bias = self.b.param(&format!("{name}.bias"), filled(&c, 0.0));
        let mean = self
            .b
            .param(&format!("{name}.running_mean"), filled(&c, 0.0));
        let var = self
            .b
            .param(&format!("{name}.running_var"), filled(&c, 1.0));
        self.b
            .batch_norm([x, &scale, &bias, &mean, &var], self.bn_eps)
    }

    pub fn relu(&mut self, x: &str) -> String {
        self.b.relu(x)
    }

    /// ReLU6 (MobileNet): Clip to [0, 6].
    pub fn relu6(&mut self, x: &str) -> String {
        let low = self.b.constant(Tensor::scalar(0.0));
        let high = self.b.constant(Tensor::scalar(6.0));
        self.b.clip(x, Some(&low), Some(&high))
    }

    /// SiLU (swish): x · sigmoid(x).
    pub fn silu(&mut self, x: &str) -> String {
        let gate = self.b.sigmoid(x);
        self.b.mul(x, &gate)
    }

    pub fn max_pool(&mut self, x: &str, k: usize, stride: usize, pad: usize) -> String {
        let (k, s, p) = (k as i64, stride as i64, pad as i64);
        let attrs = Pool {
            pads: Some(vec![p; 4]),
            ..Pool::square(k, s)
        };
        self.b.max_pool(x, &attrs)
    }

    pub fn avg_pool(&mut self, x: &str, k: usize, stride: usize) -> String {
        let (k, s) = (k as i64, stride as i64);
        self.b.average_pool(x, &Pool::square(k, s))
    }

    /// 3×3 average pooling, stride 1, padded to keep the size: the pooling branch of the
    /// Inception blocks. Shared because Inception-v3 and Inception-ResNet-v2 both need it and
    /// differ only in whether the padding counts (`count_include_pad`: PyTorch's default,
    /// `true`, in Inception-v3; `false` in Inception-ResNet-v2's Mixed_5b).
    pub fn avg_pool_3x3_same(&mut self, x: &str, count_include_pad: bool) -> String {
        let attrs = Pool {
            pads: Some(vec![1; 4]),
            count_include_pad: Some(count_include_pad),
            ..Pool::square(3, 1)
        };
        self.b.average_pool(x, &attrs)
    }

    /// Concatenation along channels.
    pub fn concat(&mut self, parts: &[String]) -> String {
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        self.b.concat(&refs, 1)
    }

    /// BasicConv2d of the Inception networks: `<name>.conv` (no bias) → `<name>.bn` → ReLU.
    pub fn basic_conv(
        &mut self,
        x: &str,
        name: &str,
        cin: usize,
        cout: usize,
        spec: ConvSpec,
    ) -> String {
        let y = self.conv_bn(
            x,
            (&format!("{name}.conv"), &format!("{name}.bn")),
            cin,
            cout,
            spec,
        );
        self.relu(&y)
    }

    /// conv → BN → activation, the unit most of these networks repeat.
    pub fn conv_bn(
        &mut self,
        x: &str,
        names: (&str, &str),
        cin: usize,
        cout: usize,
        spec: ConvSpec,
    ) -> String {
        let y = self.conv(x, names.0, cin, cout, spec);
        self.bn(&y, names.1, cout)
    }

    /// The tail of an inverted-residual block (MobileNetV2's and EfficientNet's MBConv):
    /// the linear 1×1 projection from `hidden` back to `cout` channels, conv → BN with no
    /// activation, plus the skip connection from the block's input `x` when the block keeps
    /// its size (`stride` 1, `cin == cout`). Shared so both families build the same tail.
    pub fn inverted_residual_tail(
        &mut self,
        x: &str,
        y: &str,
        names: (&str, &str),
        (cin, hidden, cout): (usize, usize, usize),
        stride: usize,
    ) -> String {
        let y = self.conv_bn(y, names, hidden, cout, ConvSpec::square(1, 1));
        if stride == 1 && cin == cout {
            self.b.add(x, &y)
        } else {
            y
        }
    }

    /// The finished backbone with `features` (`channels` wide) as its output.
    pub fn finish(self, name: &str, features: String, channels: usize) -> Backbone {
        let mut graph: Graph = self.b.finish();
        graph.outputs.push(ValueInfo::new(
            &features,
            DataType::Float,
            vec![
                Dim::Symbolic("N".into()),
                Dim::Fixed(channels as i64),
                Dim::Unknown,
                Dim::Unknown,
            ],
        ));
        Backbone {
            name: name.into(),
            graph,
            input: self.input,
            layout: Layout::Nchw,
            normalization: Normalization::ImageNet,
            normalization_reason: format!("built-in torchvision-layout {name}: ImageNet mean/std"),
            features,
            channels,
            size: None,
            weights: crate::backbone::Weights::Random { seed: self.seed },
            cut: "at its last feature map".into(),
        }
    }
}
