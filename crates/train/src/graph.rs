//! The training step as one ONNX graph, built from the inference classifier:
//! 1. trainable parameters, their optimizer state and trained BatchNorm statistics become
//!    graph inputs (frozen ones stay initializers, which ORT folds as constants);
//! 2. Dropout becomes a multiplication by a mask input the host draws from the seed, so
//!    steps are reproducible and resumable;
//! 3. BatchNorms that train (the head's always, the backbone's with `--bn-mode train`) are
//!    rewritten into primitive ops on batch statistics, with updated running statistics as
//!    outputs; the rest keep stored statistics (Keras `training=False`);
//! 4. MaxPools expose their indices for the backward pass;
//! 5. loss + L2 penalties, gradients, optional global-norm clipping, optimizer updates.
//!
//! Every updated value is a graph output named `next/<input name>`. Where the host applies
//! the optimizer ([`UpdateOn::Host`]), the graph stops at the gradients instead: each is an
//! output named `gradient/<parameter>`, and the optimizer state is not in the graph.

use std::collections::BTreeMap;

use ortl_autodiff::loss::{BinaryWeights, Loss, batch_loss, l2_penalty};
use ortl_autodiff::optim::{BIAS_CORRECTION1, BIAS_CORRECTION2, LR, Optimizer, clip_global_norm};
use ortl_autodiff::{AutodiffError, batch_norm, gradients};
use ortl_models::heads::HeadOutput;
use ortl_onnx::{DataType, Dim, Graph, GraphBuilder, Model, ValueInfo, passes, shapes};

/// Inputs of the step graph besides state.
pub const IMAGE: &str = "image";
pub const TARGET: &str = "target";
pub const SAMPLE_WEIGHT: &str = "sample_weight";
/// Binary cross-entropy's mask `[N, C]`: 0 where a label is unknown.
pub const TARGET_MASK: &str = "target_mask";
/// Binary cross-entropy's weight of each positive term `[N, C]` (PyTorch's `pos_weight`).
pub const POSITIVE_WEIGHT: &str = "positive_weight";
pub const LOSS: &str = "loss";
pub const PROBABILITIES: &str = "probabilities";

/// What trains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trainable {
    /// Head only (the tutorial's `base.trainable = False` phase).
    Head,
    /// Everything.
    All,
    /// Everything after the last node whose name, or one of whose parameters' names,
    /// starts with this prefix (`upto:layer3` freezes the stem and stages 1–3).
    Upto(String),
}

/// The `--freeze` spelling: what is frozen, not what trains.
impl std::fmt::Display for Trainable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trainable::All => write!(f, "none"),
            Trainable::Head => write!(f, "backbone"),
            Trainable::Upto(prefix) => write!(f, "upto:{prefix}"),
        }
    }
}

impl std::str::FromStr for Trainable {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(Trainable::All),
            "backbone" => Ok(Trainable::Head),
            other => match other.strip_prefix("upto:") {
                Some(prefix) if !prefix.is_empty() => Ok(Trainable::Upto(prefix.into())),
                _ => Err(format!("'{other}': use none, backbone or upto:NAME")),
            },
        }
    }
}

/// Parameters used by the graph's nodes up to the last one matching `prefix`.
fn frozen_upto(
    graph: &Graph,
    prefix: &str,
) -> Result<std::collections::HashSet<String>, GraphError> {
    let matches = |n: &ortl_onnx::Node| {
        n.name.starts_with(prefix)
            || n.inputs
                .iter()
                .any(|i| i.starts_with(prefix) && graph.initializers.contains_key(i))
    };
    let last = graph.nodes.iter().rposition(matches).ok_or_else(|| {
        GraphError::Other(format!("--freeze upto:{prefix}: no node or parameter name starts with '{prefix}' (torchvision-style names: conv1, layer1 … layer4)"))
    })?;
    Ok(graph.nodes[..=last]
        .iter()
        .flat_map(|n| n.inputs.iter())
        .filter(|i| graph.initializers.contains_key(*i))
        .cloned()
        .collect())
}

/// How backbone BatchNorms behave while training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BnMode {
    /// Stored statistics, trainable scale and shift (Keras `base(x, training=False)`).
    Frozen,
    /// Batch statistics, running statistics updated.
    Train,
}

