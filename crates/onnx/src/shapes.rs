//! Static shape inference for the operators ortl's backbones, heads and training graphs use.
//! Dimensions are `Option<i64>`: `None` is a dimension only known at run time (the batch).
//! Gradient construction needs ranks and parameter shapes, never the batch size, so this is
//! enough; an operator it does not know is an error naming the node. Each operator's rule is
//! its entry in a [`Registry`] (`crate::ops`); here are the walk over the graph, the checks
//! every node gets, and helpers the rules share.

use std::collections::HashMap;

use crate::OnnxError;
use crate::ir::{DataType, Graph, Node};
use crate::ops::{Check, Infer, OpDef, Registry};

pub type Shape = Vec<Option<i64>>;

/// Element type and shape of a value.
#[derive(Clone, Debug, PartialEq)]
pub struct TypedShape {
    pub dtype: DataType,
    pub shape: Shape,
    /// A shape's one unknown dimension is the batch times this: 1 for most tensors, more
    /// where an exporter folds attention heads or windows into the batch axis
    /// (`[N·heads, T, d]`, `[N·windows, 49, C]`), so reshapes back can be followed.
    pub batch_multiple: i64,
}

impl TypedShape {
    /// A value whose unknown dimension, if any, is the batch itself.
    pub fn new(dtype: DataType, shape: Shape) -> Self {
        TypedShape {
            dtype,
            shape,
            batch_multiple: 1,
        }
    }

    /// A constant's type and shape.
    pub fn of_tensor(tensor: &crate::ir::Tensor) -> Self {
        Self::new(tensor.dtype, tensor.dims.iter().map(|&d| Some(d)).collect())
    }

    /// The axis of the one unknown dimension, the batch's (times [`Self::batch_multiple`]);
    /// `None` when every dimension is known or several are not.
    pub fn batch_axis(&self) -> Option<usize> {
        let mut unknown = (0..self.shape.len()).filter(|&i| self.shape[i].is_none());
        let axis = unknown.next()?;
        unknown.next().is_none().then_some(axis)
    }

    /// The shape as people write it: `[N·12, 197, 64]`.
    pub fn shown(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| match d {
                Some(d) => d.to_string(),
                None if self.batch_multiple != 1 => format!("N·{}", self.batch_multiple),
                None => "N".to_string(),
            })
            .collect();
        format!("[{}]", dims.join(", "))
    }
}

/// The inferred shape of one value, when the graph's shapes can be inferred.
pub fn shape_of(graph: &Graph, value: &str) -> Option<Shape> {
    infer(graph).ok()?.remove(value).map(|typed| typed.shape)
}

/// Infers every value's type and shape with the standard operators ([`Registry::infer`]).
pub fn infer(graph: &Graph) -> Result<HashMap<String, TypedShape>, OnnxError> {
    Registry::standard().infer(graph)
}

/// [`Registry::infer_partial`] with the standard operators.
pub fn infer_partial(graph: &Graph) -> Result<HashMap<String, TypedShape>, OnnxError> {
    Registry::standard().infer_partial(graph)
}

impl Registry {
    /// Infers every value's type and shape, in node order (the graph must be sorted).
    pub fn infer(&self, graph: &Graph) -> Result<HashMap<String, TypedShape>, OnnxError> {
        self.infer_values(graph, false)
    }

    /// The types and shapes that can be inferred: a node this cannot infer (a shape computed
    /// at run time) leaves its outputs, and whatever depends only on them, out of the map.
    pub fn infer_partial(&self, graph: &Graph) -> Result<HashMap<String, TypedShape>, OnnxError> {
        self.infer_values(graph, true)
    }

