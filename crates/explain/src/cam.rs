//! Grad-CAM and Grad-CAM++ as ONNX graphs, built by differentiating the classifier's own
//! head with `ortl-autodiff`.
//!
//! The classifier is split at its last convolutional feature map `A` (`[N, K, h, w]`):
//! the first session runs the whole classifier with `A` as an extra output, the second
//! ([`cam_model`]) re-runs only the part after `A` and its backward pass. The backbone thus
//! runs once per image, the chosen class can be decided from the probabilities (argmax or
//! a threshold) before the second session, and the backward pass is head-sized.
//!
//! For class scores `S` (the logits before the final softmax/sigmoid) and one-hot class
//! weights `W` (`[N, C]`), the graph differentiates `Σ_n Σ_c W[n,c]·S[n,c]`; images do not
//! interact in an inference graph, so this yields each image's `G = ∂S_c/∂A` at once.
//! - Grad-CAM (Selvaraju et al. 2017): `α_k = mean_ij G_kij`, `cam = ReLU(Σ_k α_k A_k)`.
//! - Grad-CAM++ (Chattopadhay et al. 2018, the closed form with exponential scores):
//!   `a_kij = G² / (2G² + Σ_ab A_kab · G³)` (0 where the denominator is 0),
//!   `w_k = Σ_ij a_kij · ReLU(G_kij)`, `cam = ReLU(Σ_k w_k A_k)`.
//!
//! - Attention (vision transformers): the last block's attention weights of the class
//!   token to the patches, averaged over the heads, on the patch grid; no gradient, and the
//!   same map for every class.
//!
//! The cam stays at feature resolution `[N, h, w]`; the caller upsamples it.
//!
//! A token model (a vision transformer) has no feature map: `A` is then the tokens `[N, T, C]`
//! its last attention block reads (after that block a class token alone gets a gradient;
//! pytorch-grad-cam takes the block's `norm1` output, which is no cut of the graph since the
//! residual bypasses it), the leading class and register tokens dropped and the patch tokens
//! laid out as their grid `[N, h, w, C]` once the gradient is taken.

use clap::ValueEnum;
use std::collections::HashMap;
use std::fmt;

use ortl_models::Layout;
use ortl_models::classifier::keys;
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, Tensor, ValueInfo, passes, shapes};

/// Name of the class-weights input of the CAM graph.
pub const CLASS_WEIGHTS: &str = "cam_class_weights";
/// Name of the CAM graph's output, `[N, h, w]`.
pub const CAM: &str = "cam";
/// Name of the class scores output of the CAM graph (the logits it differentiated).
pub const SCORES: &str = "cam_scores";

/// How the feature maps are weighted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Grad-CAM: each map weighted by its mean gradient.
    #[value(name = "gradcam", alias = "grad-cam")]
    GradCam,
    /// Grad-CAM++: higher-order weights, better with several instances of a class.
    #[value(name = "gradcam++", alias = "grad-cam++")]
    GradCamPlusPlus,
    /// A vision transformer's class-token attention in its last block, averaged over the
    /// heads: where the class token looks (the same map for every class).
    #[value(name = "attention")]
    Attention,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            self.to_possible_value()
                .expect("every variant has a name")
                .get_name(),
        )
    }
}

