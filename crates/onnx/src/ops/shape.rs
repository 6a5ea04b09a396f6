//! Data movement and shape arithmetic: constants, shape queries, reshaping, slicing,
//! gathering, padding, ranges, scatters. Specs: https://onnx.ai/onnx/operators/ (each
//! operator's page and changelog).

use std::collections::HashMap;

use crate::OnnxError;
use crate::fold::{Batch, Element, Folding, Known, Rewire, SMALL, Unknown, Value, value_of};
use crate::ir::{Attr, DataType, Graph, Node, Tensor, TensorData};
use crate::ops::{Check, Infer, OpDef, check_axis, same_shape};
use crate::opset::{add_constant, attr_to_input, set_input};
use crate::shapes::{
    Shape, TypedShape, axes_of, broadcast, constant_attr, constant_ints, shown, slice_len,
    slice_spec, slice_start,
};

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("Constant").inputs(0).value(constant_attr),
    OpDef::new("ConstantOfShape")
        .since(9)
        .shape(constant_of_shape)
        .like(constant_of_shape_like)
        .fold(fold_constant_of_shape),
    OpDef::new("Shape").shape(shape).fold(fold_shape),
    OpDef::new("Size").shape(size).fold(fold_size),
    OpDef::new("Identity").shape(same_shape).fold(pass_through),
    OpDef::new("Dropout")
        .shape(dropout)
        .convert(convert_dropout),
    OpDef::new("Cast")
        .shape(cast)
        .fold(fold_cast)
        .convert(convert_cast),
    OpDef::new("Reshape")
        .inputs(2)
        .shape(reshape)
        .like(reshape_like)
        .fold(pass_through)
        .rewire(reshape_batch_target),
    OpDef::new("Flatten")
        .check(check_flatten)
        .shape(flatten)
        .fold(pass_through),
    OpDef::new("Squeeze")
        .shape(squeeze)
        .fold(pass_through)
        .convert(convert_squeeze),
    OpDef::new("Unsqueeze")
        .shape(unsqueeze)
        .fold(pass_through)
        .convert(convert_squeeze),
    OpDef::new("Transpose")
        .check(check_transpose)
        .shape(transpose),
    OpDef::new("Concat")
        .min_rank(1)
        .check(check_axis)
        .shape(concat)
        .fold(fold_concat),
    OpDef::new("Pad").inputs(2).shape(pad).convert(convert_pad),
    OpDef::new("Slice")
        .shape(slice)
        .fold(fold_slice)
        .convert(convert_slice),
    OpDef::new("Split").shape(split).convert(convert_split),
    OpDef::new("Gather")
        .inputs(2)
        .min_rank(1)
        .check(check_axis)
        .shape(gather)
        .fold(fold_gather),
    OpDef::new("Expand")
        .since(8)
        .shape(expand)
        .like(expand_like)
        .rewire(expand_batch_target),
    OpDef::new("Range")
        .since(11)
        .inputs(3)
        .check(check_range)
        .shape(range)
        .fold(fold_range),
    // Data scattered into: its shape (a MaxPool's gradient).
    OpDef::new("ScatterElements").since(11).shape(same_shape),
    OpDef::new("ScatterND").since(11).shape(same_shape),
];

fn check_flatten(cx: &Check) -> Result<(), OnnxError> {
    cx.in_range(cx.node.int("axis").unwrap_or(1), cx.rank() + 1)
}

fn check_transpose(cx: &Check) -> Result<(), OnnxError> {
    let rank = cx.rank();
    if let Some(perm) = cx.node.ints("perm") {
        let mut sorted: Vec<i64> = perm.to_vec();
        sorted.sort_unstable();
        if sorted != (0..rank as i64).collect::<Vec<_>>() {
            return Err(cx
                .node
                .error(format!("perm {perm:?} is not a permutation of 0..{rank}")));
        }
    }
    Ok(())
}

fn check_range(cx: &Check) -> Result<(), OnnxError> {
    for (i, t) in cx.inputs.iter().take(3).enumerate() {
        if let Some(t) = t
            && t.shape.iter().any(|d| *d != Some(1))
        {
            return Err(cx.node.error(format!(
                "input {i} has shape {}; Range reads scalars",
                shown(&t.shape)
            )));
        }
    }
    Ok(())
}

