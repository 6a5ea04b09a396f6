//! The self-contained classifier: `image` (`uint8 [N,H,W,3]`) → preprocessing → backbone →
//! head → `probabilities` (`float32 [N,C]`), with class names, image size and
//! normalisation in the model's metadata, so any ONNX Runtime can use it alone.

use ortl_manifest::Task;
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, passes};
use serde::{Deserialize, Serialize};

use crate::heads::{HEAD_PREFIX, HeadOutput, build_head};
use crate::preprocess::preprocess;
use crate::{Backbone, Head};

/// Names of the classifier's input and output.
pub const IMAGE: &str = "image";
pub const PROBABILITIES: &str = "probabilities";
pub const LOGITS: &str = "logits";

/// Metadata keys (`metadata_props`) every ortl model carries.
pub mod keys {
    pub const CLASSES: &str = "ortl.classes";
    pub const HEIGHT: &str = "ortl.image_height";
    pub const WIDTH: &str = "ortl.image_width";
    pub const NORMALIZATION: &str = "ortl.normalization";
    pub const BACKBONE: &str = "ortl.backbone";
    /// Where the backbone's weights came from ([`crate::Weights`] as JSON).
    pub const WEIGHTS: &str = "ortl.backbone_weights";
    pub const HEAD: &str = "ortl.head";
    pub const ACTIVATION: &str = "ortl.activation";
    /// `multi-label` for a sigmoid per finding (the classes are findings); absent or
    /// `single-label` for one class per image.
    pub const TASK: &str = "ortl.task";
    pub const VERSION: &str = "ortl.version";
    /// The intensity window of the training tensors (written by ortl-train).
    pub const WINDOW: &str = "ortl.window";
    /// The resize filter of the training tensors (written by ortl-train).
    pub const RESIZE: &str = "ortl.resize";
    /// The epoch (1-based) whose weights a model file holds (written by ortl-train).
    pub const EPOCH: &str = "ortl.epoch";
    /// The backbone's last feature map `[N, C, h, w]`, which the head pools (Grad-CAM's
    /// default layer).
    pub const FEATURES: &str = "ortl.features";
}

/// What the classifier is for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierSpec {
    pub classes: Vec<String>,
    pub height: usize,
    pub width: usize,
    pub head: Head,
    /// Seed of the head's initial weights.
    pub seed: u64,
    /// One class per image (softmax, or the head's own activation), or findings (a sigmoid
    /// each); absent in specs from before multi-label training: single-label.
    #[serde(default)]
    pub task: Task,
}

