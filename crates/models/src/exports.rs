//! Small pretrained-style models in the shapes real exporters write, at any opset from 7 to
//! 20, so the import, opset conversion, folding and gradient rules are tested on the graphs
//! users bring rather than on ortl's own: a MobileNetV3-like network (hard-swish, a
//! depthwise convolution with a kept BatchNormalization and PReLU, a squeeze-and-excitation
//! gate, a reflect-padded convolution, an upsample-and-convolve branch, GELU written as
//! exporters write it, ReLU6 as Clip) ending in one of the classifier forms exporters use.
//! No weights are pretrained: they are drawn from a seed.

use ortl_onnx::builder::{float, int, ints};
use ortl_onnx::{Attr, DataType, Dim, GraphBuilder, Model, Tensor, ValueInfo};
use ortl_onnx::{builder::Conv, builder::Gemm};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How the pooled features reach the logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classifier {
    /// GlobalAveragePool → `x.view(x.size(0), -1)` (Shape → Gather → Unsqueeze → Concat →
    /// Reshape) → Gemm: PyTorch's classic export.
    ShapeFlatten,
    /// GlobalAveragePool → Squeeze → MatMul → Add: tf2onnx and torch.export.
    SqueezeMatMul,
    /// ReduceMean over H, W (keepdims) → 1×1 Conv → Flatten: Keras MobileNet, TF-slim.
    Conv1x1,
    /// No classifier: the graph ends at the last feature map (an encoder).
    None,
    /// tf2onnx's Keras form: an NHWC input transposed to NCHW for the convolutions and back,
    /// ReduceMean over axes 1, 2 → MatMul → Add; the features are NHWC.
    KerasNhwc,
}

/// What to export.
#[derive(Clone, Debug)]
pub struct Export {
    pub opset: i64,
    /// Height and width fixed at this size, or dynamic when `None`.
    pub size: Option<i64>,
    pub classifier: Classifier,
    pub classes: i64,
    pub seed: u64,
}

/// Channels of the last feature map.
pub const CHANNELS: i64 = 16;
/// The last feature map's name (what `--features` would name for the encoder).
pub const FEATURES: &str = "features";

