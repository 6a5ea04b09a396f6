//! Importing a pretrained classifier as a backbone: bring the graph to ortl's opset, find
//! its pooled-feature tensor by graph analysis (the input of the last global pooling whose
//! result feeds only the classifier; see [`find_pool`]) or take the tensor the user names,
//! cut the graph there, and work out the input layout, size and expected normalisation.
//!
//! Transformers have no feature map to pool: their classifier reads the class token (a
//! Gather of token 0, or a Slice `[0:1]` squeezed) or the mean over the token axis, often
//! through a LayerNorm ([`find_embedding`]); that embedding `[N, C]` is the cut. A
//! LayerNorm or BatchNorm between a CNN's pooling and its classifier (ConvNeXt) is
//! pretrained too, so the cut is after it, at the normalised embedding.
//!
//! Exporters differ in how the pooled features reach the logits (GlobalAveragePool →
//! Flatten, a Shape-computed Reshape or Squeeze → Gemm/MatMul; ReduceMean over H, W → 1×1
//! Conv; NHWC via tf2onnx) and in whether BatchNorm is folded; the analysis does not depend
//! on those forms. NHWC feature maps are transposed to NCHW so every head sees one layout;
//! an `[N, C]` embedding becomes a 1×1 map.

use std::collections::HashSet;
use std::path::Path;

use ortl_onnx::{
    Attr, DataType, Dim, Graph, GraphBuilder, Model, Node, OnnxError, Tensor, ValueInfo, io, passes,
};

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

/// Loads `path` and cuts it into a backbone: at the named tensor `features` when given
/// (pooled by `pool` when it holds tokens), else where graph analysis finds the pooled
/// features; `normalize` overrides the detected normalisation.
pub fn import(
    path: &Path,
    normalize: Option<Normalization>,
    features: Option<&str>,
    pool: Option<TokenPool>,
) -> Result<Backbone, ImportError> {
    let model = io::load(path)?;
    let name = path
        .file_stem()
        .map_or_else(|| "imported".into(), |s| s.to_string_lossy().into_owned());
    let mut backbone =
        cut_at(model, &name, normalize, features, pool).map_err(|message| ImportError::Cut {
            path: path.into(),
            message,
        })?;
    backbone.weights = crate::backbone::Weights::of_file(path).map_err(|source| {
        ImportError::Onnx(OnnxError::Io {
            path: path.into(),
            source,
        })
    })?;
    Ok(backbone)
}

/// The cut at the pooled features graph analysis finds, on an in-memory model.
pub fn cut(model: Model, name: &str, normalize: Option<Normalization>) -> Result<Backbone, String> {
    cut_at(model, name, normalize, None, None)
}

/// How `--pool` reduces a token tensor `[N, T, C]` to the embedding `[N, C]` the head reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenPool {
    /// The class token, token 0 (ViT, DeiT, DINOv2).
    Cls,
    /// The mean over all T tokens (name the patch tokens alone to leave a class token out,
    /// as timm's `global_pool='avg'` does).
    Mean,
}

/// Constant nodes holding a tensor become initializers: torch.export writes axes and
/// shapes as Constant nodes, and opset conversion, shape inference and the cut's analysis
/// read constant inputs from initializers.
fn constants_as_initializers(graph: &mut Graph) {
    let initializers = &mut graph.initializers;
    graph
        .nodes
        .retain(|node| match (node.op.as_str(), node.attr("value")) {
            ("Constant", Some(Attr::Tensor(tensor))) if node.domain.is_empty() => {
                initializers.insert(node.outputs[0].clone(), tensor.clone());
                false
            }
            _ => true,
        });
}

