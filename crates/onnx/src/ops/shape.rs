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
        .folded_shape(filled_to_a_batch_shape)
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
        .shape(transpose)
        .fold(fold_transpose),
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
        .fold(fold_expand)
        .rewire(expand_batch_target),
    OpDef::new("Range")
        .since(11)
        .inputs(3)
        .check(check_range)
        .shape(range)
        .fold(fold_range),
    // Data scattered into: its shape (a MaxPool's gradient).
    OpDef::new("ScatterElements").since(11).shape(same_shape),
    OpDef::new("ScatterND")
        .since(11)
        .shape(same_shape)
        .fold(fold_scatter_nd),
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
    Ok(vec![TypedShape::new(
        fill_dtype(node),
        dims.into_iter().map(Some).collect(),
    )])
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
        ..like.clone()
    })
}

fn reshape_like(
    graph: &Graph,
    node: &Node,
    known: &HashMap<String, TypedShape>,
) -> Option<TypedShape> {
    let like = shape_input_like(graph, node, 1, known)?;
    Some(TypedShape {
        dtype: known.get(&node.inputs[0])?.dtype,
        ..like.clone()
    })
}

fn expand_like(
    graph: &Graph,
    node: &Node,
    known: &HashMap<String, TypedShape>,
) -> Option<TypedShape> {
    let like = shape_input_like(graph, node, 1, known)?;
    let x = known.get(&node.inputs[0])?;
    let batch = if x.shape.contains(&None) { x } else { like };
    Some(TypedShape {
        dtype: x.dtype,
        shape: broadcast(&x.shape, &like.shape)?,
        batch_multiple: batch.batch_multiple,
    })
}

fn shape(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let node = cx.node;
    let rank = cx.rank();
    let clamp = |a: i64| (if a < 0 { a + rank } else { a }).clamp(0, rank);
    let start = clamp(node.int("start").unwrap_or(0));
    let end = clamp(node.int("end").unwrap_or(rank));
    Ok(vec![TypedShape::new(
        DataType::Int64,
        vec![Some((end - start).max(0))],
    )])
}

fn size(_: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    Ok(vec![TypedShape::new(DataType::Int64, vec![])])
}

fn dropout(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let x = cx.x;
    Ok(vec![
        cx.same(x.shape.clone()),
        TypedShape {
            dtype: DataType::Bool,
            ..cx.same(x.shape.clone())
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
        ..x.clone()
    }])
}

fn reshape(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let target = constant_ints(graph, &node.inputs[1])
        .ok_or_else(|| node.error("target shape must be a constant"))?;
    let allowzero = node.int("allowzero") == Some(1);
    let copies = |i: usize| !allowzero && target[i] == 0;
    let mut shape: Shape = target
        .iter()
        .enumerate()
        .map(|(i, &d)| match d {
            _ if copies(i) => x.shape.get(i).copied().flatten(),
            -1 => None,
            d => Some(d),
        })
        .collect();
    let fixed = |message: String| OnnxError::FixedAtExport {
        node: node.name.clone(),
        message,
    };
    let unfit = || {
        fixed(format!(
            "cannot reshape {} to {target:?}, a size fixed when the graph was exported",
            x.shown()
        ))
    };
    // Element counts as N^batch · known: the input's one unknown dimension is the batch
    // times its multiple. Several unknown dimensions cannot be checked.
    let batch_in = x.batch_axis();
    if batch_in.is_none() && x.shape.contains(&None) {
        return Ok(vec![cx.same(shape)]);
    }
    fn product(dims: impl Iterator<Item = i64>) -> Option<i64> {
        dims.into_iter().try_fold(1i64, |acc, d| acc.checked_mul(d))
    }
    let multiple = x.batch_multiple;
    let Some(held) = product(x.shape.iter().flatten().copied())
        .and_then(|known| known.checked_mul(if batch_in.is_some() { multiple } else { 1 }))
    else {
        return Ok(vec![cx.same(shape)]);
    };
    let copies_batch = batch_in.is_some_and(|axis| axis < target.len() && copies(axis));
    let inferred = target.iter().position(|&d| d == -1);
    let Some(rest) = product(
        (0..target.len())
            .filter(|&i| Some(i) != inferred && Some(i) != batch_in.filter(|_| copies_batch))
            .map(|i| shape[i].unwrap_or(1)),
    )
    .and_then(|rest| rest.checked_mul(if copies_batch { multiple } else { 1 })) else {
        return Ok(vec![cx.same(shape)]);
    };
    let mut batch_multiple = multiple;
    match inferred {
        Some(axis) if rest > 0 => {
            if held % rest != 0 {
                return Err(unfit());
            }
            if batch_in.is_some() && !copies_batch {
                // The batch goes to the -1 dimension, times what the rest leaves.
                batch_multiple = held / rest;
            } else {
                shape[axis] = Some(held / rest);
            }
        }
        Some(_) => {}
        None if batch_in.is_some() && !copies_batch => {
            return Err(fixed(format!(
                "reshapes {}, a batch of any size, to {target:?}: the export fixed the batch",
                x.shown()
            )));
        }
        None if !allowzero && rest != held => return Err(unfit()),
        None => {}
    }
    Ok(vec![TypedShape {
        dtype: x.dtype,
        shape,
        batch_multiple,
    }])
}