/// A MobileNetV3-like classifier written the way an exporter at `export.opset` writes it.
pub fn mobile(export: &Export) -> Model {
    let opset = export.opset;
    let mut rng = ChaCha8Rng::seed_from_u64(export.seed);
    let mut b = GraphBuilder::new("mobile_export");
    let dynamic = |name: &str| Dim::Symbolic(name.into());
    let side = |name: &str| export.size.map_or_else(|| dynamic(name), Dim::Fixed);
    let nhwc = export.classifier == Classifier::KerasNhwc;
    let x = if nhwc {
        let x = b.input(
            "input",
            DataType::Float,
            vec![
                dynamic("batch"),
                side("height"),
                side("width"),
                Dim::Fixed(3),
            ],
        );
        b.transpose(&x, &[0, 3, 1, 2])
    } else {
        b.input(
            "input",
            DataType::Float,
            vec![
                dynamic("batch"),
                Dim::Fixed(3),
                side("height"),
                side("width"),
            ],
        )
    };
    let mut weight = |b: &mut GraphBuilder, name: &str, dims: &[i64], scale: f32| {
        let n = dims.iter().product::<i64>() as usize;
        let values = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
        b.param(name, Tensor::f32(dims, values))
    };
    let conv = |b: &mut GraphBuilder,
                x: &str,
                w: &str,
                bias: Option<&str>,
                k: i64,
                s: i64,
                p: i64,
                group: i64| {
        let attrs = Conv {
            group: Some(group),
            ..Conv::square(k, s, p)
        };
        b.conv(x, w, bias, &attrs)
    };

    // Stem: 3×3 stride-2 convolution and hard-swish (x·HardSigmoid(x) before opset 14).
    let w = weight(&mut b, "stem.weight", &[8, 3, 3, 3], 0.4);
    let bias = weight(&mut b, "stem.bias", &[8], 0.1);
    let stem = conv(&mut b, &x, &w, Some(&bias), 3, 2, 1, 1);
    let stem = if opset >= 14 {
        b.hard_swish(&stem)
    } else {
        let gate = b.hard_sigmoid(&stem, 1.0 / 6.0, 0.5);
        b.mul(&stem, &gate)
    };

    // Depthwise 3×3, a BatchNormalization the exporter kept, and PReLU.
    let w = weight(&mut b, "dw.weight", &[8, 1, 3, 3], 0.5);
    let dw = conv(&mut b, &stem, &w, None, 3, 1, 1, 8);
    let scale = b.param("dw_bn.weight", Tensor::f32(&[8], vec![1.2; 8]));
    let shift = b.param("dw_bn.bias", Tensor::f32(&[8], vec![0.05; 8]));
    let mean = b.param("dw_bn.running_mean", Tensor::f32(&[8], vec![0.02; 8]));
    let var = b.param("dw_bn.running_var", Tensor::f32(&[8], vec![0.8; 8]));
    let dw = b.batch_norm([&dw, &scale, &shift, &mean, &var], 1e-3);
    let slope = weight(&mut b, "dw_prelu.weight", &[8, 1, 1], 0.3);
    let dw = b.prelu(&dw, &slope);

    // Squeeze-and-excitation: pooled (ReduceMean with axes as an input from opset 18),
    // reduced, ReLU, expanded, hard-sigmoid gate.
    let pooled = reduce_mean_spatial(&mut b, &dw, opset, true);
    let w1 = weight(&mut b, "se.fc1.weight", &[4, 8, 1, 1], 0.1);
    let b1 = weight(&mut b, "se.fc1.bias", &[4], 0.1);
    let squeezed = conv(&mut b, &pooled, &w1, Some(&b1), 1, 1, 0, 1);
    let squeezed = b.relu(&squeezed);
    let w2 = weight(&mut b, "se.fc2.weight", &[8, 4, 1, 1], 0.1);
    let b2 = weight(&mut b, "se.fc2.bias", &[8], 0.1);
    let gate = conv(&mut b, &squeezed, &w2, Some(&b2), 1, 1, 0, 1);
    let gate = b.hard_sigmoid(&gate, 0.2, 0.5);
    let se = b.mul(&dw, &gate);

    // Pointwise projection with leaky ReLU.
    let w = weight(&mut b, "project.weight", &[CHANNELS, 8, 1, 1], 0.4);
    let projected = conv(&mut b, &se, &w, None, 1, 1, 0, 1);
    let projected = b.leaky_relu(&projected, 0.1);

    // Reflect padding, a stride-2 convolution, ReLU6 as Clip.
    let padded = pad_reflect(&mut b, &projected, opset);
    let w = weight(&mut b, "down.weight", &[CHANNELS, CHANNELS, 3, 3], 0.15);
    let down = conv(&mut b, &padded, &w, None, 3, 2, 0, 1);
    let down = relu6(&mut b, &down, opset);

    // Upsample ×2 (nearest), convolve back down, add as a residual.
    let up = upsample2(&mut b, &down, opset);
    let w = weight(&mut b, "up.weight", &[CHANNELS, CHANNELS, 3, 3], 0.1);
    let back = conv(&mut b, &up, &w, None, 3, 2, 1, 1);
    let summed = b.add(&down, &back);

    // GELU: the Gelu operator from opset 20, before it x·½·(1 + erf(x/√2)) with the
    // constants as Constant nodes, as torch.onnx writes them.
    let activated = gelu(&mut b, &summed, opset);
    if nhwc {
        b.named(FEATURES, |b| b.transpose(&activated, &[0, 2, 3, 1]));
    } else {
        b.named(FEATURES, |b| b.identity(&activated));
    }
    let graph_features = FEATURES.to_string();

    let output = match export.classifier {
        Classifier::None => graph_features,
        Classifier::ShapeFlatten => {
            let pooled = b.global_average_pool(&graph_features);
            let flat = shape_flatten(&mut b, &pooled, opset);
            let w = weight(&mut b, "fc.weight", &[export.classes, CHANNELS], 0.3);
            let bias = weight(&mut b, "fc.bias", &[export.classes], 0.1);
            b.gemm(&flat, &w, Some(&bias), &Gemm::B_TRANSPOSED)
        }
        Classifier::SqueezeMatMul => {
            let pooled = b.global_average_pool(&graph_features);
            let flat = squeeze(&mut b, &pooled, &[2, 3], opset);
            let dropout = b.dropout(&flat);
            let w = weight(&mut b, "dense/kernel", &[CHANNELS, export.classes], 0.3);
            let bias = weight(&mut b, "dense/bias", &[export.classes], 0.1);
            let logits = b.matmul(&dropout, &w);
            b.add(&logits, &bias)
        }
        Classifier::KerasNhwc => {
            let pooled = if opset >= 18 {
                let axes = b.constant(Tensor::i64s(&[1, 2]));
                b.op(
                    "ReduceMean",
                    &[&graph_features, &axes],
                    vec![("keepdims", int(0))],
                )
            } else {
                b.reduce_mean(&graph_features, &[1, 2], false)
            };
            let w = weight(&mut b, "dense/kernel", &[CHANNELS, export.classes], 0.3);
            let bias = weight(&mut b, "dense/bias", &[export.classes], 0.1);
            let logits = b.matmul(&pooled, &w);
            b.add(&logits, &bias)
        }
        Classifier::Conv1x1 => {
            let pooled = reduce_mean_spatial(&mut b, &graph_features, opset, true);
            let w = weight(
                &mut b,
                "logits.weight",
                &[export.classes, CHANNELS, 1, 1],
                0.3,
            );
            let bias = weight(&mut b, "logits.bias", &[export.classes], 0.1);
            let logits = conv(&mut b, &pooled, &w, Some(&bias), 1, 1, 0, 1);
            b.flatten(&logits, 1)
        }
    };
    let output = if export.classifier == Classifier::None {
        output
    } else {
        b.softmax(&output, 1)
    };
    let mut graph = b.finish();
    graph.outputs = vec![ValueInfo {
        name: output,
        dtype: DataType::Float,
        shape: None,
    }];
    let mut model = Model::new(graph);
    model.opsets = vec![(String::new(), opset)];
    model.producer_name = "pytorch".into();
    model.producer_version = "2.5.0".into();
    model
}

