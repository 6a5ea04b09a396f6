//! One table from operator to gradient rule. A rule receives the gradients of the node's
//! outputs (`None` where an output does not reach the loss) and returns one gradient per
//! input (`None` where the input needs none, see `Ctx::needs`).
//!
//! Each family's file opens with the operators' spec links and the formulas used.

mod activation;
mod conv;
mod elementwise;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod resample;
mod shape;

use crate::grad::{Ctx, Grads};

pub type Rule = fn(&mut Ctx) -> Grads;

const TABLE: &[(&str, Rule)] = &[
    ("Add", elementwise::add),
    ("Sub", elementwise::sub),
    ("Mul", elementwise::mul),
    ("Div", elementwise::div),
    ("Neg", elementwise::neg),
    ("Sum", elementwise::sum),
    ("Identity", shape::identity),
    ("Dropout", shape::identity),
    ("Cast", shape::cast),
    ("Relu", activation::relu),
    ("Sigmoid", activation::sigmoid),
    ("Tanh", activation::tanh),
    ("Exp", activation::exp),
    ("Log", activation::log),
    ("Sqrt", activation::sqrt),
    ("Abs", activation::abs),
    ("Clip", activation::clip),
    ("HardSigmoid", activation::hard_sigmoid),
    ("HardSwish", activation::hard_swish),
    ("LeakyRelu", activation::leaky_relu),
    ("PRelu", activation::prelu),
    ("Elu", activation::elu),
    ("Selu", activation::selu),
    ("Erf", activation::erf),
    ("Softplus", activation::softplus),
    ("Pow", activation::pow),
    ("Softmax", activation::softmax),
    ("LogSoftmax", activation::log_softmax),
    ("Reshape", shape::reshape),
    ("Flatten", shape::reshape),
    ("Squeeze", shape::reshape),
    ("Unsqueeze", shape::reshape),
    ("Transpose", shape::transpose),
    ("Concat", shape::concat),
    ("Pad", shape::pad),
    ("Slice", shape::slice),
    ("Split", shape::split),
    ("Gather", shape::gather),
    ("Expand", shape::expand),
    ("Resize", resample::resize),
    ("ReduceSum", reduce::reduce_sum),
    ("ReduceMean", reduce::reduce_mean),
    ("CumSum", reduce::cum_sum),
    ("GlobalAveragePool", reduce::global_average_pool),
    ("Gemm", matmul::gemm),
    ("MatMul", matmul::matmul),
    ("Conv", conv::conv),
    ("MaxPool", pool::max_pool),
    ("AveragePool", pool::average_pool),
    ("BatchNormalization", norm::batch_norm_inference),
    (crate::batch_norm::OP, norm::batch_norm_training),
    ("LayerNormalization", norm::layer_norm),
];

/// Operators with a gradient rule.
pub const SUPPORTED: [&str; TABLE.len()] = {
    let mut names = [""; TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        names[i] = TABLE[i].0;
        i += 1;
    }
    names
};

pub fn rule(op: &str) -> Option<Rule> {
    TABLE
        .iter()
        .find(|(name, _)| *name == op)
        .map(|(_, rule)| *rule)
}

/// Whether gradients flow through `op` at all (shape queries and comparisons stop them).
pub fn is_differentiable(op: &str) -> bool {
    !matches!(
        op,
        "Shape"
            | "Size"
            | "Equal"
            | "Less"
            | "Greater"
            | "LessOrEqual"
            | "GreaterOrEqual"
            | "And"
            | "Or"
            | "Not"
            | "ArgMax"
            | "ArgMin"
            | "ConstantOfShape"
            | "NonZero"
            | "Floor"
            | "Ceil"
            | "Round"
            | "Sign"
    )
}