    fn infer_values(
        &self,
        graph: &Graph,
        partial: bool,
    ) -> Result<HashMap<String, TypedShape>, OnnxError> {
        let mut known: HashMap<String, TypedShape> = HashMap::new();
        for input in &graph.inputs {
            let shape = input
                .dims()
                .ok_or_else(|| OnnxError::Graph(format!("input '{}' has no shape", input.name)))?;
            known.insert(input.name.clone(), TypedShape::new(input.dtype, shape));
        }
        for (name, t) in &graph.initializers {
            known.insert(name.clone(), TypedShape::of_tensor(t));
        }
        for node in &graph.nodes {
            let inputs: Vec<Option<&TypedShape>> = node
                .inputs
                .iter()
                .map(|i| if i.is_empty() { None } else { known.get(i) })
                .collect();
            let like = self.get(&node.op).and_then(|op| op.like);
            let outputs = match like.and_then(|like| like(graph, node, &known)) {
                Some(shape) => vec![shape],
                None => match self.infer_node(graph, node, &inputs) {
                    Ok(outputs) => outputs,
                    Err(_) if partial => continue,
                    Err(e) => return Err(e),
                },
            };
            for (name, shape) in node.outputs.iter().zip(outputs) {
                if !name.is_empty() {
                    known.insert(name.clone(), shape);
                }
            }
        }
        Ok(known)
    }

    /// The types and shapes of `node`'s outputs. An operator without shape inference is
    /// checked as any one-input operator first, so its error names a missing input or an
    /// unknown input shape before the operator.
    pub(crate) fn infer_node(
        &self,
        graph: &Graph,
        node: &Node,
        inputs: &[Option<&TypedShape>],
    ) -> Result<Vec<TypedShape>, OnnxError> {
        let op = self.get(&node.op);
        if let Some(value) = op.and_then(|op| op.value) {
            let tensor = value(node)
                .ok_or_else(|| node.error(format!("{} without a value ortl reads", node.op)))?;
            return Ok(vec![TypedShape::of_tensor(&tensor)]);
        }
        let op = op.filter(|op| op.shape.is_some());
        check_node(op, node, inputs)?;
        let x = inputs
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| node.error("input 0 has no known shape"))?;
        match op.and_then(|op| op.shape) {
            Some(shape) => shape(&Infer {
                graph,
                node,
                inputs,
                x,
            }),
            None => Err(node.error(format!(
                "shape inference does not know operator {}",
                node.op
            ))),
        }
    }
}

/// Arity, rank and attributes that the inference indexes by, checked first: a downloaded
/// model may state anything, and must get an error naming the node, not a panic.
fn check_node(
    op: Option<&OpDef>,
    node: &Node,
    inputs: &[Option<&TypedShape>],
) -> Result<(), OnnxError> {
    let needs_inputs = op.map_or(1, |op| op.inputs);
    if node.inputs.len() < needs_inputs || node.outputs.is_empty() {
        return Err(node.error(format!(
            "{} needs at least {needs_inputs} inputs and an output, has {} and {}",
            node.op,
            node.inputs.len(),
            node.outputs.len()
        )));
    }
    let check = Check { node, inputs };
    let rank = check.rank();
    let min_rank = op.map_or(0, |op| op.min_rank);
    if rank < min_rank {
        return Err(node.error(format!(
            "input of rank {rank}; {} needs {min_rank}",
            node.op
        )));
    }
    match op.and_then(|op| op.check) {
        Some(check_op) => check_op(&check),
        None => Ok(()),
    }
}

/// A shape as people write it: `[N, 128, 13, 13]`, N where a dimension is unknown.
pub(crate) fn shown(shape: &Shape) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| d.map_or_else(|| "N".to_string(), |d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Numpy broadcasting of two shapes; `None` if they cannot broadcast.
pub fn broadcast(a: &[Option<i64>], b: &[Option<i64>]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    let at = |s: &[Option<i64>], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            Some(1)
        }
    };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (Some(1), d) | (d, Some(1)) => Some(d),
            (Some(x), Some(y)) if x == y => Some(Some(x)),
            (Some(_), Some(_)) => None,
            // An unknown dimension against n ≠ 1 must be n (or 1, broadcasting to n).
            (None, d) | (d, None) => Some(d),
        })
        .collect()
}