fn flatten(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { node, x, .. } = *cx;
    let axis = cx.axis_of(node.int("axis").unwrap_or(1));
    let product = |dims: &[Option<i64>]| {
        dims.iter()
            .try_fold(1i64, |acc, d| d.and_then(|d| acc.checked_mul(d)))
    };
    let (outer, inner) = x.shape.split_at(axis);
    let mut flat = cx.same(vec![product(outer), product(inner)]);
    // The half holding the batch holds it times the known sizes beside it.
    if let Some(batch) = x.batch_axis() {
        let half = if batch < axis { outer } else { inner };
        let beside: Option<i64> = half
            .iter()
            .flatten()
            .try_fold(1i64, |acc, &d| acc.checked_mul(d));
        flat.batch_multiple = beside
            .and_then(|b| b.checked_mul(x.batch_multiple))
            .unwrap_or(1);
    }
    Ok(vec![flat])
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
    let input = f.shapes.get(&node.inputs[0])?;
    let shape = &input.shape;
    let rank = shape.len() as i64;
    let clamp = |a: i64| (if a < 0 { a + rank } else { a }).clamp(0, rank) as usize;
    let start = clamp(node.int("start").unwrap_or(0));
    let end = clamp(node.int("end").unwrap_or(rank));
    let data: Vec<Element> = (start..end.max(start))
        .map(|i| match shape[i] {
            Some(d) => Known(d as f64),
            None if i == 0 || Some(i) == input.batch_axis() => Batch(input.batch_multiple),
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
    let rank = x.dims.len() as i64;
    let axis = f.node.int("axis").unwrap_or(0);
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis }).ok()?;
    let n = *x.dims.get(axis)?;
    let picked = indices
        .known()?
        .iter()
        .map(|&i| {
            let i = if i < 0.0 { i as i64 + n } else { i as i64 };
            (0..n).contains(&i).then_some(i)
        })
        .collect::<Option<Vec<_>>>()?;
    // [outer, picked, inner]: every index's block of the inner axes, per outer position.
    let outer: i64 = x.dims[..axis].iter().product();
    let inner: i64 = x.dims[axis + 1..].iter().product();
    let mut data = Vec::with_capacity((outer * picked.len() as i64 * inner) as usize);
    for o in 0..outer {
        for &i in &picked {
            let start = ((o * n + i) * inner) as usize;
            data.extend_from_slice(x.data.get(start..start + inner as usize)?);
        }
    }
    let dims = [&x.dims[..axis], &indices.dims[..], &x.dims[axis + 1..]].concat();
    Some(vec![Value {
        dtype: x.dtype,
        dims,
        data,
    }])
}

