//! Resampling, https://onnx.ai/onnx/operators/onnx__Resize.html: the output size from
//! constant sizes, or from scales in float32 as ONNX Runtime computes it. Upsample (opsets
//! 7–9) and Resize-10 become opset 17's Resize with their asymmetric coordinates; opset
//! 18's antialias, aspect-ratio policy and axes have no opset-17 form.

use crate::OnnxError;
use crate::fold::Rewire;
use crate::ir::{Attr, Graph, Node, Tensor};
use crate::ops::{Infer, OpDef};
use crate::opset::add_constant;
use crate::shapes::TypedShape;

pub(super) const OPS: &[OpDef] = &[
    OpDef::new("Resize")
        .since(10)
        .shape(resize)
        .rewire(resize_batch_target)
        .convert(convert_resize),
    OpDef::new("Upsample")
        .since(7)
        .until(9)
        .convert(convert_upsample),
];

fn resize(cx: &Infer) -> Result<Vec<TypedShape>, OnnxError> {
    let Infer { graph, node, x, .. } = *cx;
    let constant_input = |i: usize| {
        node.inputs
            .get(i)
            .filter(|s| !s.is_empty())
            .and_then(|name| graph.initializers.get(name))
            .filter(|t| !t.is_empty())
    };
    let shape = if let Some(sizes) = constant_input(3).and_then(|t| t.as_i64()) {
        sizes.iter().map(|&d| Some(d)).collect()
    } else if let Some(scales) = constant_input(2).and_then(|t| t.as_f32()) {
        x.shape
            .iter()
            .zip(scales)
            // In float32, as ONNX Runtime computes it.
            .map(|(d, &s)| d.map(|d| (s * d as f32) as i64))
            .collect()
    } else {
        return Err(node.error("scales or sizes must be a constant"));
    };
    Ok(vec![cx.same(shape)])
}

/// Sizes that are the batch followed by known sizes: scales that ONNX Runtime turns back
/// into exactly these sizes.
fn resize_batch_target(r: &mut Rewire) -> Option<()> {
    let (rest, input) = r.batch_target(3)?;
    if input.len() != rest.len() + 1 {
        return None;
    }
    let mut scales = vec![1.0f32];
    for (d, &out) in input[1..].iter().zip(&rest) {
        scales.push(scale_for((*d)?, out));
    }
    r.set_input(2, Tensor::f32(&[scales.len() as i64], scales));
    r.node.inputs.truncate(3);
    Some(())
}

/// The float32 scale nearest `out / input` for which `(scale · input) as i64 == out`, the
/// size ONNX Runtime computes from scales.
fn scale_for(input: i64, out: i64) -> f32 {
    let mut scale = out as f32 / input as f32;
    while ((scale * input as f32) as i64) < out {
        scale = f32::from_bits(scale.to_bits() + 1);
    }
    scale
}

fn convert_resize(_: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    if from == 10 {
        let mode = match node.attrs.remove("mode") {
            Some(Attr::String(m)) if m == "linear" => "linear",
            _ => "nearest",
        };
        node.inputs = vec![
            node.inputs[0].clone(),
            String::new(),
            node.inputs[1].clone(),
        ];
        asymmetric_resize(&mut node, mode);
    } else if from >= 18 {
        for (attr, default) in [
            ("antialias", Attr::Int(0)),
            ("keep_aspect_ratio_policy", Attr::String("stretch".into())),
        ] {
            if let Some(value) = node.attrs.remove(attr)
                && value != default
            {
                return Err(node.error(format!(
                    "Resize with {attr} {value:?} has no opset-17 form: re-export with opset 17"
                )));
            }
        }
        if node.attrs.contains_key("axes") {
            return Err(node.error("Resize with axes: re-export with opset 17"));
        }
    }
    Ok(vec![node])
}

fn convert_upsample(graph: &mut Graph, mut node: Node, _: i64) -> Result<Vec<Node>, OnnxError> {
    let scales = match node.attrs.remove("scales") {
        Some(Attr::Floats(s)) => {
            add_constant(graph, &node, "scales", Tensor::f32(&[s.len() as i64], s))
        }
        _ => node
            .inputs
            .get(1)
            .cloned()
            .ok_or_else(|| node.error("Upsample without scales"))?,
    };
    let mode = match node.attrs.remove("mode") {
        Some(Attr::String(m)) if m == "bilinear" || m == "linear" => "linear",
        _ => "nearest",
    };
    node.op = "Resize".into();
    node.inputs = vec![node.inputs[0].clone(), String::new(), scales];
    asymmetric_resize(&mut node, mode);
    Ok(vec![node])
}

/// Resize attributes for the pre-opset-11 semantics (output pixel i reads input i / scale).
fn asymmetric_resize(node: &mut Node, mode: &str) {
    node.attrs.insert("mode".into(), Attr::String(mode.into()));
    node.attrs.insert(
        "coordinate_transformation_mode".into(),
        Attr::String("asymmetric".into()),
    );
    if mode == "nearest" {
        node.attrs
            .insert("nearest_mode".into(), Attr::String("floor".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_reproduce_awkward_sizes() {
        for (input, out) in [(3, 7), (7, 3), (224, 299), (13, 26), (100, 1), (5, 5)] {
            let scale = scale_for(input, out);
            assert_eq!((scale * input as f32) as i64, out, "{input} → {out}");
            assert!((f64::from(scale) - out as f64 / input as f64).abs() < 1e-5);
        }
    }
}