fn reduce_mean_spatial(b: &mut GraphBuilder, x: &str, opset: i64, keep: bool) -> String {
    let keepdims = ("keepdims", int(i64::from(keep)));
    if opset >= 18 {
        let axes = b.constant(Tensor::i64s(&[2, 3]));
        b.op("ReduceMean", &[x, &axes], vec![keepdims])
    } else {
        b.op("ReduceMean", &[x], vec![("axes", ints(&[2, 3])), keepdims])
    }
}

fn squeeze(b: &mut GraphBuilder, x: &str, axes: &[i64], opset: i64) -> String {
    if opset >= 13 {
        let axes = b.constant(Tensor::i64s(axes));
        b.squeeze(x, &axes)
    } else {
        b.op("Squeeze", &[x], vec![("axes", ints(axes))])
    }
}

fn unsqueeze(b: &mut GraphBuilder, x: &str, axes: &[i64], opset: i64) -> String {
    if opset >= 13 {
        let axes = b.constant(Tensor::i64s(axes));
        b.unsqueeze(x, &axes)
    } else {
        b.op("Unsqueeze", &[x], vec![("axes", ints(axes))])
    }
}

fn pad_reflect(b: &mut GraphBuilder, x: &str, opset: i64) -> String {
    let reflect = ("mode", Attr::String("reflect".into()));
    let pads = [0, 0, 1, 1, 0, 0, 1, 1];
    if opset >= 11 {
        let pads = b.constant(Tensor::i64s(&pads));
        b.op("Pad", &[x, &pads], vec![reflect])
    } else {
        b.op("Pad", &[x], vec![reflect, ("pads", ints(&pads))])
    }
}

fn relu6(b: &mut GraphBuilder, x: &str, opset: i64) -> String {
    if opset >= 11 {
        let (lo, hi) = (
            b.constant(Tensor::scalar(0.0)),
            b.constant(Tensor::scalar(6.0)),
        );
        b.clip(x, Some(&lo), Some(&hi))
    } else {
        b.op("Clip", &[x], vec![("min", float(0.0)), ("max", float(6.0))])
    }
}

fn upsample2(b: &mut GraphBuilder, x: &str, opset: i64) -> String {
    let scales = Tensor::f32(&[4], vec![1.0, 1.0, 2.0, 2.0]);
    let nearest = ("mode", Attr::String("nearest".into()));
    match opset {
        ..=8 => b.op(
            "Upsample",
            &[x],
            vec![nearest, ("scales", Attr::Floats(vec![1.0, 1.0, 2.0, 2.0]))],
        ),
        9 => {
            let scales = b.constant(scales);
            b.op("Upsample", &[x, &scales], vec![nearest])
        }
        10 => {
            let scales = b.constant(scales);
            b.op("Resize", &[x, &scales], vec![nearest])
        }
        _ => {
            let scales = b.constant(scales);
            // The region of interest is optional only from opset 13.
            let roi = if opset < 13 {
                b.constant(Tensor::f32(&[0], vec![]))
            } else {
                String::new()
            };
            b.op(
                "Resize",
                &[x, &roi, &scales],
                vec![
                    nearest,
                    (
                        "coordinate_transformation_mode",
                        Attr::String("asymmetric".into()),
                    ),
                    ("nearest_mode", Attr::String("floor".into())),
                ],
            )
        }
    }
}

