//! Data movement. Reshape/Flatten/Squeeze/Unsqueeze: the gradient takes the input's shape
//! back; Transpose: the inverse permutation; Concat: a slice per input; Pad (constant
//! mode): the un-padded slice; Identity/Dropout (inference): pass through; Cast between
//! float types: pass through.

use ortl_onnx::Tensor;

use crate::AutodiffError;
use crate::emit::{reshape_like, transpose as emit_transpose};
use crate::grad::Ctx;

type Grads = Result<Vec<Option<String>>, AutodiffError>;

fn g0(ctx: &Ctx, grads: &[Option<String>]) -> Result<String, AutodiffError> {
    grads[0]
        .clone()
        .ok_or_else(|| ctx.error("no gradient for the output"))
}

fn first_only(ctx: &Ctx, grad: String) -> Vec<Option<String>> {
    let mut out = vec![Some(grad)];
    out.resize(ctx.node.inputs.len(), None);
    out
}

pub fn identity(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    Ok(first_only(ctx, g))
}

pub fn cast(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let from = ctx.shapes.get(ctx.input(0)).map(|t| t.dtype);
    if from != Some(ortl_onnx::DataType::Float) {
        return Err(ctx.error("gradients flow only through float-to-float casts"));
    }
    Ok(vec![Some(g)])
}

pub fn reshape(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let x = ctx.input(0).to_string();
    let dx = reshape_like(ctx.b, &g, &x);
    Ok(first_only(ctx, dx))
}

pub fn transpose(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let rank = ctx.shape(ctx.input(0))?.len();
    let perm: Vec<i64> = ctx
        .node
        .ints("perm")
        .map_or_else(|| (0..rank as i64).rev().collect(), <[i64]>::to_vec);
    let mut inverse = vec![0i64; rank];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p as usize] = i as i64;
    }
    Ok(vec![Some(emit_transpose(ctx.b, &g, &inverse))])
}

pub fn concat(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let rank = ctx.shape(ctx.input(0))?.len() as i64;
    let axis = ctx.node.int("axis").unwrap_or(0);
    let axis = if axis < 0 { axis + rank } else { axis };
    let mut start = 0i64;
    let mut out = Vec::new();
    for i in 0..ctx.node.inputs.len() {
        let size = ctx.shape(ctx.input(i))?[axis as usize]
            .ok_or_else(|| ctx.error("Concat along a dynamic axis"))?;
        out.push(if ctx.needs[i] {
            let starts = ctx.b.constant(Tensor::i64s(&[start]));
            let ends = ctx.b.constant(Tensor::i64s(&[start + size]));
            let axes = ctx.b.constant(Tensor::i64s(&[axis]));
            Some(ctx.b.op("Slice", &[&g, &starts, &ends, &axes], vec![]))
        } else {
            None
        });
        start += size;
    }
    Ok(out)
}

pub fn pad(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let mode = match ctx.node.attr("mode") {
        Some(ortl_onnx::Attr::String(m)) => m.clone(),
        _ => "constant".into(),
    };
    if mode != "constant" {
        return Err(ctx.error(format!("gradient of Pad mode '{mode}' is not supported")));
    }
    let pads = ctx
        .b
        .graph()
        .initializers
        .get(ctx.input(1))
        .and_then(|t| t.as_i64().map(<[i64]>::to_vec))
        .ok_or_else(|| ctx.error("pads must be a constant"))?;
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
    let dx = ctx.b.op("Slice", &[&g, &starts, &ends], vec![]);
    Ok(first_only(ctx, dx))
}
