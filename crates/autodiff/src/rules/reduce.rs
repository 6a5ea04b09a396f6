//! Reductions. https://onnx.ai/onnx/operators/onnx__ReduceMean.html (ReduceSum,
//! GlobalAveragePool alike): the gradient is broadcast back over the reduced axes, divided
//! by their element count for means.
//! https://onnx.ai/onnx/operators/onnx__CumSum.html: each input element reaches every output
//! at or after it along the axis (before it when reversed), so the gradient is the CumSum of
//! the output's gradient in the other direction, equally exclusive.

use ortl_onnx::DataType;
use ortl_onnx::Tensor;

use crate::AutodiffError;
use crate::emit::{expand_like, reshape, scalar};
use crate::grad::{Ctx, Grads};

fn reduced_axes(ctx: &Ctx) -> Result<Vec<usize>, AutodiffError> {
    let rank = ctx.shape(ctx.input(0))?.len() as i64;
    let axes: Vec<i64> = match ctx.node.ints("axes") {
        Some(a) => a.to_vec(),
        None => match ctx.node.inputs.get(1).filter(|s| !s.is_empty()) {
            Some(name) => ctx
                .b
                .graph()
                .initializers
                .get(name)
                .and_then(Tensor::as_i64)
                .map(<[i64]>::to_vec)
                .ok_or_else(|| ctx.error("axes must be a constant"))?,
            None => (0..rank).collect(),
        },
    };
    Ok(axes
        .into_iter()
        .map(|a| {
            if a < 0 {
                (a + rank) as usize
            } else {
                a as usize
            }
        })
        .collect())
}

/// How a reduced gradient is scaled on its way back.
enum Scale {
    None,
    Static(f32),
    /// 1 / (elements of the input per element of the output), counted at run time
    /// (a mean over the batch axis).
    Dynamic,
}

/// Broadcasts `g` (the reduced gradient) back to the input's shape, scaled.
fn spread(ctx: &mut Ctx, g: &str, axes: &[usize], scale: Scale) -> Result<String, AutodiffError> {
    let x = ctx.input(0).to_string();
    let keep = ctx.node.int("keepdims").unwrap_or(1) == 1 || ctx.node.op == "GlobalAveragePool";
    let g = if keep {
        g.to_string()
    } else {
        // Put the reduced axes back as size 1.
        let in_shape = ctx.dims(&x)?;
        let kept: Vec<i64> = in_shape
            .iter()
            .enumerate()
            .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
            .collect();
        reshape(ctx.b, g, &kept)
    };
    let g = match scale {
        Scale::Static(s) => {
            let s = scalar(ctx.b, s);
            ctx.b.mul(&g, &s)
        }
        Scale::Dynamic => {
            let size_in = ctx.b.size(&x);
            let size_out = ctx.b.size(ctx.node.outputs[0].as_str());
            let size_in = ctx.b.cast(&size_in, DataType::Float);
            let size_out = ctx.b.cast(&size_out, DataType::Float);
            let count = ctx.b.div(&size_in, &size_out);
            ctx.b.div(&g, &count)
        }
        Scale::None => g,
    };
    Ok(expand_like(ctx.b, &g, &x))
}

/// 1/count when every reduced axis is static, else a run-time count.
fn mean_scale(ctx: &Ctx, axes: &[usize]) -> Result<Scale, AutodiffError> {
    let shape = ctx.shape(ctx.input(0))?;
    let count: Option<f32> = axes
        .iter()
        .try_fold(1.0f32, |acc, &a| shape[a].map(|d| acc * d as f32));
    Ok(count.map_or(Scale::Dynamic, |n| Scale::Static(1.0 / n)))
}

fn first_only(ctx: &Ctx, grad: String) -> Vec<Option<String>> {
    let mut out = vec![Some(grad)];
    out.resize(ctx.node.inputs.len(), None);
    out
}

pub fn reduce_sum(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let axes = reduced_axes(ctx)?;
    let dx = spread(ctx, &g, &axes, Scale::None)?;
    Ok(first_only(ctx, dx))
}

pub fn reduce_mean(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let axes = reduced_axes(ctx)?;
    let scale = mean_scale(ctx, &axes)?;
    let dx = spread(ctx, &g, &axes, scale)?;
    Ok(first_only(ctx, dx))
}

pub fn global_average_pool(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let rank = ctx.shape(ctx.input(0))?.len();
    let axes: Vec<usize> = (2..rank).collect();
    let scale = mean_scale(ctx, &axes)?;
    Ok(vec![Some(spread(ctx, &g, &axes, scale)?)])
}

pub fn cum_sum(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let axis = ctx.input(1).to_string();
    let exclusive = ctx.node.int("exclusive").unwrap_or(0);
    let reverse = ctx.node.int("reverse").unwrap_or(0);
    let dx = ctx.b.cum_sum(&g, &axis, exclusive != 0, reverse == 0);
    Ok(first_only(ctx, dx))
}

use super::Gradient::{self, Missing, Rule};

/// Every operator of the family (`ortl_onnx::ops::reduce` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] = &[
    ("ReduceSum", Rule(reduce_sum)),
    ("ReduceMean", Rule(reduce_mean)),
    ("CumSum", Rule(cum_sum)),
    ("GlobalAveragePool", Rule(global_average_pool)),
    ("ReduceMax", Missing),
    ("ReduceMin", Missing),
    ("ReduceProd", Missing),
    ("ReduceL1", Missing),
    ("ReduceL2", Missing),
    ("ReduceSumSquare", Missing),
    ("ReduceLogSumExp", Missing),
    ("ReduceLogSum", Missing),
    ("GlobalMaxPool", Missing),
    // Indices of extremes: integers (shape inference does not know these yet).
    ("ArgMax", Gradient::None),
    ("ArgMin", Gradient::None),
];
