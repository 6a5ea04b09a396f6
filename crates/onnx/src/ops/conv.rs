//! Convolution, https://onnx.ai/onnx/operators/onnx__Conv.html and
//! https://onnx.ai/onnx/operators/onnx__ConvTranspose.html: N×C×spatial, a weight of the
//! same rank, the output size from kernel, strides, dilations and pads (or auto_pad), as
//! pooling windows (`pool`) compute it too.

use crate::OnnxError;
use crate::ir::Node;
use crate::ops::{Check, Infer, OpDef};
use crate::shapes::{Shape, TypedShape};

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("Conv")
        .inputs(2)
        .min_rank(3)
        .check(check_conv)
        .shape(windowed),
    OpDef::new("ConvTranspose")
        .inputs(2)
        .min_rank(3)
        .check(check_conv)
        .shape(windowed),
];

fn check_conv(cx: &Check) -> Result<(), OnnxError> {
    if cx.rank_of(1).is_some_and(|r| r != cx.rank()) {
        return Err(cx.node.error("weight rank differs from the input's"));
    }
    check_window(cx)
}

/// The window attributes (one value per spatial axis, pads two) and a kernel size to read.
pub(super) fn check_window(cx: &Check) -> Result<(), OnnxError> {
    let Check { node, inputs } = *cx;
    let rank = cx.rank();
    let spatial = rank - 2;
    for (name, len, min) in [
        ("kernel_shape", spatial, 1),
        ("strides", spatial, 1),
        ("dilations", spatial, 1),
        ("pads", 2 * spatial, 0),
        ("output_padding", spatial, 0),
    ] {
        if let Some(values) = node.ints(name)
            && (values.len() != len || values.iter().any(|&v| v < min || v > 1 << 20))
        {
            return Err(node.error(format!(
                "{name} {values:?}: expected {len} values of at least {min}"
            )));
        }
    }
    if node.ints("kernel_shape").is_none()
        && inputs
            .get(1)
            .copied()
            .flatten()
            .is_none_or(|w| w.shape.len() != rank)
    {
        return Err(node.error("no kernel_shape and no weight of the input's rank"));
    }
    Ok(())
}

/// The shape function of windowed operators (convolutions and pooling).
pub(super) fn windowed(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    Ok(vec![cx.same(window(
        cx.node,
        cx.x,
        cx.inputs.get(1).copied().flatten(),
    )?)])
}

/// Output spatial size of a convolution or pooling window (explicit pads or auto_pad).
pub(super) fn window(
    node: &Node,
    x: &TypedShape,
    weight: Option<&TypedShape>,
) -> Result<Shape, OnnxError> {
    let spatial = x.shape.len() - 2;
    let kernel: Vec<i64> = match node.ints("kernel_shape") {
        Some(k) => k.to_vec(),
        None => weight
            .ok_or_else(|| node.error("no kernel_shape and no weight"))?
            .shape[2..]
            .iter()
            .map(|d| d.unwrap_or(1))
            .collect(),
    };
    let strides = node
        .ints("strides")
        .map_or(vec![1; spatial], <[i64]>::to_vec);
    let dilations = node
        .ints("dilations")
        .map_or(vec![1; spatial], <[i64]>::to_vec);
    let pads = node
        .ints("pads")
        .map_or(vec![0; 2 * spatial], <[i64]>::to_vec);
    let auto_pad = match node.attr("auto_pad") {
        Some(crate::ir::Attr::String(s)) => s.as_str(),
        _ => "NOTSET",
    };
    let ceil = node.int("ceil_mode") == Some(1);
    let transpose = node.op == "ConvTranspose";
    let channels = match node.op.as_str() {
        "Conv" => weight.and_then(|w| w.shape[0]),
        "ConvTranspose" => weight
            .and_then(|w| w.shape[1].and_then(|c| c.checked_mul(node.int("group").unwrap_or(1)))),
        _ => x.shape[1],
    };
    let mut shape = vec![x.shape[0], channels];
    for i in 0..spatial {
        // A window wider than its padded input has no output: the input is below the
        // network's minimum size (integer division would otherwise round it up to 1).
        if !transpose
            && !auto_pad.starts_with("SAME")
            && let Some(n) = x.shape[i + 2]
        {
            let (begin, end) = if auto_pad == "VALID" {
                (0, 0)
            } else {
                (pads[i], pads[i + spatial])
            };
            let effective = (kernel[i] - 1)
                .saturating_mul(dilations[i])
                .saturating_add(1);
            if n.saturating_add(begin).saturating_add(end) < effective {
                return Err(node.error(format!(
                    "its {effective}-wide window is larger than its input, {n} wide with {} padding: the image is below the network's minimum size",
                    begin + end
                )));
            }
        }
        // Checked arithmetic: dimensions come from the file; overflow means unknown.
        let size = x.shape[i + 2].and_then(|n| {
            let (k, s, d) = (kernel[i], strides[i], dilations[i]);
            let (begin, end) = (pads[i], pads[i + spatial]);
            let effective = k.checked_sub(1)?.checked_mul(d)?.checked_add(1)?;
            if transpose {
                let extra = node.ints("output_padding").map_or(0, |p| p[i]);
                s.checked_mul(n.checked_sub(1)?)?
                    .checked_add(extra)?
                    .checked_add(effective)?
                    .checked_sub(begin)?
                    .checked_sub(end)
            } else if auto_pad.starts_with("SAME") {
                Some(n.checked_add(s - 1)? / s)
            } else if auto_pad == "VALID" {
                Some(n.checked_sub(effective)? / s + 1)
            } else {
                let span = n
                    .checked_add(begin)?
                    .checked_add(end)?
                    .checked_sub(effective)?;
                Some(if ceil {
                    // As PyTorch and ONNX Runtime: a last window that would start in the
                    // end padding is dropped.
                    let out = span.checked_add(s - 1)? / s + 1;
                    if (out - 1).checked_mul(s)? >= n.checked_add(begin)? {
                        out - 1
                    } else {
                        out
                    }
                } else {
                    span / s + 1
                })
            }
        });
        shape.push(size);
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use crate::builder::ints;
    use crate::ir::{DataType, Dim};
    use crate::shapes::infer;
    use crate::{GraphBuilder, Tensor};

    #[test]
    fn a_window_wider_than_its_padded_input_is_an_error_not_a_size_of_one() {
        let graph = |n: i64, pad: i64| {
            let mut b = GraphBuilder::new("g");
            let x = b.input(
                "x",
                DataType::Float,
                [1, 1, n, n].iter().map(|&d| Dim::Fixed(d)).collect(),
            );
            let w = b.param("w", Tensor::f32(&[1, 1, 3, 3], vec![0.0; 9]));
            let y = b.op(
                "Conv",
                &[&x, &w],
                vec![("strides", ints(&[2, 2])), ("pads", ints(&[pad; 4]))],
            );
            b.output(&y, DataType::Float, vec![]);
            b.finish()
        };
        let size = |n, pad| infer(&graph(n, pad)).map(|s| s["Conv_1"].shape[2]);
        assert_eq!(size(3, 0).unwrap(), Some(1));
        assert_eq!(size(5, 0).unwrap(), Some(2));
        // 2 + 0 < 3: no output, where (2 − 3) / 2 + 1 would have said 1.
        let err = size(2, 0).unwrap_err().to_string();
        assert!(
            err.contains("Conv_1") && err.contains("minimum size"),
            "{err}"
        );
        assert_eq!(size(1, 1).unwrap(), Some(1), "padding makes room");
    }
}
