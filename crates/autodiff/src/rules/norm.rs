//! LayerNormalization, https://onnx.ai/onnx/operators/onnx__LayerNormalization.html, over
//! the axes from `axis` on: with x̂ = (x − μ)/σ and ĝ = g·γ, dx = (ĝ − mean ĝ − x̂·mean(ĝ·x̂))/σ,
//! dγ = Σ g·x̂ and dβ = Σ g over the leading axes (μ and σ recomputed in the backward pass).
//!
//! BatchNormalization in inference form, https://onnx.ai/onnx/operators/onnx__BatchNormalization.html:
//! y = γ·(x − μ)/√(σ² + ε) + β with stored μ, σ² — the tutorial's backbone
//! (`training=False`) whose scale and shift still train. dx = G·γ/√(σ²+ε),
//! dγ = Σ G·x̂, dβ = Σ G (sums over batch and space).
//!
//! BatchNorm on batch statistics (ortl's `BatchNormTraining`, see `crate::batch_norm`): with
//! c = x − μ, r = 1/√(σ² + ε), a = γ·r and means over the M values of each channel,
//! dβ = Σ G, dγ = r·Σ G·c, dx = a·G − a·r²·mean(G·c)·c − a·mean(G) (μ and σ² depend on x).

use ortl_onnx::DataType;
use ortl_onnx::GraphBuilder;

use crate::batch_norm::channel_shape;
use crate::emit::{reduce_sum, reshape, scalar};
use crate::grad::{Ctx, Grads};

pub fn batch_norm_inference(ctx: &mut Ctx) -> Grads {
    if ctx.node.int("training_mode") == Some(1) {
        return Err(
            ctx.error("training-mode BatchNormalization must be rewritten before differentiation")
        );
    }
    if ctx.needs_grad(3) || ctx.needs_grad(4) {
        return Err(ctx.error("running statistics are not trainable"));
    }
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let rank = ctx.shape(&x)?.len();
    let (gamma, mean, var) = (
        ctx.input(1).to_string(),
        ctx.input(3).to_string(),
        ctx.input(4).to_string(),
    );
    let eps = ctx.node.float("epsilon").unwrap_or(1e-5);
    let bshape = channel_shape(rank);
    let eps = scalar(ctx.b, eps);
    let var_eps = ctx.b.add(&var, &eps);
    let std = ctx.b.sqrt(&var_eps);
    let axes: Vec<i64> = std::iter::once(0).chain(2..rank as i64).collect();

    let dx = ctx.if_needed(0, |ctx| {
        let factor = ctx.b.div(&gamma, &std);
        let factor = reshape(ctx.b, &factor, &bshape);
        Ok(ctx.b.mul(&g, &factor))
    })?;
    let dgamma = ctx.if_needed(1, |ctx| {
        let mean_b = reshape(ctx.b, &mean, &bshape);
        let std_b = reshape(ctx.b, &std, &bshape);
        let centred = ctx.b.sub(&x, &mean_b);
        let xhat = ctx.b.div(&centred, &std_b);
        let prod = ctx.b.mul(&g, &xhat);
        Ok(reduce_sum(ctx.b, &prod, &axes, false))
    })?;
    let dbeta = ctx.if_needed(2, |ctx| Ok(reduce_sum(ctx.b, &g, &axes, false)))?;
    Ok(vec![dx, dgamma, dbeta, None, None])
}

pub fn batch_norm_training(ctx: &mut Ctx) -> Grads {
    if ctx.output_grads[1..].iter().any(Option::is_some) {
        return Err(
            ctx.error("the batch statistics may reach the loss only through the normalised output")
        );
    }
    let g = ctx.output_grad(0)?;
    let gamma = ctx.input(1).to_string();
    let (centred, inverse_std) = (ctx.output(3).to_string(), ctx.output(4).to_string());
    let axes = ctx
        .node
        .ints("axes")
        .ok_or_else(|| ctx.error("no axes"))?
        .to_vec();
    let b = &mut *ctx.b;
    let sum_g = reduce_sum(b, &g, &axes, true);
    let sum_g_centred = (ctx.needs[0] || ctx.needs[1]).then(|| {
        let g_centred = b.mul(&g, &centred);
        reduce_sum(b, &g_centred, &axes, true)
    });
    let dx = if let (true, Some(sum_g_centred)) = (ctx.needs[0], &sum_g_centred) {
        let count = values_per_channel(b, &g, &sum_g);
        let gamma = reshape(b, &gamma, &channel_shape(axes.len() + 1));
        let a = b.mul(&gamma, &inverse_std);
        let mean_g = b.div(&sum_g, &count);
        let mean_g_centred = b.div(sum_g_centred, &count);
        let r2 = b.mul(&inverse_std, &inverse_std);
        let a_r2 = b.mul(&a, &r2);
        let k = b.mul(&a_r2, &mean_g_centred);
        let k = b.neg(&k);
        let shift = b.mul(&a, &mean_g);
        let shift = b.neg(&shift);
        let along_g = b.mul(&g, &a);
        let along_centred = b.mul(&centred, &k);
        Some(b.sum(&[&along_g, &along_centred, &shift]))
    } else {
        None
    };
    let dgamma = match (ctx.needs[1], &sum_g_centred) {
        (true, Some(sum_g_centred)) => {
            let scaled = b.mul(sum_g_centred, &inverse_std);
            Some(reshape(b, &scaled, &[-1]))
        }
        _ => None,
    };
    let dbeta = ctx.needs[2].then(|| reshape(b, &sum_g, &[-1]));
    Ok(vec![dx, dgamma, dbeta])
}