/// The layout the step graph's convolutions compute in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvLayout {
    /// Blocked on the CPU when ONNX Runtime has blocked kernels for it, plain otherwise.
    #[default]
    Auto,
    /// Plain NCHW everywhere: the reference form.
    Plain,
    /// Blocked (NCHWc) on the CPU; an error where that is not available.
    Blocked,
}

/// Where the optimizer update runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UpdateOn {
    /// The host on the CPU, the graph on CUDA.
    #[default]
    Auto,
    /// In the step graph, as element-wise ops: the state never leaves the device. On the
    /// CPU each op is a pass over every parameter (12 for Adam).
    Graph,
    /// On the host, in one pass over each parameter, its gradient and its state, on all
    /// threads (CPU only). The same float operations as the graph's, so the same bits.
    Host,
}

impl UpdateOn {
    /// `Graph` or `Host` for `device`.
    pub fn resolve(self, device: ortl_runtime::Device) -> Result<UpdateOn, GraphError> {
        let cpu = device == ortl_runtime::Device::Cpu;
        match (self, cpu) {
            (UpdateOn::Auto, true) => Ok(UpdateOn::Host),
            (UpdateOn::Auto, false) => Ok(UpdateOn::Graph),
            (UpdateOn::Host, false) => Err(GraphError::Other(
                "--update-on host is for the CPU; on CUDA the state stays on the GPU and the update runs in the graph (use auto)".into(),
            )),
            (resolved, _) => Ok(resolved),
        }
    }
}

#[derive(Clone, Debug)]
pub struct TrainSpec {
    pub trainable: Trainable,
    pub bn_mode: BnMode,
    /// Fraction of the old running statistic kept per step in head BatchNorms (Keras'
    /// `momentum`, 0.99) and in backbone BatchNorms that train (PyTorch's 1 − 0.1 = 0.9,
    /// the convention of the torchvision layout; with Keras' 0.99 a short run leaves the
    /// statistics near their initial values).
    pub head_bn_momentum: f32,
    pub backbone_bn_momentum: f32,
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub clip_norm: Option<f32>,
    /// How the convolutions compute; the same step either way (to float rounding).
    pub conv_layout: ConvLayout,
    /// Where the optimizer update runs; [`build_step`] needs it resolved
    /// ([`UpdateOn::resolve`]). The same step either way, to the bit.
    pub update_on: UpdateOn,
}

/// The step graph and the names of everything the host feeds and reads back.
#[derive(Clone, Debug)]
pub struct StepGraph {
    pub model: Model,
    /// Trainable parameters, in order.
    pub params: Vec<String>,
    /// Optimizer state tensors: graph inputs, or held by the host ([`StepGraph::host_update`]).
    pub optimizer_state: Vec<String>,
    /// BatchNorm running statistics updated by the step.
    pub bn_stats: Vec<String>,
    /// Dropout masks: (input name, features, rate).
    pub masks: Vec<(String, usize, f32)>,
    /// The data input: [`IMAGE`] (`uint8 [N,H,W,3]`), or the head's pooled features
    /// (`float [N,C]`) when the step reads a frozen backbone's cached output.
    pub input: String,
    /// The graph outputs each parameter's gradient (`gradient/<name>`) and the host applies
    /// the optimizer; otherwise the update is in the graph.
    pub host_update: bool,
    /// Parameters (OIHW convolution kernels) whose `gradient/<name>` holds the weight-gradient
    /// GEMM's `[O, kh, kw, C]` rows, with their `[C, kh·kw]`:
    /// the host reads them in that order rather than the graph transposing each.
    pub ohwi_gradients: BTreeMap<String, [usize; 2]>,
    /// The shapes of `gradient/<name>` outputs that are not their parameter's: a weight
    /// gradient bound as its GEMM's result, the same values in the same order (or in
    /// [`StepGraph::ohwi_gradients`]' rows).
    pub gradient_shapes: BTreeMap<String, Vec<usize>>,
}

/// The step of a head-only run reading cached pooled features `[N, width]` instead of images:
/// the frozen backbone disappears from the graph.
pub fn on_features(mut step: StepGraph, pooled: &str, width: usize) -> StepGraph {
    passes::start_at(&mut step.model.graph, features_input(pooled, width));
    step.input = pooled.into();
    step
}

/// The inference classifier's head alone, reading pooled features.
pub fn head_model(classifier: &Model, pooled: &str, width: usize) -> Model {
    let mut model = classifier.clone();
    passes::start_at(&mut model.graph, features_input(pooled, width));
    model
}

