//! Broadcasting arithmetic. https://onnx.ai/onnx/operators/onnx__Add.html (Sub, Mul, Div, Neg,
//! Sum alike). Each operand's gradient is summed back to its own shape (un-broadcast).
//! d(a+b) = (g, g); d(a−b) = (g, −g); d(a·b) = (g·b, g·a); d(a/b) = (g/b, −g·y/b).
//! https://onnx.ai/onnx/operators/onnx__Where.html: Where(c, a, b) passes g to `a` where c
//! holds and to `b` elsewhere (the boolean condition takes none).
//! https://onnx.ai/onnx/operators/onnx__Max.html (Min alike): g goes to the operand equal to
//! the output, the first one where several tie.

use ortl_onnx::GraphBuilder;

use crate::AutodiffError;
use crate::emit::{scalar, unbroadcast};
use crate::grad::{Ctx, Grads};

/// The gradient of operand `i`, if it needs one: `local` emits it at the output's shape,
/// then it is summed back to the operand's shape.
fn back(
    ctx: &mut Ctx,
    i: usize,
    local: impl FnOnce(&mut GraphBuilder) -> String,
) -> Result<Option<String>, AutodiffError> {
    ctx.if_needed(i, |ctx| {
        let grad = local(ctx.b);
        let out_shape = ctx.shape(ctx.output(0))?.clone();
        let in_shape = ctx.shape(ctx.input(i))?.clone();
        Ok(unbroadcast(ctx.b, &grad, &out_shape, &in_shape))
    })
}

pub fn add(ctx: &mut Ctx) -> Grads {
    sum(ctx)
}

pub fn sum(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    (0..ctx.node.inputs.len())
        .map(|i| back(ctx, i, |_| g.clone()))
        .collect()
}

pub fn sub(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    Ok(vec![
        back(ctx, 0, |_| g.clone())?,
        back(ctx, 1, |b| b.neg(&g))?,
    ])
}

pub fn neg(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    Ok(vec![Some(ctx.b.neg(&g))])
}

pub fn mul(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let (a, b_in) = (ctx.input(0).to_string(), ctx.input(1).to_string());
    Ok(vec![
        back(ctx, 0, |b| b.mul(&g, &b_in))?,
        back(ctx, 1, |b| b.mul(&g, &a))?,
    ])
}

pub fn div(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let (b_in, y) = (ctx.input(1).to_string(), ctx.output(0).to_string());
    let da = back(ctx, 0, |b| b.div(&g, &b_in))?;
    let db = back(ctx, 1, |b| {
        let gy = b.mul(&g, &y);
        let q = b.div(&gy, &b_in);
        b.neg(&q)
    })?;
    Ok(vec![da, db])
}

pub fn where_(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let condition = ctx.input(0).to_string();
    let zero = scalar(ctx.b, 0.0);
    Ok(vec![
        None,
        back(ctx, 1, |b| b.where_(&condition, &g, &zero))?,
        back(ctx, 2, |b| b.where_(&condition, &zero, &g))?,
    ])
}

/// Max and Min.
pub fn extremum(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let y = ctx.output(0).to_string();
    let zero = scalar(ctx.b, 0.0);
    let operands = ctx.node.inputs.clone();
    // Which output elements an earlier operand already gave.
    let mut given: Option<String> = None;
    let mut grads = Vec::with_capacity(operands.len());
    for (i, x) in operands.iter().enumerate() {
        let equal = ctx.b.equal(x, &y);
        let first = match &given {
            Some(given) => {
                let fresh = ctx.b.not(given);
                ctx.b.and(&equal, &fresh)
            }
            None => equal.clone(),
        };
        grads.push(back(ctx, i, |b| b.where_(&first, &g, &zero))?);
        if i + 1 < operands.len() {
            given = Some(match given {
                Some(given) => ctx.b.or(&given, &equal),
                None => equal,
            });
        }
    }
    Ok(grads)
}

use super::Gradient::{self, Missing, Rule};

/// Every operator of the family (`ortl_onnx::ops::elementwise` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] = &[
    ("Add", Rule(add)),
    ("Sub", Rule(sub)),
    ("Mul", Rule(mul)),
    ("Div", Rule(div)),
    ("Neg", Rule(neg)),
    ("Sum", Rule(sum)),
    // Exports compute integer shape arithmetic with Mod (Swin's window padding), never a
    // value on the way to the loss.
    ("Mod", Missing),
    ("Mean", Missing),
    ("Max", Rule(extremum)),
    ("Min", Rule(extremum)),
    ("Reciprocal", Missing),
    ("Where", Rule(where_)),
    // Rounding: steps, flat almost everywhere.
    ("Floor", Gradient::None),
    ("Ceil", Gradient::None),
    ("Round", Gradient::None),
    ("Sign", Gradient::None),
    // Comparisons and logic: boolean outputs.
    ("Equal", Gradient::None),
    ("Less", Gradient::None),
    ("Greater", Gradient::None),
    ("LessOrEqual", Gradient::None),
    ("GreaterOrEqual", Gradient::None),
    ("And", Gradient::None),
    ("Or", Gradient::None),
    ("Not", Gradient::None),
];
