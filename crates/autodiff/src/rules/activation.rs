//! Element-wise activations. Specs: https://onnx.ai/onnx/operators/ (Relu, Sigmoid, Tanh,
//! Exp, Log, Sqrt, Abs, Clip, Softmax, LogSoftmax). Rules reuse the forward output where it
//! is cheaper: σ' = y(1−y), tanh' = 1−y², exp' = y, √' = 1/(2y); softmax along `axis`:
//! dx = y·(g − Σ g·y); log-softmax: dx = g − softmax(x)·Σ g.

use ortl_onnx::builder::int;

use crate::AutodiffError;
use crate::emit::{reduce_sum, scalar};
use crate::grad::Ctx;

type Grads = Result<Vec<Option<String>>, AutodiffError>;

fn g0(ctx: &Ctx, grads: &[Option<String>]) -> Result<String, AutodiffError> {
    grads[0]
        .clone()
        .ok_or_else(|| ctx.error("no gradient for the output"))
}

/// `g` where `x > 0`, else 0.
pub fn relu(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let y = ctx.output(0).to_string();
    let zero = scalar(ctx.b, 0.0);
    let positive = ctx.b.op("Greater", &[&y, &zero], vec![]);
    Ok(vec![Some(ctx.b.op(
        "Where",
        &[&positive, &g, &zero],
        vec![],
    ))])
}

pub fn sigmoid(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let y = ctx.output(0).to_string();
    let one = scalar(ctx.b, 1.0);
    let one_minus = ctx.b.op("Sub", &[&one, &y], vec![]);
    let slope = ctx.b.op("Mul", &[&y, &one_minus], vec![]);
    Ok(vec![Some(ctx.b.op("Mul", &[&g, &slope], vec![]))])
}

pub fn tanh(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let y = ctx.output(0).to_string();
    let one = scalar(ctx.b, 1.0);
    let y2 = ctx.b.op("Mul", &[&y, &y], vec![]);
    let slope = ctx.b.op("Sub", &[&one, &y2], vec![]);
    Ok(vec![Some(ctx.b.op("Mul", &[&g, &slope], vec![]))])
}

pub fn exp(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let y = ctx.output(0).to_string();
    Ok(vec![Some(ctx.b.op("Mul", &[&g, &y], vec![]))])
}

pub fn log(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let x = ctx.input(0).to_string();
    Ok(vec![Some(ctx.b.op("Div", &[&g, &x], vec![]))])
}

pub fn sqrt(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let y = ctx.output(0).to_string();
    let two = scalar(ctx.b, 2.0);
    let denom = ctx.b.op("Mul", &[&two, &y], vec![]);
    Ok(vec![Some(ctx.b.op("Div", &[&g, &denom], vec![]))])
}

pub fn abs(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let x = ctx.input(0).to_string();
    let sign = ctx.b.op("Sign", &[&x], vec![]);
    Ok(vec![Some(ctx.b.op("Mul", &[&g, &sign], vec![]))])
}

/// Passes `g` where `min ≤ x ≤ max` (bounds are optional inputs 1 and 2).
pub fn clip(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let x = ctx.input(0).to_string();
    let mut inside: Option<String> = None;
    for (i, op) in [(1, "GreaterOrEqual"), (2, "LessOrEqual")] {
        if let Some(bound) = ctx.node.inputs.get(i).filter(|s| !s.is_empty()).cloned() {
            let ok = ctx.b.op(op, &[&x, &bound], vec![]);
            inside = Some(match inside {
                Some(prev) => ctx.b.op("And", &[&prev, &ok], vec![]),
                None => ok,
            });
        }
    }
    let dx = match inside {
        Some(mask) => {
            let zero = scalar(ctx.b, 0.0);
            ctx.b.op("Where", &[&mask, &g, &zero], vec![])
        }
        None => g,
    };
    let mut out = vec![Some(dx)];
    out.resize(ctx.node.inputs.len(), None);
    Ok(out)
}

fn axis(ctx: &Ctx) -> Result<i64, AutodiffError> {
    let rank = ctx.shape(ctx.input(0))?.len() as i64;
    let axis = ctx.node.int("axis").unwrap_or(-1);
    Ok(if axis < 0 { axis + rank } else { axis })
}

pub fn softmax(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let y = ctx.output(0).to_string();
    let axis = axis(ctx)?;
    let gy = ctx.b.op("Mul", &[&g, &y], vec![]);
    let total = reduce_sum(ctx.b, &gy, &[axis], true);
    let centred = ctx.b.op("Sub", &[&g, &total], vec![]);
    Ok(vec![Some(ctx.b.op("Mul", &[&y, &centred], vec![]))])
}

pub fn log_softmax(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let x = ctx.input(0).to_string();
    let axis = axis(ctx)?;
    let p = ctx.b.op("Softmax", &[&x], vec![("axis", int(axis))]);
    let total = reduce_sum(ctx.b, &g, &[axis], true);
    let scaled = ctx.b.op("Mul", &[&p, &total], vec![]);
    Ok(vec![Some(ctx.b.op("Sub", &[&g, &scaled], vec![]))])
}