/// The axes of Squeeze/Unsqueeze (and other ops that moved them from an attribute to input
/// `input` in opset 13): `None` when absent.
pub(crate) fn axes_of(
    graph: &Graph,
    node: &Node,
    input: usize,
) -> Result<Option<Vec<i64>>, OnnxError> {
    if let Some(axes) = node.ints("axes") {
        return Ok(Some(axes.to_vec()));
    }
    match node.inputs.get(input).filter(|s| !s.is_empty()) {
        Some(name) => constant_ints(graph, name)
            .map(Some)
            .ok_or_else(|| node.error("axes must be a constant")),
        None => Ok(None),
    }
}

/// A Slice node's (axis, start, end, step) per sliced axis, from its constant inputs
/// (opset 10+) or attributes (opset 1–9).
pub fn slice_spec(
    graph: &Graph,
    node: &Node,
    rank: usize,
) -> Result<Vec<(usize, i64, i64, i64)>, OnnxError> {
    let list = |attr: &str, input: usize| -> Result<Option<Vec<i64>>, OnnxError> {
        if let Some(values) = node.ints(attr) {
            return Ok(Some(values.to_vec()));
        }
        match node.inputs.get(input).filter(|s| !s.is_empty()) {
            Some(name) => constant_ints(graph, name)
                .map(Some)
                .ok_or_else(|| node.error(format!("{attr} must be a constant"))),
            None => Ok(None),
        }
    };
    let starts = list("starts", 1)?.ok_or_else(|| node.error("Slice without starts"))?;
    let ends = list("ends", 2)?.ok_or_else(|| node.error("Slice without ends"))?;
    let axes = list("axes", 3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = list("steps", 4)?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(node.error("starts, ends, axes and steps differ in length"));
    }
    (0..starts.len())
        .map(|i| {
            let axis = if axes[i] < 0 {
                axes[i] + rank as i64
            } else {
                axes[i]
            };
            if axis < 0 || axis >= rank as i64 || steps[i] == 0 {
                return Err(node.error(format!("axis {} or step {}", axes[i], steps[i])));
            }
            Ok((axis as usize, starts[i], ends[i], steps[i]))
        })
        .collect()
}

/// The clamped first index of a slice of a dimension of `n`, as ONNX defines it.
pub fn slice_start(n: i64, start: i64, step: i64) -> i64 {
    let start = if start < 0 {
        start.saturating_add(n)
    } else {
        start
    };
    if step > 0 {
        start.clamp(0, n)
    } else {
        start.clamp(0, n - 1)
    }
}

/// The number of elements a slice of a dimension of `n` keeps.
pub fn slice_len(n: i64, start: i64, end: i64, step: i64) -> i64 {
    let first = slice_start(n, start, step);
    let end = if end < 0 { end.saturating_add(n) } else { end };
    let end = if step > 0 {
        end.clamp(0, n)
    } else {
        end.clamp(-1, n - 1)
    };
    if step > 0 {
        ((end - first).max(0) + step - 1) / step
    } else {
        ((first - end).max(0) + (-step) - 1) / (-step)
    }
}

/// The tensor a Constant node holds (`value`, or the opset-12 `value_float(s)`/`value_int(s)`).
pub fn constant_attr(node: &Node) -> Option<crate::ir::Tensor> {
    use crate::ir::{Attr, Tensor};
    match node.attrs.values().next()? {
        Attr::Tensor(t) => Some(t.clone()),
        Attr::Float(v) => Some(Tensor::scalar(*v)),
        Attr::Floats(v) => Some(Tensor::f32(&[v.len() as i64], v.clone())),
        Attr::Int(v) => Some(Tensor::i64(&[], vec![*v])),
        Attr::Ints(v) => Some(Tensor::i64s(v)),
        _ => None,
    }
}

pub(crate) fn constant_ints(graph: &Graph, name: &str) -> Option<Vec<i64>> {
    graph
        .initializers
        .get(name)
        .and_then(|t| t.as_i64())
        .map(<[i64]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(
            broadcast(&[Some(2), Some(3)], &[Some(3)]),
            Some(vec![Some(2), Some(3)])
        );
        assert_eq!(
            broadcast(&[None, Some(1), Some(4)], &[Some(5), Some(1)]),
            Some(vec![None, Some(5), Some(4)])
        );
        assert_eq!(broadcast(&[Some(2)], &[Some(3)]), None);
    }
}