/// The frozen part alone: images in, pooled features out.
pub fn feature_extractor(classifier: &Model, pooled: &str, width: usize) -> Model {
    let mut model = classifier.clone();
    passes::end_at(&mut model.graph, features_input(pooled, width));
    model
}

fn features_input(pooled: &str, width: usize) -> ValueInfo {
    ValueInfo::new(
        pooled,
        DataType::Float,
        vec![Dim::Symbolic("N".into()), Dim::Fixed(width as i64)],
    )
}

pub fn next(name: &str) -> String {
    format!("next/{name}")
}

/// The output a parameter's gradient leaves the graph by, where the host updates it.
pub fn gradient(param: &str) -> String {
    format!("gradient/{param}")
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    #[error(transparent)]
    Onnx(#[from] ortl_onnx::OnnxError),
    #[error("{0}")]
    Other(String),
}

/// The parameters that train under `trainable`.
fn trainable_parameters(graph: &Graph, trainable: &Trainable) -> Result<Vec<String>, GraphError> {
    let frozen = match trainable {
        Trainable::Upto(prefix) => frozen_upto(graph, prefix)?,
        _ => Default::default(),
    };
    let params: Vec<String> = ortl_models::backbone::parameters(graph)
        .into_iter()
        .filter(|name| match trainable {
            Trainable::All => true,
            Trainable::Head => ortl_models::heads::is_head_parameter(name),
            Trainable::Upto(_) => !frozen.contains(name),
        })
        .collect();
    if params.is_empty() {
        return Err(GraphError::Other(
            "nothing to train: no trainable parameters".into(),
        ));
    }
    Ok(params)
}

/// The node (name, operator) that stops `trainable` from training: the last one between
/// the trainable parameters and the classifier's output without a gradient rule. Checked
/// before anything is built.
pub fn untrainable_node(
    classifier: &Model,
    trainable: &Trainable,
) -> Result<Option<(String, String)>, GraphError> {
    let params = trainable_parameters(&classifier.graph, trainable)?;
    let output = classifier
        .graph
        .outputs
        .first()
        .map(|o| o.name.clone())
        .unwrap_or_default();
    Ok(
        ortl_autodiff::first_without_rule(&classifier.graph.nodes, &params, &output)
            .map(|n| (n.name.clone(), n.op.clone())),
    )
}

/// Builds the step graph from an inference classifier and its head description.
pub fn build_step(
    classifier: &Model,
    head: &HeadOutput,
    spec: &TrainSpec,
) -> Result<StepGraph, GraphError> {
    let host_update = match spec.update_on {
        UpdateOn::Graph => false,
        UpdateOn::Host => true,
        UpdateOn::Auto => {
            return Err(GraphError::Other(
                "the optimizer's place is chosen for a device (UpdateOn::resolve) before the step graph is built".into(),
            ));
        }
    };
    let mut graph = classifier.graph.clone();
    let is_head = ortl_models::heads::is_head_parameter;
    let params = trainable_parameters(&graph, &spec.trainable)?;
    let shapes_before = shapes::infer(&graph)?;

    // Dropout masks.
    let mut masks = Vec::new();
    for (i, (value, rate)) in head.dropouts.iter().enumerate() {
        let width = shapes_before[value]
            .shape
            .get(1)
            .copied()
            .flatten()
            .ok_or_else(|| {
                GraphError::Other(format!("dropout input '{value}' has no static width"))
            })?;
        let mask = format!("dropout_mask_{i}");
        insert_mask(&mut graph, value, &mask, width);
        masks.push((mask, width as usize, *rate));
    }

    // BatchNorms on batch statistics.
    let mut bn_stats = Vec::new();
    let training_bns: Vec<usize> = (0..graph.nodes.len())
        .filter(|&i| {
            let n = &graph.nodes[i];
            n.op == "BatchNormalization"
                && (is_head(&n.inputs[1])
                    || spec.bn_mode == BnMode::Train && params.contains(&n.inputs[1]))
        })
        .collect();
    for &i in training_bns.iter().rev() {
        let node = graph.nodes.remove(i);
        let rank = shapes_before[&node.inputs[0]].shape.len();
        let momentum = if is_head(&node.inputs[1]) {
            spec.head_bn_momentum
        } else {
            spec.backbone_bn_momentum
        };
        bn_stats.extend(batch_norm_on_batch_statistics(
            &mut graph, &node, rank, momentum,
        ));
    }

    // Inference-mode BatchNorms fold into their convolutions: one Conv with scaled weights
    // and a bias instead of a normalisation pass over the activations, forward and back.
    fold_batchnorms_into_convs(&mut graph);

    // MaxPool indices for the backward pass.
    if spec.trainable != Trainable::Head {
        for node in graph
            .nodes
            .iter_mut()
            .filter(|n| n.op == "MaxPool" && n.outputs.len() == 1)
        {
            node.outputs.push(format!("{}:indices", node.name));
        }
    }

    // State as inputs.
    for name in params.iter().chain(&bn_stats) {
        let tensor = graph
            .initializers
            .remove(name)
            .expect("state is an initializer");
        graph.inputs.push(ValueInfo::new(
            name,
            DataType::Float,
            tensor.dims.iter().map(|&d| Dim::Fixed(d)).collect(),
        ));
    }
    passes::toposort(&mut graph)?;

    let classes = classifier.graph.outputs[0]
        .shape
        .as_ref()
        .and_then(|s| s.get(1).cloned())
        .unwrap_or(Dim::Unknown);
    let n = Dim::Symbolic("N".into());
    let mut b = GraphBuilder::from_graph(graph);
    b.input(TARGET, DataType::Float, vec![n.clone(), classes.clone()]);
    b.input(SAMPLE_WEIGHT, DataType::Float, vec![n.clone()]);
    let binary = spec.loss.weighs_elements().then(|| {
        b.input(
            TARGET_MASK,
            DataType::Float,
            vec![n.clone(), classes.clone()],
        );
        b.input(POSITIVE_WEIGHT, DataType::Float, vec![n, classes]);
        BinaryWeights {
            mask: TARGET_MASK,
            positive: POSITIVE_WEIGHT,
        }
    });
    if !host_update {
        b.input(LR, DataType::Float, vec![]);
        if spec.optimizer.uses_bias_correction() {
            b.input(BIAS_CORRECTION1, DataType::Float, vec![]);
            b.input(BIAS_CORRECTION2, DataType::Float, vec![]);
        }
    }
    let data_loss = batch_loss(
        &mut b,
        spec.loss,
        &head.logits,
        TARGET,
        SAMPLE_WEIGHT,
        binary,
    );
    let penalised: Vec<(String, f32)> = head
        .l2
        .iter()
        .filter(|(name, _)| params.contains(name))
        .cloned()
        .collect();
    let loss = match l2_penalty(&mut b, &penalised) {
        Some(penalty) => b.add(&data_loss, &penalty),
        None => data_loss,
    };
    let shapes = ortl_autodiff::rules::registry().infer(b.graph())?;
    let mut grads = gradients(&mut b, &loss, &params, &shapes)?.of;
    let dims: BTreeMap<String, Vec<Dim>> = params
        .iter()
        .map(|param| {
            let input = b.graph().inputs.iter().find(|i| &i.name == param);
            let dims = input.and_then(|i| i.shape.clone()).expect("param input");
            (param.clone(), dims)
        })
        .collect();
    let ranks: BTreeMap<String, usize> = dims.iter().map(|(p, d)| (p.clone(), d.len())).collect();
    if let Some(max_norm) = spec.clip_norm {
        clip_global_norm(&mut b, &mut grads, &ranks, max_norm);
    }
    let mut optimizer_state = Vec::new();
    let mut updates: BTreeMap<String, String> = BTreeMap::new();
    for param in &params {
        let states = spec.optimizer.states(param);
        if host_update {
            optimizer_state.extend(states);
            continue;
        }
        for state in &states {
            b.input(state, DataType::Float, dims[param].clone());
        }
        let (new_param, new_states) = b.scoped(&format!("optim/{param}"), |b| {
            spec.optimizer
                .update(b, param, &grads[param], &states, ranks[param])
        });
        updates.insert(param.clone(), new_param);
        for (state, value) in states.iter().zip(new_states) {
            updates.insert(state.clone(), value);
        }
        optimizer_state.extend(states);
    }
    for stat in &bn_stats {
        updates.insert(stat.clone(), format!("bn_next/{stat}"));
    }

    let mut graph = b.finish();
    batch_norm::lower(&mut graph)?;
    // Name the outputs: loss, probabilities, next/<state> for every state input the graph
    // updates, and gradient/<parameter> for every parameter the host updates.
    let mut renamed = BTreeMap::new();
    let loss_out = name_output(&mut graph, &mut renamed, &loss, LOSS);
    let mut outputs = vec![ValueInfo::new(&loss_out, DataType::Float, vec![])];
    outputs.push(graph.outputs[0].clone());
    for (state, value) in &updates {
        let name = name_output(&mut graph, &mut renamed, value, &next(state));
        outputs.push(ValueInfo {
            name,
            dtype: DataType::Float,
            shape: None,
        });
    }
    let mut ohwi_gradients = BTreeMap::new();
    let mut gradient_shapes = BTreeMap::new();
    if host_update {
        let inferred = shapes::infer_partial(&graph)?;
        for param in &params {
            let name = gradient(param);
            let name = match unshaped_gradient(&graph, &grads[param], &inferred) {
                Some(found) => {
                    // The host reads the GEMM's result where it is: the Reshape (and a
                    // k×k kernel's OHWI → OIHW Transpose) that would copy it into the bound
                    // buffer go, and the buffer takes the GEMM's shape.
                    if found.rows {
                        let d = |i: usize| match dims[param][i] {
                            Dim::Fixed(d) => d as usize,
                            _ => unreachable!("parameters have fixed shapes"),
                        };
                        ohwi_gradients.insert(param.clone(), [d(1), d(2) * d(3)]);
                    }
                    graph.nodes.retain(|n| !found.dropped.contains(&n.name));
                    passes::rename_value(&mut graph, &found.value, &name);
                    gradient_shapes.insert(param.clone(), found.shape);
                    name
                }
                None => name_output(&mut graph, &mut renamed, &grads[param], &name),
            };
            outputs.push(ValueInfo {
                name,
                dtype: DataType::Float,
                shape: None,
            });
        }
    }
    graph.outputs = outputs;
    // Once every value a step returns is a named output (which merging keeps).
    passes::merge_duplicates(&mut graph)?;
    passes::validate(&graph)?;
    let mut model = Model::new(graph);
    model.metadata = classifier.metadata.clone();
    Ok(StepGraph {
        model,
        params,
        optimizer_state,
        bn_stats,
        masks,
        input: IMAGE.into(),
        host_update,
        ohwi_gradients,
        gradient_shapes,
    })
}

/// A weight gradient as a GEMM leaves it, before the layout changes that only reorder it.
struct UnshapedGradient {
    /// The GEMM's result.
    value: String,
    /// Its shape: the same values in the same order as the parameter's, or in `[O, kh, kw,
    /// C]` rows when `rows`.
    shape: Vec<usize>,
    rows: bool,
    /// The Reshape (and Transpose) after it.
    dropped: Vec<String>,
}

/// Finds `gradient` = `Reshape(v)` or, for a k×k kernel, `Transpose(Reshape(v), [0, 3, 1,
/// 2])`, where nothing else reads the values between and `v`'s shape is known: binding `v`
/// as the output spares copying the gradient into the bound buffer (a Reshape's output
/// cannot alias it; 23.5 M floats a step for ResNet50).
fn unshaped_gradient(
    graph: &Graph,
    gradient: &str,
    inferred: &std::collections::HashMap<String, shapes::TypedShape>,
) -> Option<UnshapedGradient> {
    let read_only_by = |value: &str, node: &ortl_onnx::Node| {
        graph.consumers(value).all(|c| c.name == node.name)
            && !graph.outputs.iter().any(|o| o.name == value)
    };
    let last = graph.producer(gradient)?;
    if graph.consumers(gradient).next().is_some() {
        return None;
    }
    let (reshape, rows) = match last.op.as_str() {
        "Transpose" if last.ints("perm") == Some(&[0, 3, 1, 2]) => {
            let reshape = graph.producer(&last.inputs[0])?;
            (reshape, true)
        }
        "Reshape" => (last, false),
        _ => return None,
    };
    if reshape.op != "Reshape"
        || (rows && !read_only_by(&last.inputs[0], last))
        || !read_only_by(&reshape.inputs[0], reshape)
    {
        return None;
    }
    let value = reshape.inputs[0].clone();
    graph.producer(&value)?;
    let shape = inferred
        .get(&value)?
        .shape
        .iter()
        .map(|d| d.and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<Vec<usize>>>()?;
    let mut dropped = vec![reshape.name.clone()];
    if rows {
        dropped.push(last.name.clone());
    }
    Some(UnshapedGradient {
        value,
        shape,
        rows,
        dropped,
    })
}

impl ConvLayout {
    /// The NCHWc block the step graph is rewritten to on `device`, given the block ONNX
    /// Runtime reports for this CPU (`None`: it has no blocked kernels); `None` for the
    /// plain graph.
    pub fn resolve(
        self,
        device: ortl_runtime::Device,
        block: Option<i64>,
    ) -> Result<Option<i64>, GraphError> {
        let cpu = device == ortl_runtime::Device::Cpu;
        match (self, cpu, block) {
            (ConvLayout::Plain, ..) | (ConvLayout::Auto, false, _) | (ConvLayout::Auto, _, None) => {
                Ok(None)
            }
            (ConvLayout::Blocked, false, _) => Err(GraphError::Other(
                "--conv-layout blocked is for the CPU; CUDA runs the plain graph (use auto)".into(),
            )),
            (ConvLayout::Blocked, true, None) => Err(GraphError::Other(
                "--conv-layout blocked: this CPU has no blocked (NCHWc) kernels in ONNX Runtime (they need AVX2 or AVX-512); use auto".into(),
            )),
            (_, true, Some(block)) => Ok(Some(block)),
        }
    }
}

/// Rewrites `step` to the layout `layout` asks for on `device` (see [`ConvLayout::resolve`]).
/// Returns what was rewritten, `None` for the plain graph.
pub fn apply_conv_layout(
    step: &mut StepGraph,
    layout: ConvLayout,
    device: ortl_runtime::Device,
    block: Option<i64>,
) -> Result<Option<ortl_autodiff::blocked::Blocked>, GraphError> {
    match layout.resolve(device, block)? {
        None => Ok(None),
        Some(block) => Ok(Some(ortl_autodiff::blocked::block_convolutions(
            &mut step.model,
            block,
        )?)),
    }
}

/// Rewrites every Conv → BatchNormalization (stored statistics) pair whose Conv output
/// feeds only the BatchNorm into `Conv(x, W·s, b·s + β − μ·s)` with `s = γ/√(σ² + ε)`,
/// computed in the graph so that gradients reach W, γ and β through the fold.
fn fold_batchnorms_into_convs(graph: &mut Graph) {
    let candidates: Vec<usize> = (0..graph.nodes.len())
        .filter(|&i| {
            let bn = &graph.nodes[i];
            bn.op == "BatchNormalization"
                && bn.int("training_mode").unwrap_or(0) == 0
                && bn.outputs.len() == 1
                && graph
                    .producer(&bn.inputs[0])
                    .is_some_and(|c| c.op == "Conv")
                && graph.consumers(&bn.inputs[0]).count() == 1
                && !graph.outputs.iter().any(|o| o.name == bn.inputs[0])
        })
        .collect();
    if candidates.is_empty() {
        return;
    }
    let mut b = GraphBuilder::from_graph(std::mem::take(graph));
    let mut removed = Vec::new();
    for i in candidates {
        let bn = b.graph().nodes[i].clone();
        let conv_index = b
            .graph()
            .nodes
            .iter()
            .position(|n| n.outputs.first() == Some(&bn.inputs[0]))
            .expect("checked");
        let conv = b.graph().nodes[conv_index].clone();
        let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|k| bn.inputs[k].clone());
        let (weight, bias) = b.scoped(&format!("bn_fold/{}", bn.name), |b| {
            let eps = b.constant(ortl_onnx::Tensor::scalar(
                bn.float("epsilon").unwrap_or(1e-5),
            ));
            let ve = b.add(&var, &eps);
            let std = b.sqrt(&ve);
            let scale = b.div(&gamma, &std);
            let per_output = b.constant(ortl_onnx::Tensor::i64s(&[-1, 1, 1, 1]));
            let scale4 = b.reshape(&scale, &per_output);
            let weight = b.mul(&conv.inputs[1], &scale4);
            let shift = match conv.inputs.get(2).filter(|s| !s.is_empty()) {
                Some(conv_bias) => b.sub(conv_bias, &mean),
                None => b.neg(&mean),
            };
            let scaled_shift = b.mul(&shift, &scale);
            let bias = b.add(&scaled_shift, &beta);
            (weight, bias)
        });
        let mut folded = conv.clone();
        folded.inputs = vec![conv.inputs[0].clone(), weight, bias];
        folded.outputs = bn.outputs.clone();
        let nodes = &mut b.graph_mut().nodes;
        nodes[conv_index] = folded;
        removed.push(i);
    }
    let mut graph_out = b.finish();
    removed.sort_unstable();
    for i in removed.into_iter().rev() {
        graph_out.nodes.remove(i);
    }
    passes::toposort(&mut graph_out).expect("folding keeps the graph acyclic");
    *graph = graph_out;
}

/// Gives `value` the graph-output name `output`. A value a node computes is renamed, so that
/// the node writes straight into the buffer bound to the output (no copy); a graph input, a
/// value already named for another output (`renamed` maps old names to new) or an existing
/// output gets `output = Identity(value)`.
fn name_output(
    graph: &mut Graph,
    renamed: &mut BTreeMap<String, String>,
    value: &str,
    output: &str,
) -> String {
    let value = renamed
        .get(value)
        .cloned()
        .unwrap_or_else(|| value.to_string());
    let produced = graph.nodes.iter().any(|n| n.outputs.contains(&value));
    let already_output = graph.outputs.iter().any(|o| o.name == value);
    if produced && !already_output && !renamed.values().any(|v| *v == value) {
        passes::rename_value(graph, &value, output);
        renamed.insert(value, output.into());
        return output.into();
    }
    graph.nodes.push(ortl_onnx::Node {
        name: format!("out/{output}"),
        op: "Identity".into(),
        domain: String::new(),
        inputs: vec![value],
        outputs: vec![output.into()],
        attrs: BTreeMap::new(),
    });
    output.into()
}

/// Multiplies `value` by a new `[N, width]` mask input and reroutes its readers.
fn insert_mask(graph: &mut Graph, value: &str, mask: &str, width: i64) {
    let masked = format!("{value}:dropped");
    for node in &mut graph.nodes {
        for input in node.inputs.iter_mut().filter(|i| *i == value) {
            *input = masked.clone();
        }
    }
    graph.inputs.push(ValueInfo::new(
        mask,
        DataType::Float,
        vec![Dim::Symbolic("N".into()), Dim::Fixed(width)],
    ));
    graph.nodes.push(ortl_onnx::Node {
        name: format!("dropout/{mask}"),
        op: "Mul".into(),
        domain: String::new(),
        inputs: vec![value.into(), mask.into()],
        outputs: vec![masked],
        attrs: BTreeMap::new(),
    });
}

/// Replaces a BatchNormalization node by one on batch statistics (lowered to standard
/// operators after differentiation, `ortl_autodiff::batch_norm`); returns the running
/// statistics it now updates (their new values are `bn_next/<name>`).
fn batch_norm_on_batch_statistics(
    graph: &mut Graph,
    node: &ortl_onnx::Node,
    rank: usize,
    momentum: f32,
) -> Vec<String> {
    let [x, gamma, beta, mean, var] = [0, 1, 2, 3, 4].map(|i| node.inputs[i].clone());
    let eps = node.float("epsilon").unwrap_or(1e-5);
    let name = format!("bn_train/{}", node.name);
    let outputs = batch_norm::Outputs::named(&name, &node.outputs[0]);
    graph.nodes.push(batch_norm::node(
        &name,
        [&x, &gamma, &beta],
        rank,
        eps,
        &outputs,
    ));
    let mut b = GraphBuilder::from_graph(std::mem::take(graph));
    b.scoped(&name, |b| {
        let flat = b.constant(ortl_onnx::Tensor::i64s(&[-1]));
        let keep = b.constant(ortl_onnx::Tensor::scalar(momentum));
        let take = b.constant(ortl_onnx::Tensor::scalar(1.0 - momentum));
        for (stat, batch) in [(&mean, &outputs.mean), (&var, &outputs.variance)] {
            let batch = b.reshape(batch, &flat);
            let old = b.mul(stat, &keep);
            let new = b.mul(&batch, &take);
            b.named(&format!("bn_next/{stat}"), |b| b.add(&old, &new));
        }
    });
    *graph = b.finish();
    vec![mean, var]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeze_spellings_parse_and_display_back() {
        for text in ["none", "backbone", "upto:layer3"] {
            let trainable: Trainable = text.parse().unwrap();
            assert_eq!(trainable.to_string(), text);
        }
        assert_eq!("none".parse::<Trainable>(), Ok(Trainable::All));
        assert!(
            "upto:"
                .parse::<Trainable>()
                .unwrap_err()
                .contains("upto:NAME")
        );
    }
}
