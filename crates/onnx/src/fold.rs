//! Constant folding for imported graphs once their input size is fixed. Exporters compute
//! shapes at run time (`x.view(x.size(0), -1)` becomes Shape → Gather → Unsqueeze → Concat →
//! Reshape) and write scalars as Constant nodes; ortl's shape inference and gradient rules
//! need those as constants. Constant nodes become initializers, and shape arithmetic is
//! evaluated with the batch size kept symbolic: a value fully known becomes an initializer,
//! and a Reshape target known but for the batch in front reads 0 there ("copy the input's
//! dimension"), which is exact because every tensor of a classifier leads with the batch.

use std::collections::{HashMap, VecDeque};

use crate::ir::{DataType, Graph, Node, Tensor, TensorData};
use crate::ops::Registry;
use crate::shapes::{Shape, TypedShape};

/// One element of a value being folded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Element {
    Known(f64),
    /// The batch size (dimension 0 of a tensor whose batch is unknown).
    Batch,
    Unknown,
}

pub(crate) use Element::{Batch, Known, Unknown};

/// A value being folded.
#[derive(Clone, Debug)]
pub(crate) struct Value {
    pub dtype: DataType,
    pub dims: Vec<i64>,
    pub data: Vec<Element>,
}

impl Value {
    pub fn known(&self) -> Option<Vec<f64>> {
        self.data
            .iter()
            .map(|e| if let Known(v) = e { Some(*v) } else { None })
            .collect()
    }

    fn tensor(&self) -> Option<Tensor> {
        let values = self.known()?;
        let data = match self.dtype {
            DataType::Int64 => TensorData::I64(values.iter().map(|&v| v as i64).collect()),
            DataType::Int32 => TensorData::I32(values.iter().map(|&v| v as i32).collect()),
            DataType::Float => TensorData::F32(values.iter().map(|&v| v as f32).collect()),
            DataType::Double => TensorData::F64(values),
            DataType::Bool => TensorData::Bool(values.iter().map(|&v| v != 0.0).collect()),
            _ => return None,
        };
        Some(Tensor {
            dtype: self.dtype,
            dims: self.dims.clone(),
            data,
        })
    }
}

/// Largest value evaluated (shape vectors and scalars, not weights).
pub(crate) const SMALL: usize = 4096;

pub(crate) fn value_of(tensor: &Tensor) -> Option<Value> {
    if tensor.numel() > SMALL {
        return None;
    }
    let data: Vec<f64> = match &tensor.data {
        TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        TensorData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        TensorData::F64(v) => v.clone(),
        TensorData::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
        _ => return None,
    };
    Some(Value {
        dtype: tensor.dtype,
        dims: tensor.dims.clone(),
        data: data.into_iter().map(Known).collect(),
    })
}