/// A scalar written as a Constant node.
fn constant_node(b: &mut GraphBuilder, value: f32) -> String {
    b.op(
        "Constant",
        &[],
        vec![("value", Attr::Tensor(Tensor::scalar(value)))],
    )
}

fn gelu(b: &mut GraphBuilder, x: &str, opset: i64) -> String {
    if opset >= 20 {
        return b.op("Gelu", &[x], vec![]);
    }
    if opset < 9 {
        // No Erf before opset 9: the tanh approximation.
        let cube = b.mul(x, x);
        let cube = b.mul(&cube, x);
        let k = constant_node(b, 0.044_715);
        let scaled = b.mul(&cube, &k);
        let inner = b.add(x, &scaled);
        let root = constant_node(b, (2.0 / std::f32::consts::PI).sqrt());
        let inner = b.mul(&inner, &root);
        let t = b.tanh(&inner);
        let one = constant_node(b, 1.0);
        let shifted = b.add(&t, &one);
        let product = b.mul(x, &shifted);
        let half = constant_node(b, 0.5);
        return b.mul(&product, &half);
    }
    let root2 = constant_node(b, std::f32::consts::SQRT_2);
    let scaled = b.div(x, &root2);
    let erf = b.erf(&scaled);
    let one = constant_node(b, 1.0);
    let shifted = b.add(&erf, &one);
    let product = b.mul(x, &shifted);
    let half = constant_node(b, 0.5);
    b.mul(&product, &half)
}

/// `x.view(x.size(0), -1)`.
fn shape_flatten(b: &mut GraphBuilder, x: &str, opset: i64) -> String {
    let shape = b.shape(x);
    let zero = b.op(
        "Constant",
        &[],
        vec![("value", Attr::Tensor(Tensor::i64(&[], vec![0])))],
    );
    let n = b.gather(&shape, &zero, 0);
    let n = unsqueeze(b, &n, &[0], opset);
    let minus_one = b.constant(Tensor::i64s(&[-1]));
    let target = b.concat(&[&n, &minus_one], 0);
    b.reshape(x, &target)
}

/// Parameters drawn from a seed, uniform in `±scale`.
struct Draw(ChaCha8Rng);

impl Draw {
    fn param(&mut self, b: &mut GraphBuilder, name: &str, dims: &[i64], scale: f32) -> String {
        let n = dims.iter().product::<i64>() as usize;
        let values = (0..n).map(|_| self.0.random_range(-scale..scale)).collect();
        b.param(name, Tensor::f32(dims, values))
    }

    /// `nn.Linear` on the last axis: MatMul with the transposed weight and Add, as both
    /// exporters write it for a rank-3 input and torch.export for every input.
    fn linear(&mut self, b: &mut GraphBuilder, x: &str, name: &str, from: i64, to: i64) -> String {
        let w = self.param(b, &format!("{name}.weight"), &[from, to], 0.3);
        let bias = self.param(b, &format!("{name}.bias"), &[to], 0.1);
        let product = b.matmul(x, &w);
        b.add(&product, &bias)
    }

    /// `nn.LayerNorm` over the last axis.
    fn layer_norm(&mut self, b: &mut GraphBuilder, x: &str, name: &str, width: i64) -> String {
        let values = (0..width)
            .map(|_| 1.0 + self.0.random_range(-0.2..0.2))
            .collect();
        let scale = b.param(&format!("{name}.weight"), Tensor::f32(&[width], values));
        let shift = self.param(b, &format!("{name}.bias"), &[width], 0.1);
        b.layer_norm(x, &scale, Some(&shift), -1, 1e-6)
    }

    /// The classifier on an embedding `[N, C]`: Gemm (`torch.onnx.export`) or MatMul + Add
    /// (torch.export).
    fn classifier(&mut self, b: &mut GraphBuilder, x: &str, from: i64, to: i64, gemm: bool) {
        let logits = if gemm {
            let w = self.param(b, "head.weight", &[to, from], 0.3);
            let bias = self.param(b, "head.bias", &[to], 0.1);
            b.gemm(x, &w, Some(&bias), &Gemm::B_TRANSPOSED)
        } else {
            self.linear(b, x, "head", from, to)
        };
        b.output(
            &logits,
            DataType::Float,
            vec![Dim::Symbolic("batch".into()), Dim::Fixed(to)],
        );
    }
}

