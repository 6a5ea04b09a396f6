//! Normalisation. https://onnx.ai/onnx/operators/onnx__BatchNormalization.html: the
//! output keeps the input's shape, the optional statistics outputs are per channel; older
//! opsets' `spatial`, `is_test` and `consumed_inputs` go, and a training-mode node (an export
//! not in eval mode) is refused. https://onnx.ai/onnx/operators/onnx__LayerNormalization.html:
//! mean and inverse deviation keep the axes before `axis`. Instance, Lp and local response
//! normalisation keep their input's shape.

use crate::OnnxError;
use crate::ir::{Graph, Node};
use crate::ops::{Infer, OpDef, same_shape};
use crate::shapes::{Shape, TypedShape};

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("BatchNormalization")
        .min_rank(2)
        .shape(batch_norm)
        .convert(convert_batch_norm),
    OpDef::new("LayerNormalization").since(17).shape(layer_norm),
    OpDef::new("InstanceNormalization").shape(same_shape),
    OpDef::new("LpNormalization").shape(same_shape),
    OpDef::new("LRN").shape(same_shape),
];

fn batch_norm(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { node, x, .. } = *cx;
    let c = vec![x.shape.get(1).copied().flatten()];
    let mut out = vec![cx.same(x.shape.clone())];
    for _ in 1..node.outputs.len() {
        out.push(cx.same(c.clone()));
    }
    Ok(out)
}

fn layer_norm(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { node, x, .. } = *cx;
    let axis = cx.axis_of(node.int("axis").unwrap_or(-1));
    let reduced: Shape = (0..x.shape.len())
        .map(|i| if i < axis { x.shape[i] } else { Some(1) })
        .collect();
    let mut out = vec![cx.same(x.shape.clone())];
    for _ in 1..node.outputs.len() {
        out.push(cx.same(reduced.clone()));
    }
    Ok(out)
}

fn convert_batch_norm(_: &mut Graph, mut node: Node, _: i64) -> Result<Vec<Node>, OnnxError> {
    if node.int("spatial") == Some(0) {
        return Err(node.error("BatchNormalization with spatial=0 is not supported"));
    }
    if node.int("training_mode") == Some(1) {
        return Err(
            node.error("BatchNormalization in training mode: export the model in eval mode")
        );
    }
    for attr in ["spatial", "is_test", "consumed_inputs", "training_mode"] {
        node.attrs.remove(attr);
    }
    node.outputs.truncate(1);
    Ok(vec![node])
}