/// PyTorch's exporters keep one initializer for tensors that happen to be equal (a freshly
/// initialised BatchNorm's ones and zeros, across layers): `torch.onnx.export` forwards it
/// to the others through Identity nodes, torch.export feeds the one name to every user.
/// Each use gets its own initializer again, so parameters that were merely equal train
/// apart and a statistic that equals some layer's scale stays a statistic. (Weights tied
/// on purpose would be untied too; image backbones do not tie them.)
fn separate_deduplicated_initializers(graph: &mut Graph) {
    // In topological order, so a chain of Identities resolves front to back.
    let nodes = std::mem::take(&mut graph.nodes);
    for node in nodes {
        let forwarded = (node.op == "Identity")
            .then(|| graph.initializers.get(&node.inputs[0]).cloned())
            .flatten();
        match forwarded {
            Some(tensor) => {
                graph.initializers.insert(node.outputs[0].clone(), tensor);
            }
            None => graph.nodes.push(node),
        }
    }
    // The first user keeps the name; later ones read a copy named after themselves.
    let mut used = HashSet::new();
    for node in &mut graph.nodes {
        for (slot, input) in node.inputs.iter_mut().enumerate() {
            let Some(tensor) = graph.initializers.get(input.as_str()) else {
                continue;
            };
            if tensor.dtype != DataType::Float || tensor.numel() <= 1 || used.insert(input.clone())
            {
                continue;
            }
            let tensor = tensor.clone();
            let stem = if node.name.is_empty() {
                input.clone()
            } else {
                node.name.clone()
            };
            let mut copy = format!("{stem}:{slot}");
            for n in 1.. {
                if !graph.initializers.contains_key(&copy) {
                    break;
                }
                copy = format!("{stem}:{slot}.{n}");
            }
            graph.initializers.insert(copy.clone(), tensor);
            *input = copy;
        }
    }
}

