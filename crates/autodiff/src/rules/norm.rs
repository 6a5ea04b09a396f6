//! BatchNormalization in inference form, https://onnx.ai/onnx/operators/onnx__BatchNormalization.html:
//! y = γ·(x − μ)/√(σ² + ε) + β with stored μ, σ² — the tutorial's backbone
//! (`training=False`) whose scale and shift still train. dx = G·γ/√(σ²+ε),
//! dγ = Σ G·x̂, dβ = Σ G (sums over batch and space). Training-mode BatchNorm is rewritten
//! into primitive ops before differentiation, so it needs no rule of its own.

use crate::AutodiffError;
use crate::emit::{reduce_sum, reshape, scalar};
use crate::grad::Ctx;

type Grads = Result<Vec<Option<String>>, AutodiffError>;

pub fn batch_norm_inference(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    if ctx.node.int("training_mode") == Some(1) {
        return Err(
            ctx.error("training-mode BatchNormalization must be rewritten before differentiation")
        );
    }
    if ctx.needs.get(3).copied().unwrap_or(false) || ctx.needs.get(4).copied().unwrap_or(false) {
        return Err(ctx.error("running statistics are not trainable"));
    }
    let g = grads[0]
        .clone()
        .ok_or_else(|| ctx.error("no gradient for the output"))?;
    let x = ctx.input(0).to_string();
    let rank = ctx.shape(&x)?.len();
    let (gamma, mean, var) = (
        ctx.input(1).to_string(),
        ctx.input(3).to_string(),
        ctx.input(4).to_string(),
    );
    let eps = ctx.node.float("epsilon").unwrap_or(1e-5);
    // Per-channel vectors reshaped to broadcast over [N, C, ...].
    let mut bshape = vec![1i64, -1];
    bshape.extend(std::iter::repeat_n(1, rank - 2));
    let eps = scalar(ctx.b, eps);
    let var_eps = ctx.b.op("Add", &[&var, &eps], vec![]);
    let std = ctx.b.op("Sqrt", &[&var_eps], vec![]);
    let axes: Vec<i64> = std::iter::once(0).chain(2..rank as i64).collect();

    let dx = if ctx.needs[0] {
        let factor = ctx.b.op("Div", &[&gamma, &std], vec![]);
        let factor = reshape(ctx.b, &factor, &bshape);
        Some(ctx.b.op("Mul", &[&g, &factor], vec![]))
    } else {
        None
    };
    let dgamma = if ctx.needs[1] {
        let mean_b = reshape(ctx.b, &mean, &bshape);
        let std_b = reshape(ctx.b, &std, &bshape);
        let centred = ctx.b.op("Sub", &[&x, &mean_b], vec![]);
        let xhat = ctx.b.op("Div", &[&centred, &std_b], vec![]);
        let prod = ctx.b.op("Mul", &[&g, &xhat], vec![]);
        Some(reduce_sum(ctx.b, &prod, &axes, false))
    } else {
        None
    };
    let dbeta = if ctx.needs[2] {
        Some(reduce_sum(ctx.b, &g, &axes, false))
    } else {
        None
    };
    Ok(vec![dx, dgamma, dbeta, None, None])
}