/// Folds `graph` in place (it must be sorted, with its input shapes fixed but the batch);
/// returns how many nodes were folded away or rewired. Nodes that cannot be followed are
/// kept as they are.
pub fn fold(graph: &mut Graph) -> usize {
    let registry = Registry::standard();
    let mut shapes: HashMap<String, TypedShape> = HashMap::new();
    for input in &graph.inputs {
        if let Some(dims) = input.dims() {
            shapes.insert(
                input.name.clone(),
                TypedShape {
                    dtype: input.dtype,
                    shape: dims,
                },
            );
        }
    }
    let mut values: HashMap<String, Value> = HashMap::new();
    for (name, tensor) in &graph.initializers {
        shapes.insert(
            name.clone(),
            TypedShape {
                dtype: tensor.dtype,
                shape: tensor.dims.iter().map(|&d| Some(d)).collect(),
            },
        );
        if tensor.dtype != DataType::Float
            && let Some(v) = value_of(tensor)
        {
            values.insert(name.clone(), v);
        }
    }
    let mut folded = 0;
    let mut queue: VecDeque<Node> = std::mem::take(&mut graph.nodes).into();
    let mut kept = Vec::with_capacity(queue.len());
    while let Some(mut node) = queue.pop_front() {
        let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        if default_domain
            && let Some(value) = registry.get(&node.op).and_then(|op| op.value)
            && let Some(tensor) = value(&node)
        {
            let name = node.outputs[0].clone();
            shapes.insert(
                name.clone(),
                TypedShape {
                    dtype: tensor.dtype,
                    shape: tensor.dims.iter().map(|&d| Some(d)).collect(),
                },
            );
            if let Some(v) = value_of(&tensor) {
                values.insert(name.clone(), v);
            }
            graph.initializers.insert(name, tensor);
            folded += 1;
            continue;
        }
        if default_domain && let Some(rewire) = registry.get(&node.op).and_then(|op| op.rewire) {
            let mut target = Rewire {
                graph,
                node: &mut node,
                values: &values,
                shapes: &shapes,
                replacement: Vec::new(),
            };
            if rewire(&mut target).is_some() {
                folded += 1;
            }
            // A node replaced by several is gone; its replacements are folded in its place.
            let replacement = std::mem::take(&mut target.replacement);
            if !replacement.is_empty() {
                for new in replacement.into_iter().rev() {
                    queue.push_front(new);
                }
                continue;
            }
        }
        let inputs: Vec<Option<&TypedShape>> = node
            .inputs
            .iter()
            .map(|i| if i.is_empty() { None } else { shapes.get(i) })
            .collect();
        let out_shapes = registry.infer_node(graph, &node, &inputs).ok();
        let evaluated = match registry.get(&node.op).and_then(|op| op.fold) {
            Some(evaluate) if default_domain => evaluate(&Folding {
                graph,
                node: &node,
                values: &values,
                shapes: &shapes,
                out_shapes: out_shapes.as_deref(),
            }),
            _ => None,
        };
        if let Some(shapes_out) = out_shapes {
            for (name, shape) in node.outputs.iter().zip(shapes_out) {
                shapes.insert(name.clone(), shape);
            }
        }
        if let Some(outputs) = evaluated {
            let tensors: Option<Vec<Tensor>> = outputs.iter().map(Value::tensor).collect();
            for (name, value) in node.outputs.iter().zip(outputs) {
                values.insert(name.clone(), value);
            }
            if let Some(tensors) = tensors {
                for (name, tensor) in node.outputs.iter().zip(tensors) {
                    graph.initializers.insert(name.clone(), tensor);
                }
                folded += 1;
                continue;
            }
        }
        kept.push(node);
    }
    graph.nodes = kept;
    // The shape arithmetic left dead goes; declared inputs stay (an input nothing reads is
    // the caller's to report, not this pass's to hide).
    let feeds: Vec<_> = graph.feeds().cloned().collect();
    crate::passes::prune(graph);
    for feed in feeds {
        if !graph.inputs.iter().any(|i| i.name == feed.name) {
            graph.inputs.push(feed);
        }
    }
    folded
}

/// What a folding function sees.
pub(crate) struct Folding<'a> {
    pub graph: &'a Graph,
    pub node: &'a Node,
    /// The values evaluated so far.
    pub values: &'a HashMap<String, Value>,
    pub shapes: &'a HashMap<String, TypedShape>,
    /// The node's inferred outputs, where inference followed it.
    pub out_shapes: Option<&'a [TypedShape]>,
}

impl<'a> Folding<'a> {
    /// Input `i`, where it is evaluated.
    pub fn input(&self, i: usize) -> Option<&'a Value> {
        self.node
            .inputs
            .get(i)
            .and_then(|name| self.values.get(name))
    }

    /// The dimensions of output `i`, where all are known.
    pub fn out_dims(&self, i: usize) -> Option<Vec<i64>> {
        self.out_shapes?
            .get(i)?
            .shape
            .iter()
            .copied()
            .collect::<Option<Vec<i64>>>()
    }

    /// `data` as the first output, when it fills the inferred shape.
    pub fn same_data(&self, data: Vec<Element>, dtype: DataType) -> Option<Vec<Value>> {
        let dims = self.out_dims(0)?;
        (dims.iter().product::<i64>() as usize == data.len())
            .then(|| vec![Value { dtype, dims, data }])
    }
}

/// What a rewiring function sees: a Reshape, Expand or Resize whose target is the batch
/// followed by known sizes, applied to a tensor that leads with the batch, reads a constant
/// instead (Reshape's 0 "copy", Expand's 1 "keep", Resize's scales that give those sizes).
pub(crate) struct Rewire<'a> {
    pub graph: &'a mut Graph,
    pub node: &'a mut Node,
    values: &'a HashMap<String, Value>,
    shapes: &'a HashMap<String, TypedShape>,
    /// Nodes that replace the node, when one rewiring is not enough (they are folded next).
    pub replacement: Vec<Node>,
}