/// The cut at the tensor named `features` (a feature map `[N,C,h,w]`, `[N,h,w,C]` for an
/// NHWC model, an embedding `[N,C]`, or tokens `[N,T,C]` pooled by `pool`), or where graph
/// analysis finds the pooled features.
pub fn cut_at(
    model: Model,
    name: &str,
    normalize: Option<Normalization>,
    features: Option<&str>,
    pool: Option<TokenPool>,
) -> Result<Backbone, String> {
    if let (None, Some(pool)) = (features, pool) {
        let pool = clap::ValueEnum::to_possible_value(&pool).expect("every variant has a name");
        return Err(format!(
            "--pool {} pools a token tensor [N, T, C]; name it with --features NAME",
            pool.get_name()
        ));
    }
    let opset = model.opset().ok_or("no default-domain opset import")?;
    if !OPSETS.contains(&opset) {
        return Err(format!(
            "opset {opset} is outside the supported {}..={}; re-export with opset 17",
            OPSETS.start(),
            OPSETS.end()
        ));
    }
    let mut graph = model.graph;
    // Shapes an exporter recorded for intermediate values hold at the size it traced
    // (torch.export writes them all); training at another size would contradict them, and
    // ortl infers every shape itself.
    graph.value_info.clear();
    constants_as_initializers(&mut graph);
    ortl_onnx::opset::convert(&mut graph, opset).map_err(|e| e.to_string())?;
    passes::toposort(&mut graph).map_err(|e| e.to_string())?;
    separate_deduplicated_initializers(&mut graph);
    // A classifier ortl exported carries its preprocessing and says which in its metadata:
    // start at the preprocessed pixels, so the new classifier's preprocessing replaces it.
    let own = match model.metadata.get(keys::NORMALIZATION) {
        Some(text) => {
            let normalization = <Normalization as clap::ValueEnum>::from_str(text, false)
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
    let layout = image_layout(&graph, &image.name, &dims)?;
    let (h, w) = layout.height_width(&dims);
    let size = h
        .zip(w)
        .filter(|&(h, w)| h > 0 && w > 0)
        .map(|(h, w)| (h as usize, w as usize));

    // torch.export's `as_strided` views, where they are one pattern per image at the file's
    // size (and at another, for a dynamic one), become reshapes the analysis follows.
    let (h, w) = size.map_or((224, 224), |(h, w)| (h as i64, w as i64));
    let sizes: Vec<(i64, i64)> = match size {
        Some(_) => vec![(h, w)],
        None => vec![(h, w), (h + 32, w + 32)],
    };
    let images: Vec<Vec<i64>> = sizes
        .iter()
        .map(|&(h, w)| match layout {
            Layout::Nchw => vec![3, h, w],
            Layout::Nhwc => vec![h, w, 3],
        })
        .collect();
    ortl_onnx::fold::per_image_gathers(&mut graph, &images);

    let pool = match features {
        Some(tensor) => {
            let mut named = named_features(&graph, tensor, &image.name, layout, size, pool)?;
            named.reason = match pool {
                Some(_) => format!("at '{tensor}', pooled as --features and --pool ask"),
                None => format!("at '{tensor}', as --features asks"),
            };
            named
        }
        None => match find_embedding(&graph) {
            Some((embedding, reason)) => {
                let mut pool = named_features(&graph, &embedding, &image.name, layout, size, None)?;
                pool.reason = reason;
                pool
            }
            None => match find_pool(&graph) {
                Some(pool) => probed_channels(pool, &graph, &image.name, layout, size)?,
                None => match unrecognised_pooling(&graph) {
                    Some(refusal) => return Err(refusal),
                    None => match headless_embedding(&graph) {
                        Some((embedding, reason)) => {
                            let mut pool = named_features(
                                &graph,
                                &embedding,
                                &image.name,
                                layout,
                                size,
                                None,
                            )?;
                            pool.reason = reason;
                            pool
                        }
                        None => encoder_output(&graph, &image.name, layout, size)
                            .ok_or_else(|| no_pooling_found(&graph))?,
                    },
                },
            },
        },
    };
    let (feature_layout, channels) = (pool.layout, pool.channels);
    let mut graph_out = graph;
    graph_out.outputs = vec![ValueInfo {
        name: pool.features.clone(),
        dtype: DataType::Float,
        shape: None,
    }];
    passes::prune(&mut graph_out);
    let mut b = GraphBuilder::from_graph(graph_out);
    let features = b.scoped("import", |b| {
        if pool.embedding {
            let embedding = match pool.tokens {
                Some(TokenPool::Cls) => {
                    let first = b.constant(Tensor::i64(&[], vec![0]));
                    b.gather(&pool.features, &first, 1)
                }
                Some(TokenPool::Mean) => b.reduce_mean(&pool.features, &[1], false),
                None => pool.features.clone(),
            };
            // An embedding [N, C] becomes a 1×1 map, which every head's pooling keeps.
            let target = b.constant(Tensor::i64s(&[0, -1, 1, 1]));
            b.reshape(&embedding, &target)
        } else if feature_layout == Layout::Nhwc {
            b.transpose(&pool.features, &[0, 3, 1, 2])
        } else {
            pool.features.clone()
        }
    });
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
        weights: crate::backbone::Weights::File {
            file: name.into(),
            sha256: None,
        },
        cut: pool.reason,
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

/// A classifier's global pooling, found by [`find_pool`], or a tensor named to cut at.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// The feature map the pooling reads.
    pub features: String,
    pub layout: Layout,
    pub channels: usize,
    /// `features` is already pooled, `[N, C]`, or tokens `[N, T, C]` that `tokens` pools.
    pub embedding: bool,
    /// How the tokens `features` holds are pooled, when it holds tokens.
    pub tokens: Option<TokenPool>,
    /// Why the cut is there, for the training log.
    pub reason: String,
}

/// Shapes of the graph's values with the image input at its fixed size, or at 224×224 when
/// the export left it dynamic (channel counts do not depend on it), after folding.
fn probe_shape(
    graph: &ortl_onnx::Graph,
    image: &str,
    layout: Layout,
    size: Option<(usize, usize)>,
    value: &str,
) -> Result<ortl_onnx::shapes::Shape, String> {
    let (h, w) = size.unwrap_or((224, 224));
    let mut probe = graph.clone();
    probe.outputs = vec![ValueInfo {
        name: value.into(),
        dtype: DataType::Float,
        shape: None,
    }];
    let input = probe
        .inputs
        .iter_mut()
        .find(|i| i.name == image)
        .ok_or_else(|| format!("no input '{image}'"))?;
    let n = Dim::Symbolic("N".into());
    let (h, w) = (Dim::Fixed(h as i64), Dim::Fixed(w as i64));
    input.shape = Some(match layout {
        Layout::Nchw => vec![n, Dim::Fixed(3), h, w],
        Layout::Nhwc => vec![n, h, w, Dim::Fixed(3)],
    });
    passes::prune(&mut probe);
    ortl_onnx::fold::fold(&mut probe);
    ortl_onnx::shapes::infer(&probe)
        .map_err(|e| e.to_string())?
        .remove(value)
        .map(|t| t.shape)
        .ok_or_else(|| format!("'{value}' has no inferred shape"))
}

/// `pool` with its channel count from the feature map's inferred shape: the classifier's
/// input width is the channel count after global pooling, but after a flatten (VGG:
/// 512·7·7) it is not, so the map's own shape decides when known.
fn probed_channels(
    mut pool: Pool,
    graph: &ortl_onnx::Graph,
    image: &str,
    layout: Layout,
    size: Option<(usize, usize)>,
) -> Result<Pool, String> {
    let probed = probe_shape(graph, image, layout, size, &pool.features);
    let inferred = probed
        .as_ref()
        .ok()
        .filter(|s| s.len() == 4)
        .and_then(|s| match pool.layout {
            Layout::Nchw => s[1],
            Layout::Nhwc => s[3],
        });
    if let Some(c) = inferred {
        pool.channels = c as usize;
    }
    if pool.channels == 0 {
        return Err(format!(
            "the channel count of the feature map '{}' cannot be inferred ({})",
            pool.features,
            probed.err().unwrap_or_else(|| "its rank is not 4".into())
        ));
    }
    Ok(pool)
}

/// A network without a classifier (Keras' `include_top=False`, an encoder): its one output,
/// when that is a feature map or an embedding.
fn encoder_output(
    graph: &ortl_onnx::Graph,
    image: &str,
    layout: Layout,
    size: Option<(usize, usize)>,
) -> Option<Pool> {
    let [output] = graph.outputs.as_slice() else {
        return None;
    };
    let mut pool = named_features(graph, &output.name, image, layout, size, None).ok()?;
    pool.reason = format!(
        "at its output '{}': no classifier found, so it is taken for an encoder (name another tensor with --features)",
        output.name
    );
    Some(pool)
}

/// The cut at a tensor the user named (`--features`), its tokens pooled by `pool`.
fn named_features(
    graph: &ortl_onnx::Graph,
    tensor: &str,
    image: &str,
    layout: Layout,
    size: Option<(usize, usize)>,
    pool: Option<TokenPool>,
) -> Result<Pool, String> {
    if graph.producer(tensor).is_none() {
        let mut near: Vec<&str> = graph
            .nodes
            .iter()
            .flat_map(|n| n.outputs.iter().map(String::as_str))
            .filter(|o| o.contains(tensor) || tensor.contains(*o))
            .take(5)
            .collect();
        if near.is_empty() {
            near = graph
                .nodes
                .iter()
                .rev()
                .filter(|n| n.op == "Conv" || n.op.contains("Pool") || n.op == "Add")
                .map(|n| n.outputs[0].as_str())
                .take(5)
                .collect();
        }
        return Err(format!(
            "no tensor named '{tensor}' in the graph; tensors near the end include: {}",
            near.join(", ")
        ));
    }
    let shape = probe_shape(graph, image, layout, size, tensor)
        .map_err(|e| format!("the shape of '{tensor}' cannot be inferred ({e})"))?;
    let map = |channels: i64, layout: Layout, embedding: bool| Pool {
        features: tensor.into(),
        layout,
        channels: channels as usize,
        embedding,
        tokens: pool,
        reason: format!("at '{tensor}'"),
    };
    let map_form = if layout == Layout::Nchw {
        "[N, C, h, w]"
    } else {
        "[N, h, w, C]"
    };
    let shape_text = shape_text(&shape);
    match (shape.as_slice(), pool) {
        ([_, _, Some(c)], Some(_)) => Ok(map(*c, Layout::Nchw, true)),
        ([_, _, _], None) => Err(format!(
            "'{tensor}' has shape {shape_text}: tokens [N, T, C]; add --pool cls (its class token, token 0) or --pool mean (the mean over its tokens) to pool them into an embedding"
        )),
        (_, Some(pool)) => {
            let pool = clap::ValueEnum::to_possible_value(&pool).expect("every variant has a name");
            Err(format!(
                "--pool {} pools tokens [N, T, C] with fixed C, but '{tensor}' has shape {shape_text}; name a token tensor, or leave --pool out to cut at a feature map {map_form} or an embedding [N, C]",
                pool.get_name()
            ))
        }
        ([_, Some(c), _, _], None) if layout == Layout::Nchw => Ok(map(*c, layout, false)),
        ([_, _, _, Some(c)], None) if layout == Layout::Nhwc => Ok(map(*c, layout, false)),
        ([_, Some(c)], None) => Ok(map(*c, Layout::Nchw, true)),
        _ => Err(format!(
            "'{tensor}' has shape {shape_text}; name a feature map ({map_form} with fixed channels), an embedding [N, C], or tokens [N, T, C] with --pool cls|mean"
        )),
    }
}

/// A shape as `[N, 17, 384]`: the batch as N, unknown sizes as `?`.
fn shape_text(shape: &[Option<i64>]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .enumerate()
        .map(|(axis, d)| match d {
            _ if axis == 0 => "N".into(),
            Some(d) => d.to_string(),
            None => "?".into(),
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Why no cut was found, when the graph has no classifier to trace back from either.
fn no_pooling_found(graph: &Graph) -> String {
    let ops: Vec<&str> = graph
        .nodes
        .iter()
        .rev()
        .take(6)
        .map(|n| n.op.as_str())
        .collect();
    format!(
        "found no global pooling or flatten feeding a classifier (looked for GlobalAveragePool/GlobalMaxPool, ReduceMean/ReduceMax/AveragePool over the spatial axes, Flatten, a class token or a mean over tokens, followed through shape ops and normalisations by Gemm, MatMul or a 1×1 Conv); the graph ends with {}; name the feature map or embedding to cut at with --features NAME",
        ops.into_iter().rev().collect::<Vec<_>>().join(" → ")
    )
}

/// What the classifier reads, traced back from it through shape ops and normalisations.
struct Trace<'g> {
    classifier: &'g Node,
    /// The classifier's input, less the Dropout and Identity before it.
    embedding: &'g str,
    /// The normalisation nearest the classifier on the way back, if any.
    norm: Option<&'g Node>,
    /// Where the way back stopped: the pooling, if the graph has one.
    source: &'g Node,
}

/// Traces the last dense layer with a constant weight (Gemm, or MatMul as torch.export and
/// tf2onnx write it) back to what computes its input.
fn trace_classifier(graph: &Graph) -> Option<Trace<'_>> {
    let classifier = graph.nodes.iter().rev().find(|n| {
        matches!(n.op.as_str(), "Gemm" | "MatMul")
            && n.inputs
                .get(1)
                .and_then(|w| graph.initializers.get(w))
                .is_some_and(|w| w.dims.len() == 2)
    })?;
    let mut embedding = classifier.inputs[0].as_str();
    while let Some(node) = graph
        .producer(embedding)
        .filter(|n| matches!(n.op.as_str(), "Dropout" | "Identity"))
    {
        embedding = &node.inputs[0];
    }
    let (mut value, mut norm) = (embedding, None);
    loop {
        let node = graph.producer(value)?;
        match node.op.as_str() {
            "Dropout" | "Identity" | "Flatten" | "Reshape" | "Squeeze" | "Unsqueeze" | "Cast"
            | "Transpose" => {}
            "LayerNormalization" | "BatchNormalization" => {
                norm.get_or_insert(node);
            }
            _ => {
                return Some(Trace {
                    classifier,
                    embedding,
                    norm,
                    source: node,
                });
            }
        }
        value = &node.inputs[0];
    }
}

/// The embedding `[N, C]` a classifier reads when it is not a plain pooled feature map
/// (and why it is the cut): the class token or the mean of the tokens, through the final
/// LayerNorm or timm's `fc_norm`; or a CNN's pooled features after the LayerNorm or
/// BatchNorm that normalises them (ConvNeXt), which stays in the backbone.
pub fn find_embedding(graph: &Graph) -> Option<(String, String)> {
    let trace = trace_classifier(graph)?;
    let constants = constant_values(graph);
    if !feeds_only_a_classifier(graph, &trace.source.outputs[0], &constants) {
        return None;
    }
    let (source, classifier) = (trace.source, trace.classifier);
    let reason = match (token_pooling(graph, source), trace.norm) {
        (Some(pooling), _) => format!(
            "at '{}', the {} ({} '{}') that feeds the classifier {} '{}'",
            trace.embedding,
            match pooling {
                TokenPool::Cls => "class token",
                TokenPool::Mean => "mean of the tokens",
            },
            source.op,
            source.name,
            classifier.op,
            classifier.name
        ),
        (None, Some(norm)) if pooling_layout(graph, source).is_some() => format!(
            "at '{}', after {} '{}' on the features {} '{}' pools: the normalisation stays in the backbone",
            trace.embedding, norm.op, norm.name, source.op, source.name
        ),
        _ => return None,
    };
    Some((trace.embedding.to_string(), reason))
}

/// An encoder exported without a classifier (timm's `num_classes=0`, as DINOv2 ships): its
/// one output is already the embedding, the class token or the token mean (normalised or not).
fn headless_embedding(graph: &Graph) -> Option<(String, String)> {
    let [output] = graph.outputs.as_slice() else {
        return None;
    };
    let (tokens, pooling) = pooled_tokens(graph, &output.name)?;
    let what = match pooling {
        TokenPool::Cls => "class token",
        TokenPool::Mean => "mean of the tokens",
    };
    Some((
        output.name.clone(),
        format!(
            "at the output '{}', the {what} of '{tokens}': an encoder exported without a classifier",
            output.name
        ),
    ))
}

/// The refusal naming the node a classifier's input comes from, when that is no pooling
/// ortl recognises (an attention pool, a token other than the first).
fn unrecognised_pooling(graph: &Graph) -> Option<String> {
    let trace = trace_classifier(graph)?;
    if !feeds_only_a_classifier(graph, trace.embedding, &constant_values(graph)) {
        return None;
    }
    Some(format!(
        "the classifier {} '{}' reads '{}', computed by {} '{}', which is neither a global pooling nor a class token (Gather of index 0, or Slice [0:1], on axis 1) nor a mean over the token axis; name the embedding [N, C] to cut at with --features NAME, or the tokens [N, T, C] with --features NAME --pool cls|mean",
        trace.classifier.op,
        trace.classifier.name,
        trace.embedding,
        trace.source.op,
        trace.source.name
    ))
}

/// The tokens `[N, T, C]` that `value` pools and how, traced back from `value` through
/// shape ops and normalisations: where a token model's explanation looks for its patches
/// (`value` is an embedding, or the 1×1 map a cut makes of one).
pub fn pooled_tokens(graph: &Graph, value: &str) -> Option<(String, TokenPool)> {
    let mut node = graph.producer(value)?;
    while matches!(
        node.op.as_str(),
        "Reshape"
            | "Flatten"
            | "Squeeze"
            | "Unsqueeze"
            | "Identity"
            | "Dropout"
            | "Cast"
            | "LayerNormalization"
            | "BatchNormalization"
    ) {
        node = graph.producer(&node.inputs[0])?;
    }
    let pool = token_pooling(graph, node)?;
    Some((node.inputs[0].clone(), pool))
}

/// If `node` pools tokens `[N, T, C]` into one embedding per image, what it takes: the class
/// token (Gather of index 0 on axis 1, or Slice `[0:1]` on axis 1) or the mean over the
/// token axis (ReduceMean over axis 1).
fn token_pooling(graph: &Graph, node: &Node) -> Option<TokenPool> {
    let input = |slot: usize| {
        node.inputs
            .get(slot)
            .filter(|name| !name.is_empty())
            .and_then(|name| constant_ints(graph, name))
    };
    match node.op.as_str() {
        "Gather" if node.int("axis") == Some(1) && input(1)? == [0] => Some(TokenPool::Cls),
        "Slice" => {
            let steps = input(4).unwrap_or_else(|| vec![1]);
            (input(1)? == [0] && input(2)? == [1] && input(3)? == [1] && steps == [1])
                .then_some(TokenPool::Cls)
        }
        "ReduceMean" => (reduced_axes(graph, node)? == [1]).then_some(TokenPool::Mean),
        _ => None,
    }
}

/// The int64 values of an initializer or a Constant node's output.
fn constant_ints(graph: &Graph, name: &str) -> Option<Vec<i64>> {
    if let Some(tensor) = graph.initializers.get(name) {
        return tensor.as_i64().map(<[i64]>::to_vec);
    }
    let node = graph.producer(name).filter(|n| n.op == "Constant")?;
    match node.attr("value") {
        Some(Attr::Tensor(tensor)) => tensor.as_i64().map(<[i64]>::to_vec),
        _ => node.ints("value_ints").map(<[i64]>::to_vec),
    }
}

/// The axes a Reduce node reduces over, from its attribute or its constant input.
fn reduced_axes(graph: &Graph, node: &Node) -> Option<Vec<i64>> {
    match node.ints("axes") {
        Some(axes) => Some(axes.to_vec()),
        None => constant_ints(graph, node.inputs.get(1)?),
    }
}

/// The last global pooling whose result feeds only a classifier (Gemm, MatMul or a 1×1
/// Conv, reached through shape ops, and with everything after it computed from it and
/// constants alone, so a squeeze-and-excitation gate, whose result multiplies the feature
/// map again, is not taken for one); failing that, the last Flatten of a feature map into
/// a classifier (VGG-style classifiers without global pooling).
pub fn find_pool(graph: &ortl_onnx::Graph) -> Option<Pool> {
    let constants = constant_values(graph);
    let pooled = graph.nodes.iter().rev().find_map(|node| {
        let layout = pooling_layout(graph, node)?;
        if !feeds_only_a_classifier(graph, &node.outputs[0], &constants) {
            return None;
        }
        // The channel count comes from the feature map's inferred shape; the classifier's
        // weight is the fallback (0 when it is not directly after the pooling).
        let channels = classifier_inputs(graph, &node.outputs[0], 6).unwrap_or(0);
        Some(Pool {
            features: node.inputs[0].clone(),
            layout,
            channels,
            embedding: false,
            tokens: None,
            reason: format!(
                "at the input of {} '{}', the global pooling that feeds the classifier",
                node.op, node.name
            ),
        })
    });
    pooled.or_else(|| {
        graph.nodes.iter().rev().find_map(|node| {
            if node.op != "Flatten" || !feeds_only_a_classifier(graph, &node.outputs[0], &constants)
            {
                return None;
            }
            let channels = classifier_inputs(graph, &node.outputs[0], 6).unwrap_or(0);
            Some(Pool {
                features: node.inputs.first()?.clone(),
                layout: Layout::Nchw,
                channels,
                embedding: false,
                tokens: None,
                reason: format!(
                    "at the input of Flatten '{}', which feeds the classifier",
                    node.name
                ),
            })
        })
    })
}

/// Initializers and the values computed from them alone (Constant nodes and their
/// arithmetic).
fn constant_values(graph: &ortl_onnx::Graph) -> std::collections::HashSet<&str> {
    let mut constants: std::collections::HashSet<&str> =
        graph.initializers.keys().map(String::as_str).collect();
    for node in &graph.nodes {
        if node
            .inputs
            .iter()
            .all(|i| i.is_empty() || constants.contains(i.as_str()))
        {
            constants.extend(node.outputs.iter().map(String::as_str));
        }
    }
    constants
}

/// Whether everything computed from `value` is computed from it and constants alone,
/// includes a classifier (Gemm, MatMul or a 1×1 Conv; normalisations and activations may
/// come between, as Keras ConvNeXt's LayerNorm) and reaches a graph output: the value feeds
/// a classifier, not the rest of the network.
fn feeds_only_a_classifier(
    graph: &ortl_onnx::Graph,
    value: &str,
    constants: &std::collections::HashSet<&str>,
) -> bool {
    let mut derived: std::collections::HashSet<&str> = [value].into();
    let mut classifier = false;
    for node in &graph.nodes {
        let reads = |i: &String| !i.is_empty() && derived.contains(i.as_str());
        if !node.inputs.iter().any(reads) {
            continue;
        }
        let mixes = node.inputs.iter().any(|i| {
            !i.is_empty() && !derived.contains(i.as_str()) && !constants.contains(i.as_str())
        });
        if mixes {
            return false;
        }
        classifier |= match node.op.as_str() {
            "Gemm" | "MatMul" => true,
            "Conv" => node
                .inputs
                .get(1)
                .and_then(|w| graph.initializers.get(w))
                .is_some_and(|w| w.dims.len() == 4 && w.dims[2] == 1 && w.dims[3] == 1),
            _ => false,
        };
        derived.extend(node.outputs.iter().map(String::as_str));
    }
    classifier
        && graph
            .outputs
            .iter()
            .any(|o| derived.contains(o.name.as_str()))
}

/// If `node` averages over the spatial axes of a feature map, the map's layout.
/// The layout of the rank-4 image input `name` with `dims`: where 3 channels are declared,
/// else from the first convolution (optimum declares every axis dynamic: `[?, ?, ?, ?]`).
pub(crate) fn image_layout(
    graph: &ortl_onnx::Graph,
    name: &str,
    dims: &[Option<i64>],
) -> Result<Layout, String> {
    match (dims[1], dims[3]) {
        (Some(3), _) => Ok(Layout::Nchw),
        (_, Some(3)) => Ok(Layout::Nhwc),
        _ => layout_from_first_conv(graph, name).ok_or_else(|| {
            format!(
                "input '{name}' has shape {}: neither [N,3,H,W] nor [N,H,W,3], and no convolution of 3 input channels reads it",
                shown_dims(dims)
            )
        }),
    }
}

/// The layout of an image input whose channel axis is not declared, from the first
/// convolution that reads it (through casts, normalisation and a Transpose to NCHW): its
/// weight takes 3 input channels.
fn layout_from_first_conv(graph: &ortl_onnx::Graph, image: &str) -> Option<Layout> {
    let mut frontier = vec![(image.to_string(), Layout::Nchw)];
    let mut seen = std::collections::HashSet::new();
    while let Some((value, layout)) = frontier.pop() {
        if !seen.insert(value.clone()) {
            continue;
        }
        for node in graph.consumers(&value) {
            match node.op.as_str() {
                "Conv" if node.inputs.first() == Some(&value) => {
                    let weight = graph.initializers.get(node.inputs.get(1)?)?;
                    let group = node.int("group").unwrap_or(1);
                    return (weight.dims.get(1).copied()? * group == 3).then_some(layout);
                }
                "Transpose" if node.ints("perm") == Some(&[0, 3, 1, 2][..]) => {
                    frontier.push((node.outputs[0].clone(), Layout::Nhwc));
                }
                "Cast" | "Identity" | "Sub" | "Div" | "Mul" | "Add" => {
                    frontier.push((node.outputs[0].clone(), layout));
                }
                _ => {}
            }
        }
    }
    None
}

fn shown_dims(dims: &[Option<i64>]) -> String {
    let dims: Vec<String> = dims
        .iter()
        .map(|d| d.map_or_else(|| "?".to_string(), |d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

pub fn pooling_layout(graph: &ortl_onnx::Graph, node: &Node) -> Option<Layout> {
    match node.op.as_str() {
        "GlobalAveragePool" | "GlobalMaxPool" => Some(Layout::Nchw),
        "ReduceMean" | "ReduceMax" => {
            let mut axes: Vec<i64> = reduced_axes(graph, node)?
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
        // An AveragePool over the whole map acts as global pooling in old exports.
        "AveragePool" => Some(Layout::Nchw),
        // A MaxPool only when known to leave one pixel (VGG's last MaxPool is not global).
        "MaxPool" => {
            let shape = ortl_onnx::shapes::shape_of(graph, &node.outputs[0])?;
            (shape.len() == 4 && shape[2] == Some(1) && shape[3] == Some(1)).then_some(Layout::Nchw)
        }
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
            "Flatten" | "Reshape" | "Squeeze" | "Unsqueeze" | "Identity" | "Dropout" | "Cast"
            | "Transpose" | "BatchNormalization" => {
                classifier_inputs(graph, &next.outputs[0], depth - 1)
            }
            // A 1×1 convolution on the pooled [N, C, 1, 1] map (Keras MobileNet, TF-slim).
            "Conv" => {
                let weight = graph.initializers.get(next.inputs.get(1)?)?;
                match weight.dims.as_slice() {
                    [_, c, 1, 1] => Some(*c as usize),
                    _ => None,
                }
            }
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
