//! A backbone: a graph from a float image tensor to a convolutional feature map.

use std::collections::HashSet;

use ortl_onnx::Graph;
use serde::{Deserialize, Serialize};

use crate::Normalization;

/// Memory layout of image tensors a backbone reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[N, 3, H, W]` (PyTorch, ONNX model zoo).
    Nchw,
    /// `[N, H, W, 3]` (Keras / tf2onnx).
    Nhwc,
}

impl Layout {
    /// Height and width of an image tensor's rank-4 `dims` in this layout.
    pub fn height_width(self, dims: &[Option<i64>]) -> (Option<i64>, Option<i64>) {
        match self {
            Layout::Nchw => (dims[2], dims[3]),
            Layout::Nhwc => (dims[1], dims[2]),
        }
    }
}

pub use ortl_manifest::train_record::Weights;

/// Fraction of the old running statistic a backbone BatchNorm that trains keeps per step:
/// PyTorch's 1 − 0.1, the convention of the torchvision layout the built-in backbones share
/// (with Keras' 0.99 a short run leaves the statistics near their initial values).
pub const TRAINING_BN_MOMENTUM: f32 = 0.9;

#[derive(Clone, Debug)]
pub struct Backbone {
    /// What it is: `resnet50`, or the imported file's name.
    pub name: String,
    pub graph: Graph,
    /// The graph input: float image in `layout`, normalised by `normalization`.
    pub input: String,
    pub layout: Layout,
    pub normalization: Normalization,
    /// Why this normalisation was chosen (detected, default or given).
    pub normalization_reason: String,
    /// The output: an `[N, C, h, w]` feature map (always NCHW; imports transpose).
    pub features: String,
    pub channels: usize,
    /// Input size the backbone was made for, when fixed.
    pub size: Option<(usize, usize)>,
    pub weights: Weights,
    /// Where the features were taken: for an import, which tensor and why.
    pub cut: String,
}

impl Backbone {
    /// Initializers that are statistics, not parameters: BatchNormalization's running mean
    /// and variance (inputs 3 and 4).
    pub fn buffers(&self) -> Vec<String> {
        buffers(&self.graph)
    }

    /// The feature map's inferred shape for a square input of `size` pixels.
    pub fn feature_shape_at(
        &self,
        size: i64,
    ) -> Result<ortl_onnx::shapes::Shape, ortl_onnx::OnnxError> {
        self.feature_shape(size, size)
    }

    /// The feature map's inferred shape for a `height` × `width` input; an error where a
    /// window does not fit or a size fixed at export does not hold.
    pub fn feature_shape(
        &self,
        height: i64,
        width: i64,
    ) -> Result<ortl_onnx::shapes::Shape, ortl_onnx::OnnxError> {
        use ortl_onnx::Dim;
        let mut graph = self.graph.clone();
        if let Some(input) = graph.inputs.iter_mut().find(|i| i.name == self.input) {
            let n = Dim::Symbolic("N".into());
            let (h, w) = (Dim::Fixed(height), Dim::Fixed(width));
            input.shape = Some(match self.layout {
                Layout::Nchw => vec![n, Dim::Fixed(3), h, w],
                Layout::Nhwc => vec![n, h, w, Dim::Fixed(3)],
            });
        }
        ortl_onnx::fold::fold(&mut graph);
        let mut shapes = ortl_onnx::shapes::infer(&graph)?;
        Ok(shapes
            .remove(&self.features)
            .map(|t| t.shape)
            .unwrap_or_default())
    }

    /// Why the backbone cannot run on `height` × `width` images, when shape inference can
    /// tell: an imported graph can hold sizes fixed from its example input (a channel
    /// shuffle's Reshape to [-1, 2, C/2, 28, 28], a batch of 1) or need sizes its design
    /// divides evenly (DLA adds maps of 13 and 12 rows at 100×100); either would fail on the
    /// first batch. `None` also when inference cannot follow the graph (an operator it does
    /// not know): ONNX Runtime has the last word then.
    pub fn unfit_size(&self, height: usize, width: usize) -> Option<String> {
        let e = self.feature_shape(height as i64, width as i64).err()?;
        let (rh, rw) = self.size.unwrap_or((224, 224));
        if (rh, rw) != (height, width) && self.feature_shape(rh as i64, rw as i64).is_ok() {
            let (origin, or_export) = match self.size {
                Some(_) => (
                    format!("exported for {rh}x{rw} images, it runs at that size"),
                    ", or export the model with dynamic height and width",
                ),
                None => (format!("it runs at {rh}x{rw}"), ""),
            };
            return Some(format!(
                "{origin} but not at the tensors' {height}x{width} ({e}); make the tensors with ortl-augment --size {rh}x{rw}{or_export}"
            ));
        }
        matches!(e, ortl_onnx::OnnxError::FixedAtExport { .. }).then(|| {
            format!(
                "{e}: export the model with a dynamic batch (torch.export: a batch of 2 or more in the example input, or Dim for axis 0)"
            )
        })
    }

