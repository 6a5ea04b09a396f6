//! ResNet in torchvision's layout (v1.5: the stride sits in each bottleneck's 3×3
//! convolution), with torchvision's parameter names (`conv1.weight`,
//! `layer1.0.bn2.running_var`, `layer2.0.downsample.0.weight`, …) so that an exported
//! torchvision state maps onto it by name. Smaller members of the family (fewer blocks,
//! narrower) keep the same structure for fast tests.

use ortl_onnx::builder::{float, ints};
use ortl_onnx::{DataType, Dim, GraphBuilder};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::init::{filled, he_normal_fan_out};
use crate::{Backbone, Layout, Normalization};

/// Bottleneck expansion: the last 1×1 convolution of a block widens by this factor.
pub const EXPANSION: usize = 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    pub name: String,
    /// Bottleneck blocks in each of the four stages.
    pub blocks: [usize; 4],
    /// Width of the first stage (64 in ResNet50); later stages double it.
    pub width: usize,
}

impl ResNetConfig {
    pub fn resnet50() -> Self {
        Self {
            name: "resnet50".into(),
            blocks: [3, 4, 6, 3],
            width: 64,
        }
    }

    pub fn resnet101() -> Self {
        Self {
            name: "resnet101".into(),
            blocks: [3, 4, 23, 3],
            width: 64,
        }
    }

    /// The named members: `resnet50`, `resnet101`, `resnet26` (two blocks per stage) and
    /// `resnet-mini` (one block per stage, width 16: quick CPU runs on small data).
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "resnet50" => Some(Self::resnet50()),
            "resnet101" => Some(Self::resnet101()),
            "resnet26" => Some(Self {
                name: name.into(),
                blocks: [2, 2, 2, 2],
                width: 64,
            }),
            "resnet-mini" => Some(Self {
                name: name.into(),
                blocks: [1, 1, 1, 1],
                width: 16,
            }),
            _ => None,
        }
    }

    /// A member small enough for tests: one block per stage, width 8 (feature width 256).
    pub fn tiny() -> Self {
        Self {
            name: "resnet-tiny".into(),
            blocks: [1, 1, 1, 1],
            width: 8,
        }
    }

    /// Channels of the final feature map.
    pub fn feature_channels(&self) -> usize {
        self.width * 8 * EXPANSION
    }
}

/// Builds the backbone with He-normal weights drawn from `seed`. Its input is a float
/// `[N, 3, H, W]` tensor normalised with ImageNet mean/std (torchvision's convention).
pub fn resnet(config: &ResNetConfig, seed: u64) -> Backbone {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = GraphBuilder::new(&config.name);
    let n = Dim::Symbolic("N".into());
    let input = b.input(
        "pixels",
        DataType::Float,
        vec![n.clone(), Dim::Fixed(3), Dim::Unknown, Dim::Unknown],
    );
    let mut net = Net {
        b: &mut b,
        rng: &mut rng,
    };

    let mut x = net.conv(&input, "conv1", 3, config.width, 7, 2);
    x = net.bn(&x, "bn1", config.width);
    x = net.b.op("Relu", &[&x], vec![]);
    x = net.b.op(
        "MaxPool",
        &[&x],
        vec![
            ("kernel_shape", ints(&[3, 3])),
            ("strides", ints(&[2, 2])),
            ("pads", ints(&[1, 1, 1, 1])),
        ],
    );

    let mut channels = config.width;
    for (stage, &blocks) in config.blocks.iter().enumerate() {
        let width = config.width << stage;
        for block in 0..blocks {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let name = format!("layer{}.{block}", stage + 1);
            x = net.bottleneck(&x, &name, channels, width, stride);
            channels = width * EXPANSION;
        }
    }
    let features = x;
    let mut graph = b.finish();
    graph.outputs.push(ortl_onnx::ValueInfo::new(
        &features,
        DataType::Float,
        vec![n, Dim::Fixed(channels as i64), Dim::Unknown, Dim::Unknown],
    ));
    Backbone {
        name: config.name.clone(),
        graph,
        input,
        layout: Layout::Nchw,
        normalization: Normalization::ImageNet,
        normalization_reason: "built-in torchvision-layout ResNet: ImageNet mean/std".into(),
        features,
        channels,
        size: None,
    }
}

struct Net<'a> {
    b: &'a mut GraphBuilder,
    rng: &'a mut ChaCha8Rng,
}