/// The type a ConstantOfShape fills with.
fn fill_dtype(node: &Node) -> DataType {
    match node.attr("value") {
        Some(Attr::Tensor(t)) => t.dtype,
        _ => DataType::Float,
    }
}

fn constant_of_shape(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, .. } = *cx;
    let dims = constant_ints(graph, &node.inputs[0])
        .ok_or_else(|| node.error("shape must be a constant"))?;
    Ok(vec![TypedShape {
        dtype: fill_dtype(node),
        shape: dims.into_iter().map(Some).collect(),
    }])
}

/// The value whose run-time shape input `slot` is, `Shape(like)`: like's type and shape.
fn shape_input_like<'a>(
    graph: &Graph,
    node: &Node,
    slot: usize,
    known: &'a HashMap<String, TypedShape>,
) -> Option<&'a TypedShape> {
    let shape_input = node.inputs.get(slot)?;
    if constant_ints(graph, shape_input).is_some() {
        return None;
    }
    let shape_of = graph.producer(shape_input)?;
    if shape_of.op != "Shape" || shape_of.attr("start").is_some() || shape_of.attr("end").is_some()
    {
        return None;
    }
    known.get(&shape_of.inputs[0])
}

fn constant_of_shape_like(
    graph: &Graph,
    node: &Node,
    known: &HashMap<String, TypedShape>,
) -> Option<TypedShape> {
    let like = shape_input_like(graph, node, 0, known)?;
    Some(TypedShape {
        dtype: fill_dtype(node),
        shape: like.shape.clone(),
    })
}

fn reshape_like(
    graph: &Graph,
    node: &Node,
    known: &HashMap<String, TypedShape>,
) -> Option<TypedShape> {
    let like = shape_input_like(graph, node, 1, known)?;
    let x = known.get(&node.inputs[0])?;
    Some(TypedShape {
        dtype: x.dtype,
        shape: like.shape.clone(),
    })
}

fn expand_like(
    graph: &Graph,
    node: &Node,
    known: &HashMap<String, TypedShape>,
) -> Option<TypedShape> {
    let like = shape_input_like(graph, node, 1, known)?;
    let x = known.get(&node.inputs[0])?;
    Some(TypedShape {
        dtype: x.dtype,
        shape: broadcast(&x.shape, &like.shape)?,
    })
}

fn shape(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let node = cx.node;
    let rank = cx.rank();
    let clamp = |a: i64| (if a < 0 { a + rank } else { a }).clamp(0, rank);
    let start = clamp(node.int("start").unwrap_or(0));
    let end = clamp(node.int("end").unwrap_or(rank));
    Ok(vec![TypedShape {
        dtype: DataType::Int64,
        shape: vec![Some((end - start).max(0))],
    }])
}

fn size(_: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    Ok(vec![TypedShape {
        dtype: DataType::Int64,
        shape: vec![],
    }])
}

fn dropout(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let x = cx.x;
    Ok(vec![
        cx.same(x.shape.clone()),
        TypedShape {
            dtype: DataType::Bool,
            shape: x.shape.clone(),
        },
    ])
}

fn cast(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { node, x, .. } = *cx;
    let to = node
        .int("to")
        .ok_or_else(|| node.error("Cast without 'to'"))?;
    Ok(vec![TypedShape {
        dtype: DataType::from_onnx(to as i32),
        shape: x.shape.clone(),
    }])
}

fn reshape(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
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
    Ok(vec![cx.same(shape)])
}

fn flatten(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { node, x, .. } = *cx;
    let axis = cx.axis_of(node.int("axis").unwrap_or(1));
    let product = |dims: &[Option<i64>]| {
        dims.iter()
            .try_fold(1i64, |acc, d| d.and_then(|d| acc.checked_mul(d)))
    };
    Ok(vec![cx.same(vec![
        product(&x.shape[..axis]),
        product(&x.shape[axis..]),
    ])])
}

