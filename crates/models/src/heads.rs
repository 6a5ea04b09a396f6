//! Classification heads on a `[N, C, h, w]` feature map, in inference form (dropout is the
//! identity, BatchNormalization uses stored statistics). The training graph adds their
//! training-mode parts.
//!
//! - `linear`: GAP → Dropout → Dense C → softmax.
//! - `tutorial`: exactly the Keras tutorial's head: GAP → BatchNorm → Dropout 0.8 → Dense 128
//!   (L2 0.3) → BatchNorm → ReLU → Dense C (L2 0.3) → BatchNorm → sigmoid.
//! - `mlp:W1,W2,…`: GAP → [Dense Wi → ReLU → Dropout]… → Dense C → softmax.
//!
//! Dense layers are `Gemm` with weights stored `[out, in]` (`transB = 1`, PyTorch's layout)
//! and Keras' glorot-uniform init; head BatchNorms use Keras' eps 1e-3.

use ortl_manifest::Task;
use ortl_onnx::builder::Gemm;
use std::fmt;
use std::str::FromStr;

use ortl_onnx::GraphBuilder;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::init::{filled, glorot_uniform};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Head {
    Linear { dropout: f32 },
    Tutorial,
    Mlp { widths: Vec<usize>, dropout: f32 },
}

/// The output non-linearity turning logits into probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Softmax,
    /// Independent per-class sigmoids, as the tutorial's head (rows need not sum to 1).
    Sigmoid,
}

/// Fraction of the old running statistic a head BatchNorm keeps per training step (Keras'
/// `momentum`: the head is Keras' layers).
pub const BN_MOMENTUM: f32 = 0.99;

/// The prefix of every parameter a head adds (`head.fc.weight`); a backbone's own are
/// renamed away from it (`backbone.head.*`) when the classifier is built.
pub const HEAD_PREFIX: &str = "head.";

/// Whether `parameter` is one a head added.
pub fn is_head_parameter(parameter: &str) -> bool {
    parameter.starts_with(HEAD_PREFIX)
}

/// What a head adds to the graph.
#[derive(Clone, Debug)]
pub struct HeadOutput {
    pub logits: String,
    pub probabilities: String,
    pub activation: Activation,
    /// Parameters with an L2 penalty and its coefficient (Keras `kernel_regularizer`).
    pub l2: Vec<(String, f32)>,
    /// (value before dropout, rate) for each Dropout the training graph must insert.
    pub dropouts: Vec<(String, f32)>,
    /// The pooled features `[N, channels]` the head's layers start from: everything before
    /// is the backbone plus parameter-free pooling, so a frozen backbone's value here can
    /// be cached.
    pub pooled: String,
}

impl HeadOutput {
    /// Puts an L2 penalty of `coefficient` on every dense kernel of the head in `graph`
    /// (Keras' `kernel_regularizer` on each Dense), in place of the head's own penalties.
    pub fn penalise_dense_kernels(&mut self, graph: &ortl_onnx::Graph, coefficient: f32) {
        // Dense layers are Gemm nodes whose weights [`build_head`] names `head.*`.
        self.l2 = graph
            .nodes
            .iter()
            .filter(|n| n.op == "Gemm" && n.inputs.get(1).is_some_and(|w| is_head_parameter(w)))
            .map(|n| (n.inputs[1].clone(), coefficient))
            .collect();
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Head::Linear { .. } => f.write_str("linear"),
            Head::Tutorial => f.write_str("tutorial"),
            Head::Mlp { widths, .. } => {
                let widths: Vec<String> = widths.iter().map(ToString::to_string).collect();
                write!(f, "mlp:{}", widths.join(","))
            }
        }
    }
}

impl FromStr for Head {
    type Err = String;
    /// `linear`, `tutorial` or `mlp:W1,W2,…`; dropout defaults to 0.2 (set it separately).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "linear" => Ok(Head::Linear { dropout: 0.2 }),
            "tutorial" => Ok(Head::Tutorial),
            other => {
                let widths = other.strip_prefix("mlp:").ok_or_else(|| {
                    format!("unknown head '{other}' (use linear, tutorial or mlp:W1,W2,…)")
                })?;
                let widths = widths
                    .split(',')
                    .map(|w| w.trim().parse::<usize>().ok().filter(|&w| w > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        format!("'{other}': widths must be positive integers, e.g. mlp:256,64")
                    })?;
                Ok(Head::Mlp {
                    widths,
                    dropout: 0.2,
                })
            }
        }
    }
}