impl Net<'_> {
    fn conv(
        &mut self,
        x: &str,
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
    ) -> String {
        let (k, pad) = (k as i64, (k / 2) as i64);
        let w = self.b.param(
            &format!("{name}.weight"),
            he_normal_fan_out(&[cout as i64, cin as i64, k, k], self.rng),
        );
        self.b.op(
            "Conv",
            &[x, &w],
            vec![
                ("kernel_shape", ints(&[k, k])),
                ("strides", ints(&[stride as i64, stride as i64])),
                ("pads", ints(&[pad, pad, pad, pad])),
            ],
        )
    }

    /// Inference-mode BatchNormalization with torchvision's eps and fresh statistics.
    fn bn(&mut self, x: &str, name: &str, channels: usize) -> String {
        let c = [channels as i64];
        let scale = self.b.param(&format!("{name}.weight"), filled(&c, 1.0));
        let bias = self.b.param(&format!("{name}.bias"), filled(&c, 0.0));
        let mean = self
            .b
            .param(&format!("{name}.running_mean"), filled(&c, 0.0));
        let var = self
            .b
            .param(&format!("{name}.running_var"), filled(&c, 1.0));
        self.b.op(
            "BatchNormalization",
            &[x, &scale, &bias, &mean, &var],
            vec![("epsilon", float(1e-5))],
        )
    }

    fn bottleneck(
        &mut self,
        x: &str,
        name: &str,
        cin: usize,
        width: usize,
        stride: usize,
    ) -> String {
        let cout = width * EXPANSION;
        let mut y = self.conv(x, &format!("{name}.conv1"), cin, width, 1, 1);
        y = self.bn(&y, &format!("{name}.bn1"), width);
        y = self.b.op("Relu", &[&y], vec![]);
        y = self.conv(&y, &format!("{name}.conv2"), width, width, 3, stride);
        y = self.bn(&y, &format!("{name}.bn2"), width);
        y = self.b.op("Relu", &[&y], vec![]);
        y = self.conv(&y, &format!("{name}.conv3"), width, cout, 1, 1);
        y = self.bn(&y, &format!("{name}.bn3"), cout);
        let shortcut = if stride != 1 || cin != cout {
            let s = self.conv(x, &format!("{name}.downsample.0"), cin, cout, 1, stride);
            self.bn(&s, &format!("{name}.downsample.1"), cout)
        } else {
            x.to_string()
        };
        let sum = self.b.op("Add", &[&y, &shortcut], vec![]);
        self.b.op("Relu", &[&sum], vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet50_has_torchvisions_parameter_count_and_names() {
        let backbone = resnet(&ResNetConfig::resnet50(), 0);
        // torchvision.models.resnet50(): sum(p.numel() for p in m.parameters()) = 25,557,032,
        // of which the 1000-class fc is 2048·1000 + 1000 = 2,049,000 (torchvision docs list
        // 25.6M parameters for ResNet50; the exact figure is the sum above).
        assert_eq!(backbone.parameter_count() + 2048 * 1000 + 1000, 25_557_032);
        assert_eq!(backbone.channels, 2048);
        let init = &backbone.graph.initializers;
        for name in [
            "conv1.weight",
            "layer1.0.bn2.running_var",
            "layer2.0.downsample.0.weight",
            "layer4.2.conv3.weight",
        ] {
            assert!(init.contains_key(name), "{name}");
        }
        assert_eq!(init["layer3.5.conv2.weight"].dims, [256, 256, 3, 3]);
        ortl_onnx::passes::validate(&backbone.graph).unwrap();
    }

    #[test]
    fn inferred_shapes_match_the_architecture_at_100_and_224() {
        // ORT's own run of the same graph is checked in tests/ort.rs.
        let backbone = resnet(&ResNetConfig::resnet50(), 0);
        for (size, side) in [(100, 4), (224, 7)] {
            let mut graph = backbone.graph.clone();
            graph.inputs[0].shape = Some(vec![
                Dim::Symbolic("N".into()),
                Dim::Fixed(3),
                Dim::Fixed(size),
                Dim::Fixed(size),
            ]);
            let shapes = ortl_onnx::shapes::infer(&graph).unwrap();
            assert_eq!(
                shapes[&backbone.features].shape,
                vec![None, Some(2048), Some(side), Some(side)]
            );
        }
    }

    #[test]
    fn he_init_has_the_fan_out_standard_deviation() {
        let backbone = resnet(&ResNetConfig::resnet50(), 7);
        let w = backbone.graph.initializers["layer4.0.conv2.weight"]
            .as_f32()
            .unwrap();
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let std = (w
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let expected = (2.0f64 / (512.0 * 9.0)).sqrt();
        assert!(
            (std / expected - 1.0).abs() < 0.01,
            "std {std} vs {expected}"
        );
        assert!(mean.abs() < expected * 0.01);
    }
}