fn fold_concat(f: &Folding) -> Option<Vec<Value>> {
    let parts: Vec<&Value> = (0..f.node.inputs.len())
        .map(|i| f.input(i))
        .collect::<Option<_>>()?;
    let first = parts.first()?;
    let rank = first.dims.len() as i64;
    let axis = f.node.int("axis").unwrap_or(0);
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis }).ok()?;
    let outer: i64 = first.dims.get(..axis)?.iter().product();
    let mut dims = first.dims.clone();
    dims[axis] = parts
        .iter()
        .map(|p| p.dims.get(axis).copied())
        .sum::<Option<i64>>()?;
    if parts.iter().any(|p| {
        p.dims.len() != first.dims.len()
            || (0..p.dims.len()).any(|a| a != axis && p.dims[a] != first.dims[a])
    }) {
        return None;
    }
    // Each part's block for one outer position, in turn.
    let mut data = Vec::with_capacity(dims.iter().product::<i64>() as usize);
    for o in 0..outer as usize {
        for part in &parts {
            let block = part.data.len() / outer.max(1) as usize;
            data.extend_from_slice(&part.data[o * block..(o + 1) * block]);
        }
    }
    Some(vec![Value {
        dtype: first.dtype,
        dims,
        data,
    }])
}

/// Expand of a known value to a known shape: numpy broadcasting.
fn fold_expand(f: &Folding) -> Option<Vec<Value>> {
    let x = f.input(0)?;
    let dims = f.out_dims(0)?;
    let n = dims.iter().product::<i64>() as usize;
    let data = (0..n)
        .map(|k| crate::fold::broadcast_element(x, &dims, k))
        .collect::<Option<Vec<_>>>()?;
    Some(vec![Value {
        dtype: x.dtype,
        dims,
        data,
    }])
}

/// ScatterND over known values (torchvision Swin's shifted-window mask is written by slice
/// assignment: `mask[h0:h1, w0:w1] = count`).
fn fold_scatter_nd(f: &Folding) -> Option<Vec<Value>> {
    let (x, indices, updates) = (f.input(0)?, f.input(1)?, f.input(2)?);
    if f.node
        .attr("reduction")
        .is_some_and(|r| !matches!(r, crate::ir::Attr::String(s) if s == "none"))
    {
        return None;
    }
    let k = *indices.dims.last()? as usize;
    let block: i64 = x.dims.get(k..)?.iter().product();
    let mut data = x.data.clone();
    let index = indices.known()?;
    for (t, tuple) in index.chunks(k.max(1)).enumerate() {
        let mut offset = 0i64;
        for (axis, &i) in tuple.iter().enumerate() {
            let n = x.dims[axis];
            let i = if i < 0.0 { i as i64 + n } else { i as i64 };
            if !(0..n).contains(&i) {
                return None;
            }
            offset = offset * n + i;
        }
        let (to, from) = ((offset * block) as usize, t * block as usize);
        data.get_mut(to..to + block as usize)?
            .copy_from_slice(updates.data.get(from..from + block as usize)?);
    }
    Some(vec![Value {
        dtype: x.dtype,
        dims: x.dims.clone(),
        data,
    }])
}

fn fold_slice(f: &Folding) -> Option<Vec<Value>> {
    let x = f.input(0)?;
    let spec = slice_spec(f.graph, f.node, x.dims.len()).ok()?;
    let (mut first, mut step, mut dims) =
        (vec![0; x.dims.len()], vec![1; x.dims.len()], x.dims.clone());
    for (axis, start, end, stride) in spec {
        let n = x.dims[axis];
        first[axis] = slice_start(n, start, stride);
        dims[axis] = slice_len(n, start, end, stride);
        step[axis] = stride;
    }
    let data = gather_strided(
        x,
        &dims,
        |axis, k| first[axis] + k * step[axis],
        |axis| axis,
    );
    Some(vec![Value {
        dtype: x.dtype,
        dims,
        data,
    }])
}

