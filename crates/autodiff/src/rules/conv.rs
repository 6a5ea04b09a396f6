//! Convolution, https://onnx.ai/onnx/operators/onnx__Conv.html (2-D; grouped and depthwise
//! included: dX is a grouped ConvTranspose, dW a batched MatMul over the groups).
//!
//! - dX is a ConvTranspose of G with the same weights, strides, pads and dilations, with
//!   `output_padding` restoring sizes a strided forward dropped. It costs about one forward.
//!   An unstrided, unpadded, ungrouped 1×1 dX is a 1×1 Conv of G with Wᵀ instead: ORT's
//!   ConvTranspose runs a GEMM and then col2im, and its Conv runs the same product faster
//!   (half of a ResNet50 step's dX work is 1×1; measurements: bench/RESULTS.md and the
//!   history it links).
//! - dW is a GEMM against the input's patches rather than the textbook "convolution of X with
//!   G" (3–8 forwards on ORT's CPU EP, docs/DESIGN.md): dW = Gᵀ · patches, with G as
//!   channels-last rows `[N·Ho·Wo, O]`. For an ungrouped k×k kernel the patches come from one
//!   Gather: the padded input as channels-last rows `[N, Hp·Wp, C]`, gathered at the constant
//!   positions of every (output pixel, kernel offset) into `[N·Ho·Wo, k·k·C]`. Each gathered
//!   row is C contiguous floats. The earlier form, one strided Slice + GEMM per kernel
//!   offset, copied rows of Wo floats and was slower per layer, most at stride 2 and on the
//!   7×7 stem (measurements: bench/RESULTS.md and the history it links). A 1×1 kernel
//!   needs no gather (a strided Slice when it skips positions). Both operands begin with a
//!   channels-last `Transpose`, which the blocked pass ([`crate::blocked`]) replaces by one
//!   reorder from the blocked layout. Grouped kernels keep the per-offset form, batched over
//!   the groups.
//! - dB sums G over batch and space.

use ortl_onnx::Tensor;
use ortl_onnx::{builder::Conv, builder::Gemm};

use crate::AutodiffError;
use crate::emit::{reduce_sum, reshape};
use crate::grad::{Ctx, Grads};

pub fn conv(ctx: &mut Ctx) -> Grads {
    let g = ctx.output_grad(0)?;
    let (x, w) = (ctx.input(0).to_string(), ctx.input(1).to_string());
    let x_dims = ctx.dims(&x)?;
    let w_dims = ctx.dims(&w)?;
    let y_dims = ctx.dims(ctx.output(0))?;
    if x_dims.len() != 4 {
        return Err(ctx.error("only 2-D convolutions are differentiated"));
    }
    let group = ctx.node.int("group").unwrap_or(1);
    let (kh, kw) = (w_dims[2], w_dims[3]);
    let strides = ctx.node.ints("strides").map_or(vec![1, 1], <[i64]>::to_vec);
    let dilations = ctx
        .node
        .ints("dilations")
        .map_or(vec![1, 1], <[i64]>::to_vec);
    let pads = window_pads(ctx, [kh, kw], &strides, &dilations, &x_dims, &y_dims)?;
    let (o, c) = (w_dims[0], w_dims[1]);
    let (ho, wo) = (y_dims[2], y_dims[3]);

    let pointwise =
        group == 1 && (kh, kw) == (1, 1) && strides == [1, 1] && pads.iter().all(|&p| p == 0);
    let dx = ctx.if_needed(0, |ctx| {
        Ok(if pointwise {
            let wt = ctx.b.transpose(&w, &[1, 0, 2, 3]);
            let pointwise = Conv {
                kernel_shape: Some(vec![1, 1]),
                ..Conv::default()
            };
            ctx.b.conv(&g, &wt, None, &pointwise)
        } else {
            let output_padding: Vec<i64> = (0..2)
                .map(|i| {
                    let k = [kh, kw][i];
                    x_dims[i + 2]
                        - ((y_dims[i + 2] - 1) * strides[i] + (k - 1) * dilations[i] + 1
                            - pads[i]
                            - pads[i + 2])
                })
                .collect();
            let transposed = Conv {
                kernel_shape: Some(vec![kh, kw]),
                strides: Some(strides.clone()),
                pads: Some(pads.clone()),
                dilations: Some(dilations.clone()),
                group: Some(group),
                auto_pad: None,
            };
            ctx.b.conv_transpose(&g, &w, &transposed, &output_padding)
        })
    })?;

    let window = Window {
        kernel: [kh, kw],
        strides: [strides[0], strides[1]],
        dilations: [dilations[0], dilations[1]],
        pads: [pads[0], pads[1], pads[2], pads[3]],
        input: [x_dims[2], x_dims[3]],
        output: [ho, wo],
    };
    let dw = ctx.if_needed(1, |ctx| {
        Ok(if group == 1 {
            weight_grad(ctx, &g, &x, o, c, &window)
        } else {
            grouped_weight_grad(ctx, &g, &x, o, c, group, &window)
        })
    })?;

    let mut out = vec![dx, dw];
    if ctx.node.inputs.len() > 2 {
        out.push(ctx.if_needed(2, |ctx| Ok(reduce_sum(ctx.b, &g, &[0, 2, 3], false)))?);
    }
    Ok(out)
}