/// Builds the inference classifier; returns it with the head's description, from which
/// the training graph adds dropout, batch statistics and penalties.
pub fn classifier(backbone: &Backbone, spec: &ClassifierSpec) -> (Model, HeadOutput) {
    let mut graph = backbone.graph.clone();
    let (mut input, mut features) = (backbone.input.clone(), backbone.features.clone());
    set_aside_own_names(&mut graph, &mut [&mut input, &mut features]);
    graph.inputs.retain(|i| i.name != input);
    graph.outputs.clear();
    let mut b = GraphBuilder::from_graph(graph);
    let n = Dim::Symbolic("N".into());
    let (h, w) = (spec.height as i64, spec.width as i64);
    let image = b.input(
        IMAGE,
        DataType::Uint8,
        vec![n.clone(), Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(3)],
    );
    let pixels = preprocess(&mut b, &image, backbone.normalization, backbone.layout);
    let head = build_head(
        &mut b,
        &features,
        backbone.channels,
        spec.classes.len(),
        &spec.head,
        spec.seed,
        spec.task,
    );
    let classes = spec.classes.len() as i64;
    b.output(
        &head.probabilities,
        DataType::Float,
        vec![n, Dim::Fixed(classes)],
    );
    let mut graph = b.finish();
    // The backbone read its own input name; it now reads the preprocessed pixels.
    passes::rename_value(&mut graph, &input, &pixels);
    passes::rename_value(&mut graph, &head.probabilities, PROBABILITIES);
    passes::rename_value(&mut graph, &head.logits, LOGITS);
    passes::toposort(&mut graph).expect("a backbone and head form a DAG");
    // An imported backbone's shape arithmetic, now that the image size is fixed.
    ortl_onnx::fold::fold(&mut graph);
    let mut head = head;
    head.probabilities = PROBABILITIES.into();
    head.logits = LOGITS.into();

    let mut model = Model::new(graph);
    let meta = &mut model.metadata;
    meta.insert(
        keys::CLASSES.into(),
        serde_json::to_string(&spec.classes).expect("strings serialise"),
    );
    meta.insert(keys::HEIGHT.into(), spec.height.to_string());
    meta.insert(keys::WIDTH.into(), spec.width.to_string());
    meta.insert(
        keys::NORMALIZATION.into(),
        backbone.normalization.to_string(),
    );
    meta.insert(keys::BACKBONE.into(), backbone.name.clone());
    meta.insert(
        keys::WEIGHTS.into(),
        serde_json::to_string(&backbone.weights).expect("weights serialise"),
    );
    meta.insert(keys::FEATURES.into(), features);
    meta.insert(keys::HEAD.into(), spec.head.to_string());
    meta.insert(
        keys::ACTIVATION.into(),
        serde_json::to_string(&head.activation)
            .expect("enum serialises")
            .trim_matches('"')
            .into(),
    );
    meta.insert(keys::TASK.into(), spec.task.to_string());
    meta.insert(keys::VERSION.into(), env!("CARGO_PKG_VERSION").into());
    model.doc = format!(
        "ortl classifier: {} backbone, {} head, {} classes; input uint8 [N,{},{},3] RGB, output probabilities [N,{}]",
        backbone.name, spec.head, classes, spec.height, spec.width, classes
    );
    (model, head)
}

/// Renames the values of an imported graph that carry the names the classifier gives its
/// own (exporters call their input `image` and their output `logits` too), keeping `names`
/// pointed at the same values; and its parameters named `head.*`, the prefix of the
/// classifier's head (timm keeps ConvNeXt's final LayerNorm and EfficientViT's last
/// convolution under `head.`: they belong to the backbone, and train with it).
fn set_aside_own_names(graph: &mut ortl_onnx::Graph, names: &mut [&mut String]) {
    let heads: Vec<String> = graph
        .initializers
        .keys()
        .filter(|name| name.starts_with(HEAD_PREFIX))
        .cloned()
        .collect();
    for name in heads {
        passes::rename_value(graph, &name, &format!("backbone.{name}"));
    }
    for own in [IMAGE, LOGITS, PROBABILITIES] {
        let taken = graph
            .nodes
            .iter()
            .flat_map(|n| n.inputs.iter().chain(&n.outputs))
            .chain(graph.inputs.iter().map(|v| &v.name))
            .chain(graph.initializers.keys())
            .any(|v| v == own);
        if taken {
            let aside = format!("{own}:backbone");
            passes::rename_value(graph, own, &aside);
            for name in names.iter_mut().filter(|name| name.as_str() == own) {
                **name = aside.clone();
            }
        }
    }
}

