//! Convolution, https://onnx.ai/onnx/operators/onnx__Conv.html (2-D; grouped and depthwise
//! included: dX is a grouped ConvTranspose, dW a batched MatMul over the groups).
//!
//! - dX is a ConvTranspose of G with the same weights, strides, pads and dilations, with
//!   `output_padding` restoring sizes a strided forward dropped. It costs about one forward.
//! - dW is computed as k_h·k_w GEMMs, one per kernel offset: dW[:, :, i, j] =
//!   G₂ · X₂(i, j)ᵀ where G₂ is G as [O, N·Ho·Wo] and X₂(i, j) the padded input shifted by
//!   (i·d, j·d) and strided, as [C, N·Ho·Wo]. Measured on ORT's CPU EP this costs 1–1.6
//!   forwards, where the textbook "convolution of X with G" costs 3–8 (docs/DESIGN.md).
//! - dB sums G over batch and space.

use ortl_onnx::Tensor;
use ortl_onnx::builder::{int, ints};

use crate::AutodiffError;
use crate::emit::{reduce_sum, reshape, transpose};
use crate::grad::Ctx;

type Grads = Result<Vec<Option<String>>, AutodiffError>;

pub fn conv(ctx: &mut Ctx, grads: &[Option<String>]) -> Grads {
    let g = grads[0]
        .clone()
        .ok_or_else(|| ctx.error("no gradient for the output"))?;
    let (x, w) = (ctx.input(0).to_string(), ctx.input(1).to_string());
    let x_dims = ctx.dims(&x)?;
    let w_dims = ctx.dims(&w)?;
    let y_dims = ctx.dims(ctx.output(0))?;
    if x_dims.len() != 4 {
        return Err(ctx.error("only 2-D convolutions are differentiated"));
    }
    let group = ctx.node.int("group").unwrap_or(1);
    if !matches!(
        ctx.node.attr("auto_pad"),
        None | Some(ortl_onnx::Attr::String(_))
    ) {
        return Err(ctx.error("unexpected auto_pad"));
    }
    let auto_pad = match ctx.node.attr("auto_pad") {
        Some(ortl_onnx::Attr::String(s)) if s != "NOTSET" => s.clone(),
        _ => "NOTSET".into(),
    };
    let (kh, kw) = (w_dims[2], w_dims[3]);
    let strides = ctx.node.ints("strides").map_or(vec![1, 1], <[i64]>::to_vec);
    let dilations = ctx
        .node
        .ints("dilations")
        .map_or(vec![1, 1], <[i64]>::to_vec);
    let pads = match auto_pad.as_str() {
        "NOTSET" => ctx.node.ints("pads").map_or(vec![0; 4], <[i64]>::to_vec),
        "VALID" => vec![0; 4],
        same => {
            // SAME_UPPER / SAME_LOWER: total padding so that out = ceil(in / stride).
            let mut pads = vec![0; 4];
            for i in 0..2 {
                let k = [kh, kw][i];
                let total = ((y_dims[i + 2] - 1) * strides[i] + (k - 1) * dilations[i] + 1
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
    };
    let (o, c) = (w_dims[0], w_dims[1]);
    let (ho, wo) = (y_dims[2], y_dims[3]);

    let dx = if ctx.needs[0] {
        let output_padding: Vec<i64> = (0..2)
            .map(|i| {
                let k = [kh, kw][i];
                x_dims[i + 2]
                    - ((y_dims[i + 2] - 1) * strides[i] + (k - 1) * dilations[i] + 1
                        - pads[i]
                        - pads[i + 2])
            })
            .collect();
        Some(ctx.b.op(
            "ConvTranspose",
            &[&g, &w],
            vec![
                ("strides", ints(&strides)),
                ("pads", ints(&pads)),
                ("dilations", ints(&dilations)),
                ("output_padding", ints(&output_padding)),
                ("kernel_shape", ints(&[kh, kw])),
                ("group", int(group)),
            ],
        ))
    } else {
        None
    };

    let dw = if ctx.needs[1] {
        // G as [O, N·Ho·Wo].
        let gt = transpose(ctx.b, &g, &[1, 0, 2, 3]);
        let g2 = if group == 1 {
            reshape(ctx.b, &gt, &[o, -1])
        } else {
            reshape(ctx.b, &gt, &[group, o / group, -1])
        };
        // X padded once, channels first: [C, N, Hp, Wp].
        let padded = if pads.iter().any(|&p| p != 0) {
            let p = ctx.b.constant(Tensor::i64s(&[
                0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3],
            ]));
            ctx.b.op("Pad", &[&x, &p], vec![])
        } else {
            x.clone()
        };
        let xt = transpose(ctx.b, &padded, &[1, 0, 2, 3]);
        let mut columns = Vec::new();
        for i in 0..kh {
            for j in 0..kw {
                let (top, left) = (i * dilations[0], j * dilations[1]);
                let whole = top == 0
                    && left == 0
                    && strides == [1, 1]
                    && ho == x_dims[2] + pads[0] + pads[2]
                    && wo == x_dims[3] + pads[1] + pads[3];
                let shifted = if whole {
                    xt.clone()
                } else {
                    let starts = ctx.b.constant(Tensor::i64s(&[top, left]));
                    let ends = ctx.b.constant(Tensor::i64s(&[
                        top + (ho - 1) * strides[0] + 1,
                        left + (wo - 1) * strides[1] + 1,
                    ]));
                    let axes = ctx.b.constant(Tensor::i64s(&[2, 3]));
                    let steps = ctx.b.constant(Tensor::i64s(&strides));
                    ctx.b
                        .op("Slice", &[&xt, &starts, &ends, &axes, &steps], vec![])
                };
                let tap = if group == 1 {
                    let x2 = reshape(ctx.b, &shifted, &[c, -1]);
                    ctx.b.op("Gemm", &[&g2, &x2], vec![("transB", int(1))])
                } else {
                    // Per group: [O/g, N·Ho·Wo] × [N·Ho·Wo, C/g], batched over the groups.
                    let x2 = reshape(ctx.b, &shifted, &[group, c, -1]);
                    let x2t = transpose(ctx.b, &x2, &[0, 2, 1]);
                    ctx.b.op("MatMul", &[&g2, &x2t], vec![])
                };
                columns.push(reshape(ctx.b, &tap, &[o, c, 1]));
            }
        }
        let stacked = if columns.len() == 1 {
            columns.remove(0)
        } else {
            let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
            ctx.b.op("Concat", &refs, vec![("axis", int(2))])
        };
        Some(reshape(ctx.b, &stacked, &[o, c, kh, kw]))
    } else {
        None
    };

    let mut out = vec![dx, dw];
    if ctx.node.inputs.len() > 2 {
        out.push(if ctx.needs[2] {
            Some(reduce_sum(ctx.b, &g, &[0, 2, 3], false))
        } else {
            None
        });
    }
    Ok(out)
}
