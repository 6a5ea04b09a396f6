//! Element-wise activations. Specs: https://onnx.ai/onnx/operators/ (Relu, Sigmoid, Tanh,
//! Exp, Log, Sqrt, Abs, Clip, Softmax, LogSoftmax, HardSigmoid, HardSwish, LeakyRelu, PRelu,
//! Elu, Selu, Erf, Softplus, Pow). Rules reuse the forward output where it is cheaper:
//! σ' = y(1−y), tanh' = 1−y², exp' = y, √' = 1/(2y); softmax along `axis`:
//! dx = y·(g − Σ g·y); log-softmax: dx = g − softmax(x)·Σ g. The exporters' activations:
//! hard-sigmoid' = α inside 0 < αx+β < 1; hard-swish' = 0 below −3, 1 above 3, (2x+3)/6
//! between; leaky/parametric ReLU' = 1 or the slope (dslope = Σ g·x where x < 0);
//! elu' = 1 or y+α; selu' = γ or y+γα; erf' = 2/√π·e^(−x²); softplus' = σ(x);
//! (aᵇ)' = b·aᵇ⁻¹ for a (and y·ln a for b).

use ortl_onnx::builder::int;

use crate::AutodiffError;
use crate::emit::{reduce_sum, scalar, unbroadcast};
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
    Ok(vec![Some(keep_where(ctx, &positive, &g))])
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
        Some(mask) => keep_where(ctx, &mask, &g),
        None => g,
    };
    Ok(crate::rules::shape::first_only(ctx, dx))
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

/// `Where(mask, a, b)`.
fn select(ctx: &mut Ctx, mask: &str, a: &str, b: &str) -> String {
    ctx.b.op("Where", &[mask, a, b], vec![])
}

/// `x` where `mask`, else 0, as `x · float(mask)`: on ORT 1.31's CPU EP `Cast` and `Mul`
/// run faster than `Where`, and ReLU's gradient mask, among others, goes through here
/// (measurements: bench/RESULTS.md and the history it links).
fn keep_where(ctx: &mut Ctx, mask: &str, x: &str) -> String {
    let mask = ctx.b.op("Cast", &[mask], vec![("to", int(1))]);
    ctx.b.op("Mul", &[x, &mask], vec![])
}

pub fn hard_sigmoid(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let y = ctx.output(0).to_string();
    let alpha = scalar(ctx.b, ctx.node.float("alpha").unwrap_or(0.2));
    let (zero, one) = (scalar(ctx.b, 0.0), scalar(ctx.b, 1.0));
    let above = ctx.b.op("Greater", &[&y, &zero], vec![]);
    let below = ctx.b.op("Less", &[&y, &one], vec![]);
    let inside = ctx.b.op("And", &[&above, &below], vec![]);
    let scaled = ctx.b.op("Mul", &[&g, &alpha], vec![]);
    Ok(vec![Some(keep_where(ctx, &inside, &scaled))])
}

pub fn hard_swish(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let x = ctx.input(0).to_string();
    let (zero, one) = (scalar(ctx.b, 0.0), scalar(ctx.b, 1.0));
    let (three, minus_three) = (scalar(ctx.b, 3.0), scalar(ctx.b, -3.0));
    let (third, half) = (scalar(ctx.b, 1.0 / 3.0), scalar(ctx.b, 0.5));
    let ramp = ctx.b.op("Mul", &[&x, &third], vec![]);
    let ramp = ctx.b.op("Add", &[&ramp, &half], vec![]);
    let high = ctx.b.op("Greater", &[&x, &three], vec![]);
    let low = ctx.b.op("Less", &[&x, &minus_three], vec![]);
    let slope = select(ctx, &high, &one, &ramp);
    let slope = select(ctx, &low, &zero, &slope);
    Ok(vec![Some(ctx.b.op("Mul", &[&g, &slope], vec![]))])
}

pub fn leaky_relu(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let x = ctx.input(0).to_string();
    let alpha = scalar(ctx.b, ctx.node.float("alpha").unwrap_or(0.01));
    let zero = scalar(ctx.b, 0.0);
    let positive = ctx.b.op("Greater", &[&x, &zero], vec![]);
    let scaled = ctx.b.op("Mul", &[&g, &alpha], vec![]);
    Ok(vec![Some(select(ctx, &positive, &g, &scaled))])
}

/// PRelu: y = x for x ≥ 0, slope·x below, with a slope that broadcasts (often [C,1,1])
/// and trains.
pub fn prelu(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let (x, slope) = (ctx.input(0).to_string(), ctx.input(1).to_string());
    let zero = scalar(ctx.b, 0.0);
    let negative = ctx.b.op("Less", &[&x, &zero], vec![]);
    let dx = if ctx.needs[0] {
        let scaled = ctx.b.op("Mul", &[&g, &slope], vec![]);
        Some(select(ctx, &negative, &scaled, &g))
    } else {
        None
    };
    let dslope = if ctx.needs[1] {
        let gx = ctx.b.op("Mul", &[&g, &x], vec![]);
        let masked = keep_where(ctx, &negative, &gx);
        let (out, of_slope) = (
            ctx.shape(ctx.output(0))?.clone(),
            ctx.shape(&slope)?.clone(),
        );
        Some(unbroadcast(ctx.b, &masked, &out, &of_slope))
    } else {
        None
    };
    Ok(vec![dx, dslope])
}

