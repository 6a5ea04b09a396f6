//! BatchNormalization on batch statistics as one node while the step graph is differentiated.
//!
//! Written out in primitives before differentiation, a training-mode BatchNorm gets a
//! backward pass assembled operator by operator — a `ReduceMean`'s gradient is a full-size
//! `Expand`, a `Div`'s two more full-size products — about fifteen passes over each
//! activation. As the one node [`OP`] it gets the closed-form gradient (`rules::norm`): four
//! full-size element-wise passes and two reductions. [`lower`] then writes the node's forward as
//! primitives every ONNX Runtime executes, under the output names the backward reads.
//!
//! Node: inputs `x [N, C, ...]`, `scale [C]`, `bias [C]`; attributes `epsilon` and `axes`
//! (0 and every spatial axis); outputs `y`, the batch `mean` and (biased) `variance` as
//! `[1, C, 1, ...]`, `centred = x − mean` and `inverse_std = 1/√(variance + ε)`.

use ortl_onnx::builder::{float, ints};
use ortl_onnx::ops::{Infer, OpDef};
use ortl_onnx::shapes::TypedShape;
use ortl_onnx::{Graph, GraphBuilder, Node, OnnxError, Tensor, passes};

/// The operator's domain: ortl's own, never seen by a runtime.
pub const DOMAIN: &str = "ai.ortl";
pub const OP: &str = "BatchNormTraining";

/// The operator's entry, in the registry autodiff's graphs are read with
/// ([`crate::rules::registry`]).
pub const OP_DEF: OpDef = OpDef::new(OP).domain(DOMAIN).inputs(3).shape(shapes);

/// y and centred as x; mean, variance and inverse_std per channel, `[1, C, 1, ...]`.
fn shapes(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let x = cx.x;
    let mut channel = vec![Some(1), x.shape.get(1).copied().flatten()];
    channel.extend(std::iter::repeat_n(
        Some(1),
        x.shape.len().saturating_sub(2),
    ));
    let (full, channel) = (cx.same(x.shape.clone()), cx.same(channel));
    Ok(vec![
        full.clone(),
        channel.clone(),
        channel.clone(),
        full,
        channel,
    ])
}

/// The node's outputs, in order.
pub struct Outputs {
    pub y: String,
    pub mean: String,
    pub variance: String,
    pub centred: String,
    pub inverse_std: String,
}

impl Outputs {
    /// Output names for a BatchNorm named `name` whose normalised output is `y`.
    pub fn named(name: &str, y: &str) -> Self {
        Self {
            y: y.into(),
            mean: format!("{name}:batch_mean"),
            variance: format!("{name}:batch_variance"),
            centred: format!("{name}:centred"),
            inverse_std: format!("{name}:inverse_std"),
        }
    }
}

/// The node for `x` of rank `rank` normalised with `scale` and `bias`.
pub fn node(
    name: &str,
    [x, scale, bias]: [&str; 3],
    rank: usize,
    epsilon: f32,
    outputs: &Outputs,
) -> Node {
    let axes: Vec<i64> = std::iter::once(0).chain(2..rank as i64).collect();
    Node {
        name: name.into(),
        op: OP.into(),
        domain: DOMAIN.into(),
        inputs: vec![x.into(), scale.into(), bias.into()],
        outputs: vec![
            outputs.y.clone(),
            outputs.mean.clone(),
            outputs.variance.clone(),
            outputs.centred.clone(),
            outputs.inverse_std.clone(),
        ],
        attrs: [
            ("epsilon".to_string(), float(epsilon)),
            ("axes".to_string(), ints(&axes)),
        ]
        .into(),
    }
}

/// `[1, -1, 1, ...]`: a per-channel vector shaped to broadcast over an `[N, C, ...]`
/// activation of rank `rank`.
pub fn channel_shape(rank: usize) -> Vec<i64> {
    let mut shape = vec![1, -1];
    shape.extend(std::iter::repeat_n(1, rank - 2));
    shape
}

/// Replaces every [`OP`] node by its forward in standard operators, producing the same
/// output names, and sorts the graph again.
pub fn lower(graph: &mut Graph) -> Result<(), OnnxError> {
    let nodes: Vec<Node> = graph
        .nodes
        .iter()
        .filter(|n| n.domain == DOMAIN && n.op == OP)
        .cloned()
        .collect();
    if nodes.is_empty() {
        return Ok(());
    }
    graph.nodes.retain(|n| !(n.domain == DOMAIN && n.op == OP));
    let mut b = GraphBuilder::from_graph(std::mem::take(graph));
    for node in nodes {
        let [x, scale, bias] = [0, 1, 2].map(|i| node.inputs[i].as_str());
        let [y, mean, variance, centred, inverse_std] =
            [0, 1, 2, 3, 4].map(|i| node.outputs[i].as_str());
        let axes = node.ints("axes").expect("axes").to_vec();
        let epsilon = node.float("epsilon").expect("epsilon");
        b.scoped(&node.name, |b| {
            let mean_over = |b: &mut GraphBuilder, v: &str, out: &str| {
                b.named(out, |b| b.reduce_mean(v, &axes, true));
            };
            mean_over(b, x, mean);
            b.named(centred, |b| b.sub(x, mean));
            // A squared copy and its mean, not ReduceSumSquare: ORT sums squares over axes
            // {0, 2, 3} in one sequential run (relative error 3e-6–8e-6 from 8×64×32² to
            // 32×256×25², against 1e-7–2e-7 this way).
            let squared = b.mul(centred, centred);
            mean_over(b, &squared, variance);
            let epsilon = b.constant(Tensor::scalar(epsilon));
            let shifted = b.add(variance, &epsilon);
            let std = b.sqrt(&shifted);
            b.named(inverse_std, |b| b.reciprocal(&std));
            // The axes are 0 and every spatial one: all but the channels.
            let shape = b.constant(Tensor::i64s(&channel_shape(axes.len() + 1)));
            let scale = b.reshape(scale, &shape);
            let bias = b.reshape(bias, &shape);
            let factor = b.mul(&scale, inverse_std);
            let scaled = b.mul(centred, &factor);
            b.named(y, |b| b.add(&scaled, &bias));
        });
    }
    *graph = b.finish();
    passes::toposort(graph)
}