/// Adds `head` on `features` (`[N, channels, h, w]`) for `classes` outputs.
pub fn build_head(
    b: &mut GraphBuilder,
    features: &str,
    channels: usize,
    classes: usize,
    head: &Head,
    seed: u64,
    task: Task,
) -> HeadOutput {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4845_4144);
    b.scoped("head", |b| {
        let pooled = b.global_average_pool(features);
        let mut x = b.flatten(&pooled, 1);
        let flat = x.clone();
        let mut l2 = Vec::new();
        let mut dropouts = Vec::new();
        let mut dense = |b: &mut GraphBuilder, x: &str, name: &str, cin: usize, cout: usize| {
            let w = b.param(
                &format!("{HEAD_PREFIX}{name}.weight"),
                glorot_uniform(cout, cin, &mut rng),
            );
            let bias = b.param(
                &format!("{HEAD_PREFIX}{name}.bias"),
                filled(&[cout as i64], 0.0),
            );
            (b.gemm(x, &w, Some(&bias), &Gemm::B_TRANSPOSED), w)
        };
        let bn = |b: &mut GraphBuilder, x: &str, name: &str, c: usize| {
            let c = [c as i64];
            let scale = b.param(&format!("{HEAD_PREFIX}{name}.weight"), filled(&c, 1.0));
            let shift = b.param(&format!("{HEAD_PREFIX}{name}.bias"), filled(&c, 0.0));
            let mean = b.param(
                &format!("{HEAD_PREFIX}{name}.running_mean"),
                filled(&c, 0.0),
            );
            let var = b.param(&format!("{HEAD_PREFIX}{name}.running_var"), filled(&c, 1.0));
            b.batch_norm([x, &scale, &shift, &mean, &var], 1e-3)
        };
        let (logits, activation) = match head {
            Head::Linear { dropout } => {
                dropouts.push((x.clone(), *dropout));
                (dense(b, &x, "fc", channels, classes).0, Activation::Softmax)
            }
            Head::Tutorial => {
                x = bn(b, &x, "bn0", channels);
                dropouts.push((x.clone(), 0.8));
                let (y, w1) = dense(b, &x, "fc1", channels, 128);
                l2.push((w1, 0.3));
                let y = bn(b, &y, "bn1", 128);
                let y = b.relu(&y);
                let (y, w2) = dense(b, &y, "fc2", 128, classes);
                l2.push((w2, 0.3));
                (bn(b, &y, "bn2", classes), Activation::Sigmoid)
            }
            Head::Mlp { widths, dropout } => {
                let mut cin = channels;
                for (i, &width) in widths.iter().enumerate() {
                    x = dense(b, &x, &format!("fc{i}"), cin, width).0;
                    x = b.relu(&x);
                    dropouts.push((x.clone(), *dropout));
                    cin = width;
                }
                (dense(b, &x, "out", cin, classes).0, Activation::Softmax)
            }
        };
        // Findings are independent: a sigmoid each, whatever the head's own output.
        let activation = match task {
            Task::MultiLabel => Activation::Sigmoid,
            Task::SingleLabel => activation,
        };
        let probabilities = match activation {
            Activation::Softmax => b.softmax(&logits, -1),
            Activation::Sigmoid => b.sigmoid(&logits),
        };
        HeadOutput {
            logits,
            probabilities,
            activation,
            l2,
            dropouts,
            pooled: flat,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("tutorial".parse::<Head>().unwrap(), Head::Tutorial);
        assert_eq!(
            "mlp:256,64".parse::<Head>().unwrap().to_string(),
            "mlp:256,64"
        );
        assert!("mlp:0".parse::<Head>().is_err());
        assert!("svm".parse::<Head>().unwrap_err().contains("tutorial"));
    }

    #[test]
    fn tutorial_head_has_the_keras_layers_and_penalties() {
        let mut b = GraphBuilder::new("t");
        let f = b.input("f", ortl_onnx::DataType::Float, vec![]);
        let out = build_head(&mut b, &f, 2048, 2, &Head::Tutorial, 1, Task::SingleLabel);
        let g = b.finish();
        let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.as_str()).collect();
        assert_eq!(
            ops,
            [
                "GlobalAveragePool",
                "Flatten",
                "BatchNormalization",
                "Gemm",
                "BatchNormalization",
                "Relu",
                "Gemm",
                "BatchNormalization",
                "Sigmoid"
            ]
        );
        assert_eq!(g.initializers["head.fc1.weight"].dims, [128, 2048]);
        assert_eq!(
            out.l2,
            vec![
                ("head.fc1.weight".to_string(), 0.3),
                ("head.fc2.weight".to_string(), 0.3)
            ]
        );
        assert_eq!(out.dropouts.len(), 1);
        assert_eq!(out.activation, Activation::Sigmoid);
    }

    #[test]
    fn an_l2_coefficient_reaches_every_dense_kernel_of_the_head_only() {
        let mut b = GraphBuilder::new("t");
        let f = b.input("f", ortl_onnx::DataType::Float, vec![]);
        let head = Head::Mlp {
            widths: vec![16, 8],
            dropout: 0.2,
        };
        let mut out = build_head(&mut b, &f, 4, 2, &head, 1, Task::SingleLabel);
        assert!(out.l2.is_empty());
        let mut graph = b.finish();
        // A Gemm outside the head (an imported backbone's classifier, say) keeps no penalty.
        let mut outside = graph.nodes.iter().find(|n| n.op == "Gemm").unwrap().clone();
        outside.inputs[1] = "fc.weight".into();
        graph.nodes.insert(0, outside);
        out.penalise_dense_kernels(&graph, 0.1);
        let kernels: Vec<(&str, f32)> = out.l2.iter().map(|(w, c)| (w.as_str(), *c)).collect();
        assert_eq!(
            kernels,
            [
                ("head.fc0.weight", 0.1),
                ("head.fc1.weight", 0.1),
                ("head.out.weight", 0.1)
            ]
        );
    }
}
