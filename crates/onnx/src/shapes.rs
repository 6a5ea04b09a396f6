//! Static shape inference for the operators ortl's backbones, heads and training graphs use.
//! Dimensions are `Option<i64>`: `None` is a dimension only known at run time (the batch).
//! Gradient construction needs ranks and parameter shapes, never the batch size, so this is
//! enough; an operator it does not know is an error naming the node.

use std::collections::HashMap;

use crate::OnnxError;
use crate::ir::{DataType, Graph, Node};

pub type Shape = Vec<Option<i64>>;

/// ortl's BatchNorm on batch statistics while a graph is differentiated
/// (`ortl_autodiff::batch_norm`), whose shapes inference follows.
pub const BATCH_NORM_TRAINING: &str = "BatchNormTraining";

/// Element type and shape of a value.
#[derive(Clone, Debug, PartialEq)]
pub struct TypedShape {
    pub dtype: DataType,
    pub shape: Shape,
}

/// A Reshape, Expand or ConstantOfShape to the run-time shape of another value,
/// `Reshape(x, Shape(like))` (how gradients return to their operand's shape over any batch):
/// that shape, broadcast with x's for Expand.
fn to_shape_of(
    graph: &Graph,
    node: &Node,
    known: &HashMap<String, TypedShape>,
) -> Option<TypedShape> {
    let shape_input = match node.op.as_str() {
        "Expand" | "Reshape" => node.inputs.get(1)?,
        "ConstantOfShape" => &node.inputs[0],
        _ => return None,
    };
    if constant_ints(graph, shape_input).is_some() {
        return None;
    }
    let shape_of = graph.producer(shape_input)?;
    if shape_of.op != "Shape" || shape_of.attr("start").is_some() || shape_of.attr("end").is_some()
    {
        return None;
    }
    let like = known.get(&shape_of.inputs[0])?;
    if node.op == "ConstantOfShape" {
        let dtype = match node.attr("value") {
            Some(crate::ir::Attr::Tensor(t)) => t.dtype,
            _ => DataType::Float,
        };
        return Some(TypedShape {
            dtype,
            shape: like.shape.clone(),
        });
    }
    let x = known.get(&node.inputs[0])?;
    let shape = match node.op.as_str() {
        "Expand" => broadcast(&x.shape, &like.shape)?,
        _ => like.shape.clone(),
    };
    Some(TypedShape {
        dtype: x.dtype,
        shape,
    })
}

/// The inferred shape of one value, when the graph's shapes can be inferred.
pub fn shape_of(graph: &Graph, value: &str) -> Option<Shape> {
    infer(graph).ok()?.remove(value).map(|typed| typed.shape)
}

/// Infers every value's type and shape, in node order (the graph must be sorted).
pub fn infer(graph: &Graph) -> Result<HashMap<String, TypedShape>, OnnxError> {
    infer_values(graph, false)
}

/// The types and shapes that can be inferred: a node this cannot infer (a shape computed at
/// run time) leaves its outputs, and whatever depends only on them, out of the map.
pub fn infer_partial(graph: &Graph) -> Result<HashMap<String, TypedShape>, OnnxError> {
    infer_values(graph, true)
}

