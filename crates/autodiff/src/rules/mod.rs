//! Gradient rules, one family per file as `ortl_onnx::ops` groups the operators. Each file
//! ends with its family's `GRADIENTS` table: every operator of the family once, with its
//! rule, or [`Gradient::None`] where gradients stop, or [`Gradient::Missing`] where ortl
//! has no rule yet. A rule receives the gradients of the node's outputs (`None` where an
//! output does not reach the loss) and returns one gradient per input (`None` where the
//! input needs none, see `Ctx::needs`).
//!
//! Each family's file opens with the operators' spec links and the formulas used.

mod activation;
mod control;
mod conv;
mod elementwise;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod resample;
mod shape;

use std::sync::LazyLock;

use ortl_onnx::ops::Registry;

use crate::batch_norm;
use crate::grad::{Ctx, Grads};

pub type Rule = fn(&mut Ctx) -> Grads;

/// What differentiation does at a node of an operator.
#[derive(Clone, Copy)]
pub enum Gradient {
    /// The inputs' gradients from the outputs'.
    Rule(Rule),
    /// Not differentiable: gradients stop here (shape queries, comparisons, rounding).
    None,
    /// Differentiable, but ortl has no rule: differentiating through it is an error naming
    /// the node ([`crate::first_without_rule`] finds the last such node before the loss).
    Missing,
}

/// Every family's table.
const FAMILIES: &[&[(&str, Gradient)]] = &[
    elementwise::GRADIENTS,
    activation::GRADIENTS,
    shape::GRADIENTS,
    resample::GRADIENTS,
    reduce::GRADIENTS,
    matmul::GRADIENTS,
    conv::GRADIENTS,
    pool::GRADIENTS,
    norm::GRADIENTS,
    control::GRADIENTS,
];

/// The operators autodiff's graphs hold: ONNX's and ortl's BatchNorm on batch statistics
/// ([`batch_norm::OP_DEF`]). Shapes of a graph being differentiated are inferred with it.
pub fn registry() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> =
        LazyLock::new(|| Registry::standard().with(&[batch_norm::OP_DEF]));
    &REGISTRY
}

fn entries() -> impl Iterator<Item = &'static (&'static str, Gradient)> {
    FAMILIES.iter().flat_map(|family| family.iter())
}

fn gradient(op: &str) -> Option<Gradient> {
    entries()
        .find(|(name, _)| *name == op)
        .map(|(_, gradient)| *gradient)
}

/// Operators with a gradient rule.
pub static SUPPORTED: LazyLock<Vec<&str>> = LazyLock::new(|| {
    entries()
        .filter(|(_, gradient)| matches!(gradient, Gradient::Rule(_)))
        .map(|(op, _)| *op)
        .collect()
});

pub fn rule(op: &str) -> Option<Rule> {
    match gradient(op) {
        Some(Gradient::Rule(rule)) => Some(rule),
        _ => None,
    }
}

/// Whether gradients flow through `op` at all. An operator without an entry is taken to:
/// differentiating through it is then an error, never a silent zero.
pub fn is_differentiable(op: &str) -> bool {
    !matches!(gradient(op), Some(Gradient::None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator added to `ortl_onnx::ops` (or `batch_norm`) without a gradient decision
    /// here fails, as does one decided twice.
    #[test]
    fn every_operator_has_exactly_one_gradient_entry() {
        for op in registry().ops() {
            let count = entries().filter(|(name, _)| *name == op.name).count();
            assert_eq!(count, 1, "{} has {count} gradient entries", op.name);
        }
        for (name, gradient) in entries() {
            assert_eq!(
                entries().filter(|(other, _)| other == name).count(),
                1,
                "{name} has two gradient entries"
            );
            // Operators shape inference does not know yet are listed where gradients stop.
            assert!(
                registry().get(name).is_some() || matches!(gradient, Gradient::None),
                "{name} is not an operator ortl knows"
            );
        }
    }
}
