//! Bringing an imported graph to ortl's opset ([`crate::OPSET`]). ortl joins an imported
//! backbone to its own preprocessing and head in one opset-17 model, so nodes whose
//! signature changed between opset 7 and 22 are rewritten to their opset-17 form: attributes
//! that became inputs (Squeeze/Unsqueeze/Split/ReduceSum axes in 13, Clip bounds and Pad in
//! 11, Slice in 10) and back (the Reduce* axes input of 18), Upsample and Resize-10 as
//! Resize with their asymmetric coordinates, Dropout as Identity (these are inference
//! graphs), and operators newer than 17 (Gelu, Mish) as the ops they are made of.
//! Specs: https://onnx.ai/onnx/operators/ (each operator's "changelog").

use crate::OnnxError;
use crate::ir::{Attr, Graph, Node, Tensor};

/// Rewrites every default-domain node of `graph`, written for opset `from`, to its opset-17
/// form. Returns how many nodes changed.
pub fn convert(graph: &mut Graph, from: i64) -> Result<usize, OnnxError> {
    let nodes = std::mem::take(&mut graph.nodes);
    let mut out = Vec::with_capacity(nodes.len());
    let mut changed = 0;
    for node in nodes {
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            out.push(node);
            continue;
        }
        let before = node.clone();
        let converted = convert_node(graph, node, from)?;
        if converted.len() != 1 || converted[0] != before {
            changed += 1;
        }
        out.extend(converted);
    }
    graph.nodes = out;
    Ok(changed)
}

/// A constant added for `node`'s `what`, named after the node.
fn add_constant(graph: &mut Graph, node: &Node, what: &str, tensor: Tensor) -> String {
    let mut name = format!("{}/{what}", node.name);
    while graph.initializers.contains_key(&name) {
        name.push('_');
    }
    graph.initializers.insert(name.clone(), tensor);
    name
}

/// Moves an ints attribute to input `index` (padding skipped optional inputs with "").
fn attr_to_input(graph: &mut Graph, node: &mut Node, attr: &str, index: usize) {
    if let Some(Attr::Ints(values)) = node.attrs.remove(attr) {
        let name = add_constant(graph, node, attr, Tensor::i64s(&values));
        set_input(node, index, name);
    }
}

fn set_input(node: &mut Node, index: usize, name: String) {
    if node.inputs.len() <= index {
        node.inputs.resize(index + 1, String::new());
    }
    node.inputs[index] = name;
}

