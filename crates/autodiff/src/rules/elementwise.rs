//! Broadcasting arithmetic. https://onnx.ai/onnx/operators/onnx__Add.html (Sub, Mul, Div, Neg,
//! Sum alike). Each operand's gradient is summed back to its own shape (un-broadcast).
//! d(a+b) = (g, g); d(a−b) = (g, −g); d(a·b) = (g·b, g·a); d(a/b) = (g/b, −g·y/b).

use crate::AutodiffError;
use crate::emit::unbroadcast;
use crate::grad::Ctx;

type Grads = Result<Vec<Option<String>>, AutodiffError>;

fn back(ctx: &mut Ctx, i: usize, grad: String) -> Result<Option<String>, AutodiffError> {
    if !ctx.needs[i] {
        return Ok(None);
    }
    let out_shape = ctx.shape(ctx.output(0))?.clone();
    let in_shape = ctx.shape(ctx.input(i))?.clone();
    Ok(Some(unbroadcast(ctx.b, &grad, &out_shape, &in_shape)))
}

fn g0(ctx: &Ctx, grads: &[Option<String>]) -> Result<String, AutodiffError> {
    grads[0]
        .clone()
        .ok_or_else(|| ctx.error("no gradient for the output"))
}

pub fn add(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    Ok(vec![back(ctx, 0, g.clone())?, back(ctx, 1, g)?])
}

pub fn sum(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    (0..ctx.node.inputs.len())
        .map(|i| back(ctx, i, g.clone()))
        .collect()
}

pub fn sub(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let neg = if ctx.needs[1] {
        Some(ctx.b.op("Neg", &[&g], vec![]))
    } else {
        None
    };
    Ok(vec![
        back(ctx, 0, g)?,
        match neg {
            Some(n) => back(ctx, 1, n)?,
            None => None,
        },
    ])
}

pub fn neg(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    Ok(vec![Some(ctx.b.op("Neg", &[&g], vec![]))])
}

pub fn mul(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let (a, b) = (ctx.input(0).to_string(), ctx.input(1).to_string());
    let da = if ctx.needs[0] {
        Some(ctx.b.op("Mul", &[&g, &b], vec![]))
    } else {
        None
    };
    let db = if ctx.needs[1] {
        Some(ctx.b.op("Mul", &[&g, &a], vec![]))
    } else {
        None
    };
    Ok(vec![
        match da {
            Some(d) => back(ctx, 0, d)?,
            None => None,
        },
        match db {
            Some(d) => back(ctx, 1, d)?,
            None => None,
        },
    ])
}

pub fn div(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let (b_in, y) = (ctx.input(1).to_string(), ctx.output(0).to_string());
    let da = if ctx.needs[0] {
        Some(ctx.b.op("Div", &[&g, &b_in], vec![]))
    } else {
        None
    };
    let db = if ctx.needs[1] {
        let gy = ctx.b.op("Mul", &[&g, &y], vec![]);
        let q = ctx.b.op("Div", &[&gy, &b_in], vec![]);
        Some(ctx.b.op("Neg", &[&q], vec![]))
    } else {
        None
    };
    Ok(vec![
        match da {
            Some(d) => back(ctx, 0, d)?,
            None => None,
        },
        match db {
            Some(d) => back(ctx, 1, d)?,
            None => None,
        },
    ])
}
