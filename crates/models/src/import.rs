//! Importing a pretrained classifier as a backbone: find its pooled-feature tensor (the
//! input of the global pooling that feeds the final classifier), cut the graph there, and
//! work out the input layout, size and expected normalisation.
//!
//! Handles torchvision exports (BatchNorm folded into Conv or kept), the ONNX model zoo's
//! ResNet50 v1/v2 layouts (GlobalAveragePool → Flatten/Reshape → Gemm), and NHWC Keras
//! exports via tf2onnx (ReduceMean over axes 1,2 → MatMul/Add); NHWC feature maps are
//! transposed to NCHW so every head sees the same layout.

use std::path::Path;

use ortl_onnx::builder::ints;
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, Node, OnnxError, ValueInfo, io, passes};

use crate::classifier::keys;
use crate::{Backbone, Layout, Normalization};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("{}: {message}", path.display())]
    Cut {
        path: std::path::PathBuf,
        message: String,
    },
}

/// Opsets whose operators ortl's graph code knows.
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=22;

/// Loads `path` and cuts it into a backbone; `normalize` overrides the detected
/// normalisation.
pub fn import(path: &Path, normalize: Option<Normalization>) -> Result<Backbone, ImportError> {
    let model = io::load(path)?;
    let name = path
        .file_stem()
        .map_or_else(|| "imported".into(), |s| s.to_string_lossy().into_owned());
    cut(model, &name, normalize).map_err(|message| ImportError::Cut {
        path: path.into(),
        message,
    })
}

/// The cut itself, on an in-memory model.
pub fn cut(model: Model, name: &str, normalize: Option<Normalization>) -> Result<Backbone, String> {
    let opset = model.opset().ok_or("no default-domain opset import")?;
    if !OPSETS.contains(&opset) {
        return Err(format!(
            "opset {opset} is outside the supported {}..={}; re-export with opset 17",
            OPSETS.start(),
            OPSETS.end()
        ));
    }
    let mut graph = model.graph;
    ortl_onnx::opset::convert(&mut graph, opset).map_err(|e| e.to_string())?;
    passes::toposort(&mut graph).map_err(|e| e.to_string())?;
    // A classifier ortl exported carries its preprocessing and says which in its metadata:
    // start at the preprocessed pixels, so the new classifier's preprocessing replaces it.
    let own = match model.metadata.get(keys::NORMALIZATION) {
        Some(text) => {
            let normalization: Normalization = text
                .parse()
                .map_err(|e| format!("metadata {}: {e}", keys::NORMALIZATION))?;
            strip_ortl_preprocessing(&mut graph)?;
            Some(normalization)
        }
        None => None,
    };
    let feeds: Vec<ValueInfo> = graph.feeds().cloned().collect();
    let image = match feeds.as_slice() {
        [one] => one.clone(),
        [] => return Err("the graph has no input to feed images to".into()),
        many => {
            let names: Vec<&str> = many.iter().map(|v| v.name.as_str()).collect();
            return Err(format!(
                "expected one image input, found {}: {}",
                many.len(),
                names.join(", ")
            ));
        }
    };
    let dims = image
        .dims()
        .filter(|d| d.len() == 4)
        .ok_or_else(|| format!("input '{}' is not a rank-4 image tensor", image.name))?;
    let layout = match (dims[1], dims[3]) {
        (Some(3), _) => Layout::Nchw,
        (_, Some(3)) => Layout::Nhwc,
        _ => {
            return Err(format!(
                "input '{}' has shape {dims:?}: neither [N,3,H,W] nor [N,H,W,3]",
                image.name
            ));
        }
    };
    let (h, w) = match layout {
        Layout::Nchw => (dims[2], dims[3]),
        Layout::Nhwc => (dims[1], dims[2]),
    };
    let size = h
        .zip(w)
        .filter(|&(h, w)| h > 0 && w > 0)
        .map(|(h, w)| (h as usize, w as usize));

    let pool = find_pool(&graph).ok_or_else(|| {
        let ops: Vec<&str> = graph.nodes.iter().rev().take(6).map(|n| n.op.as_str()).collect();
        format!(
            "found no global pooling or flatten feeding a classifier (looked for GlobalAveragePool, ReduceMean/AveragePool over the spatial axes, or Flatten, followed by Gemm or MatMul); the graph ends with {}",
            ops.into_iter().rev().collect::<Vec<_>>().join(" → ")
        )
    })?;
    let feature_layout = pool.layout;
    // The classifier's input width is the channel count after global pooling; after a
    // flatten (VGG: 512·7·7) it is not, so the feature map's own shape decides when known.
    let inferred = ortl_onnx::shapes::shape_of(&graph, &pool.features)
        .filter(|s| s.len() == 4)
        .and_then(|s| match feature_layout {
            Layout::Nchw => s[1],
            Layout::Nhwc => s[3],
        });
    let channels = inferred.map_or(pool.channels, |c| c as usize);
    let mut graph_out = graph;
    graph_out.outputs = vec![ValueInfo {
        name: pool.features.clone(),
        dtype: DataType::Float,
        shape: None,
    }];
    passes::prune(&mut graph_out);
    let mut b = GraphBuilder::from_graph(graph_out);
    let features = if feature_layout == Layout::Nhwc {
        b.scoped("import", |b| {
            b.op(
                "Transpose",
                &[&pool.features],
                vec![("perm", ints(&[0, 3, 1, 2]))],
            )
        })
    } else {
        pool.features.clone()
    };
    let mut graph = b.finish();
    let n = Dim::Symbolic("N".into());
    graph.outputs = vec![ValueInfo::new(
        &features,
        DataType::Float,
        vec![n, Dim::Fixed(channels as i64), Dim::Unknown, Dim::Unknown],
    )];
    passes::validate(&graph).map_err(|e| e.to_string())?;

    let (normalization, normalization_reason) = match (normalize, own) {
        (Some(n), _) => (n, "given with --normalize".to_string()),
        (None, Some(n)) => (n, "an ortl model: from its metadata".to_string()),
        (None, None) => detect_normalization(&model.producer_name, layout),
    };
    Ok(Backbone {
        name: name.into(),
        graph,
        input: image.name,
        layout,
        normalization,
        normalization_reason,
        features,
        channels,
        size,
    })
}

