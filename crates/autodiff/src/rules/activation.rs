//! Element-wise activations. Specs: https://onnx.ai/onnx/operators/ (Relu, Sigmoid, Tanh,
//! Exp, Log, Sqrt, Abs, Clip, Softmax, LogSoftmax, HardSigmoid, HardSwish, LeakyRelu, PRelu,
//! Elu, Selu, Erf, Softplus, Pow). Rules reuse the forward output where it is cheaper:
//! σ' = y(1−y), tanh' = 1−y², exp' = y, √' = 1/(2y); softmax along `axis`:
//! dx = y·(g − Σ g·y); log-softmax: dx = g − softmax(x)·Σ g (along one axis, opset 13's
//! semantics: import writes older opsets' flattened form out). The exporters' activations:
//! hard-sigmoid' = α inside 0 < αx+β < 1; hard-swish' = 0 below −3, 1 above 3, (2x+3)/6
//! between; leaky/parametric ReLU' = 1 or the slope (dslope = Σ g·x where x < 0);
//! elu' = 1 or y+α; selu' = γ or y+γα; erf' = 2/√π·e^(−x²); softplus' = σ(x);
//! (aᵇ)' = b·aᵇ⁻¹ for a (and y·ln a for b).

use ortl_onnx::{DataType, GraphBuilder};

use crate::AutodiffError;
use crate::emit::{reduce_sum, scalar, unbroadcast};
use crate::grad::{Ctx, Grads};

/// `g` where `x > 0`, else 0.
pub fn relu(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let y = ctx.output(0).to_string();
    let zero = scalar(ctx.b, 0.0);
    let positive = ctx.b.greater(&y, &zero);
    Ok(vec![Some(keep_where(ctx, &positive, &g))])
}

pub fn sigmoid(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let y = ctx.output(0).to_string();
    let one = scalar(ctx.b, 1.0);
    let one_minus = ctx.b.sub(&one, &y);
    let slope = ctx.b.mul(&y, &one_minus);
    Ok(vec![Some(ctx.b.mul(&g, &slope))])
}

pub fn tanh(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let y = ctx.output(0).to_string();
    let one = scalar(ctx.b, 1.0);
    let y2 = ctx.b.mul(&y, &y);
    let slope = ctx.b.sub(&one, &y2);
    Ok(vec![Some(ctx.b.mul(&g, &slope))])
}

pub fn exp(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let y = ctx.output(0).to_string();
    Ok(vec![Some(ctx.b.mul(&g, &y))])
}

pub fn log(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    Ok(vec![Some(ctx.b.div(&g, &x))])
}

pub fn sqrt(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let y = ctx.output(0).to_string();
    let two = scalar(ctx.b, 2.0);
    let denom = ctx.b.mul(&two, &y);
    Ok(vec![Some(ctx.b.div(&g, &denom))])
}

pub fn abs(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let sign = ctx.b.sign(&x);
    Ok(vec![Some(ctx.b.mul(&g, &sign))])
}