/// Exporters transpose small shape tensors too (Swin's window padding reverses a `[4, 2]`
/// table of pads and transposes it).
fn fold_transpose(f: &Folding) -> Option<Vec<Value>> {
    let x = f.input(0)?;
    let rank = x.dims.len();
    let perm: Vec<usize> = match f.node.ints("perm") {
        Some(perm) => perm
            .iter()
            .map(|&p| usize::try_from(p).ok())
            .collect::<Option<_>>()?,
        None => (0..rank).rev().collect(),
    };
    if perm.len() != rank {
        return None;
    }
    let dims: Vec<i64> = perm.iter().map(|&p| x.dims[p]).collect();
    let data = gather_strided(x, &dims, |_, k| k, |axis| perm[axis]);
    Some(vec![Value {
        dtype: x.dtype,
        dims,
        data,
    }])
}

/// The elements of an output shaped `dims` whose index `k` along output axis `a` reads
/// index `source(a, k)` of `x` along its axis `axis_of(a)`.
fn gather_strided(
    x: &Value,
    dims: &[i64],
    source: impl Fn(usize, i64) -> i64,
    axis_of: impl Fn(usize) -> usize,
) -> Vec<Element> {
    let mut strides = vec![1i64; x.dims.len()];
    for axis in (0..x.dims.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * x.dims[axis + 1];
    }
    let total: i64 = dims.iter().product();
    (0..total)
        .map(|mut flat| {
            let mut offset = 0;
            for a in (0..dims.len()).rev() {
                let k = flat % dims[a];
                flat /= dims[a];
                offset += source(a, k) * strides[axis_of(a)];
            }
            x.data[offset as usize]
        })
        .collect()
}