/// Why a classifier cannot be explained as asked.
#[derive(Debug, thiserror::Error)]
pub enum CamError {
    #[error("the model has no output")]
    NoOutput,
    #[error("layer '{layer}' is not a rank-4 feature map of this model; the last convolution outputs are: {}", .candidates.join(", "))]
    NotAFeatureMap {
        layer: String,
        candidates: Vec<String>,
    },
    #[error("found no global pooling feeding the classifier; name the feature map to explain")]
    NoPooling,
    #[error("feature map '{features}' has no static shape: {shape}")]
    DynamicFeatureMap { features: String, shape: String },
    #[error(
        "the {tokens} tokens of '{features}' form no patch grid: no patch-embedding Conv before them has h·w patches with at most {MAX_LEADING} class and register tokens left over; name a feature map with --cam-layer"
    )]
    NoPatchGrid { features: String, tokens: i64 },
    #[error(
        "--cam-method attention explains a vision transformer (a class token and attention over a patch grid); this model has {0}; use gradcam"
    )]
    NoAttention(String),
    #[error("class scores '{0}' are not [N, C] with a fixed C")]
    Scores(String),
    #[error(transparent)]
    Graph(#[from] ortl_onnx::OnnxError),
    #[error("cannot differentiate this model: {0}")]
    Gradient(#[from] ortl_autodiff::AutodiffError),
}

/// Where in a classifier the explanation starts and what it explains.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The feature map `A`, rank 4.
    pub features: String,
    pub layout: Layout,
    /// Static shape of `A` after the batch: `[K, h, w]` (NCHW) or `[h, w, K]` (NHWC).
    pub dims: [i64; 3],
    /// The class scores differentiated: the input of the final softmax/sigmoid, or the
    /// output itself when the graph ends without one.
    pub scores: String,
    pub classes: usize,
    /// Set when `A` is the tokens `[N, T, C]` of a token model; `dims` is then the patch
    /// grid `[h, w, C]` (layout NHWC).
    pub tokens: Option<TokenGrid>,
    /// Set when `A` is the last block's attention weights ([`attention_target`]); `dims` is
    /// then `[h, w, heads]`.
    pub attention: Option<Attention>,
}

/// Attention weights as exported: `[N, heads, T, T]`, or `[N·heads, T, T]` where the
/// exporter folded the heads into the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attention {
    pub heads: i64,
    pub folded: bool,
}

/// How a token tensor `[N, T, C]` lays out as its patch grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenGrid {
    /// T, all tokens.
    pub tokens: i64,
    /// The class and register tokens before the patches, dropped from the map.
    pub leading: i64,
}

/// The most tokens before the patches: a class token and up to 16 registers.
const MAX_LEADING: i64 = 17;

impl Target {
    /// Height and width of the feature map.
    pub fn spatial(&self) -> (usize, usize) {
        let [a, b, c] = self.dims;
        match self.layout {
            Layout::Nchw => (b as usize, c as usize),
            Layout::Nhwc => (a as usize, b as usize),
        }
    }
}