/// Replaces an ortl classifier's `uint8` image input and the preprocessing nodes after it
/// (scope `preprocess/`) by a float input at the preprocessed pixels, in the layout the
/// preprocessing produced.
fn strip_ortl_preprocessing(graph: &mut ortl_onnx::Graph) -> Result<(), String> {
    let in_scope = |name: &str| name.starts_with("preprocess/");
    let last = graph
        .nodes
        .iter()
        .filter(|n| in_scope(&n.name))
        .find(|n| graph.consumers(&n.outputs[0]).any(|c| !in_scope(&c.name)))
        .ok_or("an ortl model without its preprocessing nodes")?;
    let image = graph
        .inputs
        .iter()
        .find(|i| i.name == crate::classifier::IMAGE)
        .and_then(|i| i.dims())
        .filter(|d| d.len() == 4)
        .ok_or("an ortl model without its uint8 [N,H,W,3] image input")?;
    let n = Dim::Symbolic("N".into());
    let fixed = |d: Option<i64>| d.map_or(Dim::Unknown, Dim::Fixed);
    let shape = if last.op == "Transpose" {
        vec![n, Dim::Fixed(3), fixed(image[1]), fixed(image[2])]
    } else {
        vec![n, fixed(image[1]), fixed(image[2]), Dim::Fixed(3)]
    };
    let pixels = ValueInfo::new(&last.outputs[0], DataType::Float, shape);
    passes::start_at(graph, pixels);
    Ok(())
}

/// A classifier's global pooling, found by [`find_pool`].
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// The feature map the pooling reads.
    pub features: String,
    pub layout: Layout,
    pub channels: usize,
}