/// How a vision transformer's embedding reaches the logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenHead {
    /// torchvision's ViT through `torch.onnx.export` (opset 17): the final LayerNorm, the
    /// class token as Gather of index 0 on axis 1, Gemm.
    ClassToken,
    /// timm's `global_pool='avg'` with `fc_norm`: the final norm an Identity, the patch tokens
    /// (Slice from 1 on axis 1) averaged by ReduceMean over axis 1, LayerNorm, Gemm.
    MeanFcNorm,
    /// torch.export (`dynamo=True`, opset 18) of timm's ViT: the class token as Slice `[0:1]`
    /// on axis 1 and Squeeze, every Linear as MatMul + Add, one fused q/k/v projection split
    /// on the axis before the batch (`[3, N, heads, T, d]`), the key transposed with its heads
    /// folded into the batch (`[N·heads, T, d]`, sizes from its own Shape).
    DynamoClassToken,
}

impl TokenHead {
    /// The encoder's output tokens `[N, T, C]`.
    pub fn tokens(self) -> &'static str {
        match self {
            TokenHead::ClassToken => "/encoder/ln/LayerNormalization_output_0",
            TokenHead::MeanFcNorm => "/blocks/blocks.0/Add_1_output_0",
            TokenHead::DynamoClassToken => "layer_norm_2",
        }
    }

    /// The embedding `[N, C]` the classifier reads.
    pub fn embedding(self) -> &'static str {
        match self {
            TokenHead::ClassToken => "/Gather_output_0",
            TokenHead::MeanFcNorm => "/fc_norm/LayerNormalization_output_0",
            TokenHead::DynamoClassToken => "select",
        }
    }
}

/// The side of the images a generated ViT takes (fixed, as its position embedding).
pub const VIT_SIZE: i64 = 32;
/// The side of a ViT's patches.
pub const PATCH: i64 = 8;
/// The embedding width of the generated ViT and ConvNeXt.
pub const WIDTH: i64 = 16;
/// Tokens of the generated ViT: the class token and the 4×4 patches.
pub const TOKENS: i64 = 1 + (VIT_SIZE / PATCH) * (VIT_SIZE / PATCH);