impl Rewire<'_> {
    /// The sizes after the batch in input `slot`, when it is computed as the batch followed
    /// by known sizes and input 0 leads with the batch; and input 0's shape.
    pub fn batch_target(&self, slot: usize) -> Option<(Vec<i64>, Shape)> {
        let rest = self.sizes_after_batch(slot)?;
        let input = &self.input(0)?.shape;
        matches!(input.first(), Some(None)).then(|| (rest, input.clone()))
    }

    /// The sizes after the batch in input `slot`, when it is computed at run time as the
    /// batch followed by known sizes.
    pub fn sizes_after_batch(&self, slot: usize) -> Option<Vec<i64>> {
        let target = self.node.inputs.get(slot).filter(|t| !t.is_empty())?;
        if self.graph.initializers.contains_key(target) {
            return None;
        }
        let [Batch, rest @ ..] = self.values.get(target)?.data.as_slice() else {
            return None;
        };
        rest.iter()
            .map(|e| {
                if let Known(v) = e {
                    Some(*v as i64)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Input `slot`'s type and shape, where known.
    pub fn input(&self, slot: usize) -> Option<&TypedShape> {
        self.shapes.get(self.node.inputs.get(slot)?)
    }

    /// Input `slot` now reads the constant `tensor`, named after the node.
    pub fn set_input(&mut self, slot: usize, tensor: Tensor) {
        let mut name = format!("{}/target", self.node.name);
        while self.graph.initializers.contains_key(&name) {
            name.push('_');
        }
        self.graph.initializers.insert(name.clone(), tensor);
        self.node.inputs[slot] = name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Dim;
    use crate::{GraphBuilder, passes, shapes};

    fn nchw(b: &mut GraphBuilder, h: i64, w: i64) -> String {
        b.input(
            "x",
            DataType::Float,
            vec![
                Dim::Symbolic("N".into()),
                Dim::Fixed(3),
                Dim::Fixed(h),
                Dim::Fixed(w),
            ],
        )
    }

    #[test]
    fn a_shape_computed_flatten_becomes_a_constant_reshape() {
        let mut b = GraphBuilder::new("flatten");
        let x = nchw(&mut b, 4, 5);
        let shape = b.shape(&x);
        let zero = b.constant(Tensor::i64(&[], vec![0]));
        let n = b.gather(&shape, &zero, 0);
        let axes = b.constant(Tensor::i64s(&[0]));
        let n = b.unsqueeze(&n, &axes);
        let minus_one = b.constant(Tensor::i64s(&[-1]));
        let target = b.concat(&[&n, &minus_one], 0);
        let y = b.reshape(&x, &target);
        b.output(&y, DataType::Float, vec![]);
        let mut graph = b.finish();
        assert!(fold(&mut graph) > 0);
        let ops: Vec<&str> = graph.nodes.iter().map(|n| n.op.as_str()).collect();
        assert_eq!(ops, ["Reshape"]);
        let target = &graph.initializers[&graph.nodes[0].inputs[1]];
        assert_eq!(target.as_i64(), Some(&[0, -1][..]));
        let shapes = shapes::infer(&graph).unwrap();
        assert_eq!(shapes[&y].shape, [None, Some(60)]);
    }

    #[test]
    fn spatial_arithmetic_and_constant_nodes_fold_completely() {
        // Resize to twice the size, computed from the input's shape, with a Constant scale.
        let mut b = GraphBuilder::new("resize");
        let x = nchw(&mut b, 6, 7);
        let shape = b.shape(&x);
        let (start, end) = (
            b.constant(Tensor::i64s(&[2])),
            b.constant(Tensor::i64s(&[4])),
        );
        let hw = b.slice(&shape, &start, &end, None, None);
        let two = b.op(
            "Constant",
            &[],
            vec![("value", crate::Attr::Tensor(Tensor::i64(&[], vec![2])))],
        );
        let doubled = b.mul(&hw, &two);
        let zero = b.constant(Tensor::i64s(&[0]));
        let nc = b.slice(&shape, &zero, &start, None, None);
        let sizes = b.concat(&[&nc, &doubled], 0);
        let y = b.op("Resize", &[&x, "", "", &sizes], vec![]);
        b.output(&y, DataType::Float, vec![]);
        let mut graph = b.finish();
        passes::toposort(&mut graph).unwrap();
        fold(&mut graph);
        // The sizes lead with the batch: the Resize reads constant scales instead.
        let ops: Vec<&str> = graph.nodes.iter().map(|n| n.op.as_str()).collect();
        assert_eq!(ops, ["Resize"]);
        let scales = &graph.initializers[&graph.nodes[0].inputs[2]];
        assert_eq!(scales.as_f32(), Some(&[1.0, 1.0, 2.0, 2.0][..]));
        assert_eq!(
            shapes::infer(&graph).unwrap()[&y].shape,
            [None, Some(3), Some(12), Some(14)]
        );
    }

    #[test]
    fn nodes_it_cannot_follow_are_kept() {
        let mut b = GraphBuilder::new("keep");
        let x = nchw(&mut b, 4, 4);
        let y = b.relu(&x);
        b.output(&y, DataType::Float, vec![]);
        let mut graph = b.finish();
        let before = graph.clone();
        assert_eq!(fold(&mut graph), 0);
        assert_eq!(graph, before);
    }
}
