//! Element-wise activations. Specs: https://onnx.ai/onnx/operators/ (Relu, Sigmoid, Tanh,
//! Exp, Log, Sqrt, Abs, Clip, HardSigmoid, HardSwish, LeakyRelu, PRelu, Elu, Selu, Erf,
//! Softplus, Pow, Softmax, LogSoftmax, Celu, Gelu, Softsign, Mish, ThresholdedRelu). Each
//! keeps its input's shape (Pow broadcasts); Clip's bounds became inputs in opset 11,
//! Softmax and LogSoftmax normalise one axis from opset 13 (the input flattened before), and
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
    OpDef::new("Softmax")
        .check(check_axis)
        .shape(same_shape)
        .convert(flattened_before_13),
    OpDef::new("LogSoftmax")
        .check(check_axis)
        .shape(same_shape)
        .convert(flattened_before_13),
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
    Node::new(
        format!("{}/{op}{i}", node.name),
        op,
        inputs.iter().map(|s| s.to_string()).collect(),
        output.into(),
    )
}

/// Softmax and LogSoftmax before opset 13 normalise the input flattened to 2-D at `axis`
/// (default 1): all the axes from `axis` on together; from 13 `axis` alone (default -1).
/// The two agree when `axis` is the last axis: -1, and axis 1 of a graph's output (a
/// classifier's `[N, classes]` probabilities, which `wrap_foreign` recognises by their
/// Softmax), are kept; any other axis is written out as the old form: Flatten(axis) → the
/// operator over axis 1 → Reshape to the input's shape.
fn flattened_before_13(graph: &mut Graph, node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    let axis = node.int("axis").unwrap_or(1);
    let probabilities = axis == 1 && graph.outputs.iter().any(|o| o.name == node.outputs[0]);
    if from >= 13 || axis == -1 || probabilities {
        return Ok(vec![node]);
    }
    let x = node.inputs[0].clone();
    let tmp = |i: usize| format!("{}/t{i}", node.name);
    let mut flatten = part(&node, 0, "Flatten", &[&x], &tmp(0));
    flatten.attrs.insert("axis".into(), Attr::Int(axis));
    let mut normalise = part(&node, 1, &node.op, &[&tmp(0)], &tmp(1));
    normalise.attrs.insert("axis".into(), Attr::Int(1));
    Ok(vec![
        flatten,
        normalise,
        part(&node, 2, "Shape", &[&x], &tmp(2)),
        part(&node, 3, "Reshape", &[&tmp(1), &tmp(2)], &node.outputs[0]),
    ])
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

#[cfg(test)]
mod tests {
    use crate::builder::int;
    use crate::ir::{DataType, Dim};
    use crate::{GraphBuilder, opset, shapes};

    /// An opset-11 Softmax over axis 1 of a rank-3 tensor normalises axes 1 and 2 together:
    /// written out as Flatten → Softmax over axis 1 → Reshape, with the same shape; one over
    /// the last axis (-1) is kept.
    #[test]
    fn softmax_before_opset_13_normalises_the_flattened_axes() {
        for (op, axis, kept) in [
            ("Softmax", Some(1), false),
            ("LogSoftmax", None, false),
            ("Softmax", Some(-1), true),
        ] {
            let mut b = GraphBuilder::new("g");
            let x = b.input(
                "x",
                DataType::Float,
                vec![Dim::Symbolic("N".into()), Dim::Fixed(3), Dim::Fixed(4)],
            );
            let attrs = axis.map(|a| ("axis", int(a))).into_iter().collect();
            let y = b.op(op, &[&x], attrs);
            let y = b.identity(&y);
            b.output(&y, DataType::Float, vec![]);
            let mut graph = b.finish();
            opset::convert(&mut graph, 11).unwrap();
            let ops: Vec<&str> = graph.nodes.iter().map(|n| n.op.as_str()).collect();
            if kept {
                assert_eq!(ops, [op, "Identity"]);
            } else {
                assert_eq!(ops, ["Flatten", op, "Shape", "Reshape", "Identity"]);
                assert_eq!(graph.nodes[0].int("axis"), Some(axis.unwrap_or(1)));
                assert_eq!(graph.nodes[1].int("axis"), Some(1));
            }
            let shapes = shapes::infer(&graph).unwrap();
            assert_eq!(shapes[&y].shape, [None, Some(3), Some(4)]);
            let mut same = graph.clone();
            assert_eq!(opset::convert(&mut same, 13).unwrap(), 0);
        }
        // A classifier's probabilities: rank 2, where both semantics agree.
        let mut b = GraphBuilder::new("classifier");
        let logits = b.input(
            "logits",
            DataType::Float,
            vec![Dim::Symbolic("N".into()), Dim::Fixed(5)],
        );
        let p = b.op("Softmax", &[&logits], vec![]);
        b.output(&p, DataType::Float, vec![]);
        let mut graph = b.finish();
        assert_eq!(opset::convert(&mut graph, 9).unwrap(), 0);
    }
}