fn infer_values(graph: &Graph, partial: bool) -> Result<HashMap<String, TypedShape>, OnnxError> {
    let mut known: HashMap<String, TypedShape> = HashMap::new();
    for input in &graph.inputs {
        let shape = input
            .dims()
            .ok_or_else(|| OnnxError::Graph(format!("input '{}' has no shape", input.name)))?;
        known.insert(
            input.name.clone(),
            TypedShape {
                dtype: input.dtype,
                shape,
            },
        );
    }
    for (name, t) in &graph.initializers {
        known.insert(
            name.clone(),
            TypedShape {
                dtype: t.dtype,
                shape: t.dims.iter().map(|&d| Some(d)).collect(),
            },
        );
    }
    for node in &graph.nodes {
        let inputs: Vec<Option<&TypedShape>> = node
            .inputs
            .iter()
            .map(|i| if i.is_empty() { None } else { known.get(i) })
            .collect();
        let outputs = match to_shape_of(graph, node, &known) {
            Some(shape) => vec![shape],
            None => match infer_node(graph, node, &inputs) {
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

/// Arity, ranks and attributes that the inference below indexes by, checked first: a
/// downloaded model may state anything, and must get an error naming the node, not a panic.
fn check_node(node: &Node, inputs: &[Option<&TypedShape>]) -> Result<(), OnnxError> {
    let rank_of = |i: usize| inputs.get(i).copied().flatten().map(|t| t.shape.len());
    let needs_inputs = match node.op.as_str() {
        "Gemm" | "MatMul" | "Gather" | "Reshape" | "Pad" | "Conv" | "ConvTranspose" | "Mod"
        | "CumSum" => 2,
        "Where" | "Range" => 3,
        _ => 1,
    };
    if node.inputs.len() < needs_inputs || node.outputs.is_empty() {
        return Err(node.error(format!(
            "{} needs at least {needs_inputs} inputs and an output, has {} and {}",
            node.op,
            node.inputs.len(),
            node.outputs.len()
        )));
    }
    let rank = rank_of(0).unwrap_or(0);
    let min_rank = match node.op.as_str() {
        "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" | "GlobalAveragePool"
        | "GlobalMaxPool" => 3,
        "Gemm" | "BatchNormalization" => 2,
        "MatMul" | "Gather" | "Concat" => 1,
        _ => 0,
    };
    if rank < min_rank {
        return Err(node.error(format!(
            "input of rank {rank}; {} needs {min_rank}",
            node.op
        )));
    }
    let in_range = |a: i64, limit: usize| -> Result<(), OnnxError> {
        let limit = limit as i64;
        if a < -limit || a >= limit {
            return Err(node.error(format!("axis {a} is out of range for rank {limit}")));
        }
        Ok(())
    };
    match node.op.as_str() {
        "Gemm" if rank_of(1) != Some(2) || rank != 2 => {
            return Err(node.error("Gemm needs two rank-2 inputs"));
        }
        "MatMul" if rank_of(1).unwrap_or(1) == 0 => {
            return Err(node.error("MatMul with a scalar"));
        }
        "Conv" | "ConvTranspose" if rank_of(1).is_some_and(|r| r != rank) => {
            return Err(node.error("weight rank differs from the input's"));
        }
        "Mod" => {
            let fmod = node.int("fmod").unwrap_or(0);
            if fmod != 0 && fmod != 1 {
                return Err(node.error(format!("fmod {fmod}: ONNX defines 0 and 1")));
            }
            let float = inputs[0].is_some_and(|t| {
                matches!(
                    t.dtype,
                    DataType::Float | DataType::Double | DataType::Other(10 | 16)
                )
            });
            if float && fmod == 0 {
                return Err(node.error(
                    "Mod of floating-point inputs needs fmod=1 (ONNX defines fmod=0 for integers only)",
                ));
            }
        }
        "CumSum" => {
            for attr in ["exclusive", "reverse"] {
                if let Some(v) = node.int(attr).filter(|v| *v != 0 && *v != 1) {
                    return Err(node.error(format!("{attr} {v}: ONNX defines 0 and 1")));
                }
            }
            if rank == 0 {
                return Err(node.error("CumSum of a scalar: it needs an axis to sum along"));
            }
        }
        "Range" => {
            for (i, t) in inputs.iter().take(3).enumerate() {
                if let Some(t) = t
                    && t.shape.iter().any(|d| *d != Some(1))
                {
                    return Err(node.error(format!(
                        "input {i} has shape {}; Range reads scalars",
                        shown(&t.shape)
                    )));
                }
            }
        }
        "Transpose" => {
            if let Some(perm) = node.ints("perm") {
                let mut sorted: Vec<i64> = perm.to_vec();
                sorted.sort_unstable();
                if sorted != (0..rank as i64).collect::<Vec<_>>() {
                    return Err(
                        node.error(format!("perm {perm:?} is not a permutation of 0..{rank}"))
                    );
                }
            }
        }
        "Flatten" => in_range(node.int("axis").unwrap_or(1), rank + 1)?,
        "Gather" | "Concat" | "Softmax" | "LogSoftmax" => {
            in_range(node.int("axis").unwrap_or(0), rank.max(1))?;
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1"
        | "ReduceSumSquare" | "ReduceL2" | "ReduceLogSumExp" => {
            for &a in node.ints("axes").unwrap_or(&[]) {
                in_range(a, rank)?;
            }
        }
        _ => {}
    }
    if matches!(
        node.op.as_str(),
        "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool"
    ) {
        let spatial = rank - 2;
        for (name, len, min) in [
            ("kernel_shape", spatial, 1),
            ("strides", spatial, 1),
            ("dilations", spatial, 1),
            ("pads", 2 * spatial, 0),
            ("output_padding", spatial, 0),
        ] {
            if let Some(values) = node.ints(name)
                && (values.len() != len || values.iter().any(|&v| v < min || v > 1 << 20))
            {
                return Err(node.error(format!(
                    "{name} {values:?}: expected {len} values of at least {min}"
                )));
            }
        }
        if node.ints("kernel_shape").is_none()
            && inputs
                .get(1)
                .copied()
                .flatten()
                .is_none_or(|w| w.shape.len() != rank)
        {
            return Err(node.error("no kernel_shape and no weight of the input's rank"));
        }
    }
    Ok(())
}

pub(crate) fn infer_node(
    graph: &Graph,
    node: &Node,
    inputs: &[Option<&TypedShape>],
) -> Result<Vec<TypedShape>, OnnxError> {
    if node.op == "Constant" {
        let tensor =
            constant_attr(node).ok_or_else(|| node.error("Constant without a value ortl reads"))?;
        return Ok(vec![TypedShape {
            dtype: tensor.dtype,
            shape: tensor.dims.iter().map(|&d| Some(d)).collect(),
        }]);
    }
    check_node(node, inputs)?;
    let input = |i: usize| -> Result<&TypedShape, OnnxError> {
        inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| node.error(format!("input {i} has no known shape")))
    };
    let x = input(0)?;
    let same = |shape: Shape| TypedShape {
        dtype: x.dtype,
        shape,
    };
    let rank = x.shape.len() as i64;
    let axis_of = |a: i64| {
        if a < 0 {
            (a + rank) as usize
        } else {
            a as usize
        }
    };
    let out = match node.op.as_str() {
        "Relu"
        | "Sigmoid"
        | "Tanh"
        | "Clip"
        | "Softmax"
        | "LogSoftmax"
        | "Identity"
        | "Neg"
        | "Exp"
        | "Log"
        | "Sqrt"
        | "Reciprocal"
        | "Abs"
        | "LeakyRelu"
        | "HardSigmoid"
        | "HardSwish"
        | "Erf"
        | "Elu"
        | "Selu"
        | "Celu"
        | "Gelu"
        | "Softplus"
        | "Softsign"
        | "Mish"
        | "PRelu"
        | "ThresholdedRelu"
        | "Floor"
        | "Ceil"
        | "Round"
        | "Sign"
        | "Not"
        | "InstanceNormalization"
        | "LpNormalization"
        | "LRN"
        // Data scattered into: its shape (a MaxPool's gradient).
        | "ScatterElements"
        | "ScatterND"
        | "CumSum" => vec![same(x.shape.clone())],
        "Range" => {
            let scalar = |i: usize| constant_scalar(graph, &node.inputs[i]);
            let len = match (scalar(0), scalar(1), scalar(2)) {
                (Some(start), Some(limit), Some(delta)) => Some(
                    range_len(x.dtype, start, limit, delta)
                        .ok_or_else(|| node.error("delta is 0: the range never ends"))?,
                ),
                // Computed at run time: a length known only then.
                _ => None,
            };
            vec![same(vec![len])]
        }
        "Einsum" => {
            let equation = match node.attr("equation") {
                Some(crate::ir::Attr::String(s)) => s.clone(),
                _ => return Err(node.error("Einsum without an equation")),
            };
            let shapes: Vec<&Shape> = (0..node.inputs.len())
                .map(|i| input(i).map(|t| &t.shape))
                .collect::<Result<_, _>>()?;
            vec![same(
                einsum_shape(&equation, &shapes).map_err(|message| node.error(message))?,
            )]
        }
        "LayerNormalization" => {
            let axis = axis_of(node.int("axis").unwrap_or(-1));
            let reduced: Shape = (0..x.shape.len())
                .map(|i| if i < axis { x.shape[i] } else { Some(1) })
                .collect();
            let mut out = vec![same(x.shape.clone())];
            for _ in 1..node.outputs.len() {
                out.push(same(reduced.clone()));
            }
            out
        }
        "ConstantOfShape" => {
            let dims = constant_ints(graph, &node.inputs[0])
                .ok_or_else(|| node.error("shape must be a constant"))?;
            let dtype = match node.attr("value") {
                Some(crate::ir::Attr::Tensor(t)) => t.dtype,
                _ => DataType::Float,
            };
            vec![TypedShape {
                dtype,
                shape: dims.into_iter().map(Some).collect(),
            }]
        }
        "Expand" => {
            let target: Shape = constant_ints(graph, &node.inputs[1])
                .ok_or_else(|| node.error("target shape must be a constant"))?
                .into_iter()
                .map(Some)
                .collect();
            vec![same(broadcast(&x.shape, &target).ok_or_else(|| {
                node.error(format!("{:?} does not expand to {target:?}", x.shape))
            })?)]
        }
        "Squeeze" => {
            let axes: Vec<usize> = match axes_of(graph, node, 1)? {
                Some(axes) => axes.into_iter().map(axis_of).collect(),
                None => (0..x.shape.len())
                    .filter(|&i| x.shape[i] == Some(1))
                    .collect(),
            };
            vec![same(
                (0..x.shape.len())
                    .filter(|i| !axes.contains(i))
                    .map(|i| x.shape[i])
                    .collect(),
            )]
        }
        "Unsqueeze" => {
            let axes =
                axes_of(graph, node, 1)?.ok_or_else(|| node.error("Unsqueeze without axes"))?;
            let out_rank = x.shape.len() + axes.len();
            let axes: Vec<usize> = axes
                .iter()
                .map(|&a| if a < 0 { a + out_rank as i64 } else { a } as usize)
                .collect();
            let mut rest = x.shape.iter();
            vec![same(
                (0..out_rank)
                    .map(|i| {
                        if axes.contains(&i) {
                            Some(1)
                        } else {
                            rest.next().copied().flatten()
                        }
                    })
                    .collect(),
            )]
        }
        "Slice" => {
            let spec = slice_spec(graph, node, x.shape.len())?;
            let mut shape = x.shape.clone();
            for (axis, start, end, step) in spec {
                shape[axis] = shape[axis].map(|n| slice_len(n, start, end, step));
            }
            vec![same(shape)]
        }
        "Split" => {
            let axis = axis_of(node.int("axis").unwrap_or(0));
            let parts = node.outputs.len() as i64;
            let sizes: Vec<Option<i64>> = match node.inputs.get(1).filter(|s| !s.is_empty()) {
                Some(name) => constant_ints(graph, name)
                    .ok_or_else(|| node.error("split sizes must be a constant"))?
                    .into_iter()
                    .map(Some)
                    .collect(),
                None => {
                    let each = x.shape[axis].map(|n| (n + parts - 1) / parts);
                    (0..parts)
                        .map(|i| {
                            x.shape[axis]
                                .zip(each)
                                .map(|(n, e)| (n - i * e).clamp(0, e))
                        })
                        .collect()
                }
            };
            sizes
                .into_iter()
                .map(|size| {
                    let mut shape = x.shape.clone();
                    shape[axis] = size;
                    same(shape)
                })
                .collect()
        }
        "Resize" => {
            let constant_input = |i: usize| {
                node.inputs
                    .get(i)
                    .filter(|s| !s.is_empty())
                    .and_then(|name| graph.initializers.get(name))
                    .filter(|t| !t.is_empty())
            };
            let shape = if let Some(sizes) = constant_input(3).and_then(|t| t.as_i64()) {
                sizes.iter().map(|&d| Some(d)).collect()
            } else if let Some(scales) = constant_input(2).and_then(|t| t.as_f32()) {
                x.shape
                    .iter()
                    .zip(scales)
                    // In float32, as ONNX Runtime computes it.
                    .map(|(d, &s)| d.map(|d| (s * d as f32) as i64))
                    .collect()
            } else {
                return Err(node.error("scales or sizes must be a constant"));
            };
            vec![same(shape)]
        }
        "Dropout" => vec![
            same(x.shape.clone()),
            TypedShape {
                dtype: DataType::Bool,
                shape: x.shape.clone(),
            },
        ],
        "Cast" => {
            let to = node
                .int("to")
                .ok_or_else(|| node.error("Cast without 'to'"))?;
            vec![TypedShape {
                dtype: DataType::from_onnx(to as i32),
                shape: x.shape.clone(),
            }]
        }
        "Add" | "Sub" | "Mul" | "Div" | "Mod" | "Sum" | "Mean" | "Pow" | "Max" | "Min"
        | "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Where" => {
            let mut shape = x.shape.clone();
            for i in 1..inputs.len() {
                let other = &input(i)?.shape;
                shape = broadcast(&shape, other).ok_or_else(|| {
                    node.error(format!(
                        "shapes {} and {} do not broadcast",
                        shown(&shape),
                        shown(other)
                    ))
                })?;
            }
            let dtype = match node.op.as_str() {
                "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" => {
                    DataType::Bool
                }
                "Where" => input(1)?.dtype,
                _ => x.dtype,
            };
            vec![TypedShape { dtype, shape }]
        }
        "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" => {
            vec![same(window(node, x, inputs.get(1).copied().flatten())?)]
        }
        "BatchNormalization" => {
            let c = vec![x.shape.get(1).copied().flatten()];
            let mut out = vec![same(x.shape.clone())];
            for _ in 1..node.outputs.len() {
                out.push(same(c.clone()));
            }
            out
        }
        // ortl's BatchNorm on batch statistics while differentiating (ortl_autodiff::batch_norm):
        // y, mean, variance, centred, inverse_std.
        BATCH_NORM_TRAINING => {
            let mut channel = vec![Some(1), x.shape.get(1).copied().flatten()];
            channel.extend(std::iter::repeat_n(
                Some(1),
                x.shape.len().saturating_sub(2),
            ));
            let (full, channel) = (same(x.shape.clone()), same(channel));
            vec![
                full.clone(),
                channel.clone(),
                channel.clone(),
                full,
                channel,
            ]
        }
        "GlobalAveragePool" | "GlobalMaxPool" => {
            let mut shape = x.shape[..2].to_vec();
            shape.extend(std::iter::repeat_n(Some(1), x.shape.len() - 2));
            vec![same(shape)]
        }
        "Flatten" => {
            let axis = axis_of(node.int("axis").unwrap_or(1));
            let product = |dims: &[Option<i64>]| {
                dims.iter()
                    .try_fold(1i64, |acc, d| d.and_then(|d| acc.checked_mul(d)))
            };
            vec![same(vec![
                product(&x.shape[..axis]),
                product(&x.shape[axis..]),
            ])]
        }
        "Gemm" => {
            let (a, b) = (&x.shape, &input(1)?.shape);
            let m = if node.int("transA") == Some(1) {
                a[1]
            } else {
                a[0]
            };
            let n = if node.int("transB") == Some(1) {
                b[0]
            } else {
                b[1]
            };
            vec![same(vec![m, n])]
        }
        "MatMul" => {
            // numpy's matmul: the batch axes broadcast; a rank-1 operand loses its axis.
            let a = &x.shape;
            let b = &input(1)?.shape;
            if a.is_empty() || b.is_empty() {
                return Err(node.error("MatMul with a scalar"));
            }
            let batch_of = |s: &Shape| s[..s.len().saturating_sub(2)].to_vec();
            let mut shape = broadcast(&batch_of(a), &batch_of(b))
                .ok_or_else(|| {
                    node.error(format!(
                        "batch axes of {} and {} do not broadcast",
                        shown(a),
                        shown(b)
                    ))
                })?;
            if a.len() >= 2 {
                shape.push(a[a.len() - 2]);
            }
            if b.len() >= 2 {
                shape.push(b[b.len() - 1]);
            }
            vec![same(shape)]
        }
        "Transpose" => {
            let perm: Vec<usize> = match node.ints("perm") {
                Some(p) => p.iter().map(|&a| a as usize).collect(),
                None => (0..x.shape.len()).rev().collect(),
            };
            vec![same(perm.iter().map(|&a| x.shape[a]).collect())]
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1"
        | "ReduceSumSquare" | "ReduceL2" | "ReduceLogSumExp" => {
            let axes: Vec<usize> = match node.ints("axes") {
                Some(a) => a.iter().map(|&a| axis_of(a)).collect(),
                None => match node.inputs.get(1).filter(|s| !s.is_empty()) {
                    Some(name) => constant_ints(graph, name)
                        .ok_or_else(|| node.error("axes must be a constant"))?
                        .iter()
                        .map(|&a| axis_of(a))
                        .collect(),
                    None => (0..x.shape.len()).collect(),
                },
            };
            let keep = node.int("keepdims").unwrap_or(1) == 1;
            let shape = x
                .shape
                .iter()
                .enumerate()
                .filter_map(|(i, &d)| {
                    if axes.contains(&i) {
                        keep.then_some(Some(1))
                    } else {
                        Some(d)
                    }
                })
                .collect();
            vec![same(shape)]
        }
        "Reshape" => {
            let target = constant_ints(graph, &node.inputs[1])
                .ok_or_else(|| node.error("target shape must be a constant"))?;
            let mut shape: Shape = target
                .iter()
                .enumerate()
                .map(|(i, &d)| match d {
                    0 => x.shape.get(i).copied().flatten(),
                    -1 => None,
                    d => Some(d),
                })
                .collect();
            // The -1 dimension: what the input holds beyond the dimensions copied by 0
            // (so a dynamic batch copied in front does not hide the rest).
            let copied = |i: usize| target.get(i) == Some(&0);
            let total = x
                .shape
                .iter()
                .enumerate()
                .filter(|&(i, _)| !copied(i))
                .try_fold(1i64, |acc, (_, d)| d.and_then(|d| acc.checked_mul(d)));
            let rest = |skip: Option<usize>| {
                shape
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| Some(i) != skip && !copied(i))
                    .try_fold(1i64, |acc, (_, d)| d.and_then(|d| acc.checked_mul(d)))
            };
            let fixed = |message: String| OnnxError::FixedAtExport {
                node: node.name.clone(),
                message,
            };
            let unfit = || {
                fixed(format!(
                    "cannot reshape {} to {target:?}, a size fixed when the graph was exported",
                    shown(&x.shape)
                ))
            };
            match (total, target.iter().position(|&d| d == -1)) {
                (Some(total), Some(pos)) => {
                    let r = rest(Some(pos));
                    if r.is_some_and(|r| r > 0 && total % r != 0) {
                        return Err(unfit());
                    }
                    shape[pos] = r.map(|r| total / r.max(1));
                }
                (Some(total), None)
                    if node.int("allowzero") != Some(1) && rest(None).is_some_and(|r| r != total) =>
                {
                    return Err(unfit());
                }
                // `[-1, …]` over a dynamic batch: for one image the rest must divide
                // what the image holds.
                (None, Some(0)) if x.shape.first() == Some(&None) => {
                    let image: Option<i64> = x.shape[1..].iter().copied().product();
                    if let (Some(image), Some(r)) = (image, rest(Some(0)))
                        && r > 0
                        && image % r != 0
                    {
                        return Err(unfit());
                    }
                }
                // A dynamic batch reshaped to fixed sizes only: the export fixed the batch
                // (torch.export fixes a dimension that is 1 in its example input).
                (None, None)
                    if x.shape.first() == Some(&None)
                        && !target.contains(&0)
                        && x.shape[1..].iter().all(Option::is_some) =>
                {
                    return Err(fixed(format!(
                        "reshapes {}, a batch of any size, to {target:?}: the export fixed the batch",
                        shown(&x.shape)
                    )));
                }
                _ => {}
            }
            vec![same(shape)]
        }
        "Gather" => {
            let indices = &input(1)?.shape;
            let axis = axis_of(node.int("axis").unwrap_or(0));
            let mut shape = x.shape[..axis].to_vec();
            shape.extend(indices.iter().copied());
            shape.extend(x.shape[axis + 1..].iter().copied());
            vec![same(shape)]
        }
        "Concat" => {
            let axis = axis_of(
                node.int("axis")
                    .ok_or_else(|| node.error("Concat without axis"))?,
            );
            let mut shape = x.shape.clone();
            for i in 1..inputs.len() {
                let other = input(i)?.shape.get(axis).copied().flatten();
                shape[axis] = shape[axis].zip(other).and_then(|(a, b)| a.checked_add(b));
            }
            vec![same(shape)]
        }
        "Pad" => {
            let pads = constant_ints(graph, &node.inputs[1])
                .ok_or_else(|| node.error("pads must be a constant"))?;
            let r = x.shape.len();
            if pads.len() != 2 * r {
                return Err(node.error(format!("{} pads for rank {r}", pads.len())));
            }
            vec![same(
                x.shape
                    .iter()
                    .enumerate()
                    .map(|(i, d)| d.and_then(|d| d.checked_add(pads[i])?.checked_add(pads[i + r])))
                    .collect(),
            )]
        }
        "Size" => vec![TypedShape {
            dtype: DataType::Int64,
            shape: vec![],
        }],
        "Shape" => {
            let clamp = |a: i64| (if a < 0 { a + rank } else { a }).clamp(0, rank);
            let start = clamp(node.int("start").unwrap_or(0));
            let end = clamp(node.int("end").unwrap_or(rank));
            vec![TypedShape {
                dtype: DataType::Int64,
                shape: vec![Some((end - start).max(0))],
            }]
        }
        other => return Err(node.error(format!("shape inference does not know operator {other}"))),
    };
    Ok(out)
}

/// The number of elements `Range(start, limit, delta)` produces, computed as ONNX Runtime
/// does (`limit - start` in the element type, then divided in double); `None` when delta is 0.
pub fn range_len(dtype: DataType, start: f64, limit: f64, delta: f64) -> Option<i64> {
    if delta == 0.0 {
        return None;
    }
    let span = match dtype {
        DataType::Float => f64::from(limit as f32 - start as f32),
        _ => limit - start,
    };
    Some((span / delta).ceil().max(0.0) as i64)
}

/// The single value of a constant scalar (or one-element) input.
fn constant_scalar(graph: &Graph, name: &str) -> Option<f64> {
    use crate::ir::TensorData;
    let t = graph.initializers.get(name)?;
    if t.numel() != 1 {
        return None;
    }
    match &t.data {
        TensorData::F32(v) => v.first().map(|&v| f64::from(v)),
        TensorData::F64(v) => v.first().copied(),
        TensorData::I64(v) => v.first().map(|&v| v as f64),
        TensorData::I32(v) => v.first().map(|&v| f64::from(v)),
        _ => None,
    }
}

/// The output shape of an Einsum `equation` over operands of `shapes`: explicit (`->`) or
/// implicit (the letters that appear once, in alphabetical order). Broadcasting with `...`
/// is refused. The error is a message for the node's error.
pub fn einsum_shape(equation: &str, shapes: &[&Shape]) -> Result<Shape, String> {
    let equation: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    if equation.contains('.') {
        return Err(format!(
            "equation '{equation}' broadcasts with '...', which ortl does not support: re-export with the axes named"
        ));
    }
    let (lhs, rhs) = match equation.split_once("->") {
        Some((lhs, rhs)) => (lhs, Some(rhs)),
        None => (equation.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != shapes.len() {
        return Err(format!(
            "equation '{equation}' names {} operands, the node has {}",
            terms.len(),
            shapes.len()
        ));
    }
    let mut dims: Vec<(char, Option<i64>, usize)> = Vec::new();
    for (term, shape) in terms.iter().zip(shapes) {
        if let Some(c) = term.chars().find(|c| !c.is_ascii_alphabetic()) {
            return Err(format!(
                "equation '{equation}': '{c}' is not an axis letter"
            ));
        }
        if term.len() != shape.len() {
            return Err(format!(
                "equation '{equation}': term '{term}' has {} axes, its operand is {}",
                term.len(),
                shown(shape)
            ));
        }
        for (c, &d) in term.chars().zip(shape.iter()) {
            match dims.iter_mut().find(|(l, _, _)| *l == c) {
                Some((_, known, count)) => {
                    *count += 1;
                    match (*known, d) {
                        (Some(a), Some(b)) if a != b => {
                            return Err(format!(
                                "equation '{equation}': axis '{c}' is {a} in one operand and {b} in another"
                            ));
                        }
                        (None, d) => *known = d,
                        _ => {}
                    }
                }
                None => dims.push((c, d, 1)),
            }
        }
    }
    let output: Vec<char> = match rhs {
        Some(rhs) => rhs.chars().collect(),
        None => {
            let mut once: Vec<char> = dims
                .iter()
                .filter(|(_, _, count)| *count == 1)
                .map(|(c, _, _)| *c)
                .collect();
            once.sort_unstable();
            once
        }
    };
    let mut shape = Shape::new();
    for (i, c) in output.iter().enumerate() {
        if output[..i].contains(c) {
            return Err(format!(
                "equation '{equation}': output axis '{c}' appears twice"
            ));
        }
        let (_, d, _) = dims
            .iter()
            .find(|(l, _, _)| l == c)
            .ok_or_else(|| format!("equation '{equation}': output axis '{c}' is in no operand"))?;
        shape.push(*d);
    }
    Ok(shape)
}

/// A shape as people write it: `[N, 128, 13, 13]`, N where a dimension is unknown.
fn shown(shape: &Shape) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| d.map_or_else(|| "N".to_string(), |d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Output spatial size of a convolution or pooling window (explicit pads or auto_pad).
fn window(node: &Node, x: &TypedShape, weight: Option<&TypedShape>) -> Result<Shape, OnnxError> {
    let spatial = x.shape.len() - 2;
    let kernel: Vec<i64> = match node.ints("kernel_shape") {
        Some(k) => k.to_vec(),
        None => weight
            .ok_or_else(|| node.error("no kernel_shape and no weight"))?
            .shape[2..]
            .iter()
            .map(|d| d.unwrap_or(1))
            .collect(),
    };
    let strides = node
        .ints("strides")
        .map_or(vec![1; spatial], <[i64]>::to_vec);
    let dilations = node
        .ints("dilations")
        .map_or(vec![1; spatial], <[i64]>::to_vec);
    let pads = node
        .ints("pads")
        .map_or(vec![0; 2 * spatial], <[i64]>::to_vec);
    let auto_pad = match node.attr("auto_pad") {
        Some(crate::ir::Attr::String(s)) => s.as_str(),
        _ => "NOTSET",
    };
    let ceil = node.int("ceil_mode") == Some(1);
    let transpose = node.op == "ConvTranspose";
    let channels = match node.op.as_str() {
        "Conv" => weight.and_then(|w| w.shape[0]),
        "ConvTranspose" => weight
            .and_then(|w| w.shape[1].and_then(|c| c.checked_mul(node.int("group").unwrap_or(1)))),
        _ => x.shape[1],
    };
    let mut shape = vec![x.shape[0], channels];
    for i in 0..spatial {
        // A window wider than its padded input has no output: the input is below the
        // network's minimum size (integer division would otherwise round it up to 1).
        if !transpose
            && !auto_pad.starts_with("SAME")
            && let Some(n) = x.shape[i + 2]
        {
            let (begin, end) = if auto_pad == "VALID" {
                (0, 0)
            } else {
                (pads[i], pads[i + spatial])
            };
            let effective = (kernel[i] - 1)
                .saturating_mul(dilations[i])
                .saturating_add(1);
            if n.saturating_add(begin).saturating_add(end) < effective {
                return Err(node.error(format!(
                    "its {effective}-wide window is larger than its input, {n} wide with {} padding: the image is below the network's minimum size",
                    begin + end
                )));
            }
        }
        // Checked arithmetic: dimensions come from the file; overflow means unknown.
        let size = x.shape[i + 2].and_then(|n| {
            let (k, s, d) = (kernel[i], strides[i], dilations[i]);
            let (begin, end) = (pads[i], pads[i + spatial]);
            let effective = k.checked_sub(1)?.checked_mul(d)?.checked_add(1)?;
            if transpose {
                let extra = node.ints("output_padding").map_or(0, |p| p[i]);
                s.checked_mul(n.checked_sub(1)?)?
                    .checked_add(extra)?
                    .checked_add(effective)?
                    .checked_sub(begin)?
                    .checked_sub(end)
            } else if auto_pad.starts_with("SAME") {
                Some(n.checked_add(s - 1)? / s)
            } else if auto_pad == "VALID" {
                Some(n.checked_sub(effective)? / s + 1)
            } else {
                let span = n
                    .checked_add(begin)?
                    .checked_add(end)?
                    .checked_sub(effective)?;
                Some(if ceil {
                    // As PyTorch and ONNX Runtime: a last window that would start in the
                    // end padding is dropped.
                    let out = span.checked_add(s - 1)? / s + 1;
                    if (out - 1).checked_mul(s)? >= n.checked_add(begin)? {
                        out - 1
                    } else {
                        out
                    }
                } else {
                    span / s + 1
                })
            }
        });
        shape.push(size);
    }
    Ok(shape)
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
fn axes_of(graph: &Graph, node: &Node, input: usize) -> Result<Option<Vec<i64>>, OnnxError> {
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

fn constant_ints(graph: &Graph, name: &str) -> Option<Vec<i64>> {
    graph
        .initializers
        .get(name)
        .and_then(|t| t.as_i64())
        .map(<[i64]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Dim;

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

    #[test]
    fn a_window_wider_than_its_padded_input_is_an_error_not_a_size_of_one() {
        let graph = |n: i64, pad: i64| {
            let mut b = crate::GraphBuilder::new("g");
            let x = b.input(
                "x",
                DataType::Float,
                [1, 1, n, n].iter().map(|&d| Dim::Fixed(d)).collect(),
            );
            let w = b.param("w", crate::Tensor::f32(&[1, 1, 3, 3], vec![0.0; 9]));
            let y = b.op(
                "Conv",
                &[&x, &w],
                vec![
                    ("strides", crate::builder::ints(&[2, 2])),
                    ("pads", crate::builder::ints(&[pad; 4])),
                ],
            );
            b.output(&y, DataType::Float, vec![]);
            b.finish()
        };
        let size = |n, pad| infer(&graph(n, pad)).map(|s| s["Conv_1"].shape[2]);
        assert_eq!(size(3, 0).unwrap(), Some(1));
        assert_eq!(size(5, 0).unwrap(), Some(2));
        // 2 + 0 < 3: no output, where (2 − 3) / 2 + 1 would have said 1.
        let err = size(2, 0).unwrap_err().to_string();
        assert!(
            err.contains("Conv_1") && err.contains("minimum size"),
            "{err}"
        );
        assert_eq!(size(1, 1).unwrap(), Some(1), "padding makes room");
    }

    #[test]
    fn scattering_keeps_the_data_shape_over_a_dynamic_batch() {
        let mut b = crate::GraphBuilder::new("g");
        let dims = |d: &[Option<i64>]| {
            d.iter()
                .map(|d| d.map_or(Dim::Symbolic("N".into()), Dim::Fixed))
                .collect()
        };
        let data = b.input("data", DataType::Float, dims(&[None, Some(64)]));
        let indices = b.input("indices", DataType::Int64, dims(&[None, Some(16)]));
        let updates = b.input("updates", DataType::Float, dims(&[None, Some(16)]));
        let y = b.op("ScatterElements", &[&data, &indices, &updates], vec![]);
        b.output(&y, DataType::Float, vec![]);
        let shapes = infer(&b.finish()).unwrap();
        assert_eq!(shapes[&y].shape, vec![None, Some(64)]);
        assert_eq!(shapes[&y].dtype, DataType::Float);
    }

    /// ONNX Runtime's pooling kernels (as PyTorch) drop a ceil-mode window that would start
    /// in the end padding: 7 rows, pads 1, kernel 2, stride 2 give 4 windows, not 5.
    #[test]
    fn ceil_mode_drops_a_last_window_starting_in_the_padding() {
        let pooled = |pads: [i64; 4]| {
            let mut b = crate::GraphBuilder::new("g");
            let x = b.input(
                "x",
                DataType::Float,
                [1, 2, 7, 6].iter().map(|&d| Dim::Fixed(d)).collect(),
            );
            let y = b.op(
                "AveragePool",
                &[&x],
                vec![
                    ("kernel_shape", crate::builder::ints(&[2, 3])),
                    ("strides", crate::builder::ints(&[2, 2])),
                    ("pads", crate::builder::ints(&pads)),
                    ("ceil_mode", crate::builder::int(1)),
                ],
            );
            b.output(&y, DataType::Float, vec![]);
            infer(&b.finish()).unwrap()[&y].shape.clone()
        };
        assert_eq!(pooled([0, 0, 0, 0]), [Some(1), Some(2), Some(4), Some(3)]);
        assert_eq!(pooled([1, 1, 1, 1]), [Some(1), Some(2), Some(4), Some(4)]);
    }

    #[test]
    fn matmul_broadcasts_its_batch_axes_as_numpy_does() {
        let product = |a: &[Option<i64>], b: &[Option<i64>]| {
            let mut g = crate::GraphBuilder::new("g");
            let dims = |d: &[Option<i64>]| {
                d.iter()
                    .map(|d| d.map_or(Dim::Symbolic("N".into()), Dim::Fixed))
                    .collect()
            };
            let a = g.input("a", DataType::Float, dims(a));
            let b = g.input("b", DataType::Float, dims(b));
            let y = g.op("MatMul", &[&a, &b], vec![]);
            g.output(&y, DataType::Float, vec![]);
            infer(&g.finish()).map(|s| s[&y].shape.clone())
        };
        let (n, k) = (None, Some);
        assert_eq!(
            product(&[n, k(1), k(4), k(5)], &[k(3), k(5), k(2)]).unwrap(),
            [n, k(3), k(4), k(2)]
        );
        assert_eq!(
            product(&[k(4), k(5)], &[k(3), k(5), k(2)]).unwrap(),
            [k(3), k(4), k(2)]
        );
        assert_eq!(product(&[n, k(3), k(4)], &[k(4)]).unwrap(), [n, k(3)]);
        assert!(product(&[k(2), k(4), k(5)], &[k(3), k(5), k(2)]).is_err());
    }

    /// A channel shuffle exported at 28×28 (`[0, 2, 58, 28, 28]`: the batch copied, the
    /// rest fixed) fits a 28×28 map and not a 13×13 one, and inference says so by name.
    #[test]
    fn a_reshape_whose_element_count_differs_is_an_error() {
        let graph = |side: i64, target: &[i64]| {
            let mut b = crate::GraphBuilder::new("g");
            let mut dims = vec![Dim::Symbolic("N".into())];
            dims.extend([116, side, side].iter().map(|&d| Dim::Fixed(d)));
            let x = b.input("x", DataType::Float, dims);
            let t = b.param("t", crate::Tensor::i64s(target));
            let y = b.op("Reshape", &[&x, &t], vec![]);
            b.output(&y, DataType::Float, vec![]);
            (b.finish(), y)
        };
        let shuffle = [0, 2, 58, 28, 28];
        let (fits, y) = graph(28, &shuffle);
        assert_eq!(
            infer(&fits).unwrap()[&y].shape,
            vec![None, Some(2), Some(58), Some(28), Some(28)]
        );
        let error = infer(&graph(13, &shuffle).0).unwrap_err();
        assert!(
            matches!(&error, OnnxError::FixedAtExport { message, .. } if message.contains("cannot reshape")),
            "{error}"
        );
        // With -1 the rest must divide what is there, in front for a dynamic batch too
        // (torch.export writes the shuffle as [-1, 2, 58, 28, 28]).
        assert!(infer(&graph(13, &[0, 2, 58, -1]).0).is_ok());
        assert!(infer(&graph(13, &[0, 3, -1]).0).is_err());
        assert!(infer(&graph(28, &[-1, 2, 58, 28, 28]).0).is_ok());
        assert!(infer(&graph(13, &[-1, 2, 58, 28, 28]).0).is_err());
        assert!(infer(&graph(13, &[-1, 116 * 13]).0).is_ok());
        // torch.export's batch of 1 from its example input.
        let error = infer(&graph(28, &[1, 116, 784]).0).unwrap_err();
        assert!(
            matches!(&error, OnnxError::FixedAtExport { message, .. } if message.contains("fixed the batch")),
            "{error}"
        );
        assert!(infer(&graph(28, &[0, 116, 784]).0).is_ok());
    }

    fn dims(d: &[Option<i64>]) -> Vec<Dim> {
        d.iter()
            .map(|d| d.map_or(Dim::Symbolic("N".into()), Dim::Fixed))
            .collect()
    }

    /// One node over inputs of these types and shapes: its first output's type and shape.
    fn one_node(
        op: &str,
        operands: &[(DataType, &[Option<i64>])],
        attrs: Vec<(&str, crate::Attr)>,
    ) -> Result<TypedShape, OnnxError> {
        let mut b = crate::GraphBuilder::new("g");
        let names: Vec<String> = operands
            .iter()
            .enumerate()
            .map(|(i, (dtype, shape))| b.input(&format!("x{i}"), *dtype, dims(shape)))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let y = b.op(op, &refs, attrs);
        b.output(&y, DataType::Float, vec![]);
        infer(&b.finish()).map(|s| s[&y].clone())
    }

    /// Swin's window arithmetic: `Mod` of shape values broadcasts, keeps its type, and
    /// refuses floats without fmod=1 (ONNX defines fmod=0 for integers only).
    #[test]
    fn mod_broadcasts_and_keeps_its_input_type() {
        let (n, k) = (None, Some);
        let y = one_node(
            "Mod",
            &[(DataType::Int64, &[n, k(3)]), (DataType::Int64, &[k(1)])],
            vec![],
        )
        .unwrap();
        assert_eq!(y.shape, [n, k(3)]);
        assert_eq!(y.dtype, DataType::Int64);
        let y = one_node(
            "Mod",
            &[(DataType::Float, &[k(2), k(3)]), (DataType::Float, &[k(3)])],
            vec![("fmod", crate::builder::int(1))],
        )
        .unwrap();
        assert_eq!((y.dtype, y.shape), (DataType::Float, vec![k(2), k(3)]));
        let err = one_node(
            "Mod",
            &[(DataType::Float, &[k(2)]), (DataType::Float, &[k(2)])],
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("Mod") && err.contains("fmod=1"), "{err}");
        assert!(
            one_node(
                "Mod",
                &[(DataType::Int64, &[k(2)]), (DataType::Int64, &[k(3)])],
                vec![]
            )
            .is_err()
        );
    }

    #[test]
    fn cumsum_keeps_its_input_shape_and_refuses_a_scalar() {
        let (n, k) = (None, Some);
        let y = one_node(
            "CumSum",
            &[(DataType::Float, &[n, k(4)]), (DataType::Int64, &[])],
            vec![("exclusive", crate::builder::int(1))],
        )
        .unwrap();
        assert_eq!((y.dtype, y.shape), (DataType::Float, vec![n, k(4)]));
        let err = one_node(
            "CumSum",
            &[(DataType::Float, &[]), (DataType::Int64, &[])],
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("CumSum") && err.contains("scalar"), "{err}");
        assert!(
            one_node(
                "CumSum",
                &[(DataType::Float, &[k(3)]), (DataType::Int64, &[])],
                vec![("reverse", crate::builder::int(2))],
            )
            .is_err()
        );
    }

    /// Range's length is known when its three scalars are constants (as ONNX Runtime computes
    /// it: max(ceil((limit − start) / delta), 0)) and is a run-time dimension otherwise.
    #[test]
    fn range_length_is_known_from_constants() {
        let range = |start: crate::Tensor, limit: crate::Tensor, delta: crate::Tensor| {
            let mut b = crate::GraphBuilder::new("g");
            let (s, l, d) = (
                b.param("s", start),
                b.param("l", limit),
                b.param("d", delta),
            );
            let y = b.op("Range", &[&s, &l, &d], vec![]);
            b.output(&y, DataType::Float, vec![]);
            infer(&b.finish()).map(|s| s[&y].clone())
        };
        let i = |v: i64| crate::Tensor::i64(&[], vec![v]);
        let f = |v: f32| crate::Tensor::f32(&[], vec![v]);
        let y = range(i(0), i(7), i(1)).unwrap();
        assert_eq!((y.dtype, y.shape), (DataType::Int64, vec![Some(7)]));
        assert_eq!(range(i(0), i(7), i(2)).unwrap().shape, [Some(4)]);
        assert_eq!(range(i(10), i(4), i(-3)).unwrap().shape, [Some(2)]);
        assert_eq!(range(i(5), i(1), i(1)).unwrap().shape, [Some(0)]);
        let y = range(f(0.0), f(1.0), f(0.25)).unwrap();
        assert_eq!((y.dtype, y.shape), (DataType::Float, vec![Some(4)]));
        let err = range(i(0), i(3), i(0)).unwrap_err().to_string();
        assert!(err.contains("Range") && err.contains("delta is 0"), "{err}");
        let err = range(i(0), crate::Tensor::i64s(&[3, 4]), i(1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("scalars"), "{err}");

        // A limit computed at run time: a length known only then.
        let y = one_node(
            "Range",
            &[
                (DataType::Int64, &[]),
                (DataType::Int64, &[]),
                (DataType::Int64, &[]),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!((y.dtype, y.shape), (DataType::Int64, vec![None]));
    }

    /// The equations attention exports write, explicit and implicit.
    #[test]
    fn einsum_shapes_follow_the_equation() {
        let (n, k) = (None, Some);
        let einsum = |equation: &str, operands: &[&[Option<i64>]]| {
            let operands: Vec<(DataType, &[Option<i64>])> =
                operands.iter().map(|s| (DataType::Float, *s)).collect();
            one_node(
                "Einsum",
                &operands,
                vec![("equation", crate::Attr::String(equation.into()))],
            )
            .map(|t| t.shape)
        };
        let q = [n, k(3), k(49), k(32)];
        let kk = [n, k(3), k(50), k(32)];
        let scores = [n, k(3), k(49), k(50)];
        assert_eq!(
            einsum("bhid,bhjd->bhij", &[&q, &kk]).unwrap(),
            [n, k(3), k(49), k(50)]
        );
        assert_eq!(
            einsum("bhij, bhjd -> bhid", &[&scores, &kk]).unwrap(),
            [n, k(3), k(49), k(32)]
        );
        assert_eq!(
            einsum("bij,bjk->bik", &[&[n, k(2), k(3)], &[n, k(3), k(4)]]).unwrap(),
            [n, k(2), k(4)]
        );
        // Implicit output: the letters that appear once, sorted (here a matrix product
        // whose output is transposed: "kj,ik" gives "ij").
        assert_eq!(
            einsum("kj,ik", &[&[k(3), k(4)], &[k(2), k(3)]]).unwrap(),
            [k(2), k(4)]
        );
        assert_eq!(einsum("ij->ji", &[&[k(2), k(5)]]).unwrap(), [k(5), k(2)]);
        assert_eq!(einsum("ii->i", &[&[k(3), k(3)]]).unwrap(), [k(3)]);
        assert_eq!(einsum("ij->", &[&[k(3), k(3)]]).unwrap(), []);
        // An unknown dimension takes the size the other operand states.
        assert_eq!(
            einsum("ij,jk->ik", &[&[k(2), n], &[k(3), k(4)]]).unwrap(),
            [k(2), k(4)]
        );

        for (equation, operands, says) in [
            ("...ij,...jk->...ik", vec![&q[..], &kk[..]], "'...'"),
            ("bhid,bhjd->bhij", vec![&q[..]], "names 2 operands"),
            ("bhi,bhjd->bhij", vec![&q[..], &kk[..]], "has 3 axes"),
            (
                "ij,jk->ik",
                vec![&[k(2), k(3)][..], &[k(4), k(5)][..]],
                "is 3",
            ),
            ("ij->iz", vec![&[k(2), k(3)][..]], "in no operand"),
            ("ij->ii", vec![&[k(2), k(3)][..]], "twice"),
        ] {
            let err = einsum(equation, &operands).unwrap_err().to_string();
            assert!(
                err.contains("Einsum") && err.contains(says),
                "{equation}: {err}"
            );
        }
    }
}
