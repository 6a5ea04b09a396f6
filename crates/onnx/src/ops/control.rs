//! Control flow (https://onnx.ai/onnx/operators/onnx__If.html, Loop, Scan): known only to
//! be refused, since ortl's passes follow plain feed-forward graphs.

use crate::OnnxError;
use crate::ir::{Graph, Node};
use crate::ops::OpDef;

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("If").convert(refuse),
    OpDef::new("Loop").convert(refuse),
    OpDef::new("Scan").since(8).convert(refuse),
];

fn refuse(_: &mut Graph, node: Node, _: i64) -> Result<Vec<Node>, OnnxError> {
    Err(node.error(
        "control flow inside a backbone is not supported: export a plain feed-forward graph",
    ))
}