/// Elu (`scale` 1) and Selu share a form: y = scale·x above 0, scale·α(eˣ − 1) below.
fn exponential_linear(ctx: &mut Ctx, grads: &[Option<String>], scale: f32, alpha: f32) -> Grads {
    let g = g0(ctx, grads)?;
    let (x, y) = (ctx.input(0).to_string(), ctx.output(0).to_string());
    let zero = scalar(ctx.b, 0.0);
    let positive = ctx.b.op("Greater", &[&x, &zero], vec![]);
    let offset = scalar(ctx.b, scale * alpha);
    let below = ctx.b.op("Add", &[&y, &offset], vec![]);
    let slope_above = scalar(ctx.b, scale);
    let slope = select(ctx, &positive, &slope_above, &below);
    Ok(vec![Some(ctx.b.op("Mul", &[&g, &slope], vec![]))])
}

pub fn elu(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let alpha = ctx.node.float("alpha").unwrap_or(1.0);
    exponential_linear(ctx, grads, 1.0, alpha)
}

pub fn selu(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let alpha = ctx.node.float("alpha").unwrap_or(1.673_263_2);
    let gamma = ctx.node.float("gamma").unwrap_or(1.050_701);
    exponential_linear(ctx, grads, gamma, alpha)
}

pub fn erf(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let x = ctx.input(0).to_string();
    let x2 = ctx.b.op("Mul", &[&x, &x], vec![]);
    let minus = ctx.b.op("Neg", &[&x2], vec![]);
    let bell = ctx.b.op("Exp", &[&minus], vec![]);
    let k = scalar(ctx.b, std::f32::consts::FRAC_2_SQRT_PI);
    let slope = ctx.b.op("Mul", &[&bell, &k], vec![]);
    Ok(vec![Some(ctx.b.op("Mul", &[&g, &slope], vec![]))])
}

pub fn softplus(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let x = ctx.input(0).to_string();
    let slope = ctx.b.op("Sigmoid", &[&x], vec![]);
    Ok(vec![Some(ctx.b.op("Mul", &[&g, &slope], vec![]))])
}

pub fn pow(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = g0(ctx, grads)?;
    let (a, b_in, y) = (
        ctx.input(0).to_string(),
        ctx.input(1).to_string(),
        ctx.output(0).to_string(),
    );
    let out = ctx.shape(&y)?.clone();
    let da = if ctx.needs[0] {
        let one = scalar(ctx.b, 1.0);
        let b_minus_one = ctx.b.op("Sub", &[&b_in, &one], vec![]);
        let power = ctx.b.op("Pow", &[&a, &b_minus_one], vec![]);
        let slope = ctx.b.op("Mul", &[&power, &b_in], vec![]);
        let local = ctx.b.op("Mul", &[&g, &slope], vec![]);
        let of_a = ctx.shape(&a)?.clone();
        Some(unbroadcast(ctx.b, &local, &out, &of_a))
    } else {
        None
    };
    let db = if ctx.needs[1] {
        let ln = ctx.b.op("Log", &[&a], vec![]);
        let gy = ctx.b.op("Mul", &[&g, &y], vec![]);
        let local = ctx.b.op("Mul", &[&gy, &ln], vec![]);
        let of_b = ctx.shape(&b_in)?.clone();
        Some(unbroadcast(ctx.b, &local, &out, &of_b))
    } else {
        None
    };
    Ok(vec![da, db])
}

use super::Gradient::{self, Missing, Rule};

/// Every operator of the family (`ortl_onnx::ops::activation` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] = &[
    ("Relu", Rule(relu)),
    ("Sigmoid", Rule(sigmoid)),
    ("Tanh", Rule(tanh)),
    ("Exp", Rule(exp)),
    ("Log", Rule(log)),
    ("Sqrt", Rule(sqrt)),
    ("Abs", Rule(abs)),
    ("Clip", Rule(clip)),
    ("HardSigmoid", Rule(hard_sigmoid)),
    ("HardSwish", Rule(hard_swish)),
    ("LeakyRelu", Rule(leaky_relu)),
    ("PRelu", Rule(prelu)),
    ("Elu", Rule(elu)),
    ("Selu", Rule(selu)),
    ("Erf", Rule(erf)),
    ("Softplus", Rule(softplus)),
    ("Pow", Rule(pow)),
    ("Softmax", Rule(softmax)),
    ("LogSoftmax", Rule(log_softmax)),
    ("Celu", Missing),
    ("Gelu", Missing),
    ("Softsign", Missing),
    ("Mish", Missing),
    ("ThresholdedRelu", Missing),
];
