//! Losses as forward graph pieces (their gradients come from the rules like any other op).
//! Targets arrive as a float `[N, C]` matrix (one-hot, or smoothed by the caller) and
//! per-sample weights as `[N]` (class weights looked up by the caller), so label smoothing
//! and class weighting need no special ops. Reduction is Keras' "sum over batch size":
//! mean over the batch of weight × per-sample loss. Binary cross-entropy also takes, per
//! element `[N, C]`, a mask (0 drops an unknown label) and the weight of the positive term
//! (PyTorch's `pos_weight`): [`BinaryWeights`].

use std::fmt;

use clap::ValueEnum;
use ortl_onnx::GraphBuilder;

use crate::emit::{reduce_sum, scalar, sum_all};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Loss {
    /// −Σ t·log softmax(z): the usual multi-class loss.
    #[value(name = "softmax-ce")]
    SoftmaxCrossEntropy,
    /// Keras `SparseCategoricalCrossentropy()` applied to sigmoid outputs, as the tutorial
    /// does: p = σ(z) renormalised to sum 1, clipped to [1e-7, 1 − 1e-7], −Σ t·log p.
    SigmoidCategorical,
    /// Mean over classes of binary cross-entropy on σ(z) (independent labels), in the
    /// stable form max(z, 0) − z·t + log(1 + e^−|z|); with [`BinaryWeights`], PyTorch's
    /// −m·[w·t·log σ(z) + (1 − t)·log(1 − σ(z))], summed over classes and divided by C.
    #[value(name = "sigmoid-bce")]
    SigmoidBinary,
}

impl Loss {
    /// Whether the loss takes [`BinaryWeights`].
    pub fn weighs_elements(self) -> bool {
        self == Loss::SigmoidBinary
    }
}

/// Binary cross-entropy's weights per element `[N, C]`, as graph values.
#[derive(Clone, Copy, Debug)]
pub struct BinaryWeights<'a> {
    /// 1 for a known label, 0 for an unknown one (left out of the loss).
    pub mask: &'a str,
    /// The weight of the positive term (PyTorch's `pos_weight`; 1 leaves it as it is).
    pub positive: &'a str,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            self.to_possible_value()
                .expect("every variant has a name")
                .get_name(),
        )
    }
}

/// Adds the batch loss (a scalar) of `logits` `[N, C]` against `target` `[N, C]` with
/// per-sample `weight` `[N]` and, for binary cross-entropy, per-element `binary` weights.
pub fn batch_loss(
    b: &mut GraphBuilder,
    loss: Loss,
    logits: &str,
    target: &str,
    weight: &str,
    binary: Option<BinaryWeights>,
) -> String {
    b.scoped("loss", |b| {
        let per_sample = match loss {
            Loss::SoftmaxCrossEntropy => {
                let log_p = b.log_softmax(logits, 1);
                negative_dot(b, target, &log_p)
            }
            Loss::SigmoidCategorical => {
                let p = b.sigmoid(logits);
                let total = reduce_sum(b, &p, &[1], true);
                let q = b.div(&p, &total);
                let (lo, hi) = (scalar(b, 1e-7), scalar(b, 1.0 - 1e-7));
                let q = b.clip(&q, Some(&lo), Some(&hi));
                let log_q = b.log(&q);
                negative_dot(b, target, &log_q)
            }
            Loss::SigmoidBinary => {
                // softplus(z) = max(z, 0) + log(1 + e^−|z|) = −log(1 − σ(z)), and
                // −log σ(z) = softplus(z) − z.
                let relu = b.relu(logits);
                let abs = b.abs(logits);
                let neg = b.neg(&abs);
                let exp = b.exp(&neg);
                let one = scalar(b, 1.0);
                let soft = b.add(&one, &exp);
                let log = b.log(&soft);
                let softplus = b.add(&relu, &log);
                let elem = match binary {
                    None => {
                        let zt = b.mul(logits, target);
                        b.sub(&softplus, &zt)
                    }
                    // w·t·(softplus − z) + (1 − t)·softplus = softplus·(1 + w·t − t) − w·t·z.
                    Some(BinaryWeights { mask, positive }) => {
                        let wt = b.mul(positive, target);
                        let extra = b.sub(&wt, target);
                        let factor = b.add(&one, &extra);
                        let negatives = b.mul(&softplus, &factor);
                        let wtz = b.mul(&wt, logits);
                        let unmasked = b.sub(&negatives, &wtz);
                        b.mul(&unmasked, mask)
                    }
                };
                b.reduce_mean(&elem, &[1], false)
            }
        };
        let weighted = b.mul(&per_sample, weight);
        b.reduce_mean(&weighted, &[], false)
    })
}

/// −Σ_c t·x per row, as `[N]`.
fn negative_dot(b: &mut GraphBuilder, target: &str, x: &str) -> String {
    let prod = b.mul(target, x);
    let sum = reduce_sum(b, &prod, &[1], false);
    b.neg(&sum)
}

/// Σ coefficient · Σ w² over the given parameters (Keras `regularizers.l2`).
pub fn l2_penalty(b: &mut GraphBuilder, params: &[(String, f32)]) -> Option<String> {
    let terms: Vec<String> = params
        .iter()
        .map(|(name, coefficient)| {
            let square = b.mul(name, name);
            let total = sum_all(b, &square);
            let c = scalar(b, *coefficient);
            b.mul(&total, &c)
        })
        .collect();
    match terms.len() {
        0 => None,
        1 => terms.into_iter().next(),
        _ => {
            let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
            Some(b.sum(&refs))
        }
    }
}