/// The last global pooling whose result reaches a Gemm/MatMul classifier; failing that, the
/// last Flatten of a feature map into one (VGG-style classifiers without global pooling).
pub fn find_pool(graph: &ortl_onnx::Graph) -> Option<Pool> {
    let pooled = graph.nodes.iter().rev().find_map(|node| {
        let layout = pooling_layout(graph, node)?;
        let channels = classifier_inputs(graph, &node.outputs[0], 4)?;
        Some(Pool {
            features: node.inputs[0].clone(),
            layout,
            channels,
        })
    });
    pooled.or_else(|| {
        graph.nodes.iter().rev().find_map(|node| {
            if node.op != "Flatten" {
                return None;
            }
            let channels = classifier_inputs(graph, &node.outputs[0], 4)?;
            Some(Pool {
                features: node.inputs.first()?.clone(),
                layout: Layout::Nchw,
                channels,
            })
        })
    })
}

/// If `node` averages over the spatial axes of a feature map, the map's layout.
fn pooling_layout(graph: &ortl_onnx::Graph, node: &Node) -> Option<Layout> {
    match node.op.as_str() {
        "GlobalAveragePool" => Some(Layout::Nchw),
        "ReduceMean" => {
            let axes: Vec<i64> = match node.ints("axes") {
                Some(axes) => axes.to_vec(),
                None => graph
                    .initializers
                    .get(node.inputs.get(1)?)?
                    .as_i64()?
                    .to_vec(),
            };
            let mut axes: Vec<i64> = axes
                .into_iter()
                .map(|a| if a < 0 { a + 4 } else { a })
                .collect();
            axes.sort();
            match axes.as_slice() {
                [2, 3] => Some(Layout::Nchw),
                [1, 2] => Some(Layout::Nhwc),
                _ => None,
            }
        }
        // An AveragePool whose window covers the map acts as global pooling in old exports.
        "AveragePool" => Some(Layout::Nchw),
        _ => None,
    }
}

/// Follows shape-only ops from `value` to a Gemm/MatMul and returns its input features.
fn classifier_inputs(graph: &ortl_onnx::Graph, value: &str, depth: usize) -> Option<usize> {
    if depth == 0 {
        return None;
    }
    graph
        .consumers(value)
        .find_map(|next| match next.op.as_str() {
            // BatchNormalization: Keras-style heads normalise the pooled features first.
            "Flatten" | "Reshape" | "Squeeze" | "Identity" | "Dropout" | "Transpose"
            | "BatchNormalization" => classifier_inputs(graph, &next.outputs[0], depth - 1),
            "Gemm" => {
                let weight = graph.initializers.get(next.inputs.get(1)?)?;
                let trans_b = next.int("transB").unwrap_or(0) == 1;
                weight
                    .dims
                    .get(if trans_b { 1 } else { 0 })
                    .map(|&d| d as usize)
            }
            "MatMul" => graph
                .initializers
                .get(next.inputs.get(1)?)?
                .dims
                .first()
                .map(|&d| d as usize),
            _ => None,
        })
}

/// Normalisation a file's producer implies: PyTorch and the model zoo use ImageNet mean/std;
/// a Keras ResNet exported with tf2onnx expects caffe-style input.
pub fn detect_normalization(producer: &str, layout: Layout) -> (Normalization, String) {
    let producer_lower = producer.to_ascii_lowercase();
    if producer_lower.contains("tf2onnx") || producer_lower.contains("keras") {
        (
            Normalization::Caffe,
            format!(
                "producer '{producer}' (Keras): caffe-style, as keras.applications.resnet50; override with --normalize"
            ),
        )
    } else if layout == Layout::Nhwc {
        (
            Normalization::Caffe,
            format!(
                "NHWC input from producer '{producer}' suggests Keras: caffe-style; override with --normalize"
            ),
        )
    } else {
        (
            Normalization::ImageNet,
            format!(
                "producer '{producer}': ImageNet mean/std (torchvision, model zoo); override with --normalize"
            ),
        )
    }
}