/// Finds the feature map to explain: `layer` when given (any rank-4 value), else the one
/// ortl-train recorded in the model's metadata, else the input of the global pooling that
/// feeds the classifier; for a token model (the recorded features, or the classifier's
/// embedding, pool tokens) the tokens its last attention block reads.
pub fn locate(model: &Model, layer: Option<&str>) -> Result<Target, CamError> {
    let graph = &model.graph;
    let output = graph.outputs.first().ok_or(CamError::NoOutput)?;
    let value_shapes = shapes::infer(graph)?;
    let (scores, classes) = class_scores(graph, &output.name, &value_shapes)?;
    if layer.is_none() {
        let embedding =
            model.metadata.get(keys::FEATURES).cloned().or_else(|| {
                ortl_models::import::find_embedding(graph).map(|(embedding, _)| embedding)
            });
        let pooled = embedding.and_then(|e| ortl_models::import::pooled_tokens(graph, &e));
        if let Some((tokens, _)) = pooled {
            return token_target(graph, &value_shapes, &tokens, scores, classes);
        }
    }
    let rank4 = |name: &str| {
        value_shapes
            .get(name)
            .filter(|t| t.shape.len() == 4)
            .map(|t| t.shape.clone())
    };
    let (features, layout) = match layer {
        Some(name) => {
            if rank4(name).is_none() {
                let mut candidates: Vec<String> = graph
                    .nodes
                    .iter()
                    .filter(|n| n.op == "Conv" || n.op == "Relu")
                    .flat_map(|n| n.outputs.iter().cloned())
                    .filter(|o| rank4(o).is_some())
                    .collect();
                return Err(CamError::NotAFeatureMap {
                    layer: name.into(),
                    candidates: candidates.split_off(candidates.len().saturating_sub(5)),
                });
            }
            (name.to_string(), Layout::Nchw)
        }
        // A map with a grid: a cut after the pooling (ConvNeXt's normalised embedding)
        // records a 1×1 map, which explains nothing.
        None => {
            let has_grid = |name: &str| {
                rank4(name).is_some_and(|s| s[1..].iter().filter(|&&d| d != Some(1)).count() > 1)
            };
            // An embedding laid out as a 1×1 map by a reshape, not a network's own map.
            let is_embedding = |name: &str| {
                graph.producer(name).is_some_and(|node| {
                    matches!(node.op.as_str(), "Reshape" | "Unsqueeze" | "Flatten")
                })
            };
            match model
                .metadata
                .get(keys::FEATURES)
                .filter(|name| has_grid(name))
            {
                Some(name) => (name.clone(), Layout::Nchw),
                None => {
                    let found = ortl_models::import::find_pool(graph)
                        .map(|pool| (pool.features, pool.layout));
                    found
                        .clone()
                        .filter(|(features, _)| has_grid(features) || !is_embedding(features))
                        .or_else(|| {
                            graph.nodes.iter().rev().find_map(|node| {
                                let layout = ortl_models::import::pooling_layout(graph, node)?;
                                has_grid(&node.inputs[0]).then(|| (node.inputs[0].clone(), layout))
                            })
                        })
                        .or(found)
                        .ok_or(CamError::NoPooling)?
                }
            }
        }
    };
    let shape = rank4(&features).expect("checked rank 4");
    let dims: Vec<i64> = shape[1..]
        .iter()
        .map(|d| d.filter(|&d| d > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| CamError::DynamicFeatureMap {
            features: features.clone(),
            shape: format!("{shape:?}"),
        })?;
    Ok(Target {
        features,
        layout,
        dims: [dims[0], dims[1], dims[2]],
        scores,
        classes,
        tokens: None,
        attention: None,
    })
}

/// The class scores: the input of the final softmax/sigmoid, or the output itself.
fn class_scores(
    graph: &ortl_onnx::Graph,
    output: &str,
    value_shapes: &HashMap<String, shapes::TypedShape>,
) -> Result<(String, usize), CamError> {
    let scores = match graph.producer(output) {
        Some(node) if matches!(node.op.as_str(), "Softmax" | "Sigmoid" | "LogSoftmax") => {
            node.inputs[0].clone()
        }
        _ => output.to_string(),
    };
    let classes = value_shapes
        .get(&scores)
        .and_then(|t| t.shape.get(1).copied().flatten())
        .filter(|&c| c > 0)
        .ok_or_else(|| CamError::Scores(scores.clone()))?;
    Ok((scores, classes as usize))
}

/// The target of a token model whose embedding pools `pooled`: the input of the last
/// LayerNormalization of tokens before the last Softmax (the attention) that `pooled`
/// depends on, which is the last block's input, or `pooled` itself without attention; its
/// patch grid from the patch-embedding Conv.
fn token_target(
    graph: &ortl_onnx::Graph,
    value_shapes: &HashMap<String, shapes::TypedShape>,
    pooled: &str,
    scores: String,
    classes: usize,
) -> Result<Target, CamError> {
    let fixed = |name: &str| -> Option<Vec<i64>> {
        let shape = &value_shapes.get(name)?.shape;
        shape[1..].iter().map(|d| d.filter(|&d| d > 0)).collect()
    };
    let attention = last_computing(graph, pooled, |n| n.op == "Softmax");
    let features = attention
        .and_then(|softmax| {
            last_computing(graph, &softmax.outputs[0], |n| {
                n.op == "LayerNormalization" && fixed(&n.inputs[0]).is_some_and(|d| d.len() == 2)
            })
        })
        .map_or(pooled, |norm| norm.inputs[0].as_str())
        .to_string();
    let dims =
        fixed(&features)
            .filter(|d| d.len() == 2)
            .ok_or_else(|| CamError::DynamicFeatureMap {
                features: features.clone(),
                shape: format!("{:?}", value_shapes.get(&features).map(|t| &t.shape)),
            })?;
    let (tokens, channels) = (dims[0], dims[1]);
    let (h, w) = graph
        .nodes
        .iter()
        .rev()
        .filter(|n| n.op == "Conv")
        .filter_map(|n| match fixed(&n.outputs[0])?.as_slice() {
            &[_, h, w] => Some((h, w)),
            _ => None,
        })
        .find(|&(h, w)| (0..=MAX_LEADING).contains(&(tokens - h * w)))
        .ok_or_else(|| CamError::NoPatchGrid {
            features: features.clone(),
            tokens,
        })?;
    Ok(Target {
        features,
        layout: Layout::Nhwc,
        dims: [h, w, channels],
        scores,
        classes,
        tokens: Some(TokenGrid {
            tokens,
            leading: tokens - h * w,
        }),
        attention: None,
    })
}

/// The target of `--cam-method attention`: the weights of the last attention Softmax the
/// class scores depend on, `[N, heads, T, T]` (or `[N·heads, T, T]`), laid out on the patch
/// grid of `tokens` (a token model's target from [`locate`]).
pub fn attention_target(model: &Model, tokens: &Target) -> Result<Target, CamError> {
    let Some(grid) = tokens.tokens else {
        return Err(CamError::NoAttention(format!(
            "the feature map '{}' and no tokens",
            tokens.features
        )));
    };
    let graph = &model.graph;
    let value_shapes = shapes::infer(graph)?;
    let softmax = last_computing(graph, &tokens.scores, |n| {
        n.op == "Softmax"
            && value_shapes.get(&n.outputs[0]).is_some_and(|t| {
                t.shape.len() >= 3 && t.shape[t.shape.len() - 2..] == [Some(grid.tokens); 2]
            })
    })
    .ok_or_else(|| {
        CamError::NoAttention(format!(
            "no Softmax over {0}×{0} token pairs before its class scores",
            grid.tokens
        ))
    })?;
    let weights = &value_shapes[&softmax.outputs[0]];
    let attention = match weights.shape.as_slice() {
        [None, Some(heads), _, _] => Attention {
            heads: *heads,
            folded: false,
        },
        [None, _, _] => Attention {
            heads: weights.batch_multiple,
            folded: true,
        },
        _ => {
            return Err(CamError::NoAttention(format!(
                "attention weights '{}' shaped {}",
                softmax.outputs[0],
                weights.shown()
            )));
        }
    };
    let (h, w) = tokens.spatial();
    Ok(Target {
        features: softmax.outputs[0].clone(),
        layout: Layout::Nhwc,
        dims: [h as i64, w as i64, attention.heads],
        scores: tokens.scores.clone(),
        classes: tokens.classes,
        tokens: Some(grid),
        attention: Some(attention),
    })
}

/// The last node (in graph order) that `wanted` accepts among those `value` is computed
/// from.
fn last_computing<'g>(
    graph: &'g ortl_onnx::Graph,
    value: &str,
    wanted: impl Fn(&ortl_onnx::Node) -> bool,
) -> Option<&'g ortl_onnx::Node> {
    let mut needed: std::collections::HashSet<&str> = [value].into();
    let mut found = None;
    for node in graph.nodes.iter().rev() {
        if node.outputs.iter().any(|o| needed.contains(o.as_str())) {
            if found.is_none() && wanted(node) {
                found = Some(node);
            }
            needed.extend(node.inputs.iter().map(String::as_str));
        }
    }
    found
}

