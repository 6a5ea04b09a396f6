//! Bringing an imported graph to ortl's opset ([`crate::OPSET`]). ortl joins an imported
//! backbone to its own preprocessing and head in one opset-17 model, so nodes whose
//! signature changed between opset 7 and 22 are rewritten to their opset-17 form: attributes
//! that became inputs (Squeeze/Unsqueeze/Split/ReduceSum axes in 13, Clip bounds and Pad in
//! 11, Slice in 10) and back (the Reduce* axes input of 18), Upsample and Resize-10 as
//! Resize with their asymmetric coordinates, Dropout as Identity (these are inference
//! graphs), and operators newer than 17 (Gelu, Mish) as the ops they are made of.
//! Specs: https://onnx.ai/onnx/operators/ (each operator's "changelog"). Each operator's
//! conversion is its entry's in the [`Registry`] (`crate::ops`).

use crate::OnnxError;
use crate::ir::{Attr, Graph, Node, Tensor};
use crate::ops::Registry;

/// Rewrites every default-domain node of `graph`, written for opset `from`, to its opset-17
/// form. Returns how many nodes changed.
pub fn convert(graph: &mut Graph, from: i64) -> Result<usize, OnnxError> {
    let nodes = std::mem::take(&mut graph.nodes);
    let mut out = Vec::with_capacity(nodes.len());
    let mut changed = 0;
    for node in nodes {
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            out.push(node);
            continue;
        }
        let before = node.clone();
        let converted = match Registry::standard().get(&node.op).and_then(|op| op.convert) {
            Some(convert) => convert(graph, node, from)?,
            None => vec![node],
        };
        if converted.len() != 1 || converted[0] != before {
            changed += 1;
        }
        out.extend(converted);
    }
    graph.nodes = out;
    Ok(changed)
}

/// A constant added for `node`'s `what`, named after the node.
pub(crate) fn add_constant(graph: &mut Graph, node: &Node, what: &str, tensor: Tensor) -> String {
    let mut name = format!("{}/{what}", node.name);
    while graph.initializers.contains_key(&name) {
        name.push('_');
    }
    graph.initializers.insert(name.clone(), tensor);
    name
}

/// Moves an ints attribute to input `index` (padding skipped optional inputs with "").
pub(crate) fn attr_to_input(graph: &mut Graph, node: &mut Node, attr: &str, index: usize) {
    if let Some(Attr::Ints(values)) = node.attrs.remove(attr) {
        let name = add_constant(graph, node, attr, Tensor::i64s(&values));
        set_input(node, index, name);
    }
}

pub(crate) fn set_input(node: &mut Node, index: usize, name: String) {
    if node.inputs.len() <= index {
        node.inputs.resize(index + 1, String::new());
    }
    node.inputs[index] = name;
}
