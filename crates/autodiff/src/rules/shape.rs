//! Data movement. Reshape/Flatten/Squeeze/Unsqueeze: the gradient takes the input's shape
//! back; Transpose: the inverse permutation; Concat: a slice per input; Split: the
//! concatenation (zeros for unused parts); Slice (step 1): zero-padded back to the input;
//! Pad (constant mode): the un-padded slice, (edge and reflect modes) see `resample`;
//! Gather with constant indices: scattered back by a one-hot matrix; Expand: summed back
//! over the broadcast axes; Identity/Dropout (inference): pass through; Cast between
//! float types: pass through.

use ortl_onnx::Tensor;

use crate::emit::{expand_like, reshape_like, scalar, unbroadcast};
use crate::grad::{Ctx, Grads};

/// The gradient of input 0; the other inputs (shapes, pads, axes) get none.
pub(crate) fn first_only(ctx: &Ctx, grad: String) -> Vec<Option<String>> {
    let mut out = vec![Some(grad)];
    out.resize(ctx.node.inputs.len(), None);
    out
}

pub fn identity(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    Ok(first_only(ctx, g))
}

pub fn cast(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let from = ctx.shapes.get(ctx.input(0)).map(|t| t.dtype);
    if from != Some(ortl_onnx::DataType::Float) {
        return Err(ctx.error("gradients flow only through float-to-float casts"));
    }
    Ok(vec![Some(g)])
}

pub fn reshape(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let dx = reshape_like(ctx.b, &g, &x);
    Ok(first_only(ctx, dx))
}

pub fn transpose(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let rank = ctx.shape(ctx.input(0))?.len();
    let perm: Vec<i64> = ctx
        .node
        .ints("perm")
        .map_or_else(|| (0..rank as i64).rev().collect(), <[i64]>::to_vec);
    let mut inverse = vec![0i64; rank];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p as usize] = i as i64;
    }
    Ok(vec![Some(ctx.b.transpose(&g, &inverse))])
}

pub fn concat(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let rank = ctx.shape(ctx.input(0))?.len() as i64;
    let axis = ctx.node.int("axis").unwrap_or(0);
    let axis = if axis < 0 { axis + rank } else { axis };
    let mut start = 0i64;
    let mut out = Vec::new();
    for i in 0..ctx.node.inputs.len() {
        let size = ctx.shape(ctx.input(i))?[axis as usize]
            .ok_or_else(|| ctx.error("Concat along a dynamic axis"))?;
        out.push(ctx.if_needed(i, |ctx| {
            let starts = ctx.b.constant(Tensor::i64s(&[start]));
            let ends = ctx.b.constant(Tensor::i64s(&[start + size]));
            let axes = ctx.b.constant(Tensor::i64s(&[axis]));
            Ok(ctx.b.slice(&g, &starts, &ends, Some(&axes), None))
        })?);
        start += size;
    }
    Ok(out)
}

pub fn pad(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let mode = match ctx.node.attr("mode") {
        Some(ortl_onnx::Attr::String(m)) => m.clone(),
        _ => "constant".into(),
    };
    let pads = ctx
        .b
        .graph()
        .initializers
        .get(ctx.input(1))
        .and_then(|t| t.as_i64().map(<[i64]>::to_vec))
        .ok_or_else(|| ctx.error("pads must be a constant"))?;
    if mode != "constant" {
        return crate::rules::resample::pad(ctx, g, &mode, &pads);
    }
    let rank = pads.len() / 2;
    let out_shape = ctx.dims(ctx.output(0))?;
    let starts: Vec<i64> = pads[..rank].to_vec();
    let ends: Vec<i64> = (0..rank)
        .map(|i| {
            if out_shape[i] < 0 {
                i64::MAX
            } else {
                out_shape[i] - pads[rank + i]
            }
        })
        .collect();
    let (starts, ends) = (
        ctx.b.constant(Tensor::i64s(&starts)),
        ctx.b.constant(Tensor::i64s(&ends)),
    );
    let dx = ctx.b.slice(&g, &starts, &ends, None, None);
    Ok(first_only(ctx, dx))
}

pub fn expand(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let out = ctx.shape(ctx.output(0))?.clone();
    let of_x = ctx.shape(ctx.input(0))?.clone();
    let dx = unbroadcast(ctx.b, &g, &out, &of_x);
    Ok(first_only(ctx, dx))
}

pub fn split(ctx: &mut Ctx) -> Grads {
    let rank = ctx.shape(ctx.input(0))?.len() as i64;
    let axis = ctx.node.int("axis").unwrap_or(0);
    let axis = if axis < 0 { axis + rank } else { axis };
    let parts: Vec<String> = (0..ctx.node.outputs.len())
        .map(|i| match &ctx.output_grads[i] {
            Some(g) => g.clone(),
            None => {
                let zero = scalar(ctx.b, 0.0);
                let output = ctx.output(i).to_string();
                expand_like(ctx.b, &zero, &output)
            }
        })
        .collect();
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let dx = ctx.b.concat(&refs, axis);
    Ok(first_only(ctx, dx))
}