/// The classifier with the feature map as a second output.
pub fn expose_features(model: &Model, target: &Target) -> Model {
    let mut exposed = model.clone();
    if !exposed
        .graph
        .outputs
        .iter()
        .any(|o| o.name == target.features)
    {
        exposed.graph.outputs.push(feature_info(target));
    }
    exposed
}

fn feature_info(target: &Target) -> ValueInfo {
    let mut shape = vec![Dim::Symbolic("N".into())];
    match (target.tokens, target.attention) {
        (Some(grid), Some(attention)) => {
            if !attention.folded {
                shape.push(Dim::Fixed(attention.heads));
            }
            shape.extend([grid.tokens, grid.tokens].map(Dim::Fixed));
        }
        (Some(grid), None) => shape.extend([grid.tokens, target.dims[2]].map(Dim::Fixed)),
        (None, _) => shape.extend(target.dims.iter().map(|&d| Dim::Fixed(d))),
    }
    ValueInfo::new(&target.features, DataType::Float, shape)
}

/// The graph from the feature map to the class activation map: inputs `A` (named as in
/// the classifier) and [`CLASS_WEIGHTS`] `[N, C]`; outputs [`CAM`] `[N, h, w]` and
/// [`SCORES`] `[N, C]`.
pub fn cam_model(model: &Model, target: &Target, method: Method) -> Result<Model, CamError> {
    let plus_plus = match (method, target.attention, target.tokens) {
        (Method::Attention, Some(attention), Some(grid)) => {
            return Ok(attention_model(target, attention, grid));
        }
        (Method::Attention, ..) => {
            return Err(CamError::NoAttention(format!(
                "the target '{}', which is not attention weights (see attention_target)",
                target.features
            )));
        }
        (Method::GradCam, ..) => false,
        (Method::GradCamPlusPlus, ..) => true,
    };
    let mut graph = model.graph.clone();
    passes::start_at(&mut graph, feature_info(target));
    passes::end_at(
        &mut graph,
        ValueInfo::new(&target.scores, DataType::Float, vec![]),
    );
    graph.outputs.clear();
    let mut b = GraphBuilder::from_graph(graph);
    let n = Dim::Symbolic("N".into());
    let classes = target.classes as i64;
    let weights = b.input(
        CLASS_WEIGHTS,
        DataType::Float,
        vec![n.clone(), Dim::Fixed(classes)],
    );
    let score = b.scoped("cam", |b| {
        let weighted = b.mul(&target.scores, &weights);
        b.reduce_sum(&weighted, None, false)
    });
    let value_shapes: HashMap<_, _> = shapes::infer(b.graph())?;
    let grads = ortl_autodiff::gradients(
        &mut b,
        &score,
        std::slice::from_ref(&target.features),
        &value_shapes,
    )?;
    let (a, g) = match target.tokens {
        Some(grid) => b.scoped("cam", |b| {
            (
                patch_grid(b, &target.features, grid, target.dims),
                patch_grid(b, &grads.of[&target.features], grid, target.dims),
            )
        }),
        None => (target.features.clone(), grads.of[&target.features].clone()),
    };
    let (spatial, channel): (&[i64], i64) = match target.layout {
        Layout::Nchw => (&[2, 3], 1),
        Layout::Nhwc => (&[1, 2], 3),
    };
    let a = a.as_str();
    let cam = b.scoped("cam", |b| {
        let channel_weights = match plus_plus {
            false => b.reduce_mean(&g, spatial, true),
            true => {
                let g2 = b.mul(&g, &g);
                let g3 = b.mul(&g2, &g);
                let sum_a = ortl_autodiff::emit::reduce_sum(b, a, spatial, true);
                let two = ortl_autodiff::emit::scalar(b, 2.0);
                let twice = b.mul(&g2, &two);
                let cubic = b.mul(&sum_a, &g3);
                let denominator = b.add(&twice, &cubic);
                let zero = ortl_autodiff::emit::scalar(b, 0.0);
                let one = ortl_autodiff::emit::scalar(b, 1.0);
                let is_zero = b.equal(&denominator, &zero);
                let safe = b.where_(&is_zero, &one, &denominator);
                let alpha = b.div(&g2, &safe);
                let positive = b.relu(&g);
                let weighted = b.mul(&alpha, &positive);
                ortl_autodiff::emit::reduce_sum(b, &weighted, spatial, true)
            }
        };
        let weighted_maps = b.mul(&channel_weights, a);
        let combined = ortl_autodiff::emit::reduce_sum(b, &weighted_maps, &[channel], false);
        b.relu(&combined)
    });
    let (h, w) = target.spatial();
    b.output(
        &cam,
        DataType::Float,
        vec![n.clone(), Dim::Fixed(h as i64), Dim::Fixed(w as i64)],
    );
    let scores_out = b.identity(&target.scores);
    b.output(&scores_out, DataType::Float, vec![n, Dim::Fixed(classes)]);
    let mut graph = b.finish();
    passes::rename_value(&mut graph, &cam, CAM);
    passes::rename_value(&mut graph, &scores_out, SCORES);
    passes::validate(&graph)?;
    let mut cam_model = Model::new(graph);
    cam_model.doc = format!("ortl {method} of '{}'", target.features);
    Ok(cam_model)
}