fn squeeze(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let axes: Vec<usize> = match axes_of(graph, node, 1)? {
        Some(axes) => axes.into_iter().map(|a| cx.axis_of(a)).collect(),
        None => (0..x.shape.len())
            .filter(|&i| x.shape[i] == Some(1))
            .collect(),
    };
    Ok(vec![
        cx.same(
            (0..x.shape.len())
                .filter(|i| !axes.contains(i))
                .map(|i| x.shape[i])
                .collect(),
        ),
    ])
}

fn unsqueeze(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let axes = axes_of(graph, node, 1)?.ok_or_else(|| node.error("Unsqueeze without axes"))?;
    let out_rank = x.shape.len() + axes.len();
    let axes: Vec<usize> = axes
        .iter()
        .map(|&a| if a < 0 { a + out_rank as i64 } else { a } as usize)
        .collect();
    let mut rest = x.shape.iter();
    Ok(vec![
        cx.same(
            (0..out_rank)
                .map(|i| {
                    if axes.contains(&i) {
                        Some(1)
                    } else {
                        rest.next().copied().flatten()
                    }
                })
                .collect(),
        ),
    ])
}

fn transpose(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { node, x, .. } = *cx;
    let perm: Vec<usize> = match node.ints("perm") {
        Some(p) => p.iter().map(|&a| a as usize).collect(),
        None => (0..x.shape.len()).rev().collect(),
    };
    Ok(vec![cx.same(perm.iter().map(|&a| x.shape[a]).collect())])
}

fn concat(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer {
        node, inputs, x, ..
    } = *cx;
    let axis = cx.axis_of(
        node.int("axis")
            .ok_or_else(|| node.error("Concat without axis"))?,
    );
    let mut shape = x.shape.clone();
    for i in 1..inputs.len() {
        let other = cx.input(i)?.shape.get(axis).copied().flatten();
        shape[axis] = shape[axis].zip(other).and_then(|(a, b)| a.checked_add(b));
    }
    Ok(vec![cx.same(shape)])
}

fn pad(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let pads = constant_ints(graph, &node.inputs[1])
        .ok_or_else(|| node.error("pads must be a constant"))?;
    let r = x.shape.len();
    if pads.len() != 2 * r {
        return Err(node.error(format!("{} pads for rank {r}", pads.len())));
    }
    Ok(vec![
        cx.same(
            x.shape
                .iter()
                .enumerate()
                .map(|(i, d)| d.and_then(|d| d.checked_add(pads[i])?.checked_add(pads[i + r])))
                .collect(),
        ),
    ])
}

fn slice(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let spec = slice_spec(graph, node, x.shape.len())?;
    let mut shape = x.shape.clone();
    for (axis, start, end, step) in spec {
        shape[axis] = shape[axis].map(|n| slice_len(n, start, end, step));
    }
    Ok(vec![cx.same(shape)])
}

fn split(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let axis = cx.axis_of(node.int("axis").unwrap_or(0));
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
    Ok(sizes
        .into_iter()
        .map(|size| {
            let mut shape = x.shape.clone();
            shape[axis] = size;
            cx.same(shape)
        })
        .collect())
}

fn gather(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { node, x, .. } = *cx;
    let indices = &cx.input(1)?.shape;
    let axis = cx.axis_of(node.int("axis").unwrap_or(0));
    let mut shape = x.shape[..axis].to_vec();
    shape.extend(indices.iter().copied());
    shape.extend(x.shape[axis + 1..].iter().copied());
    Ok(vec![cx.same(shape)])
}

fn expand(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let target: Shape = constant_ints(graph, &node.inputs[1])
        .ok_or_else(|| node.error("target shape must be a constant"))?
        .into_iter()
        .map(Some)
        .collect();
    Ok(vec![cx.same(broadcast(&x.shape, &target).ok_or_else(
        || node.error(format!("{:?} does not expand to {target:?}", x.shape)),
    )?)])
}

fn range(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let scalar = |i: usize| constant_scalar(graph, &node.inputs[i]);
    let len = match (scalar(0), scalar(1), scalar(2)) {
        (Some(start), Some(limit), Some(delta)) => Some(
            range_len(x.dtype, start, limit, delta)
                .ok_or_else(|| node.error("delta is 0: the range never ends"))?,
        ),
        // Computed at run time: a length known only then.
        _ => None,
    };
    Ok(vec![cx.same(vec![len])])
}