/// A one-block vision transformer in the node forms its exporter writes: a Conv patch
/// embedding reshaped and transposed to tokens, a class token expanded to the batch and
/// concatenated, a position embedding added, one pre-norm block (two-head attention as
/// MatMul, Softmax and MatMul; an MLP with erf-GELU), and the head `head` names.
pub fn vit(head: TokenHead, classes: i64, seed: u64) -> Model {
    let opset = if head == TokenHead::DynamoClassToken {
        18
    } else {
        17
    };
    let mut draw = Draw(ChaCha8Rng::seed_from_u64(seed));
    let mut b = GraphBuilder::new("vit_export");
    let batch = Dim::Symbolic("batch".into());
    let side = Dim::Fixed(VIT_SIZE);
    let x = b.input(
        "input",
        DataType::Float,
        vec![batch, Dim::Fixed(3), side.clone(), side],
    );

    // Patches: Conv with stride = kernel, [N, C, h, w] → [N, C, h·w] → [N, h·w, C].
    let w = draw.param(&mut b, "conv_proj.weight", &[WIDTH, 3, PATCH, PATCH], 0.1);
    let bias = draw.param(&mut b, "conv_proj.bias", &[WIDTH], 0.1);
    let patches = b.conv(&x, &w, Some(&bias), &Conv::square(PATCH, PATCH, 0));
    let flat_shape = b.constant(Tensor::i64s(&[0, WIDTH, -1]));
    let patches = b.reshape(&patches, &flat_shape);
    let patches = b.transpose(&patches, &[0, 2, 1]);

    // The class token expanded to the batch, as `class_token.expand(n, -1, -1)` exports:
    // n from Shape → Gather → Unsqueeze, the -1s replaced by 1s through Equal and Where.
    let cls = draw.param(&mut b, "class_token", &[1, 1, WIDTH], 0.1);
    let shape = b.shape(&patches);
    let zero = b.constant(Tensor::i64(&[], vec![0]));
    let n = b.gather(&shape, &zero, 0);
    let axes = b.constant(Tensor::i64s(&[0]));
    let n = b.unsqueeze(&n, &axes);
    let keep = b.constant(Tensor::i64s(&[-1, -1]));
    let sizes = b.concat(&[&n, &keep], 0);
    let minus_one = b.constant(Tensor::i64(&[], vec![-1]));
    let is_keep = b.equal(&sizes, &minus_one);
    let ones = b.constant(Tensor::i64s(&[1, 1, 1]));
    let sizes = b.where_(&is_keep, &ones, &sizes);
    let cls = b.expand(&cls, &sizes);
    let tokens = b.concat(&[&cls, &patches], 1);
    let position = draw.param(&mut b, "pos_embedding", &[1, TOKENS, WIDTH], 0.1);
    let x = b.add(&tokens, &position);

    // One pre-norm block: two-head attention, then the MLP, each added back.
    let (heads, head_width) = (2, WIDTH / 2);
    let h = draw.layer_norm(&mut b, &x, "ln_1", WIDTH);
    let split_heads = b.constant(Tensor::i64s(&[0, -1, heads, head_width]));
    let (q, k, v) = if head == TokenHead::DynamoClassToken {
        // timm's fused projection as torch.export writes it: `qkv(x).reshape(B, T, 3, heads,
        // d).permute(2, 0, 3, 1, 4).unbind(0)` (the batch on axis 1 of `[3, N, heads, T, d]`,
        // each part a Slice and Squeeze); then `k.transpose(-2, -1)` with the heads folded
        // into the batch from the key's own shape, `[N·heads, T, d]`, and unfolded again.
        let qkv = draw.linear(&mut b, &h, "attn.qkv", WIDTH, 3 * WIDTH);
        let split = b.constant(Tensor::i64s(&[-1, TOKENS, 3, heads, head_width]));
        let qkv = b.op("Reshape", &[&qkv, &split], vec![("allowzero", int(1))]);
        let qkv = b.transpose(&qkv, &[2, 0, 3, 1, 4]);
        let part = |b: &mut GraphBuilder, i: i64| {
            let (start, end, axes) = (
                b.constant(Tensor::i64s(&[i])),
                b.constant(Tensor::i64s(&[i + 1])),
                b.constant(Tensor::i64s(&[0])),
            );
            let one = b.slice(&qkv, &start, &end, Some(&axes), None);
            let axes = b.constant(Tensor::i64s(&[0]));
            b.squeeze(&one, &axes)
        };
        let (q, k, v) = (part(&mut b, 0), part(&mut b, 1), part(&mut b, 2));
        let shape = b.shape(&k);
        let sizes = |b: &mut GraphBuilder, start: i64, end: i64| {
            let (start, end) = (
                b.constant(Tensor::i64s(&[start])),
                b.constant(Tensor::i64s(&[end])),
            );
            b.slice(&shape, &start, &end, None, None)
        };
        let last = sizes(&mut b, -1, i64::MAX);
        let tokens = sizes(&mut b, -2, -1);
        let lead = sizes(&mut b, i64::MIN, -2);
        let minus_one = b.constant(Tensor::i64s(&[-1]));
        let folded = b.concat(&[&minus_one, &tokens, &last], 0);
        let folded = b.reshape(&k, &folded);
        let transposed = b.transpose(&folded, &[0, 2, 1]);
        let unfolded = b.concat(&[&lead, &last, &tokens], 0);
        (q, b.reshape(&transposed, &unfolded), v)
    } else {
        let mut project = |b: &mut GraphBuilder, name: &str, perm: &[i64]| {
            let p = draw.linear(b, &h, name, WIDTH, WIDTH);
            let p = b.reshape(&p, &split_heads);
            b.transpose(&p, perm)
        };
        (
            project(&mut b, "attn.q", &[0, 2, 1, 3]),
            project(&mut b, "attn.k", &[0, 2, 3, 1]),
            project(&mut b, "attn.v", &[0, 2, 1, 3]),
        )
    };
    let scores = b.matmul(&q, &k);
    let scale = b.constant(Tensor::scalar(1.0 / (head_width as f32).sqrt()));
    let scores = b.mul(&scores, &scale);
    let weights = b.softmax(&scores, -1);
    let attended = b.matmul(&weights, &v);
    let attended = b.transpose(&attended, &[0, 2, 1, 3]);
    let merge_heads = b.constant(Tensor::i64s(&[0, -1, WIDTH]));
    let attended = b.reshape(&attended, &merge_heads);
    let attended = draw.linear(&mut b, &attended, "attn.out_proj", WIDTH, WIDTH);
    let x = b.add(&x, &attended);
    let h = draw.layer_norm(&mut b, &x, "ln_2", WIDTH);
    let h = draw.linear(&mut b, &h, "mlp.0", WIDTH, 2 * WIDTH);
    let h = gelu(&mut b, &h, opset);
    let h = draw.linear(&mut b, &h, "mlp.3", 2 * WIDTH, WIDTH);

    match head {
        TokenHead::ClassToken => {
            let x = b.add(&x, &h);
            let tokens = b.named(head.tokens(), |b| {
                draw.layer_norm(b, &x, "encoder.ln", WIDTH)
            });
            let zero = b.op(
                "Constant",
                &[],
                vec![("value", Attr::Tensor(Tensor::i64(&[], vec![0])))],
            );
            let class_token = b.named(head.embedding(), |b| b.gather(&tokens, &zero, 1));
            draw.classifier(&mut b, &class_token, WIDTH, classes, true);
        }
        TokenHead::MeanFcNorm => {
            let tokens = b.named(head.tokens(), |b| b.add(&x, &h));
            let starts = b.constant(Tensor::i64s(&[1]));
            let ends = b.constant(Tensor::i64s(&[i64::MAX]));
            let axes = b.constant(Tensor::i64s(&[1]));
            let patches = b.slice(&tokens, &starts, &ends, Some(&axes), None);
            let mean = b.reduce_mean(&patches, &[1], false);
            let pooled = b.named(head.embedding(), |b| {
                draw.layer_norm(b, &mean, "fc_norm", WIDTH)
            });
            draw.classifier(&mut b, &pooled, WIDTH, classes, true);
        }
        TokenHead::DynamoClassToken => {
            let x = b.add(&x, &h);
            let tokens = b.named(head.tokens(), |b| {
                draw.layer_norm(b, &x, "encoder.ln", WIDTH)
            });
            let starts = b.constant(Tensor::i64s(&[0]));
            let ends = b.constant(Tensor::i64s(&[1]));
            let axes = b.constant(Tensor::i64s(&[1]));
            let steps = b.constant(Tensor::i64s(&[1]));
            let first = b.slice(&tokens, &starts, &ends, Some(&axes), Some(&steps));
            let squeeze_axes = b.constant(Tensor::i64s(&[1]));
            let class_token = b.named(head.embedding(), |b| b.squeeze(&first, &squeeze_axes));
            draw.classifier(&mut b, &class_token, WIDTH, classes, false);
        }
    }
    exported(b, opset)
}