/// Passes `g` where `min ≤ x ≤ max` (bounds are optional inputs 1 and 2).
pub fn clip(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let mut inside: Option<String> = None;
    let within: [(usize, Compare); 2] = [
        (1, GraphBuilder::greater_or_equal),
        (2, GraphBuilder::less_or_equal),
    ];
    for (i, compare) in within {
        if let Some(bound) = ctx.node.inputs.get(i).filter(|s| !s.is_empty()).cloned() {
            let ok = compare(ctx.b, &x, &bound);
            inside = Some(match inside {
                Some(prev) => ctx.b.and(&prev, &ok),
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

/// A comparison emitted as one node, e.g. `GraphBuilder::less_or_equal`.
type Compare = fn(&mut GraphBuilder, &str, &str) -> String;

fn axis(ctx: &Ctx) -> Result<i64, AutodiffError> {
    let rank = ctx.shape(ctx.input(0))?.len() as i64;
    let axis = ctx.node.int("axis").unwrap_or(-1);
    Ok(if axis < 0 { axis + rank } else { axis })
}

pub fn softmax(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let y = ctx.output(0).to_string();
    let axis = axis(ctx)?;
    let gy = ctx.b.mul(&g, &y);
    let total = reduce_sum(ctx.b, &gy, &[axis], true);
    let centred = ctx.b.sub(&g, &total);
    Ok(vec![Some(ctx.b.mul(&y, &centred))])
}

pub fn log_softmax(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let axis = axis(ctx)?;
    let p = ctx.b.softmax(&x, axis);
    let total = reduce_sum(ctx.b, &g, &[axis], true);
    let scaled = ctx.b.mul(&p, &total);
    Ok(vec![Some(ctx.b.sub(&g, &scaled))])
}

/// `Where(mask, a, b)`.
fn select(ctx: &mut Ctx, mask: &str, a: &str, b: &str) -> String {
    ctx.b.where_(mask, a, b)
}

/// `x` where `mask`, else 0, as `x · float(mask)`: on ORT 1.31's CPU EP `Cast` and `Mul`
/// run faster than `Where`, and ReLU's gradient mask, among others, goes through here
/// (measurements: bench/RESULTS.md and the history it links).
fn keep_where(ctx: &mut Ctx, mask: &str, x: &str) -> String {
    let mask = ctx.b.cast(mask, DataType::Float);
    ctx.b.mul(x, &mask)
}

pub fn hard_sigmoid(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let y = ctx.output(0).to_string();
    let alpha = scalar(ctx.b, ctx.node.float("alpha").unwrap_or(0.2));
    let (zero, one) = (scalar(ctx.b, 0.0), scalar(ctx.b, 1.0));
    let above = ctx.b.greater(&y, &zero);
    let below = ctx.b.less(&y, &one);
    let inside = ctx.b.and(&above, &below);
    let scaled = ctx.b.mul(&g, &alpha);
    Ok(vec![Some(keep_where(ctx, &inside, &scaled))])
}

pub fn hard_swish(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let (zero, one) = (scalar(ctx.b, 0.0), scalar(ctx.b, 1.0));
    let (three, minus_three) = (scalar(ctx.b, 3.0), scalar(ctx.b, -3.0));
    let (third, half) = (scalar(ctx.b, 1.0 / 3.0), scalar(ctx.b, 0.5));
    let ramp = ctx.b.mul(&x, &third);
    let ramp = ctx.b.add(&ramp, &half);
    let high = ctx.b.greater(&x, &three);
    let low = ctx.b.less(&x, &minus_three);
    let slope = select(ctx, &high, &one, &ramp);
    let slope = select(ctx, &low, &zero, &slope);
    Ok(vec![Some(ctx.b.mul(&g, &slope))])
}

pub fn leaky_relu(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let alpha = scalar(ctx.b, ctx.node.float("alpha").unwrap_or(0.01));
    let zero = scalar(ctx.b, 0.0);
    let positive = ctx.b.greater(&x, &zero);
    let scaled = ctx.b.mul(&g, &alpha);
    Ok(vec![Some(select(ctx, &positive, &g, &scaled))])
}

/// PRelu: y = x for x ≥ 0, slope·x below, with a slope that broadcasts (often [C,1,1])
/// and trains.
pub fn prelu(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let (x, slope) = (ctx.input(0).to_string(), ctx.input(1).to_string());
    let zero = scalar(ctx.b, 0.0);
    let negative = ctx.b.less(&x, &zero);
    let dx = ctx.if_needed(0, |ctx| {
        let scaled = ctx.b.mul(&g, &slope);
        Ok(select(ctx, &negative, &scaled, &g))
    })?;
    let dslope = ctx.if_needed(1, |ctx| {
        let gx = ctx.b.mul(&g, &x);
        let masked = keep_where(ctx, &negative, &gx);
        let (out, of_slope) = (
            ctx.shape(ctx.output(0))?.clone(),
            ctx.shape(&slope)?.clone(),
        );
        Ok(unbroadcast(ctx.b, &masked, &out, &of_slope))
    })?;
    Ok(vec![dx, dslope])
}

/// Elu (`scale` 1) and Selu share a form: y = scale·x above 0, scale·α(eˣ − 1) below.
fn exponential_linear(ctx: &mut Ctx, scale: f32, alpha: f32) -> Grads {
    let g = ctx.output_grad(0)?;
    let (x, y) = (ctx.input(0).to_string(), ctx.output(0).to_string());
    let zero = scalar(ctx.b, 0.0);
    let positive = ctx.b.greater(&x, &zero);
    let offset = scalar(ctx.b, scale * alpha);
    let below = ctx.b.add(&y, &offset);
    let slope_above = scalar(ctx.b, scale);
    let slope = select(ctx, &positive, &slope_above, &below);
    Ok(vec![Some(ctx.b.mul(&g, &slope))])
}

pub fn elu(ctx: &mut Ctx) -> Grads {
    let alpha = ctx.node.float("alpha").unwrap_or(1.0);
    exponential_linear(ctx, 1.0, alpha)
}

pub fn selu(ctx: &mut Ctx) -> Grads {
    let alpha = ctx.node.float("alpha").unwrap_or(1.673_263_2);
    let gamma = ctx.node.float("gamma").unwrap_or(1.050_701);
    exponential_linear(ctx, gamma, alpha)
}

pub fn erf(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let x2 = ctx.b.mul(&x, &x);
    let minus = ctx.b.neg(&x2);
    let bell = ctx.b.exp(&minus);
    let k = scalar(ctx.b, std::f32::consts::FRAC_2_SQRT_PI);
    let slope = ctx.b.mul(&bell, &k);
    Ok(vec![Some(ctx.b.mul(&g, &slope))])
}

pub fn softplus(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let slope = ctx.b.sigmoid(&x);
    Ok(vec![Some(ctx.b.mul(&g, &slope))])
}

pub fn pow(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let (a, b_in, y) = (
        ctx.input(0).to_string(),
        ctx.input(1).to_string(),
        ctx.output(0).to_string(),
    );
    let out = ctx.shape(&y)?.clone();
    let da = ctx.if_needed(0, |ctx| {
        let one = scalar(ctx.b, 1.0);
        let b_minus_one = ctx.b.sub(&b_in, &one);
        let power = ctx.b.pow(&a, &b_minus_one);
        let slope = ctx.b.mul(&power, &b_in);
        let local = ctx.b.mul(&g, &slope);
        let of_a = ctx.shape(&a)?.clone();
        Ok(unbroadcast(ctx.b, &local, &out, &of_a))
    })?;
    let db = ctx.if_needed(1, |ctx| {
        let ln = ctx.b.log(&a);
        let gy = ctx.b.mul(&g, &y);
        let local = ctx.b.mul(&gy, &ln);
        let of_b = ctx.shape(&b_in)?.clone();
        Ok(unbroadcast(ctx.b, &local, &out, &of_b))
    })?;
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
    // Gelu and Mish are newer than ortl's opset 17: import writes them as the operators
    // they are made of (Mul, Erf or Tanh, Add; Softplus, Tanh, Mul), differentiated above.
    ("Gelu", Missing),
    ("Softsign", Missing),
    ("Mish", Missing),
    ("ThresholdedRelu", Missing),
];