/// ConstantOfShape of a shape known but for a multiple of the batch (the Shape of a tensor
/// that leads with it, as an Expand to the batch is rewritten): its output leads with it.
fn filled_to_a_batch_shape(f: &Folding) -> Option<Vec<TypedShape>> {
    let mut batch_multiple = None;
    let shape = f
        .input(0)?
        .data
        .iter()
        .map(|e| match *e {
            Batch(k) if batch_multiple.replace(k).is_none() => Some(None),
            Known(d) => Some(Some(d as i64)),
            _ => None,
        })
        .collect::<Option<Shape>>()?;
    Some(vec![TypedShape {
        dtype: fill_dtype(f.node),
        shape,
        batch_multiple: batch_multiple.unwrap_or(1),
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

/// A target known but for one multiple of the batch: 0 ("copy") where the input has that
/// multiple at the same axis, else -1 ("what is left"), exact when every other size is known.
fn reshape_batch_target(r: &mut Rewire) -> Option<()> {
    if r.node.int("allowzero") == Some(1) {
        return None;
    }
    let target = r.computed(1)?;
    let mut batch = target.iter().enumerate().filter_map(|(i, e)| {
        if let Batch(k) = e {
            Some((i, *k))
        } else {
            None
        }
    });
    let (axis, multiple) = batch.next()?;
    if batch.next().is_some() {
        return None;
    }
    let mut sizes: Vec<i64> = target
        .iter()
        .map(|e| match e {
            Known(v) => Some(*v as i64),
            Batch(_) => Some(0),
            Unknown => None,
        })
        .collect::<Option<_>>()?;
    let x = r.input(0)?;
    let copies = x.shape.get(axis) == Some(&None) && x.batch_multiple == multiple;
    if !copies {
        if let Some(inferred) = sizes.iter().position(|&d| d == -1) {
            // Two sizes left to the run (`[N·4, 196, -1]`): the -1 is what the input holds
            // over the rest, the batch's multiple included.
            x.batch_axis()?;
            let held = x
                .shape
                .iter()
                .flatten()
                .try_fold(x.batch_multiple, |acc, &d| acc.checked_mul(d))?;
            let rest = sizes
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != axis && i != inferred)
                .try_fold(multiple, |acc, (_, &d)| acc.checked_mul(d))?;
            if rest <= 0 || held % rest != 0 {
                return None;
            }
            sizes[inferred] = held / rest;
        }
        sizes[axis] = -1;
    }
    r.set_input(1, Tensor::i64s(&sizes));
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
    let made = |op: &str, inputs: Vec<String>, output: String| {
        Node::new(format!("{stem}/{op}"), op, inputs, output)
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

    /// Swin's window padding as torch exports it: a `[4, 2]` table of pads reversed along
    /// axis 0 (Slice with step -1), transposed and flattened; each step folds.
    #[test]
    fn slices_and_transposes_of_small_tables_fold() {
        let table = Tensor::i64(&[4, 2], vec![0, 0, 0, 0, 0, 3, 0, 5]);
        let (start, end, axis, step) = (
            Tensor::i64s(&[-1]),
            Tensor::i64s(&[i64::MIN]),
            Tensor::i64s(&[0]),
            Tensor::i64s(&[-1]),
        );
        let reversed = folded("Slice", &[table, start, end, axis, step], vec![]);
        assert_eq!(reversed.dims, [4, 2]);
        assert_eq!(reversed.as_i64(), Some(&[0, 5, 0, 3, 0, 0, 0, 0][..]));
        let transposed = folded(
            "Transpose",
            &[reversed],
            vec![("perm", crate::builder::ints(&[1, 0]))],
        );
        assert_eq!(transposed.dims, [2, 4]);
        assert_eq!(transposed.as_i64(), Some(&[0, 0, 0, 0, 5, 3, 0, 0][..]));
        let middle = folded(
            "Slice",
            &[
                Tensor::i64(&[2, 3], vec![1, 2, 3, 4, 5, 6]),
                Tensor::i64s(&[1]),
                Tensor::i64s(&[3]),
                Tensor::i64s(&[1]),
            ],
            vec![],
        );
        assert_eq!(middle.as_i64(), Some(&[2, 3, 5, 6][..]));
    }

    /// torchvision Swin's shifted-window mask is built from constants alone: zeros written
    /// by slice assignment (ScatterND at index tuples made by Expand and Concat of ranges),
    /// gathered; each step folds at any rank.
    #[test]
    fn the_pieces_of_a_window_mask_fold_at_any_rank() {
        let mask = folded(
            "ScatterND",
            &[
                Tensor::i64(&[3, 4], vec![0; 12]),
                Tensor::i64(&[2, 1, 2], vec![0, 3, 2, 1]),
                Tensor::i64(&[2, 1], vec![7, 9]),
            ],
            vec![],
        );
        assert_eq!(
            mask.as_i64(),
            Some(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 9, 0, 0][..])
        );
        let rows = folded(
            "ScatterND",
            &[
                Tensor::i64(&[3, 2], vec![0; 6]),
                Tensor::i64(&[1, 1], vec![-1]),
                Tensor::i64(&[1, 2], vec![5, 6]),
            ],
            vec![],
        );
        assert_eq!(rows.as_i64(), Some(&[0, 0, 0, 0, 5, 6][..]));
        let expanded = folded(
            "Expand",
            &[
                Tensor::i64(&[3, 1], vec![1, 2, 3]),
                Tensor::i64s(&[2, 3, 2]),
            ],
            vec![],
        );
        assert_eq!(expanded.dims, [2, 3, 2]);
        assert_eq!(
            expanded.as_i64(),
            Some(&[1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3][..])
        );
        let joined = folded(
            "Concat",
            &[
                Tensor::i64(&[2, 1], vec![1, 2]),
                Tensor::i64(&[2, 2], vec![3, 4, 5, 6]),
            ],
            vec![("axis", crate::Attr::Int(-1))],
        );
        assert_eq!(joined.dims, [2, 3]);
        assert_eq!(joined.as_i64(), Some(&[1, 3, 4, 2, 5, 6][..]));
        let picked = folded(
            "Gather",
            &[
                Tensor::i64(&[2, 3], vec![1, 2, 3, 4, 5, 6]),
                Tensor::i64s(&[2, -3]),
            ],
            vec![("axis", crate::Attr::Int(1))],
        );
        assert_eq!(picked.dims, [2, 2]);
        assert_eq!(picked.as_i64(), Some(&[3, 1, 6, 4][..]));
    }

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

    /// Transformers fold attention heads and windows into the batch axis and take them out
    /// again: inference keeps the unknown dimension as a multiple of the batch.
    #[test]
    fn heads_and_windows_folded_into_the_batch_are_followed() {
        let chain = |input: &[Option<i64>], targets: &[&[i64]]| {
            let mut b = GraphBuilder::new("g");
            let x = b.input("x", DataType::Float, crate::ops::testing::dims(input));
            let mut values = vec![];
            let mut y = x;
            for (i, target) in targets.iter().enumerate() {
                let t = b.param(&format!("t{i}"), Tensor::i64s(target));
                y = b.op("Reshape", &[&y, &t], vec![]);
                values.push(y.clone());
            }
            b.output(&y, DataType::Float, vec![]);
            infer(&b.finish()).map(|shapes| {
                values
                    .iter()
                    .map(|v| (shapes[v].shape.clone(), shapes[v].batch_multiple))
                    .collect::<Vec<_>>()
            })
        };
        let n = None;
        // torch.export's attention: [N, 197, 192] → [N·3, 197, 64] → [N, 3, 197, 64].
        let heads = chain(
            &[n, Some(197), Some(192)],
            &[&[-1, 197, 64], &[-1, 3, 197, 64]],
        );
        assert_eq!(
            heads.unwrap(),
            [
                (vec![n, Some(197), Some(64)], 3),
                (vec![n, Some(3), Some(197), Some(64)], 1)
            ]
        );
        // Swin's windows: [N, 56, 56, 96] → [N·64, 49, 96] → [N, 8, 8, 7, 7, 96], and the
        // window batch copied by 0 stays N·64.
        let windows = chain(
            &[n, Some(56), Some(56), Some(96)],
            &[&[-1, 49, 96], &[0, 7, 7, 96], &[-1, 8, 8, 7, 7, 96]],
        );
        assert_eq!(
            windows.unwrap(),
            [
                (vec![n, Some(49), Some(96)], 64),
                (vec![n, Some(7), Some(7), Some(96)], 64),
                (vec![n, Some(8), Some(8), Some(7), Some(7), Some(96)], 1)
            ]
        );
        // Three heads cannot be taken out as two: the message shows the multiple.
        let error = chain(
            &[n, Some(197), Some(192)],
            &[&[-1, 197, 64], &[-1, 2, 197, 64]],
        )
        .unwrap_err();
        assert!(error.to_string().contains("[N·3, 197, 64]"), "{error}");
        // A batch of fixed size from a multiple of the batch is still refused.
        let error = chain(&[n, Some(4), Some(6)], &[&[-1, 6], &[4, 6]]).unwrap_err();
        assert!(error.to_string().contains("fixed the batch"), "{error}");
    }

    #[test]
    fn flatten_keeps_what_beside_the_batch_it_takes() {
        let flat = |axis: i64| {
            one_node(
                "Flatten",
                &[(DataType::Float, &[None, Some(3), Some(4), Some(5)])],
                vec![("axis", crate::Attr::Int(axis))],
            )
            .unwrap()
        };
        assert_eq!(
            (flat(1).shape, flat(1).batch_multiple),
            (vec![None, Some(60)], 1)
        );
        assert_eq!(
            (flat(3).shape, flat(3).batch_multiple),
            (vec![None, Some(5)], 12)
        );
        assert_eq!(
            (flat(0).shape, flat(0).batch_multiple),
            (vec![Some(1), None], 60)
        );
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