/// The number of elements `Range(start, limit, delta)` produces, computed as ONNX Runtime
/// does (`limit - start` in the element type, then divided in double); `None` when delta is 0.
fn range_len(dtype: DataType, start: f64, limit: f64, delta: f64) -> Option<i64> {
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

fn fold_shape(f: &Folding) -> Option<Vec<Value>> {
    let node = f.node;
    let shape = &f.shapes.get(&node.inputs[0])?.shape;
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

fn fold_size(f: &Folding) -> Option<Vec<Value>> {
    let shape = &f.shapes.get(&f.node.inputs[0])?.shape;
    let n: Option<i64> = shape.iter().copied().product();
    Some(vec![Value {
        dtype: DataType::Int64,
        dims: vec![],
        data: vec![n.map_or(Unknown, |n| Known(n as f64))],
    }])
}

/// Operators that keep their input's elements in order.
fn pass_through(f: &Folding) -> Option<Vec<Value>> {
    let x = f.input(0)?;
    f.same_data(x.data.clone(), x.dtype)
}

fn fold_cast(f: &Folding) -> Option<Vec<Value>> {
    let x = f.input(0)?;
    let dtype = f.out_shapes?.first()?.dtype;
    let integer = matches!(dtype, DataType::Int64 | DataType::Int32 | DataType::Int8);
    let data = x
        .data
        .iter()
        .map(|&e| match e {
            Known(v) if integer => Known(v.trunc()),
            e => e,
        })
        .collect();
    f.same_data(data, dtype)
}

fn fold_gather(f: &Folding) -> Option<Vec<Value>> {
    let (x, indices) = (f.input(0)?, f.input(1)?);
    let axis = f.node.int("axis").unwrap_or(0);
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

fn fold_concat(f: &Folding) -> Option<Vec<Value>> {
    let parts: Vec<&Value> = (0..f.node.inputs.len())
        .map(|i| f.input(i))
        .collect::<Option<_>>()?;
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

fn fold_slice(f: &Folding) -> Option<Vec<Value>> {
    let x = f.input(0)?;
    if x.dims.len() != 1 {
        return None;
    }
    let spec = slice_spec(f.graph, f.node, 1).ok()?;
    let &[(_, start, end, step)] = spec.as_slice() else {
        return None;
    };
    let n = x.data.len() as i64;
    let first = slice_start(n, start, step);
    let len = slice_len(n, start, end, step);
    let data: Vec<Element> = (0..len)
        .map(|k| x.data[(first + k * step) as usize])
        .collect();
    Some(vec![Value {
        dtype: x.dtype,
        dims: vec![len],
        data,
    }])
}

fn fold_constant_of_shape(f: &Folding) -> Option<Vec<Value>> {
    let dims: Vec<i64> = f.input(0)?.known()?.iter().map(|&d| d as i64).collect();
    let n = dims.iter().product::<i64>() as usize;
    if n > SMALL {
        return None;
    }
    let fill = match f.node.attr("value") {
        Some(Attr::Tensor(t)) => value_of(t)?,
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

fn fold_range(f: &Folding) -> Option<Vec<Value>> {
    let scalar = |i: usize| {
        f.input(i)
            .and_then(|v| v.known())
            .and_then(|v| v.first().copied())
    };
    let (start, limit, delta) = (scalar(0)?, scalar(1)?, scalar(2)?);
    let n = usize::try_from(range_len(f.input(0)?.dtype, start, limit, delta)?).ok()?;
    if n > SMALL {
        return None;
    }
    Some(vec![Value {
        dtype: f.input(0)?.dtype,
        dims: vec![n as i64],
        data: (0..n).map(|k| Known(start + k as f64 * delta)).collect(),
    }])
}

/// Reshape's 0 copies the input's dimension: the batch, exactly.
fn reshape_batch_target(r: &mut Rewire) -> Option<()> {
    if r.node.int("allowzero") == Some(1) {
        return None;
    }
    let (rest, _) = r.batch_target(1)?;
    r.set_input(1, Tensor::i64s(&[&[0], &rest[..]].concat()));
    Some(())
}

/// Expand's 1 keeps the input's dimension.
fn expand_batch_target(r: &mut Rewire) -> Option<()> {
    let Some((rest, _)) = r.batch_target(1) else {
        return expand_to_the_batch(r);
    };
    r.set_input(1, Tensor::i64s(&[&[1], &rest[..]].concat()));
    Some(())
}

/// A tensor without the batch expanded to the batch followed by known sizes: a transformer's
/// `class_token.expand(n, -1, -1)`. Shape inference needs a constant target, so the node
/// becomes `Expand(x, [1, sizes…]) + zeros`, the zeros `[N, 1, …]` made by ConstantOfShape
/// of the Shape of a slice of the image input (a form inference follows). Float only.
fn expand_to_the_batch(r: &mut Rewire) -> Option<()> {
    let rest = r.sizes_after_batch(1)?;
    let x = r.input(0)?;
    if x.dtype != DataType::Float || x.shape.first() != Some(&Some(1)) {
        return None;
    }
    let image = r.graph.inputs.first()?;
    let image_rank = image.dims().filter(|d| d.first() == Some(&None))?.len();
    if image_rank < 2 {
        return None;
    }
    let (image, node) = (image.name.clone(), r.node.clone());
    let stem = format!("{}/to_batch", node.name);
    let mut constant = |suffix: &str, values: Vec<i64>| {
        let name = format!("{stem}/{suffix}");
        r.graph
            .initializers
            .insert(name.clone(), Tensor::i64s(&values));
        name
    };
    let corner = [
        constant("starts", vec![0; image_rank - 1]),
        constant("ends", vec![1; image_rank - 1]),
        constant("axes", (1..image_rank as i64).collect()),
    ];
    let ones = constant("ones", [&[0], &vec![1; rest.len()][..]].concat());
    let target = constant("target", [&[1], &rest[..]].concat());
    let made = |op: &str, inputs: Vec<String>, output: String| Node {
        name: format!("{stem}/{op}"),
        op: op.into(),
        domain: String::new(),
        inputs,
        outputs: vec![output],
        attrs: Default::default(),
    };
    let value = |what: &str| format!("{stem}/{what}");
    r.replacement = vec![
        made(
            "Slice",
            [&[image][..], &corner[..]].concat(),
            value("corner"),
        ),
        made("Reshape", vec![value("corner"), ones], value("batch")),
        made("Shape", vec![value("batch")], value("batch_shape")),
        made(
            "ConstantOfShape",
            vec![value("batch_shape")],
            value("zeros"),
        ),
        made(
            "Expand",
            vec![node.inputs[0].clone(), target],
            value("expanded"),
        ),
        made(
            "Add",
            vec![value("expanded"), value("zeros")],
            node.outputs[0].clone(),
        ),
    ];
    Some(())
}

/// Axes as an input from opset 13 (Squeeze and Unsqueeze).
fn convert_squeeze(graph: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    if from < 13 {
        attr_to_input(graph, &mut node, "axes", 1);
    }
    Ok(vec![node])
}

/// Split sizes as an input from opset 13; opset 17's Split divides the axis equally among
/// its outputs, as opset 18's num_outputs does when the axis divides evenly (shape
/// inference refuses an uneven one).
fn convert_split(graph: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    if from < 13 {
        attr_to_input(graph, &mut node, "split", 1);
    } else if from >= 18 {
        node.attrs.remove("num_outputs");
    }
    Ok(vec![node])
}

/// Pads (and the fill value) as inputs from opset 11; opset 18's axes input has no opset-17
/// form.
fn convert_pad(graph: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    if from < 11 {
        let pads = match node
            .attrs
            .remove("pads")
            .or_else(|| node.attrs.remove("paddings"))
        {
            Some(Attr::Ints(p)) => p,
            _ => return Err(node.error("Pad without pads")),
        };
        let value = match node.attrs.remove("value") {
            Some(Attr::Float(v)) => v,
            _ => 0.0,
        };
        let pads = add_constant(graph, &node, "pads", Tensor::i64s(&pads));
        set_input(&mut node, 1, pads);
        if value != 0.0 {
            let value = add_constant(graph, &node, "value", Tensor::scalar(value));
            set_input(&mut node, 2, value);
        }
    } else if from >= 18 && node.inputs.get(3).is_some_and(|s| !s.is_empty()) {
        return Err(node.error("Pad with an axes input: re-export with opset 17"));
    }
    Ok(vec![node])
}

/// Starts, ends and axes as inputs from opset 10.
fn convert_slice(graph: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    if from < 10 {
        attr_to_input(graph, &mut node, "starts", 1);
        attr_to_input(graph, &mut node, "ends", 2);
        attr_to_input(graph, &mut node, "axes", 3);
    }
    Ok(vec![node])
}

/// An inference graph's Dropout passes its input through.
fn convert_dropout(_: &mut Graph, mut node: Node, _: i64) -> Result<Vec<Node>, OnnxError> {
    node.op = "Identity".into();
    node.attrs.clear();
    node.inputs.truncate(1);
    node.outputs.truncate(1);
    Ok(vec![node])
}

/// Opset 19's `saturate` concerns float8 types only.
fn convert_cast(_: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    if from >= 19 {
        node.attrs.remove("saturate");
    }
    Ok(vec![node])
}

#[cfg(test)]
mod tests {
    use crate::OnnxError;
    use crate::ir::{DataType, Dim};
    use crate::ops::testing::{folded, one_node};
    use crate::shapes::infer;
    use crate::{GraphBuilder, Tensor};

    #[test]
    fn scattering_keeps_the_data_shape_over_a_dynamic_batch() {
        let mut b = GraphBuilder::new("g");
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

    /// A channel shuffle exported at 28×28 (`[0, 2, 58, 28, 28]`: the batch copied, the
    /// rest fixed) fits a 28×28 map and not a 13×13 one, and inference says so by name.
    #[test]
    fn a_reshape_whose_element_count_differs_is_an_error() {
        let graph = |side: i64, target: &[i64]| {
            let mut b = GraphBuilder::new("g");
            let mut dims = vec![Dim::Symbolic("N".into())];
            dims.extend([116, side, side].iter().map(|&d| Dim::Fixed(d)));
            let x = b.input("x", DataType::Float, dims);
            let t = b.param("t", Tensor::i64s(target));
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

    /// Range's length is known when its three scalars are constants (as ONNX Runtime computes
    /// it: max(ceil((limit − start) / delta), 0)) and is a run-time dimension otherwise.
    #[test]
    fn range_length_is_known_from_constants() {
        let range = |start: Tensor, limit: Tensor, delta: Tensor| {
            let mut b = GraphBuilder::new("g");
            let (s, l, d) = (
                b.param("s", start),
                b.param("l", limit),
                b.param("d", delta),
            );
            let y = b.op("Range", &[&s, &l, &d], vec![]);
            b.output(&y, DataType::Float, vec![]);
            infer(&b.finish()).map(|s| s[&y].clone())
        };
        let i = |v: i64| Tensor::i64(&[], vec![v]);
        let f = |v: f32| Tensor::f32(&[], vec![v]);
        let y = range(i(0), i(7), i(1)).unwrap();
        assert_eq!((y.dtype, y.shape), (DataType::Int64, vec![Some(7)]));
        assert_eq!(range(i(0), i(7), i(2)).unwrap().shape, [Some(4)]);
        assert_eq!(range(i(10), i(4), i(-3)).unwrap().shape, [Some(2)]);
        assert_eq!(range(i(5), i(1), i(1)).unwrap().shape, [Some(0)]);
        let y = range(f(0.0), f(1.0), f(0.25)).unwrap();
        assert_eq!((y.dtype, y.shape), (DataType::Float, vec![Some(4)]));
        let err = range(i(0), i(3), i(0)).unwrap_err().to_string();
        assert!(err.contains("Range") && err.contains("delta is 0"), "{err}");
        let err = range(i(0), Tensor::i64s(&[3, 4]), i(1))
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