/// Makes any single-input image classifier self-contained the way ortl's own models are:
/// a `uint8 [N,H,W,3]` input named `image` with the preprocessing it expects in front
/// (layout and normalisation detected as for a pretrained import, or `normalize`), and
/// probabilities out (a Softmax is appended when the graph ends in raw logits). Returns the
/// model and a sentence saying what was assumed.
/// `size` (height, width) fixes an input whose height and width are dynamic.
pub fn wrap_foreign(
    model: Model,
    normalize: Option<crate::Normalization>,
    size: Option<(usize, usize)>,
) -> Result<(Model, String), String> {
    let mut model = model;
    let opset = model.opset().unwrap_or(ortl_onnx::OPSET);
    ortl_onnx::opset::convert(&mut model.graph, opset).map_err(|e| e.to_string())?;
    for (domain, version) in &mut model.opsets {
        if domain.is_empty() || domain == "ai.onnx" {
            *version = ortl_onnx::OPSET;
        }
    }
    let feeds: Vec<ortl_onnx::ValueInfo> = model.graph.feeds().cloned().collect();
    let [input] = feeds.as_slice() else {
        return Err(format!("expected one image input, found {}", feeds.len()));
    };
    let dims = input
        .dims()
        .filter(|d| d.len() == 4)
        .ok_or_else(|| format!("input '{}' is not a rank-4 image tensor", input.name))?;
    let layout = crate::import::image_layout(&model.graph, &input.name, &dims)?;
    let (h, w) = layout.height_width(&dims);
    let (h, w) = match (h.zip(w), size) {
        (Some(fixed), None) => fixed,
        (Some(fixed), Some((gh, gw))) if fixed == (gh as i64, gw as i64) => fixed,
        (Some((fh, fw)), Some((gh, gw))) => {
            return Err(format!(
                "the model's input is fixed at {fh}x{fw}, not the {gh}x{gw} given with --size; drop --size"
            ));
        }
        (None, Some((gh, gw))) => (gh as i64, gw as i64),
        (None, None) => {
            return Err(
                "the input's height and width are dynamic; give the size to run it at with --size HxW (e.g. --size 224x224)"
                    .into(),
            );
        }
    };
    let (normalization, reason) = match normalize {
        Some(n) => (n, "given with --normalize".to_string()),
        None => crate::import::detect_normalization(&model.producer_name, layout),
    };
    let output = model
        .graph
        .outputs
        .first()
        .cloned()
        .ok_or("the model has no output")?;
    let ends_in_probabilities = model
        .graph
        .producer(&output.name)
        .is_some_and(|n| matches!(n.op.as_str(), "Softmax" | "Sigmoid"));
    let mut graph = model.graph.clone();
    // The new uint8 input takes the name `image`; move an original of that name aside.
    let original = format!("{}:float", input.name);
    passes::rename_value(&mut graph, &input.name, &original);
    graph.inputs.retain(|i| i.name != original);
    let mut b = GraphBuilder::from_graph(graph);
    let n = Dim::Symbolic("N".into());
    let image = b.input(
        IMAGE,
        DataType::Uint8,
        vec![n.clone(), Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(3)],
    );
    let pixels = preprocess(&mut b, &image, normalization, layout);
    let probabilities = if ends_in_probabilities {
        output.name.clone()
    } else {
        b.softmax(&output.name, -1)
    };
    let mut graph = b.finish();
    passes::rename_value(&mut graph, &original, &pixels);
    passes::rename_value(&mut graph, &probabilities, PROBABILITIES);
    graph.outputs = vec![ortl_onnx::ValueInfo {
        name: PROBABILITIES.into(),
        dtype: DataType::Float,
        shape: None,
    }];
    passes::toposort(&mut graph).map_err(|e| e.to_string())?;
    // With the size fixed, the exporter's shape arithmetic folds and the class count
    // follows from shape inference when the file does not state it.
    ortl_onnx::fold::fold(&mut graph);
    let classes = output
        .dims()
        .and_then(|d| d.get(1).copied().flatten())
        .or_else(|| {
            ortl_onnx::shapes::shape_of(&graph, PROBABILITIES)
                .and_then(|s| s.get(1).copied().flatten())
        })
        .map_or(Dim::Unknown, Dim::Fixed);
    graph.outputs = vec![ortl_onnx::ValueInfo::new(
        PROBABILITIES,
        DataType::Float,
        vec![n, classes],
    )];
    let mut wrapped = Model { graph, ..model };
    wrapped.metadata.insert(keys::HEIGHT.into(), h.to_string());
    wrapped.metadata.insert(keys::WIDTH.into(), w.to_string());
    wrapped
        .metadata
        .insert(keys::NORMALIZATION.into(), normalization.to_string());
    let how = format!(
        "{:?} input {h}x{w}, normalisation {normalization} ({reason}){}",
        layout,
        if ends_in_probabilities {
            ""
        } else {
            ", softmax appended to its logits"
        }
    );
    Ok((wrapped, how))
}