    /// The smallest square image, in pixels per side, whose every convolution and pooling
    /// window fits its input; `None` when shape inference cannot follow the graph (an
    /// imported operator it does not know), so the size cannot be checked up front. Larger
    /// inputs never make a window stop fitting, so a doubling then bisecting search finds it.
    pub fn minimum_size(&self) -> Option<usize> {
        const LARGEST: i64 = 8192;
        let fits = |size: i64| self.feature_shape_at(size).is_ok();
        if fits(1) {
            return Some(1);
        }
        let mut fitting = 2;
        while !fits(fitting) {
            fitting *= 2;
            if fitting > LARGEST {
                return None;
            }
        }
        let mut too_small = fitting / 2;
        while fitting - too_small > 1 {
            let middle = (too_small + fitting) / 2;
            if fits(middle) {
                fitting = middle;
            } else {
                too_small = middle;
            }
        }
        Some(fitting as usize)
    }

    /// Trainable float parameters ([`parameters`]: weights in parameter positions, not
    /// constants such as ReLU6's bounds).
    pub fn parameter_count(&self) -> usize {
        parameters(&self.graph)
            .iter()
            .map(|name| self.graph.initializers[name].numel())
            .sum()
    }
}

/// Float initializers in parameter positions: weights and biases of Conv, ConvTranspose,
/// Gemm, MatMul and PRelu, BatchNorm and LayerNorm scale and shift, a tensor Expand
/// broadcasts (a transformer's class token), and operands of Add and Mul with more than one
/// element (the bias of a Keras-style MatMul + Add, a position embedding, ConvNeXt's layer
/// scale) unless they act on the image itself: constants there are preprocessing (a mean
/// subtracted, a scale), as are shapes and scalars anywhere, and attention masks (every
/// element 0 or at most -100: Swin's shifted-window mask, a buffer or folded from shape
/// arithmetic). A table Gather reads at constant indices (Swin's relative position bias)
/// trains.
pub fn parameters(graph: &Graph) -> Vec<String> {
    let is_float = |name: &str| {
        graph
            .initializers
            .get(name)
            .is_some_and(|t| t.dtype == ortl_onnx::DataType::Float)
    };
    let on_the_image = values_of_the_image(graph);
    let mut out: Vec<String> = graph
        .nodes
        .iter()
        .flat_map(|n| {
            let slots: &[usize] = match n.op.as_str() {
                "Conv" | "ConvTranspose" | "Gemm" | "BatchNormalization" | "LayerNormalization" => {
                    &[1, 2]
                }
                "MatMul" | "PRelu" => &[1],
                "Expand" => &[0],
                "Gather" if graph.initializers.contains_key(&n.inputs[1]) => &[0],
                "Add" | "Mul" if !n.inputs.iter().any(|i| on_the_image.contains(i.as_str())) => {
                    &[0, 1]
                }
                _ => &[],
            };
            slots
                .iter()
                .filter_map(|&i| n.inputs.get(i))
                .cloned()
                .collect::<Vec<_>>()
                .into_iter()
                .filter(|name| {
                    !matches!(n.op.as_str(), "Add" | "Mul")
                        || graph
                            .initializers
                            .get(name)
                            .is_some_and(|t| t.numel() > 1 && !is_attention_mask(t))
                })
        })
        .filter(|name| is_float(name))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every element 0 or at most -100 (and some of each): an additive attention mask.
fn is_attention_mask(tensor: &ortl_onnx::Tensor) -> bool {
    let Some(values) = tensor.as_f32() else {
        return false;
    };
    let masked = values.iter().filter(|&&v| v <= -100.0).count();
    masked > 0 && masked < values.len() && values.iter().all(|&v| v == 0.0 || v <= -100.0)
}

/// Values computed from the graph's inputs by element arithmetic alone, before any layer
/// with weights: preprocessing. Shapes read from them carry no pixels.
fn values_of_the_image(graph: &Graph) -> HashSet<&str> {
    let mut image: HashSet<&str> = graph.inputs.iter().map(|v| v.name.as_str()).collect();
    for node in &graph.nodes {
        let layer_or_shape = matches!(
            node.op.as_str(),
            "Conv" | "ConvTranspose" | "Gemm" | "MatMul" | "Einsum" | "Shape" | "Size"
        );
        if !layer_or_shape && node.inputs.iter().any(|i| image.contains(i.as_str())) {
            image.extend(node.outputs.iter().map(String::as_str));
        }
    }
    image
}

/// BatchNormalization running statistics in `graph`.
pub fn buffers(graph: &Graph) -> Vec<String> {
    let mut out: Vec<String> = graph
        .nodes
        .iter()
        .filter(|n| n.op == "BatchNormalization")
        .flat_map(|n| n.inputs.iter().skip(3).take(2).cloned())
        .filter(|name| graph.initializers.contains_key(name))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use ortl_onnx::{DataType, Dim, GraphBuilder, Tensor};

    use super::*;

    /// A mean subtracted from the image and a per-channel scale are preprocessing; a layer
    /// scale after a convolution and a broadcast class token are parameters.
    #[test]
    fn constants_on_the_image_are_not_parameters() {
        let mut b = GraphBuilder::new("g");
        let x = b.input(
            "x",
            DataType::Float,
            vec![Dim::Symbolic("N".into()), Dim::Fixed(3)],
        );
        let mean = b.param("mean", Tensor::f32(&[3], vec![0.5; 3]));
        let x = b.add(&x, &mean);
        let scale = b.param("scale", Tensor::f32(&[3], vec![2.0; 3]));
        let x = b.mul(&x, &scale);
        let w = b.param("w", Tensor::f32(&[3, 3], vec![0.1; 9]));
        let y = b.matmul(&x, &w);
        let gamma = b.param("gamma", Tensor::f32(&[3], vec![1.0; 3]));
        let y = b.mul(&y, &gamma);
        let token = b.param("token", Tensor::f32(&[1, 3], vec![0.0; 3]));
        let shape = b.shape(&y);
        let token = b.expand(&token, &shape);
        let y = b.add(&y, &token);
        b.output(&y, DataType::Float, vec![]);
        assert_eq!(parameters(&b.finish()), ["gamma", "token", "w"]);
    }

    /// Swin's attention: a relative position bias table gathered at constant indices trains;
    /// the shifted-window mask added beside it (0 or -100) does not.
    #[test]
    fn a_bias_table_trains_and_an_attention_mask_does_not() {
        let mut b = GraphBuilder::new("g");
        let scores = b.input(
            "scores",
            DataType::Float,
            vec![Dim::Symbolic("N".into()), Dim::Fixed(4), Dim::Fixed(4)],
        );
        let w = b.param("w", Tensor::f32(&[4, 4], vec![0.1; 16]));
        let scores = b.matmul(&scores, &w);
        let table = b.param("table", Tensor::f32(&[7], vec![0.1; 7]));
        let index = b.param(
            "index",
            Tensor::i64(&[4, 4], (0..16).map(|i| i % 7).collect()),
        );
        let bias = b.gather(&table, &index, 0);
        let y = b.add(&scores, &bias);
        let mask = (0..16)
            .map(|i| if i % 5 == 0 { 0.0 } else { -100.0 })
            .collect();
        let mask = b.param("mask", Tensor::f32(&[4, 4], mask));
        let y = b.add(&y, &mask);
        let zeros = b.param("zeros", Tensor::f32(&[4, 4], vec![0.0; 16]));
        let y = b.add(&y, &zeros);
        b.output(&y, DataType::Float, vec![]);
        assert_eq!(parameters(&b.finish()), ["table", "w", "zeros"]);
    }

    #[test]
    fn a_weights_file_is_named_with_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.onnx");
        std::fs::write(&path, b"abc").unwrap();
        let weights = Weights::of_file(&path).unwrap();
        assert_eq!(
            weights,
            Weights::File {
                file: "weights.onnx".into(),
                sha256: Some(
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
                ),
            }
        );
        assert!(weights.is_pretrained());
        assert_eq!(
            weights.to_string(),
            "pretrained: weights.onnx (sha256 ba7816bf8f01)"
        );
        let random = Weights::Random { seed: 42 };
        assert!(!random.is_pretrained());
        assert!(random.to_string().contains("not pretrained"));
        let json = serde_json::to_string(&random).unwrap();
        assert_eq!(json, r#"{"kind":"random","seed":42}"#);
    }
}
