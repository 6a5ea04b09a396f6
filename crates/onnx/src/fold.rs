//! Constant folding for imported graphs once their input size is fixed. Exporters compute
//! shapes at run time (`x.view(x.size(0), -1)` becomes Shape → Gather → Unsqueeze → Concat →
//! Reshape) and write scalars as Constant nodes; ortl's shape inference and gradient rules
//! need those as constants. Constant nodes become initializers, and shape arithmetic is
//! evaluated with the batch size kept symbolic, as a multiple of it (transformers fold
//! attention heads or windows into the batch axis: `[N·heads, T, d]`). A value fully known
//! becomes an initializer; a Reshape target known but for one multiple of the batch reads 0
//! there where it copies the input's dimension, and -1 otherwise, which is exact because
//! every other size is known.

use std::collections::{HashMap, VecDeque};

use crate::ir::{DataType, Graph, Node, Tensor, TensorData};
use crate::ops::Registry;
use crate::shapes::{Shape, TypedShape};

/// One element of a value being folded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Element {
    Known(f64),
    /// The batch size times this (the one unknown dimension of a shape).
    Batch(i64),
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

/// Element `k` (row-major) of an output of `dims` that `v` broadcasts to, numpy's way.
pub(crate) fn broadcast_element(v: &Value, dims: &[i64], k: usize) -> Option<Element> {
    let lead = dims.len().checked_sub(v.dims.len())?;
    let (mut rest, mut index, mut stride) = (k as i64, 0i64, 1i64);
    for axis in (0..dims.len()).rev() {
        let at = rest % dims[axis];
        rest /= dims[axis];
        if axis >= lead {
            let size = v.dims[axis - lead];
            if size != 1 {
                index += at * stride;
            }
            stride *= size;
        }
    }
    v.data.get(index as usize).copied()
}