/// How a ConvNeXt's pooled features reach the logits: pooled, LayerNorm2d (Transpose →
/// LayerNormalization → Transpose), flattened, classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvNextHead {
    /// `torch.onnx.export`: GlobalAveragePool, Flatten, Gemm.
    GlobalAveragePool,
    /// torch.export (opset 18): ReduceMean over axes `[-1, -2]` from a Constant node,
    /// Reshape, MatMul + Add.
    ReduceMean,
    /// torchvision's through torch.export: as `ReduceMean`, with the pooled map viewed by
    /// `as_strided`, a Gather from it flattened at `Range(0, N) · C + channel` indices.
    AsStrided,
}

impl ConvNextHead {
    /// The normalised embedding `[N, C]` the classifier reads.
    pub fn embedding(self) -> &'static str {
        match self {
            ConvNextHead::GlobalAveragePool => "/head/flatten/Flatten_output_0",
            ConvNextHead::ReduceMean | ConvNextHead::AsStrided => "view",
        }
    }
}

/// The generated ConvNeXt's last feature map.
pub const CONVNEXT_FEATURES: &str = "stages_output";

/// A one-block ConvNeXt: a 4×4 stride-4 stem, LayerNorm2d, a 7×7 depthwise convolution,
/// the channels-last MLP (MatMul, erf-GELU, MatMul, layer scale) added back, and the head
/// `head` names, at any image size.
pub fn convnext(head: ConvNextHead, classes: i64, seed: u64) -> Model {
    let opset = if head == ConvNextHead::GlobalAveragePool {
        17
    } else {
        18
    };
    let mut draw = Draw(ChaCha8Rng::seed_from_u64(seed));
    let mut b = GraphBuilder::new("convnext_export");
    let dim = |name: &str| Dim::Symbolic(name.into());
    let x = b.input(
        "input",
        DataType::Float,
        vec![dim("batch"), Dim::Fixed(3), dim("height"), dim("width")],
    );
    let layer_norm_2d = |b: &mut GraphBuilder, draw: &mut Draw, x: &str, name: &str| {
        let x = b.transpose(x, &[0, 2, 3, 1]);
        let x = draw.layer_norm(b, &x, name, WIDTH);
        b.transpose(&x, &[0, 3, 1, 2])
    };
    let w = draw.param(&mut b, "stem.0.weight", &[WIDTH, 3, 4, 4], 0.2);
    let bias = draw.param(&mut b, "stem.0.bias", &[WIDTH], 0.1);
    let stem = b.conv(&x, &w, Some(&bias), &Conv::square(4, 4, 0));
    let stem = layer_norm_2d(&mut b, &mut draw, &stem, "stem.1");
    let w = draw.param(&mut b, "block.dwconv.weight", &[WIDTH, 1, 7, 7], 0.2);
    let bias = draw.param(&mut b, "block.dwconv.bias", &[WIDTH], 0.1);
    let dw = b.conv(
        &stem,
        &w,
        Some(&bias),
        &Conv {
            group: Some(WIDTH),
            ..Conv::square(7, 1, 3)
        },
    );
    let h = b.transpose(&dw, &[0, 2, 3, 1]);
    let h = draw.layer_norm(&mut b, &h, "block.norm", WIDTH);
    let h = draw.linear(&mut b, &h, "block.pwconv1", WIDTH, 4 * WIDTH);
    let h = gelu(&mut b, &h, opset);
    let h = draw.linear(&mut b, &h, "block.pwconv2", 4 * WIDTH, WIDTH);
    let gamma = draw.param(&mut b, "block.gamma", &[WIDTH], 0.5);
    let h = b.mul(&h, &gamma);
    let h = b.transpose(&h, &[0, 3, 1, 2]);
    let features = b.named(CONVNEXT_FEATURES, |b| b.add(&stem, &h));

    let gemm = head == ConvNextHead::GlobalAveragePool;
    let pooled = if gemm {
        b.global_average_pool(&features)
    } else {
        let axes = b.op(
            "Constant",
            &[],
            vec![("value", Attr::Tensor(Tensor::i64s(&[-1, -2])))],
        );
        b.op(
            "ReduceMean",
            &[&features, &axes],
            vec![("keepdims", int(1))],
        )
    };
    let pooled = if head == ConvNextHead::AsStrided {
        let flat_shape = b.constant(Tensor::i64s(&[-1]));
        let flat = b.reshape(&pooled, &flat_shape);
        let shape = b.shape(&x);
        let zero = b.constant(Tensor::i64(&[], vec![0]));
        let n = b.gather(&shape, &zero, 0);
        let (start, step) = (
            b.constant(Tensor::i64(&[], vec![0])),
            b.constant(Tensor::i64(&[], vec![1])),
        );
        let images = b.op("Range", &[&start, &n, &step], vec![]);
        let stride = b.constant(Tensor::i64(&[], vec![WIDTH]));
        let starts = b.mul(&images, &stride);
        let axes = b.constant(Tensor::i64s(&[1, 2, 3]));
        let starts = b.unsqueeze(&starts, &axes);
        let channels = b.constant(Tensor::i64(&[WIDTH, 1, 1], (0..WIDTH).collect()));
        let indices = b.add(&starts, &channels);
        b.named("as_strided", |b| b.gather(&flat, &indices, 0))
    } else {
        pooled
    };
    let normed = layer_norm_2d(&mut b, &mut draw, &pooled, "head.norm");
    let embedding = if gemm {
        b.named(head.embedding(), |b| b.flatten(&normed, 1))
    } else {
        let shape = b.constant(Tensor::i64s(&[-1, WIDTH]));
        b.named(head.embedding(), |b| b.reshape(&normed, &shape))
    };
    draw.classifier(&mut b, &embedding, WIDTH, classes, gemm);
    exported(b, opset)
}

/// The graph as a model PyTorch exported at `opset`.
fn exported(b: GraphBuilder, opset: i64) -> Model {
    let mut model = Model::new(b.finish());
    model.opsets = vec![(String::new(), opset)];
    model.producer_name = "pytorch".into();
    model.producer_version = "2.5.0".into();
    model
}
