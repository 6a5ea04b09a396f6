//! Pooling. https://onnx.ai/onnx/operators/onnx__MaxPool.html: the training graph asks the
//! forward MaxPool for its `Indices` output (flat positions in the input), and the gradient
//! scatters G into a zero tensor at those positions with `ScatterElements(reduction="add")`,
//! so overlapping windows that pick the same input accumulate.
//! https://onnx.ai/onnx/operators/onnx__AveragePool.html: the gradient is a ConvTranspose of
//! G with a depthwise kernel of 1/(kh·kw) (count_include_pad = 1, or no padding). With
//! padding left out of the count (count_include_pad = 0, Keras' and timm's choice), or a
//! ceil-mode window running past the padded input, each output divided by its own
//! window's count of cells: G / counts (a constant, the shapes being static) through a
//! kernel of ones.

use ortl_onnx::Tensor;
use ortl_onnx::builder::Conv;

use crate::emit::{reshape, reshape_like};
use crate::grad::{Ctx, Grads};
use crate::rules::conv::window_pads;

pub fn max_pool(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let indices = ctx
        .node
        .outputs
        .get(1)
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| {
            ctx.error(
                "MaxPool needs its Indices output in training graphs (see ortl_autodiff::prepare)",
            )
        })?;
    let x = ctx.input(0).to_string();
    let flat_x = reshape(ctx.b, &x, &[-1]);
    let shape = ctx.b.shape(&flat_x);
    let zeros = ctx
        .b
        .constant_of_shape(&shape, Some(Tensor::f32(&[1], vec![0.0])));
    let flat_i = reshape(ctx.b, &indices, &[-1]);
    let flat_g = reshape(ctx.b, &g, &[-1]);
    let scattered = ctx.b.scatter_add(&zeros, &flat_i, &flat_g, 0);
    Ok(vec![Some(reshape_like(ctx.b, &scattered, &x))])
}

pub fn average_pool(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let x = ctx.input(0).to_string();
    let x_dims = ctx.dims(&x)?;
    let y_dims = ctx.dims(ctx.output(0))?;
    let kernel = ctx
        .node
        .ints("kernel_shape")
        .ok_or_else(|| ctx.error("no kernel_shape"))?
        .to_vec();
    let strides = ctx.node.ints("strides").map_or(vec![1, 1], <[i64]>::to_vec);
    let include_pad = ctx.node.int("count_include_pad").unwrap_or(0) == 1;
    if kernel.len() != 2 {
        return Err(ctx.error("only 2-D AveragePool is differentiated"));
    }
    if ctx
        .node
        .ints("dilations")
        .is_some_and(|d| d.iter().any(|&d| d != 1))
    {
        return Err(ctx.error("AveragePool gradient needs dilations of 1"));
    }
    let pads = window_pads(
        ctx,
        [kernel[0], kernel[1]],
        &strides,
        &[1, 1],
        &x_dims,
        &y_dims,
    )?;
    let c = x_dims[1];
    // Each window's divisor: the cells it covers inside the input, or inside the padded
    // input when the padding counts. A ceil-mode window that runs past the padded input
    // (timm's ResNet-D downsampling) never counts what lies beyond it.
    let covered = |axis: usize, o: i64| {
        let (low, high) = if include_pad {
            (-pads[axis], x_dims[axis + 2] + pads[axis + 2])
        } else {
            (0, x_dims[axis + 2])
        };
        let start = o * strides[axis] - pads[axis];
        (start + kernel[axis]).min(high) - start.max(low)
    };
    let (oh, ow) = (y_dims[2], y_dims[3]);
    let whole = kernel[0] * kernel[1];
    let counts: Vec<i64> = (0..oh)
        .flat_map(|i| (0..ow).map(move |j| (i, j)))
        .map(|(i, j)| covered(0, i) * covered(1, j))
        .collect();
    let (g, weight) = if counts.iter().all(|&n| n == whole) {
        (g, 1.0 / whole as f32)
    } else {
        let inverse = counts.iter().map(|&n| 1.0 / n as f32).collect();
        let scale = ctx.b.constant(Tensor::f32(&[1, 1, oh, ow], inverse));
        (ctx.b.mul(&g, &scale), 1.0)
    };
    let w = ctx.b.constant(Tensor::f32(
        &[c, 1, kernel[0], kernel[1]],
        vec![weight; (c * kernel[0] * kernel[1]) as usize],
    ));
    // The transposed convolution spreads each window back over its cells; a ceil-mode
    // window's overhang past the end is cropped like padding.
    let mut crop = pads.clone();
    for i in 0..2 {
        let reach = (y_dims[i + 2] - 1) * strides[i] + kernel[i];
        crop[i + 2] = crop[i + 2].max(reach - pads[i] - x_dims[i + 2]);
    }
    let output_padding: Vec<i64> = (0..2)
        .map(|i| {
            x_dims[i + 2] - ((y_dims[i + 2] - 1) * strides[i] + kernel[i] - crop[i] - crop[i + 2])
        })
        .collect();
    Ok(vec![Some(ctx.b.conv_transpose(
        &g,
        &w,
        &Conv {
            kernel_shape: Some(kernel),
            strides: Some(strides),
            pads: Some(crop),
            group: Some(c),
            ..Conv::default()
        },
        &output_padding,
    ))])
}

use super::Gradient::{self, Rule};

/// Every operator of the family (`ortl_onnx::ops::pool` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] = &[
    ("MaxPool", Rule(max_pool)),
    ("AveragePool", Rule(average_pool)),
];