/// Largest value evaluated: shape arithmetic and what is computed from it alone (Swin's
/// shifted-window mask, `[64, 49, 49]`), never weights (float initializers are not read).
pub(crate) const SMALL: usize = 1 << 18;

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
            shapes.insert(input.name.clone(), TypedShape::new(input.dtype, dims));
        }
    }
    let mut values: HashMap<String, Value> = HashMap::new();
    for (name, tensor) in &graph.initializers {
        shapes.insert(name.clone(), TypedShape::of_tensor(tensor));
        // Weights are not evaluated; float scalars are (a mask compared with 0.0; ortl trains
        // no scalar, see `ortl_models::backbone::parameters`).
        if (tensor.dtype != DataType::Float || tensor.numel() == 1)
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
            shapes.insert(name.clone(), TypedShape::of_tensor(&tensor));
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
        let op = registry.get(&node.op).filter(|_| default_domain);
        let out_shapes = registry.infer_node(graph, &node, &inputs).ok().or_else(|| {
            (op?.folded_shape?)(&Folding {
                graph,
                node: &node,
                values: &values,
                shapes: &shapes,
                out_shapes: None,
            })
        });
        let evaluated = op.and_then(|op| op.fold).and_then(|evaluate| {
            evaluate(&Folding {
                graph,
                node: &node,
                values: &values,
                shapes: &shapes,
                out_shapes: out_shapes.as_deref(),
            })
        });
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

/// torch.export writes a view it has no other form for (`as_strided`: ConvNeXt's and Swin's
/// flatten of the pooled map) as a Gather from the flattened tensor at indices computed from
/// the batch size, `Range(0, N) · stride + offsets`, which folding over a symbolic batch
/// cannot evaluate. Where those indices are one pattern repeated for every image — the graph
/// folded at batch 1 and 2, for each image shape in `images` (the input's dimensions after
/// the batch) — the Gather becomes a Reshape to `[N, elements per image]` and a Gather on
/// axis 1 (or a Reshape alone where the pattern is every element in order), which shape
/// inference, the cut analysis and gradients follow. Returns how many were rewritten.
pub fn per_image_gathers(graph: &mut Graph, images: &[Vec<i64>]) -> usize {
    let candidates: Vec<usize> = (0..graph.nodes.len())
        .filter(|&i| {
            let node = &graph.nodes[i];
            node.op == "Gather"
                && node.int("axis").unwrap_or(0) == 0
                && node.inputs.len() == 2
                && !graph.initializers.contains_key(&node.inputs[1])
                && graph.producer(&node.inputs[0]).is_some_and(|p| {
                    p.op == "Reshape"
                        && p.inputs
                            .get(1)
                            .and_then(|t| graph.initializers.get(t))
                            .and_then(Tensor::as_i64)
                            == Some(&[-1][..])
                })
        })
        .collect();
    let Some(image) = graph.feeds().next().map(|i| i.name.clone()) else {
        return 0;
    };
    if candidates.is_empty() || images.is_empty() {
        return 0;
    }
    // Per candidate: (elements per image, the indices for one image), where every image
    // shape and both batch sizes agree.
    let mut patterns: Vec<Option<(i64, Tensor)>> = vec![None; candidates.len()];
    let mut agreed = vec![true; candidates.len()];
    for dims in images {
        let folded_at = |batch: i64| {
            let mut g = graph.clone();
            if let Some(input) = g.inputs.iter_mut().find(|i| i.name == image) {
                input.shape = Some(
                    std::iter::once(batch)
                        .chain(dims.iter().copied())
                        .map(crate::ir::Dim::Fixed)
                        .collect(),
                );
            }
            fold(&mut g);
            let shapes = crate::shapes::infer_partial(&g).unwrap_or_default();
            (g, shapes)
        };
        let (one, one_shapes) = folded_at(1);
        let (two, _) = folded_at(2);
        for (k, &i) in candidates.iter().enumerate() {
            let node = &graph.nodes[i];
            let flat = graph.producer(&node.inputs[0]).expect("checked above");
            let per_image = one_shapes
                .get(&flat.inputs[0])
                .and_then(|t| t.shape.iter().copied().product::<Option<i64>>());
            let (Some(single), Some(double), Some(per_image)) = (
                one.initializers.get(&node.inputs[1]),
                two.initializers.get(&node.inputs[1]),
                per_image,
            ) else {
                agreed[k] = false;
                continue;
            };
            let repeated = match (single.as_i64(), double.as_i64()) {
                (Some(a), Some(b)) => {
                    single.dims.first() == Some(&1)
                        && double.dims[1..] == single.dims[1..]
                        && double.dims.first() == Some(&2)
                        && b.len() == 2 * a.len()
                        && b[..a.len()] == *a
                        && b[a.len()..].iter().zip(a).all(|(b, a)| *b == a + per_image)
                        && a.iter().all(|&a| (0..per_image).contains(&a))
                }
                _ => false,
            };
            let pattern = Tensor::i64(&single.dims[1..], single.as_i64().unwrap_or(&[]).to_vec());
            match &patterns[k] {
                _ if !repeated => agreed[k] = false,
                Some((n, p)) if *n != per_image || *p != pattern => agreed[k] = false,
                _ => patterns[k] = Some((per_image, pattern)),
            }
        }
    }
    let mut rewritten = 0;
    for (k, &i) in candidates.iter().enumerate().rev() {
        let Some((per_image, pattern)) = patterns[k].take().filter(|_| agreed[k]) else {
            continue;
        };
        let node = graph.nodes[i].clone();
        let stem = &node.name;
        let constant = |graph: &mut Graph, suffix: &str, tensor: Tensor| {
            let name = format!("{stem}/{suffix}");
            graph.initializers.insert(name.clone(), tensor);
            name
        };
        let in_order = pattern.as_i64().is_some_and(|p| {
            p.len() as i64 == per_image && p.iter().enumerate().all(|(j, &v)| v == j as i64)
        });
        let made = |op: &str, inputs: Vec<String>, output: String| {
            Node::new(format!("{stem}/{op}"), op, inputs, output)
        };
        // In order, the images reshaped to the pattern's dimensions are the result; else
        // `[N, per_image]` gathered at the pattern on axis 1.
        let (dims, gathered) = if in_order {
            let dims = std::iter::once(-1).chain(pattern.dims.iter().copied());
            (dims.collect::<Vec<_>>(), None)
        } else {
            (vec![-1, per_image], Some(pattern))
        };
        let target = constant(graph, "per_image", Tensor::i64s(&dims));
        let reshaped = match gathered {
            Some(_) => format!("{stem}/images"),
            None => node.outputs[0].clone(),
        };
        let mut replacement = vec![made(
            "Reshape",
            vec![node.inputs[0].clone(), target],
            reshaped.clone(),
        )];
        if let Some(pattern) = gathered {
            let indices = constant(graph, "indices", pattern);
            let mut gather = made("Gather", vec![reshaped, indices], node.outputs[0].clone());
            gather.attrs.insert("axis".into(), crate::ir::Attr::Int(1));
            replacement.push(gather);
        }
        graph.nodes.splice(i..=i, replacement);
        rewritten += 1;
    }
    if rewritten > 0 {
        crate::passes::prune(graph);
    }
    rewritten
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
    /// The sizes after the batch in input `slot`, when it is computed as a multiple of the
    /// batch followed by known sizes and input 0 leads with the same multiple; and input 0's
    /// shape.
    pub fn batch_target(&self, slot: usize) -> Option<(Vec<i64>, Shape)> {
        let (multiple, rest) = self.multiple_and_sizes(slot)?;
        let input = self.input(0)?;
        (input.shape.first() == Some(&None) && input.batch_multiple == multiple)
            .then(|| (rest, input.shape.clone()))
    }

    /// The sizes after the batch in input `slot`, when it is computed at run time as the
    /// batch itself followed by known sizes.
    pub fn sizes_after_batch(&self, slot: usize) -> Option<Vec<i64>> {
        let (multiple, rest) = self.multiple_and_sizes(slot)?;
        (multiple == 1).then_some(rest)
    }

    fn multiple_and_sizes(&self, slot: usize) -> Option<(i64, Vec<i64>)> {
        let [Batch(multiple), rest @ ..] = self.computed(slot)? else {
            return None;
        };
        let rest = rest
            .iter()
            .map(|e| {
                if let Known(v) = e {
                    Some(*v as i64)
                } else {
                    None
                }
            })
            .collect::<Option<_>>()?;
        Some((*multiple, rest))
    }

    /// Input `slot`'s elements, when it is computed at run time (not already a constant) and
    /// folding followed it.
    pub fn computed(&self, slot: usize) -> Option<&[Element]> {
        let target = self.node.inputs.get(slot).filter(|t| !t.is_empty())?;
        if self.graph.initializers.contains_key(target) {
            return None;
        }
        Some(&self.values.get(target)?.data)
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

    /// The shape arithmetic exporters write around attention: `x.size(0) * heads` folds the
    /// heads into the batch, `x.size(0)` and `y.size(0) / heads` take them out again. Each
    /// target becomes a constant, with -1 where the batch's multiple changes.
    #[test]
    fn multiples_of_the_batch_in_reshape_targets_fold() {
        let mut b = GraphBuilder::new("heads");
        let x = b.input(
            "x",
            DataType::Float,
            vec![Dim::Symbolic("N".into()), Dim::Fixed(4), Dim::Fixed(6)],
        );
        let int = |b: &mut GraphBuilder, values: &[i64]| b.constant(Tensor::i64s(values));
        let batch_of = |b: &mut GraphBuilder, v: &str| {
            let shape = b.shape(v);
            let zero = b.constant(Tensor::i64s(&[0]));
            b.gather(&shape, &zero, 0)
        };
        let split = int(&mut b, &[0, 4, 2, 3]);
        let split = b.reshape(&x, &split);
        let heads_first = b.transpose(&split, &[0, 2, 1, 3]);
        let n = batch_of(&mut b, &x);
        let two = int(&mut b, &[2]);
        let n_heads = b.mul(&n, &two);
        let rest = int(&mut b, &[4, 3]);
        let target = b.concat(&[&n_heads, &rest], 0);
        let folded_heads = b.reshape(&heads_first, &target);
        let rest = int(&mut b, &[2, 4, 3]);
        let target = b.concat(&[&n, &rest], 0);
        let unfolded = b.reshape(&folded_heads, &target);
        let windows = batch_of(&mut b, &folded_heads);
        let back = b.div(&windows, &two);
        let rest = int(&mut b, &[24]);
        let target = b.concat(&[&back, &rest], 0);
        let flat = b.reshape(&folded_heads, &target);
        // mobilevit's `reshape(B * patch_area, num_patches, -1)`: two sizes left to the run.
        let rest = int(&mut b, &[4, -1]);
        let target = b.concat(&[&n_heads, &rest], 0);
        let patches = b.reshape(&x, &target);
        for y in [&unfolded, &flat, &patches] {
            b.output(y, DataType::Float, vec![]);
        }
        let mut graph = b.finish();
        passes::toposort(&mut graph).unwrap();
        fold(&mut graph);
        let targets: Vec<&[i64]> = graph
            .nodes
            .iter()
            .filter(|n| n.op == "Reshape")
            .map(|n| graph.initializers[&n.inputs[1]].as_i64().unwrap())
            .collect();
        assert_eq!(
            targets,
            [
                &[0, 4, 2, 3][..],
                &[-1, 4, 3],
                &[-1, 2, 4, 3],
                &[-1, 24],
                &[-1, 4, 3]
            ]
        );
        assert_eq!(shapes::infer(&graph).unwrap()[&patches].batch_multiple, 2);
        let shapes = shapes::infer(&graph).unwrap();
        assert_eq!(shapes[&folded_heads].shape, [None, Some(4), Some(3)]);
        assert_eq!(shapes[&folded_heads].batch_multiple, 2);
        assert_eq!(shapes[&unfolded].shape, [None, Some(2), Some(4), Some(3)]);
        assert_eq!(shapes[&flat].shape, [None, Some(24)]);
        assert_eq!(shapes[&flat].batch_multiple, 1);
    }

    /// torch.export's `as_strided`: a Gather from the flattened tensor at
    /// `Range(0, N)·stride + pattern`. A pattern in order becomes a Reshape; another (here a
    /// transpose of each image's `[2, 3]`) a per-image Gather on axis 1.
    #[test]
    fn as_strided_gathers_become_per_image_reshapes_or_gathers() {
        for (pattern, in_order) in [([0, 1, 2, 3, 4, 5], true), ([0, 3, 1, 4, 2, 5], false)] {
            let mut b = GraphBuilder::new("as_strided");
            let x = b.input(
                "x",
                DataType::Float,
                vec![Dim::Symbolic("N".into()), Dim::Fixed(2), Dim::Fixed(3)],
            );
            let flat = b.constant(Tensor::i64s(&[-1]));
            let flat = b.reshape(&x, &flat);
            let shape = b.shape(&x);
            let zero = b.constant(Tensor::i64(&[], vec![0]));
            let n = b.gather(&shape, &zero, 0);
            let (start, step) = (
                b.constant(Tensor::i64(&[], vec![0])),
                b.constant(Tensor::i64(&[], vec![1])),
            );
            let images = b.op("Range", &[&start, &n, &step], vec![]);
            let stride = b.constant(Tensor::i64(&[], vec![6]));
            let starts = b.mul(&images, &stride);
            let axes = b.constant(Tensor::i64s(&[1]));
            let starts = b.unsqueeze(&starts, &axes);
            let offsets = b.constant(Tensor::i64(&[6], pattern.to_vec()));
            let indices = b.add(&starts, &offsets);
            let y = b.gather(&flat, &indices, 0);
            b.output(&y, DataType::Float, vec![]);
            let mut graph = b.finish();
            passes::toposort(&mut graph).unwrap();
            assert_eq!(per_image_gathers(&mut graph, &[vec![2, 3]]), 1);
            let ops: Vec<&str> = graph.nodes.iter().map(|n| n.op.as_str()).collect();
            let gather = graph.nodes.iter().find(|n| n.op == "Gather");
            if in_order {
                assert_eq!(ops, ["Reshape", "Reshape"]);
            } else {
                assert_eq!(ops, ["Reshape", "Reshape", "Gather"]);
                let gather = gather.unwrap();
                assert_eq!(gather.int("axis"), Some(1));
                let indices = &graph.initializers[&gather.inputs[1]];
                assert_eq!(indices.as_i64(), Some(&pattern[..]));
            }
            assert_eq!(shapes::infer(&graph).unwrap()[&y].shape, [None, Some(6)]);
        }
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