/// The class token's attention to the patches, averaged over the heads, as the grid
/// `[N, h, w]`: inputs the weights (named as in the classifier) and [`CLASS_WEIGHTS`] (read
/// by no node: the map is the same for every class); output [`CAM`].
fn attention_model(target: &Target, attention: Attention, grid: TokenGrid) -> Model {
    let mut b = GraphBuilder::new("attention_map");
    let n = Dim::Symbolic("N".into());
    let info = feature_info(target);
    let weights = b.input(&info.name, DataType::Float, info.shape.unwrap_or_default());
    b.input(
        CLASS_WEIGHTS,
        DataType::Float,
        vec![n.clone(), Dim::Fixed(target.classes as i64)],
    );
    let [h, w, heads] = target.dims;
    let cam = b.scoped("cam", |b| {
        let weights = if attention.folded {
            let shape = b.constant(Tensor::i64s(&[-1, heads, grid.tokens, grid.tokens]));
            b.reshape(&weights, &shape)
        } else {
            weights
        };
        let class_token = b.constant(Tensor::i64(&[], vec![0]));
        let row = b.gather(&weights, &class_token, 2);
        let starts = b.constant(Tensor::i64s(&[grid.leading]));
        let ends = b.constant(Tensor::i64s(&[grid.tokens]));
        let axes = b.constant(Tensor::i64s(&[2]));
        let patches = b.slice(&row, &starts, &ends, Some(&axes), None);
        let mean = b.reduce_mean(&patches, &[1], false);
        let shape = b.constant(Tensor::i64s(&[-1, h, w]));
        b.reshape(&mean, &shape)
    });
    b.output(&cam, DataType::Float, vec![n, Dim::Fixed(h), Dim::Fixed(w)]);
    let mut graph = b.finish();
    passes::rename_value(&mut graph, &cam, CAM);
    let mut model = Model::new(graph);
    model.doc = format!("ortl class-token attention of '{}'", target.features);
    model
}

/// Tokens `[N, T, C]` less the leading ones, as the patch grid `[N, h, w, C]`.
fn patch_grid(b: &mut GraphBuilder, tokens: &str, grid: TokenGrid, dims: [i64; 3]) -> String {
    let starts = b.constant(Tensor::i64s(&[grid.leading]));
    let ends = b.constant(Tensor::i64s(&[grid.tokens]));
    let axes = b.constant(Tensor::i64s(&[1]));
    let patches = b.slice(tokens, &starts, &ends, Some(&axes), None);
    let [h, w, c] = dims;
    let shape = b.constant(Tensor::i64s(&[0, h, w, c]));
    b.reshape(&patches, &shape)
}

/// One-hot class weights `[N, C]` for the chosen class of each image.
pub fn one_hot(chosen: &[usize], classes: usize) -> ndarray::Array2<f32> {
    let mut weights = ndarray::Array2::zeros((chosen.len(), classes));
    for (row, &c) in chosen.iter().enumerate() {
        weights[[row, c]] = 1.0;
    }
    weights
}