/// The spatial geometry of a 2-D convolution.
struct Window {
    kernel: [i64; 2],
    strides: [i64; 2],
    dilations: [i64; 2],
    /// top, left, bottom, right
    pads: [i64; 4],
    input: [i64; 2],
    output: [i64; 2],
}

/// A convolution's or pooling window's pads (top, left, bottom, right): its `pads`, or those
/// `auto_pad` implies (SAME_UPPER / SAME_LOWER: out = ceil(in / stride), the odd one at
/// the end for UPPER, at the start for LOWER; VALID: none; NOTSET, which exporters also
/// write out: `pads`).
pub fn window_pads(
    ctx: &Ctx,
    kernel: [i64; 2],
    strides: &[i64],
    dilations: &[i64],
    x_dims: &[i64],
    y_dims: &[i64],
) -> Result<Vec<i64>, AutodiffError> {
    let auto_pad = match ctx.node.attr("auto_pad") {
        None => "NOTSET",
        Some(ortl_onnx::Attr::String(s)) => s.as_str(),
        Some(_) => return Err(ctx.error("unexpected auto_pad")),
    };
    Ok(match auto_pad {
        "NOTSET" => ctx.node.ints("pads").map_or(vec![0; 4], <[i64]>::to_vec),
        "VALID" => vec![0; 4],
        same => {
            let mut pads = vec![0; 4];
            for i in 0..2 {
                let total = ((y_dims[i + 2] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
                    - x_dims[i + 2])
                    .max(0);
                let small = total / 2;
                let (begin, end) = if same == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pads[i] = begin;
                pads[i + 2] = end;
            }
            pads
        }
    })
}

/// dW of an ungrouped convolution as one GEMM, `Gᵀ · patches` over channels-last rows (see
/// the module notes). Both operands start with a channels-last view of an activation,
/// `Transpose(·, [0, 2, 3, 1])`, which the blocked-layout pass (`crate::blocked`) reads
/// straight from a blocked tensor.
fn weight_grad(ctx: &mut Ctx, g: &str, x: &str, o: i64, c: i64, w: &Window) -> String {
    let [kh, kw] = w.kernel;
    let [ho, wo] = w.output;
    let (hp, wp) = (
        w.input[0] + w.pads[0] + w.pads[2],
        w.input[1] + w.pads[1] + w.pads[3],
    );
    // Channels last: each spatial position is a row of C floats.
    let x_rows = ctx.b.transpose(x, &[0, 2, 3, 1]);
    let padded = pad_spatial_channels_last(ctx, &x_rows, w.pads);
    let patches = if kh * kw == 1 {
        // The input at the output positions, a strided Slice when the convolution skips some.
        let whole = w.strides == [1, 1] && (ho, wo) == (hp, wp);
        let taken = if whole {
            padded
        } else {
            let starts = ctx.b.constant(Tensor::i64s(&[0, 0]));
            let ends = ctx.b.constant(Tensor::i64s(&[
                (ho - 1) * w.strides[0] + 1,
                (wo - 1) * w.strides[1] + 1,
            ]));
            let axes = ctx.b.constant(Tensor::i64s(&[1, 2]));
            let steps = ctx.b.constant(Tensor::i64s(&w.strides));
            ctx.b
                .slice(&padded, &starts, &ends, Some(&axes), Some(&steps))
        };
        reshape(ctx.b, &taken, &[-1, c])
    } else {
        let rows = reshape(ctx.b, &padded, &[-1, hp * wp, c]);
        // Row index of every (output pixel, kernel offset) in one image.
        let mut positions = Vec::with_capacity((ho * wo * kh * kw) as usize);
        for y in 0..ho {
            for xo in 0..wo {
                for i in 0..kh {
                    for j in 0..kw {
                        let row = y * w.strides[0] + i * w.dilations[0];
                        let col = xo * w.strides[1] + j * w.dilations[1];
                        positions.push(row * wp + col);
                    }
                }
            }
        }
        let positions = ctx.b.constant(Tensor::i64(&[ho * wo, kh * kw], positions));
        let patches = ctx.b.gather(&rows, &positions, 1);
        reshape(ctx.b, &patches, &[-1, kh * kw * c])
    };
    let g_rows = ctx.b.transpose(g, &[0, 2, 3, 1]);
    let g_rows = reshape(ctx.b, &g_rows, &[-1, o]);
    let dw = ctx.b.gemm(&g_rows, &patches, None, &Gemm::A_TRANSPOSED);
    if kh * kw == 1 {
        // [O, C] is already OIHW's order: a reshape, not a copy.
        return reshape(ctx.b, &dw, &[o, c, 1, 1]);
    }
    let dw = reshape(ctx.b, &dw, &[o, kh, kw, c]);
    ctx.b.transpose(&dw, &[0, 3, 1, 2])
}

/// dW of a grouped convolution: per kernel offset, a strided Slice of the input and a
/// batched MatMul over the groups.
fn grouped_weight_grad(
    ctx: &mut Ctx,
    g: &str,
    x: &str,
    o: i64,
    c: i64,
    group: i64,
    w: &Window,
) -> String {
    let [kh, kw] = w.kernel;
    let [ho, wo] = w.output;
    // G as [G, O/G, N·Ho·Wo].
    let gt = ctx.b.transpose(g, &[1, 0, 2, 3]);
    let g2 = reshape(ctx.b, &gt, &[group, o / group, -1]);
    // X padded once, channels first: [C, N, Hp, Wp].
    let padded = pad_spatial(ctx, x, w.pads);
    let xt = ctx.b.transpose(&padded, &[1, 0, 2, 3]);
    let mut columns = Vec::new();
    for i in 0..kh {
        for j in 0..kw {
            let (top, left) = (i * w.dilations[0], j * w.dilations[1]);
            let whole = top == 0
                && left == 0
                && w.strides == [1, 1]
                && ho == w.input[0] + w.pads[0] + w.pads[2]
                && wo == w.input[1] + w.pads[1] + w.pads[3];
            let shifted = if whole {
                xt.clone()
            } else {
                let starts = ctx.b.constant(Tensor::i64s(&[top, left]));
                let ends = ctx.b.constant(Tensor::i64s(&[
                    top + (ho - 1) * w.strides[0] + 1,
                    left + (wo - 1) * w.strides[1] + 1,
                ]));
                let axes = ctx.b.constant(Tensor::i64s(&[2, 3]));
                let steps = ctx.b.constant(Tensor::i64s(&w.strides));
                ctx.b.slice(&xt, &starts, &ends, Some(&axes), Some(&steps))
            };
            // Per group: [O/g, N·Ho·Wo] × [N·Ho·Wo, C/g], batched over the groups.
            let x2 = reshape(ctx.b, &shifted, &[group, c, -1]);
            let x2t = ctx.b.transpose(&x2, &[0, 2, 1]);
            let tap = ctx.b.matmul(&g2, &x2t);
            columns.push(reshape(ctx.b, &tap, &[o, c, 1]));
        }
    }
    let stacked = if columns.len() == 1 {
        columns.remove(0)
    } else {
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        ctx.b.concat(&refs, 2)
    };
    reshape(ctx.b, &stacked, &[o, c, kh, kw])
}

/// A channels-last `x` (`[N, H, W, C]`) zero-padded by `pads` (top, left, bottom, right).
fn pad_spatial_channels_last(ctx: &mut Ctx, x: &str, pads: [i64; 4]) -> String {
    if pads.iter().all(|&p| p == 0) {
        return x.to_string();
    }
    let p = ctx.b.constant(Tensor::i64s(&[
        0, pads[0], pads[1], 0, 0, pads[2], pads[3], 0,
    ]));
    ctx.b.pad(x, &p)
}

/// `x` zero-padded by `pads` (top, left, bottom, right) on its spatial axes; `x` itself when
/// there is nothing to pad.
fn pad_spatial(ctx: &mut Ctx, x: &str, pads: [i64; 4]) -> String {
    if pads.iter().all(|&p| p == 0) {
        return x.to_string();
    }
    let p = ctx.b.constant(Tensor::i64s(&[
        0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3],
    ]));
    ctx.b.pad(x, &p)
}

use super::Gradient::{self, Missing, Rule};

/// Every operator of the family (`ortl_onnx::ops::conv` lists them too) and its gradient.
pub(super) const GRADIENTS: &[(&str, Gradient)] =
    &[("Conv", Rule(conv)), ("ConvTranspose", Missing)];