fn convert_node(graph: &mut Graph, mut node: Node, from: i64) -> Result<Vec<Node>, OnnxError> {
    let op = node.op.clone();
    match op.as_str() {
        "Squeeze" | "Unsqueeze" if from < 13 => attr_to_input(graph, &mut node, "axes", 1),
        "ReduceSum" if from < 13 => attr_to_input(graph, &mut node, "axes", 1),
        "Split" if from < 13 => attr_to_input(graph, &mut node, "split", 1),
        // Opset 17's Split divides the axis equally among its outputs, as num_outputs does
        // when the axis divides evenly (shape inference refuses an uneven one).
        "Split" if from >= 18 => {
            node.attrs.remove("num_outputs");
        }
        "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1" | "ReduceL2"
        | "ReduceLogSum" | "ReduceLogSumExp" | "ReduceSumSquare"
            if from >= 18 =>
        {
            let noop = node.attrs.remove("noop_with_empty_axes") == Some(Attr::Int(1));
            match node.inputs.get(1).filter(|s| !s.is_empty()).cloned() {
                Some(name) => {
                    let axes = graph
                        .initializers
                        .get(&name)
                        .and_then(Tensor::as_i64)
                        .ok_or_else(|| node.error("axes must be a constant"))?
                        .to_vec();
                    node.inputs.truncate(1);
                    node.attrs.insert("axes".into(), Attr::Ints(axes));
                }
                None if noop => {
                    node.op = "Identity".into();
                    node.attrs.clear();
                }
                None => {}
            }
        }
        "Clip" if from < 11 => {
            let min = node.attrs.remove("min");
            let max = node.attrs.remove("max");
            for (index, bound) in [(1, min), (2, max)] {
                if let Some(Attr::Float(v)) = bound {
                    let name =
                        add_constant(graph, &node, &format!("bound{index}"), Tensor::scalar(v));
                    set_input(&mut node, index, name);
                }
            }
        }
        "Pad" if from < 11 => {
            let pads = match node
                .attrs
                .remove("pads")
                .or_else(|| node.attrs.remove("paddings"))
            {
                Some(Attr::Ints(p)) => p,
                _ => return Err(node.error("Pad without pads")),
            };
            let value = match node.attrs.remove("value") {
                Some(Attr::Float(v)) => v,
                _ => 0.0,
            };
            let pads = add_constant(graph, &node, "pads", Tensor::i64s(&pads));
            set_input(&mut node, 1, pads);
            if value != 0.0 {
                let value = add_constant(graph, &node, "value", Tensor::scalar(value));
                set_input(&mut node, 2, value);
            }
        }
        "Pad" if from >= 18 && node.inputs.get(3).is_some_and(|s| !s.is_empty()) => {
            return Err(node.error("Pad with an axes input: re-export with opset 17"));
        }
        "Slice" if from < 10 => {
            attr_to_input(graph, &mut node, "starts", 1);
            attr_to_input(graph, &mut node, "ends", 2);
            attr_to_input(graph, &mut node, "axes", 3);
        }
        "Dropout" => {
            node.op = "Identity".into();
            node.attrs.clear();
            node.inputs.truncate(1);
            node.outputs.truncate(1);
        }
        "BatchNormalization" => {
            if node.int("spatial") == Some(0) {
                return Err(node.error("BatchNormalization with spatial=0 is not supported"));
            }
            if node.int("training_mode") == Some(1) {
                return Err(node
                    .error("BatchNormalization in training mode: export the model in eval mode"));
            }
            for attr in ["spatial", "is_test", "consumed_inputs", "training_mode"] {
                node.attrs.remove(attr);
            }
            node.outputs.truncate(1);
        }
        "Upsample" => {
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
        }
        "Resize" if from == 10 => {
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
        }
        "Resize" if from >= 18 => {
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
        "AveragePool" if from >= 19 => {
            if let Some(Attr::Ints(d)) = node.attrs.remove("dilations")
                && d.iter().any(|&d| d != 1)
            {
                return Err(node.error("a dilated AveragePool has no opset-17 form"));
            }
        }
        "Cast" if from >= 19 => {
            node.attrs.remove("saturate");
        }
        "Gelu" => return Ok(gelu(graph, node)),
        "Mish" => return Ok(mish(node)),
        "If" | "Loop" | "Scan" => {
            return Err(node.error(
                "control flow inside a backbone is not supported: export a plain feed-forward graph",
            ));
        }
        _ => {}
    }
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

/// A node of the decomposition of `node`, named after it.
fn part(node: &Node, i: usize, op: &str, inputs: &[&str], output: &str) -> Node {
    Node {
        name: format!("{}/{op}{i}", node.name),
        op: op.into(),
        domain: String::new(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.into()],
        attrs: Default::default(),
    }
}

/// Gelu (opset 20): ½x(1 + erf(x/√2)), or with `approximate="tanh"`
/// ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
fn gelu(graph: &mut Graph, node: Node) -> Vec<Node> {
    let x = node.inputs[0].clone();
    let y = node.outputs[0].clone();
    let tmp = |i: usize| format!("{}/t{i}", node.name);
    let tanh = matches!(node.attr("approximate"), Some(Attr::String(a)) if a == "tanh");
    let mut c = |what: &str, v: f32| add_constant(graph, &node, what, Tensor::scalar(v));
    let half = c("half", 0.5);
    let one = c("one", 1.0);
    let mut nodes = Vec::new();
    let inner = if tanh {
        let k = c("k", 0.044_715);
        let s = c("sqrt_2_over_pi", (2.0 / std::f32::consts::PI).sqrt());
        nodes.push(part(&node, 0, "Mul", &[&x, &x], &tmp(0)));
        nodes.push(part(&node, 1, "Mul", &[&tmp(0), &x], &tmp(1)));
        nodes.push(part(&node, 2, "Mul", &[&tmp(1), &k], &tmp(2)));
        nodes.push(part(&node, 3, "Add", &[&x, &tmp(2)], &tmp(3)));
        nodes.push(part(&node, 4, "Mul", &[&tmp(3), &s], &tmp(4)));
        nodes.push(part(&node, 5, "Tanh", &[&tmp(4)], &tmp(5)));
        tmp(5)
    } else {
        let r = c("inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2);
        nodes.push(part(&node, 0, "Mul", &[&x, &r], &tmp(0)));
        nodes.push(part(&node, 1, "Erf", &[&tmp(0)], &tmp(1)));
        tmp(1)
    };
    nodes.push(part(&node, 6, "Add", &[&inner, &one], &tmp(6)));
    nodes.push(part(&node, 7, "Mul", &[&x, &half], &tmp(7)));
    nodes.push(part(&node, 8, "Mul", &[&tmp(7), &tmp(6)], &y));
    nodes
}

/// Mish (opset 18): x·tanh(softplus(x)).
fn mish(node: Node) -> Vec<Node> {
    let x = node.inputs[0].clone();
    let t = |i: usize| format!("{}/t{i}", node.name);
    vec![
        part(&node, 0, "Softplus", &[&x], &t(0)),
        part(&node, 1, "Tanh", &[&t(0)], &t(1)),
        part(&node, 2, "Mul", &[&x, &t(1)], &node.outputs[0]),
    ]
}