/// M, the values per channel of `x` as a float scalar, from `x` and a per-channel value:
/// known only at run time (the batch), divided exactly in integers before it becomes a
/// float. Sizes, not the channel count: a Size reads a blocked tensor without reordering it.
fn values_per_channel(b: &mut GraphBuilder, x: &str, per_channel: &str) -> String {
    let values = b.size(x);
    let channels = b.size(per_channel);
    let count = b.div(&values, &channels);
    b.cast(&count, DataType::Float)
}

pub fn layer_norm(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let gamma = ctx.input(1).to_string();
    let rank = ctx.shape(&x)?.len() as i64;
    let axis = ctx.node.int("axis").unwrap_or(-1);
    let axis = if axis < 0 { axis + rank } else { axis };
    let normalised: Vec<i64> = (axis..rank).collect();
    let leading: Vec<i64> = (0..axis).collect();
    let eps = scalar(ctx.b, ctx.node.float("epsilon").unwrap_or(1e-5));
    let mean_over = |b: &mut ortl_onnx::GraphBuilder, v: &str| b.reduce_mean(v, &normalised, true);
    let mu = mean_over(ctx.b, &x);
    let centred = ctx.b.sub(&x, &mu);
    let squared = ctx.b.mul(&centred, &centred);
    let var = mean_over(ctx.b, &squared);
    let var_eps = ctx.b.add(&var, &eps);
    let sigma = ctx.b.sqrt(&var_eps);
    let xhat = ctx.b.div(&centred, &sigma);
    let dx = ctx.if_needed(0, |ctx| {
        let gh = ctx.b.mul(&g, &gamma);
        let mean_gh = mean_over(ctx.b, &gh);
        let ghx = ctx.b.mul(&gh, &xhat);
        let mean_ghx = mean_over(ctx.b, &ghx);
        let along = ctx.b.mul(&xhat, &mean_ghx);
        let centred_g = ctx.b.sub(&gh, &mean_gh);
        let inner = ctx.b.sub(&centred_g, &along);
        Ok(ctx.b.div(&inner, &sigma))
    })?;
    let param_shape = ctx.shape(&gamma)?.clone();
    let out_shape = ctx.shape(ctx.output(0))?.clone();
    let sum_to_param = |b: &mut ortl_onnx::GraphBuilder, v: &str| {
        let summed = if leading.is_empty() {
            v.to_string()
        } else {
            reduce_sum(b, v, &leading, false)
        };
        let trailing: ortl_onnx::shapes::Shape = out_shape[axis as usize..].to_vec();
        crate::emit::unbroadcast(b, &summed, &trailing, &param_shape)
    };
    let dgamma = ctx.if_needed(1, |ctx| {
        let gx = ctx.b.mul(&g, &xhat);
        Ok(sum_to_param(ctx.b, &gx))
    })?;
    let dbeta = ctx.if_needed(2, |ctx| Ok(sum_to_param(ctx.b, &g)))?;
    let mut out = vec![dx, dgamma, dbeta];
    out.truncate(ctx.node.inputs.len());
    Ok(out)
}

use super::Gradient::{self, Missing, Rule};

/// Every operator of the family (`ortl_onnx::ops::norm` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] = &[
    ("BatchNormalization", Rule(batch_norm_inference)),
    (crate::batch_norm::OP, Rule(batch_norm_training)),
    ("LayerNormalization", Rule(layer_norm)),
    ("InstanceNormalization", Missing),
    ("LpNormalization", Missing),
    ("LRN", Missing),
];