/// Slice: the gradient is zero-padded back to the input's extent. Along an axis with a
/// positive step s (Swin's patch merging, `x[:, 0::2, 1::2]`) each element first gets s − 1
/// zeros after it (unsqueezed, padded, merged back), the trailing ones cut.
pub fn slice(ctx: &mut Ctx) -> Grads {
    let mut g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let dims = ctx.dims(&x)?;
    let mut out = ctx.dims(ctx.output(0))?;
    let rank = dims.len();
    let spec = ortl_onnx::shapes::slice_spec(ctx.b.graph(), ctx.node, rank)
        .map_err(|e| ctx.error(e.to_string()))?;
    let mut pads = vec![0i64; 2 * rank];
    for (axis, start, end, step) in spec {
        if step < 1 {
            return Err(ctx.error("gradient of a Slice with a negative step"));
        }
        let n = dims[axis];
        if n < 0 {
            return Err(ctx.error("Slice along the batch axis"));
        }
        let first = ortl_onnx::shapes::slice_start(n, start, step);
        let len = ortl_onnx::shapes::slice_len(n, start, end, step);
        let mut spanned = len;
        if step > 1 && len > 0 {
            let after = ctx.b.constant(Tensor::i64s(&[axis as i64 + 1]));
            let spaced = ctx.b.unsqueeze(&g, &after);
            let mut gaps = vec![0i64; 2 * (rank + 1)];
            gaps[rank + 1 + axis + 1] = step - 1;
            let gaps = ctx.b.constant(Tensor::i64s(&gaps));
            let spaced = ctx.b.pad(&spaced, &gaps);
            out[axis] = len * step;
            let merged = crate::emit::reshape(ctx.b, &spaced, &out);
            spanned = (len - 1) * step + 1;
            let (zero, end, axes) = (
                ctx.b.constant(Tensor::i64s(&[0])),
                ctx.b.constant(Tensor::i64s(&[spanned])),
                ctx.b.constant(Tensor::i64s(&[axis as i64])),
            );
            g = ctx.b.slice(&merged, &zero, &end, Some(&axes), None);
            out[axis] = spanned;
        }
        pads[axis] = first;
        pads[rank + axis] = n - first - spanned;
    }
    let pads = ctx.b.constant(Tensor::i64s(&pads));
    let dx = ctx.b.pad(&g, &pads);
    Ok(first_only(ctx, dx))
}

/// Gather of a differentiated tensor at constant indices (a scalar or a list).
pub fn gather(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let dims = ctx.dims(&x)?;
    let rank = dims.len() as i64;
    let axis = ctx.node.int("axis").unwrap_or(0);
    let axis = if axis < 0 { axis + rank } else { axis };
    let n = dims[axis as usize];
    let indices = ctx
        .b
        .graph()
        .initializers
        .get(ctx.input(1))
        .and_then(|t| match &t.data {
            ortl_onnx::TensorData::I64(v) => Some((t.dims.len(), v.clone())),
            ortl_onnx::TensorData::I32(v) => {
                Some((t.dims.len(), v.iter().map(|&i| i64::from(i)).collect()))
            }
            _ => None,
        })
        .ok_or_else(|| ctx.error("gradient of a Gather needs constant indices"))?;
    if n < 0 {
        return Err(ctx.error("Gather along the batch axis"));
    }
    let (indices_rank, indices) = indices;
    let index = |i: i64| if i < 0 { i + n } else { i };
    let dx = match indices_rank {
        0 => {
            let k = index(indices[0]);
            let axes = ctx.b.constant(Tensor::i64s(&[axis]));
            let unsqueezed = ctx.b.unsqueeze(&g, &axes);
            let mut pads = vec![0i64; 2 * rank as usize];
            pads[axis as usize] = k;
            pads[(rank + axis) as usize] = n - 1 - k;
            let pads = ctx.b.constant(Tensor::i64s(&pads));
            ctx.b.pad(&unsqueezed, &pads)
        }
        1 => {
            let len = indices.len();
            let mut one_hot = vec![0f32; len * n as usize];
            for (j, &i) in indices.iter().enumerate() {
                one_hot[j * n as usize + index(i) as usize] = 1.0;
            }
            let s = ctx.b.constant(Tensor::f32(&[len as i64, n], one_hot));
            // Move the gathered axis last, multiply by the one-hot matrix, move it back.
            let mut perm: Vec<i64> = (0..rank).filter(|&a| a != axis).collect();
            perm.push(axis);
            let moved = ctx.b.transpose(&g, &perm);
            let spread = ctx.b.matmul(&moved, &s);
            let mut inverse = vec![0i64; rank as usize];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p as usize] = i as i64;
            }
            ctx.b.transpose(&spread, &inverse)
        }
        _ => return Err(ctx.error("gradient of a Gather with indices of rank above 1")),
    };
    Ok(first_only(ctx, dx))
}

use super::Gradient::{self, Missing, Rule};

/// Every operator of the family (`ortl_onnx::ops::shape` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] = &[
    ("Identity", Rule(identity)),
    ("Dropout", Rule(identity)),
    ("Cast", Rule(cast)),
    ("Reshape", Rule(reshape)),
    ("Flatten", Rule(reshape)),
    ("Squeeze", Rule(reshape)),
    ("Unsqueeze", Rule(reshape)),
    ("Transpose", Rule(transpose)),
    ("Concat", Rule(concat)),
    ("Pad", Rule(pad)),
    ("Slice", Rule(slice)),
    ("Split", Rule(split)),
    ("Gather", Rule(gather)),
    ("Expand", Rule(expand)),
    ("Range", Missing),
    ("ScatterElements", Missing),
    ("ScatterND", Missing),
    // A constant has no inputs to differentiate.
    ("Constant", Gradient::None),
    // Shapes and positions: integers read off their input, not its values (NonZero is unknown
    // to shape inference yet).
    ("Shape", Gradient::None),
    ("Size", Gradient::None),
    ("ConstantOfShape", Gradient::None),
    ("NonZero", Gradient::None),
];
