//! Constant folding for imported graphs once their input size is fixed. Exporters compute
//! shapes at run time (`x.view(x.size(0), -1)` becomes Shape → Gather → Unsqueeze → Concat →
//! Reshape) and write scalars as Constant nodes; ortl's shape inference and gradient rules
//! need those as constants. Constant nodes become initializers, and shape arithmetic is
//! evaluated with the batch size kept symbolic: a value fully known becomes an initializer,
//! and a Reshape target known but for the batch in front reads 0 there ("copy the input's
//! dimension"), which is exact because every tensor of a classifier leads with the batch.

use std::collections::HashMap;

use crate::ir::{DataType, Graph, Node, Tensor, TensorData};
use crate::shapes::{self, TypedShape};

/// One element of a value being folded.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Element {
    Known(f64),
    /// The batch size (dimension 0 of a tensor whose batch is unknown).
    Batch,
    Unknown,
}

use Element::{Batch, Known, Unknown};

#[derive(Clone, Debug)]
struct Value {
    dtype: DataType,
    dims: Vec<i64>,
    data: Vec<Element>,
}

impl Value {
    fn known(&self) -> Option<Vec<f64>> {
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
const SMALL: usize = 4096;

fn value_of(tensor: &Tensor) -> Option<Value> {
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
    let nodes = std::mem::take(&mut graph.nodes);
    let mut kept = Vec::with_capacity(nodes.len());
    for mut node in nodes {
        let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        if default_domain
            && node.op == "Constant"
            && let Some(tensor) = shapes::constant_attr(&node)
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
        if default_domain && rewire_batch_target(graph, &mut node, &values, &shapes) {
            folded += 1;
        }
        let inputs: Vec<Option<&TypedShape>> = node
            .inputs
            .iter()
            .map(|i| if i.is_empty() { None } else { shapes.get(i) })
            .collect();
        let out_shapes = shapes::infer_node(graph, &node, &inputs).ok();
        let evaluated = if default_domain {
            evaluate(graph, &node, &values, &shapes, out_shapes.as_deref())
        } else {
            None
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

/// A Reshape, Expand or Resize whose target is the batch followed by known sizes, applied
/// to a tensor that leads with the batch, reads a constant instead: Reshape's 0 ("copy"),
/// Expand's 1 (keep), and for Resize the scales that give those sizes.
fn rewire_batch_target(
    graph: &mut Graph,
    node: &mut Node,
    values: &HashMap<String, Value>,
    shapes: &HashMap<String, TypedShape>,
) -> bool {
    let slot = match node.op.as_str() {
        "Reshape" if node.int("allowzero") != Some(1) => 1,
        "Expand" => 1,
        "Resize" => 3,
        _ => return false,
    };
    let Some(target) = node.inputs.get(slot).filter(|t| !t.is_empty()) else {
        return false;
    };
    if graph.initializers.contains_key(target) {
        return false;
    }
    let Some(value) = values.get(target) else {
        return false;
    };
    let Some(input) = shapes.get(&node.inputs[0]).map(|s| &s.shape) else {
        return false;
    };
    let [Batch, rest @ ..] = value.data.as_slice() else {
        return false;
    };
    let rest: Option<Vec<i64>> = rest
        .iter()
        .map(|e| {
            if let Known(v) = e {
                Some(*v as i64)
            } else {
                None
            }
        })
        .collect();
    let (Some(rest), Some(None)) = (rest, input.first()) else {
        return false;
    };
    let tensor = match node.op.as_str() {
        "Reshape" => Tensor::i64s(&[&[0], &rest[..]].concat()),
        "Expand" => Tensor::i64s(&[&[1], &rest[..]].concat()),
        _ => {
            // Resize: scales that ONNX Runtime turns back into exactly these sizes.
            if input.len() != rest.len() + 1 {
                return false;
            }
            let mut scales = vec![1.0f32];
            for (d, &out) in input[1..].iter().zip(&rest) {
                let Some(d) = *d else { return false };
                scales.push(scale_for(d, out));
            }
            Tensor::f32(&[scales.len() as i64], scales)
        }
    };
    let mut name = format!("{}/target", node.name);
    while graph.initializers.contains_key(&name) {
        name.push('_');
    }
    graph.initializers.insert(name.clone(), tensor);
    if node.op == "Resize" {
        node.inputs[2] = name;
        node.inputs.truncate(3);
    } else {
        node.inputs[slot] = name;
    }
    true
}

/// The float32 scale nearest `out / input` for which `(scale · input) as i64 == out`, the
/// size ONNX Runtime computes from scales.
fn scale_for(input: i64, out: i64) -> f32 {
    let mut scale = out as f32 / input as f32;
    while ((scale * input as f32) as i64) < out {
        scale = f32::from_bits(scale.to_bits() + 1);
    }
    scale
}

/// The node's outputs, where its inputs are known (shape arithmetic only).
fn evaluate(
    graph: &Graph,
    node: &Node,
    values: &HashMap<String, Value>,
    shapes: &HashMap<String, TypedShape>,
    out_shapes: Option<&[TypedShape]>,
) -> Option<Vec<Value>> {
    let input = |i: usize| node.inputs.get(i).and_then(|name| values.get(name));
    let out_dims = |i: usize| -> Option<Vec<i64>> {
        out_shapes?
            .get(i)?
            .shape
            .iter()
            .copied()
            .collect::<Option<Vec<i64>>>()
    };
    let same_data = |data: Vec<Element>, dtype: DataType| -> Option<Vec<Value>> {
        let dims = out_dims(0)?;
        (dims.iter().product::<i64>() as usize == data.len())
            .then(|| vec![Value { dtype, dims, data }])
    };
    match node.op.as_str() {
        "Shape" => {
            let shape = &shapes.get(&node.inputs[0])?.shape;
            let rank = shape.len() as i64;
            let clamp = |a: i64| (if a < 0 { a + rank } else { a }).clamp(0, rank) as usize;
            let start = clamp(node.int("start").unwrap_or(0));
            let end = clamp(node.int("end").unwrap_or(rank));
            let data: Vec<Element> = (start..end.max(start))
                .map(|i| match shape[i] {
                    Some(d) => Known(d as f64),
                    None if i == 0 => Batch,
                    None => Unknown,
                })
                .collect();
            Some(vec![Value {
                dtype: DataType::Int64,
                dims: vec![data.len() as i64],
                data,
            }])
        }
        "Size" => {
            let shape = &shapes.get(&node.inputs[0])?.shape;
            let n: Option<i64> = shape.iter().copied().product();
            Some(vec![Value {
                dtype: DataType::Int64,
                dims: vec![],
                data: vec![n.map_or(Unknown, |n| Known(n as f64))],
            }])
        }
        "Identity" | "Squeeze" | "Unsqueeze" | "Reshape" | "Flatten" => {
            let x = input(0)?;
            same_data(x.data.clone(), x.dtype)
        }
        "Cast" => {
            let x = input(0)?;
            let dtype = out_shapes?.first()?.dtype;
            let integer = matches!(dtype, DataType::Int64 | DataType::Int32 | DataType::Int8);
            let data = x
                .data
                .iter()
                .map(|&e| match e {
                    Known(v) if integer => Known(v.trunc()),
                    e => e,
                })
                .collect();
            same_data(data, dtype)
        }
        "Gather" => {
            let (x, indices) = (input(0)?, input(1)?);
            let axis = node.int("axis").unwrap_or(0);
            if x.dims.len() != 1 || (axis != 0 && axis != -1) {
                return None;
            }
            let n = x.data.len() as i64;
            let data = indices
                .known()?
                .iter()
                .map(|&i| {
                    let i = if i < 0.0 { i as i64 + n } else { i as i64 };
                    x.data.get(usize::try_from(i).ok()?).copied()
                })
                .collect::<Option<Vec<_>>>()?;
            Some(vec![Value {
                dtype: x.dtype,
                dims: indices.dims.clone(),
                data,
            }])
        }
        "Concat" => {
            let parts: Vec<&Value> = (0..node.inputs.len()).map(input).collect::<Option<_>>()?;
            if parts.iter().any(|p| p.dims.len() != 1) {
                return None;
            }
            let data: Vec<Element> = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
            Some(vec![Value {
                dtype: parts[0].dtype,
                dims: vec![data.len() as i64],
                data,
            }])
        }
        "Slice" => {
            let x = input(0)?;
            if x.dims.len() != 1 {
                return None;
            }
            let spec = shapes::slice_spec(graph, node, 1).ok()?;
            let &[(_, start, end, step)] = spec.as_slice() else {
                return None;
            };
            let n = x.data.len() as i64;
            let first = shapes::slice_start(n, start, step);
            let len = shapes::slice_len(n, start, end, step);
            let data: Vec<Element> = (0..len)
                .map(|k| x.data[(first + k * step) as usize])
                .collect();
            Some(vec![Value {
                dtype: x.dtype,
                dims: vec![len],
                data,
            }])
        }
        "Add" | "Sub" | "Mul" | "Div" | "Mod" | "Max" | "Min" | "Pow" => {
            let (a, b) = (input(0)?, input(1)?);
            let op = match node.op.as_str() {
                "Mod" if node.int("fmod") == Some(1) => "FMod",
                op => op,
            };
            let dims = out_dims(0)?;
            let n = dims.iter().product::<i64>() as usize;
            let at = |v: &Value, k: usize| {
                if v.data.len() == 1 {
                    Some(v.data[0])
                } else if v.data.len() == n {
                    Some(v.data[k])
                } else {
                    None
                }
            };
            let integer = a.dtype != DataType::Float && a.dtype != DataType::Double;
            let data = (0..n)
                .map(|k| Some(arithmetic(op, at(a, k)?, at(b, k)?, integer)))
                .collect::<Option<Vec<_>>>()?;
            Some(vec![Value {
                dtype: a.dtype,
                dims,
                data,
            }])
        }
        "Floor" | "Ceil" | "Neg" | "Sqrt" => {
            let x = input(0)?;
            let f: fn(f64) -> f64 = match node.op.as_str() {
                "Floor" => f64::floor,
                "Ceil" => f64::ceil,
                "Neg" => |v| -v,
                _ => f64::sqrt,
            };
            let data = x
                .data
                .iter()
                .map(|&e| {
                    if let Known(v) = e {
                        Known(f(v))
                    } else {
                        Unknown
                    }
                })
                .collect();
            same_data(data, x.dtype)
        }
        "ConstantOfShape" => {
            let dims: Vec<i64> = input(0)?.known()?.iter().map(|&d| d as i64).collect();
            let n = dims.iter().product::<i64>() as usize;
            if n > SMALL {
                return None;
            }
            let fill = match node.attr("value") {
                Some(crate::ir::Attr::Tensor(t)) => value_of(t)?,
                _ => Value {
                    dtype: DataType::Float,
                    dims: vec![1],
                    data: vec![Known(0.0)],
                },
            };
            Some(vec![Value {
                dtype: fill.dtype,
                dims,
                data: vec![*fill.data.first()?; n],
            }])
        }
        "Range" => {
            let scalar = |i: usize| {
                input(i)
                    .and_then(|v| v.known())
                    .and_then(|v| v.first().copied())
            };
            let (start, limit, delta) = (scalar(0)?, scalar(1)?, scalar(2)?);
            let n =
                usize::try_from(shapes::range_len(input(0)?.dtype, start, limit, delta)?).ok()?;
            if n > SMALL {
                return None;
            }
            Some(vec![Value {
                dtype: input(0)?.dtype,
                dims: vec![n as i64],
                data: (0..n).map(|k| Known(start + k as f64 * delta)).collect(),
            }])
        }
        "CumSum" => {
            let x = input(0)?;
            let axis = *input(1)?.known()?.first()? as i64;
            let rank = x.dims.len() as i64;
            if axis < -rank || axis >= rank {
                return None;
            }
            let axis = if axis < 0 { axis + rank } else { axis } as usize;
            let len = x.dims[axis] as usize;
            let inner: usize = x.dims[axis + 1..].iter().product::<i64>() as usize;
            let (exclusive, reverse) = (
                node.int("exclusive") == Some(1),
                node.int("reverse") == Some(1),
            );
            let mut data = vec![Known(0.0); x.data.len()];
            for start in 0..x.data.len() {
                // The first element of each line along the axis.
                if !(start / inner).is_multiple_of(len) {
                    continue;
                }
                let mut total = Known(0.0);
                for k in 0..len {
                    let k = if reverse { len - 1 - k } else { k };
                    let at = start + k * inner;
                    let sum = |a: Element, b: Element| match (a, b) {
                        (Known(a), Known(b)) => Known(a + b),
                        _ => Unknown,
                    };
                    let next = sum(total, x.data[at]);
                    data[at] = if exclusive { total } else { next };
                    total = next;
                }
            }
            same_data(data, x.dtype)
        }
        _ => None,
    }
}

fn arithmetic(op: &str, a: Element, b: Element, integer: bool) -> Element {
    match (a, b) {
        (Known(x), Known(y)) => match op {
            "Add" => Known(x + y),
            "Sub" => Known(x - y),
            "Mul" => Known(x * y),
            "Div" if y == 0.0 => Unknown,
            // Integer division truncates, as ONNX Runtime's does.
            "Div" if integer => Known((x / y).trunc()),
            "Div" => Known(x / y),
            "Max" => Known(x.max(y)),
            "Min" => Known(x.min(y)),
            "Pow" => Known(x.powf(y)),
            "Mod" | "FMod" if y == 0.0 => Unknown,
            // C's fmod: the sign of the dividend (Rust's `%`).
            "FMod" => Known(x % y),
            // Python's: the sign of the divisor.
            "Mod" => {
                let r = x % y;
                Known(if r != 0.0 && (r < 0.0) != (y < 0.0) {
                    r + y
                } else {
                    r
                })
            }
            _ => Unknown,
        },
        (Batch, Known(y)) | (Known(y), Batch) if op == "Mul" && y == 1.0 => Batch,
        (Batch, Known(y))
            if (op == "Div" && y == 1.0) || ((op == "Add" || op == "Sub") && y == 0.0) =>
        {
            Batch
        }
        _ => Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::int;
    use crate::ir::Dim;
    use crate::{GraphBuilder, passes};

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
        let shape = b.op("Shape", &[&x], vec![]);
        let zero = b.constant(Tensor::i64(&[], vec![0]));
        let n = b.op("Gather", &[&shape, &zero], vec![("axis", int(0))]);
        let axes = b.constant(Tensor::i64s(&[0]));
        let n = b.op("Unsqueeze", &[&n, &axes], vec![]);
        let minus_one = b.constant(Tensor::i64s(&[-1]));
        let target = b.op("Concat", &[&n, &minus_one], vec![("axis", int(0))]);
        let y = b.op("Reshape", &[&x, &target], vec![]);
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
        let shape = b.op("Shape", &[&x], vec![]);
        let (start, end) = (
            b.constant(Tensor::i64s(&[2])),
            b.constant(Tensor::i64s(&[4])),
        );
        let hw = b.op("Slice", &[&shape, &start, &end], vec![]);
        let two = b.op(
            "Constant",
            &[],
            vec![("value", crate::Attr::Tensor(Tensor::i64(&[], vec![2])))],
        );
        let doubled = b.op("Mul", &[&hw, &two], vec![]);
        let zero = b.constant(Tensor::i64s(&[0]));
        let nc = b.op("Slice", &[&shape, &zero, &start], vec![]);
        let sizes = b.op("Concat", &[&nc, &doubled], vec![("axis", int(0))]);
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
    fn scales_reproduce_awkward_sizes() {
        for (input, out) in [(3, 7), (7, 3), (224, 299), (13, 26), (100, 1), (5, 5)] {
            let scale = scale_for(input, out);
            assert_eq!((scale * input as f32) as i64, out, "{input} → {out}");
            assert!((f64::from(scale) - out as f64 / input as f64).abs() < 1e-5);
        }
    }

    #[test]
    fn nodes_it_cannot_follow_are_kept() {
        let mut b = GraphBuilder::new("keep");
        let x = nchw(&mut b, 4, 4);
        let y = b.op("Relu", &[&x], vec![]);
        b.output(&y, DataType::Float, vec![]);
        let mut graph = b.finish();
        let before = graph.clone();
        assert_eq!(fold(&mut graph), 0);
        assert_eq!(graph, before);
    }

    /// One node over constants, folded: its output tensor.
    fn folded(op: &str, operands: &[Tensor], attrs: Vec<(&str, crate::Attr)>) -> Tensor {
        let mut b = GraphBuilder::new("fold");
        let names: Vec<String> = operands
            .iter()
            .map(|t| {
                b.op(
                    "Constant",
                    &[],
                    vec![("value", crate::Attr::Tensor(t.clone()))],
                )
            })
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let y = b.op(op, &refs, attrs);
        b.output(&y, DataType::Float, vec![]);
        let mut graph = b.finish();
        fold(&mut graph);
        assert!(graph.nodes.is_empty(), "{op} was not folded");
        graph.initializers[&y].clone()
    }

    /// Python's modulo (the sign of the divisor) for fmod=0, C's fmod (the sign of the
    /// dividend) for fmod=1, broadcasting a scalar divisor; values from numpy's `np.mod`
    /// and `np.fmod`.
    #[test]
    fn mod_folds_with_both_sign_conventions() {
        let a = Tensor::i64(&[4], vec![7, -7, 7, -7]);
        let b = Tensor::i64(&[4], vec![3, 3, -3, -3]);
        let python = folded("Mod", &[a.clone(), b.clone()], vec![]);
        assert_eq!(python.as_i64(), Some(&[1, 2, -2, -1][..]));
        let c = folded("Mod", &[a.clone(), b], vec![("fmod", int(1))]);
        assert_eq!(c.as_i64(), Some(&[1, -1, 1, -1][..]));
        let by_scalar = folded("Mod", &[a, Tensor::i64(&[], vec![4])], vec![]);
        assert_eq!(by_scalar.as_i64(), Some(&[3, 1, 3, 1][..]));
        let float = folded(
            "Mod",
            &[
                Tensor::f32(&[2], vec![5.5, -5.5]),
                Tensor::f32(&[], vec![2.0]),
            ],
            vec![("fmod", int(1))],
        );
        assert_eq!(float.as_f32(), Some(&[1.5, -1.5][..]));
    }

    #[test]
    fn cumsum_folds_along_its_axis_exclusive_and_reversed() {
        let x = Tensor::i64(&[2, 3], vec![1, 2, 3, 4, 5, 6]);
        let axis = |a: i64| Tensor::i64(&[], vec![a]);
        let sum = |a: i64, exclusive: i64, reverse: i64| {
            folded(
                "CumSum",
                &[x.clone(), axis(a)],
                vec![("exclusive", int(exclusive)), ("reverse", int(reverse))],
            )
            .as_i64()
            .unwrap()
            .to_vec()
        };
        assert_eq!(sum(1, 0, 0), [1, 3, 6, 4, 9, 15]);
        assert_eq!(sum(-1, 0, 0), [1, 3, 6, 4, 9, 15]);
        assert_eq!(sum(0, 0, 0), [1, 2, 3, 5, 7, 9]);
        assert_eq!(sum(1, 1, 0), [0, 1, 3, 0, 4, 9]);
        assert_eq!(sum(1, 0, 1), [6, 5, 3, 15, 11, 6]);
        assert_eq!(sum(1, 1, 1), [5, 3, 0, 11, 6, 0]);
    }

    #[test]
    fn range_folds_to_its_values() {
        let i = |v: i64| Tensor::i64(&[], vec![v]);
        let y = folded("Range", &[i(10), i(4), i(-3)], vec![]);
        assert_eq!(
            (y.dims.as_slice(), y.as_i64()),
            (&[2][..], Some(&[10, 7][..]))
        );
    }
}
