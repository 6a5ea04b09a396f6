//! Element-wise activations. Specs: https://onnx.ai/onnx/operators/ (Relu, Sigmoid, Tanh,
//! Exp, Log, Sqrt, Abs, Clip, HardSigmoid, HardSwish, LeakyRelu, PRelu, Elu, Selu, Erf,
//! Softplus, Pow, Softmax, LogSoftmax, Celu, Gelu, Softsign, Mish, ThresholdedRelu). Each
//! keeps its input's shape (Pow broadcasts); Clip's bounds became inputs in opset 11, and
//! the activations newer than opset 17 (Mish in 18, Gelu in 20) are written as the
//! operators they are made of.

use crate::OnnxError;
use crate::ir::{Attr, Graph, Node, Tensor};
use crate::ops::elementwise::{broadcasting, fold_arithmetic, fold_unary};
use crate::ops::{OpDef, check_axis, same_shape};
use crate::opset::{add_constant, set_input};

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("Relu").shape(same_shape),
    OpDef::new("Sigmoid").shape(same_shape),
    OpDef::new("Tanh").shape(same_shape),
    OpDef::new("Exp").shape(same_shape),
    OpDef::new("Log").shape(same_shape),
    OpDef::new("Sqrt").shape(same_shape).fold(fold_unary),
    OpDef::new("Abs").shape(same_shape),
    OpDef::new("Clip").shape(same_shape).convert(convert_clip),
    OpDef::new("HardSigmoid").shape(same_shape),
    OpDef::new("HardSwish").since(14).shape(same_shape),
    OpDef::new("LeakyRelu").shape(same_shape),
    OpDef::new("PRelu").shape(same_shape),
    OpDef::new("Elu").shape(same_shape),
    OpDef::new("Selu").shape(same_shape),
    OpDef::new("Erf").since(9).shape(same_shape),
    OpDef::new("Softplus").shape(same_shape),
    OpDef::new("Pow").shape(broadcasting).fold(fold_arithmetic),
    OpDef::new("Softmax").check(check_axis).shape(same_shape),
    OpDef::new("LogSoftmax").check(check_axis).shape(same_shape),
    OpDef::new("Celu").since(12).shape(same_shape),
    OpDef::new("Gelu").since(20).shape(same_shape).convert(gelu),
    OpDef::new("Softsign").shape(same_shape),
    OpDef::new("Mish").since(18).shape(same_shape).convert(mish),
    OpDef::new("ThresholdedRelu").since(10).shape(same_shape),
];

/// Bounds as inputs from opset 11.
fn convert_clip(graph: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    if from < 11 {
        let min = node.attrs.remove("min");
        let max = node.attrs.remove("max");
        for (index, bound) in [(1, min), (2, max)] {
            if let Some(Attr::Float(v)) = bound {
                let name = add_constant(graph, &node, &format!("bound{index}"), Tensor::scalar(v));
                set_input(&mut node, index, name);
            }
        }
    }
    Ok(vec![node])
}

/// A node of the decomposition of `node`, named after it.
fn part(node: &Node, i: usize, op: &str, inputs: &[&str], output: &str) -> Node {
    Node {
        name: format!("{}/{op}{i}", node.name),
        op: op.into(),
        domain: String::new(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.into()],
        attrs: Default::default(),
    }
}

/// Gelu (opset 20): ½x(1 + erf(x/√2)), or with `approximate="tanh"`
/// ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
fn gelu(graph: &mut Graph, node: Node, _: i64) -> Result<Vec<Node>, OnnxError> {
    let x = node.inputs[0].clone();
    let y = node.outputs[0].clone();
    let tmp = |i: usize| format!("{}/t{i}", node.name);
    let tanh = matches!(node.attr("approximate"), Some(Attr::String(a)) if a == "tanh");
    let mut c = |what: &str, v: f32| add_constant(graph, &node, what, Tensor::scalar(v));
    let half = c("half", 0.5);
    let one = c("one", 1.0);
    let mut nodes = Vec::new();
    let inner = if tanh {
        let k = c("k", 0.044_715);
        let s = c("sqrt_2_over_pi", (2.0 / std::f32::consts::PI).sqrt());
        nodes.push(part(&node, 0, "Mul", &[&x, &x], &tmp(0)));
        nodes.push(part(&node, 1, "Mul", &[&tmp(0), &x], &tmp(1)));
        nodes.push(part(&node, 2, "Mul", &[&tmp(1), &k], &tmp(2)));
        nodes.push(part(&node, 3, "Add", &[&x, &tmp(2)], &tmp(3)));
        nodes.push(part(&node, 4, "Mul", &[&tmp(3), &s], &tmp(4)));
        nodes.push(part(&node, 5, "Tanh", &[&tmp(4)], &tmp(5)));
        tmp(5)
    } else {
        let r = c("inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2);
        nodes.push(part(&node, 0, "Mul", &[&x, &r], &tmp(0)));
        nodes.push(part(&node, 1, "Erf", &[&tmp(0)], &tmp(1)));
        tmp(1)
    };
    nodes.push(part(&node, 6, "Add", &[&inner, &one], &tmp(6)));
    nodes.push(part(&node, 7, "Mul", &[&x, &half], &tmp(7)));
    nodes.push(part(&node, 8, "Mul", &[&tmp(7), &tmp(6)], &y));
    Ok(nodes)
}

/// Mish (opset 18): x·tanh(softplus(x)).
fn mish(_: &mut Graph, node: Node, _: i64) -> Result<Vec<Node>, OnnxError> {
    let x = node.inputs[0].clone();
    let t = |i: usize| format!("{}/t{i}", node.name);
    Ok(vec![
        part(&node, 0, "Softplus", &[&x], &t(0)),
        part(&node, 1, "Tanh", &[&t(0)], &t(1)),
        part(&node, 2, "Mul", &[&x, &t(1)], &node.outputs[0]),
    ])
}
