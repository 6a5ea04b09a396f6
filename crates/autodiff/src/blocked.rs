//! Blocked (NCHWc) convolutions in a training graph, for ONNX Runtime's CPU EP (issue 16).
//!
//! ORT runs its fast convolution kernels — activations in blocks of B channels
//! (`[N, C/B, H, W, B]`), filters pre-packed — only for Conv nodes whose weights are
//! constants; a step graph feeds its weights as inputs, so every convolution ran the generic
//! im2col path. The same kernels are registered as operators of the `com.microsoft.nchwc`
//! domain and accept a filter computed in the graph, so this pass writes them in:
//!
//! - each eligible Conv becomes an `nchwc` Conv on a blocked input, with its filter blocked
//!   in the graph (`Reshape → Transpose → Reshape`, zero-padded to whole blocks);
//! - a stride-1 ConvTranspose (the dX of a stride-1 convolution) becomes the equivalent
//!   blocked Conv with the filter flipped and transposed; a strided one on small maps becomes
//!   one GEMM over the batch and a scatter ([`crate::strided`], first);
//! - a product of a blocked activation and a per-channel `[1, C, 1, 1]` factor (a BatchNorm's
//!   affine forward, its gradient's two products back) becomes a depthwise 1×1 blocked Conv
//!   whose filter is the factor;
//! - the blocked Conv's epilogue, `relu(y + bias + sum)`, absorbs what follows a Conv or such
//!   a product when nothing else reads it: a ReLU, a residual Add, a gradient Sum and (after a
//!   product) a per-channel bias. The fused Conv is written where the last absorbed node was,
//!   after every operand it adds; a sum operand that is also the Conv's input stays apart
//!   (ORT may write the output over the sum's buffer);
//! - element-wise operators whose operands are all same-shaped activations or scalars
//!   (ReLU and its gradient mask, residual Add, gradient sums) run on the blocked tensors,
//!   and so do Add, Sub and Sum with per-channel `[1, C, 1, 1]` operands (a BatchNorm on
//!   batch statistics, forward and back) not folded into an epilogue, over one-image rows;
//! - a sum or mean over batch and space (a bias gradient, batch statistics) reads a blocked
//!   tensor as `[N·C/B, H·W, B]`, and a channels-last Transpose (a weight gradient's
//!   operand) is one `ReorderOutput`, the reverse one (a batch-GEMM dX's result) one
//!   `ReorderInput`;
//! - `ReorderInput` / `ReorderOutput` convert only at the edges, once per value.
//!
//! A blocked tensor has `C` rounded up to whole blocks; the extra channels hold zeros from
//! the zero-padded filters and biases and are dropped by `ReorderOutput`. The pass needs
//! the block size of the running CPU (16 with AVX-512, 8 with AVX2), which only ORT knows:
//! the caller probes it. The plain graph stays the reference; the CUDA EP never sees these
//! operators.

use std::collections::{HashMap, HashSet};

use ortl_onnx::builder::{int, ints};
use ortl_onnx::shapes::TypedShape;
use ortl_onnx::{Attr, DataType, Graph, Model, Node, OnnxError, Tensor, passes};

/// The operator domain of ORT's blocked CPU kernels.
pub const DOMAIN: &str = "com.microsoft.nchwc";

/// What a planner sees: the graph, its shapes, and the values planned blocked so far.
struct Planning<'a> {
    graph: &'a Graph,
    shapes: &'a HashMap<String, TypedShape>,
    block: i64,
    blocked: &'a HashSet<&'a str>,
    /// Values written by a `Transpose(·, [0, 3, 1, 2])` from channels-last that blocked
    /// readers will read (the batch-GEMM dXs).
    channels_last_results: &'a HashSet<String>,
}

/// How a node of one operator is rewritten, where it can be.
type Planner = fn(&Planning, &Node) -> Plan;

/// The operators the pass rewrites; the others stay plain.
const PLANNERS: &[(&str, Planner)] = &[
    ("Conv", |p, node| {
        conv_plan(node, p.graph, p.shapes, p.block, p.blocked, false)
    }),
    ("ConvTranspose", |p, node| {
        conv_plan(node, p.graph, p.shapes, p.block, p.blocked, true)
    }),
    // Element-wise operators that run unchanged on blocked tensors when every operand is a
    // same-shaped activation or a one-element scalar.
    ("Relu", elementwise),
    ("Add", elementwise),
    ("Sub", elementwise),
    ("Mul", elementwise),
    ("Where", elementwise),
    ("Greater", elementwise),
    ("Cast", elementwise),
    ("Sum", elementwise),
    ("Neg", elementwise),
    ("ReduceSum", channel_sum),
    ("ReduceMean", channel_sum),
    ("Shape", shape_of),
    ("Size", shape_of),
    ("Transpose", transpose),
];

fn elementwise(p: &Planning, node: &Node) -> Plan {
    elementwise_plan(node, p.shapes, p.blocked)
}

fn channel_sum(p: &Planning, node: &Node) -> Plan {
    channel_sum_plan(node, p.graph, p.shapes, p.blocked)
}

fn shape_of(p: &Planning, node: &Node) -> Plan {
    if p.blocked.contains(node.inputs[0].as_str())
        && activation(p.shapes, &node.inputs[0]).is_some_and(|[c, ..]| c % p.block == 0)
    {
        Plan::ShapeOf
    } else {
        Plan::Plain
    }
}

fn transpose(p: &Planning, node: &Node) -> Plan {
    if node.ints("perm") == Some(&[0, 2, 3, 1][..]) && p.blocked.contains(node.inputs[0].as_str()) {
        Plan::ChannelsLast
    } else if node.ints("perm") == Some(&[0, 3, 1, 2][..])
        && p.channels_last_results.contains(&node.outputs[0])
        && activation(p.shapes, &node.outputs[0]).is_some()
    {
        Plan::FromChannelsLast
    } else {
        Plan::Plain
    }
}

/// Element-wise operators that also take per-channel `[1, C, 1, 1]` operands on blocked
/// tensors (a BatchNorm's statistics and affine): each gives 0 on the zero channels that pad
/// a blocked tensor to whole blocks, so those stay zero. A Mul becomes a [`Plan::Scale`].
const CHANNEL_WISE: &[&str] = &["Add", "Sub", "Mul", "Sum"];

/// What the pass rewrote, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blocked {
    /// Conv nodes now blocked.
    pub convs: usize,
    /// Stride-1 ConvTranspose nodes now blocked Convs.
    pub transposed: usize,
    /// Strided ConvTranspose nodes on small maps now one batch GEMM and a scatter
    /// ([`crate::strided`]).
    pub strided: usize,
    /// Per-channel products (a BatchNorm's affine, forward and back) now depthwise 1×1
    /// blocked Convs.
    pub scales: usize,
    /// Bias and residual Adds, Sums and ReLUs folded into the blocked Conv before them.
    pub fused: usize,
    /// Element-wise, reduction and channels-last nodes reading blocked tensors.
    pub others: usize,
    /// Conversions into and out of the blocked layout.
    pub reorders: usize,
}

/// How one node is rewritten.
#[derive(Clone, Debug)]
enum Plan {
    Plain,
    Conv(ConvPlan),
    /// A Mul of an activation by a per-channel `[1, C, 1, 1]` factor, computed as a
    /// depthwise 1×1 blocked Conv whose filter is the factor: its epilogue then takes the
    /// bias, residual and ReLU after it, one pass instead of up to four.
    Scale(ScalePlan),
    /// A node folded into the epilogue of the Conv or Scale at index `into`, which is written
    /// in the place of its last such node; `sum` is the input it adds, read blocked.
    Fused {
        into: usize,
        sum: Option<usize>,
    },
    Elementwise,
    /// Element-wise with per-channel operands: computed with one image per row,
    /// `[N, C/B·H·W·B]`.
    ChannelWise,
    /// ReduceSum or ReduceMean over axes {0, 2, 3}.
    ChannelSum(ChannelSum),
    /// Transpose with perm [0, 2, 3, 1].
    ChannelsLast,
    /// Transpose with perm [0, 3, 1, 2] to an activation: one `ReorderInput` from
    /// channels-last straight to the blocked layout.
    FromChannelsLast,
    /// Shape or Size of a blocked value whose channels fill whole blocks: the blocked form has
    /// the same shape, so it is read as it is rather than reordered for its metadata.
    ShapeOf,
}

#[derive(Clone, Debug)]
struct ConvPlan {
    /// The input is blocked (filter `OIHWBiBo`); otherwise it stays NCHW with fewer
    /// channels than a block (filter `OIHWBo`, the RGB stem).
    blocked_input: bool,
    /// Channels in and out of the convolution as it is computed.
    c: i64,
    o: i64,
    kernel: [i64; 2],
    /// A ConvTranspose computed as a Conv with the flipped, transposed filter and these pads.
    flipped_pads: Option<[i64; 4]>,
    /// Where the filter comes from: the Conv's own input, or the input of the
    /// `Transpose(·, [1, 0, 2, 3])` that makes it (a 1×1 dX) or of the ConvTranspose — the
    /// swapped form, blocked by one permutation instead of two.
    filter: String,
    swapped: bool,
    epilogue: Epilogue,
}

#[derive(Clone, Debug)]
struct ScalePlan {
    /// Which input is the activation; the other is the factor.
    x: usize,
    c: i64,
    epilogue: Epilogue,
}

/// What ORT's blocked Conv computes after the convolution, `relu(y + bias + sum)`, from the
/// nodes that read the convolution's output and nothing else.
#[derive(Clone, Debug, Default)]
struct Epilogue {
    /// A `[1, C, 1, 1]` value added (a Scale's; a Conv keeps its own bias input).
    bias: Option<String>,
    /// A same-shaped activation added (the blocked Conv's `Sum` input).
    sum: Option<String>,
    relu: bool,
    /// The last node folded in and the value it writes: the Conv is written there, after
    /// every operand it adds exists.
    tail: Option<(usize, String)>,
}

impl Plan {
    /// Whether input `i` of the node is read in the blocked layout.
    fn reads_blocked(&self, i: usize, node: &Node, shapes: &HashMap<String, TypedShape>) -> bool {
        match self {
            Plan::Plain => false,
            Plan::Conv(conv) => i == 0 && conv.blocked_input,
            Plan::Scale(scale) => i == scale.x,
            Plan::Fused { sum, .. } => *sum == Some(i),
            Plan::Elementwise => activation(shapes, &node.inputs[i]).is_some(),
            Plan::ChannelWise => {
                shapes.get(&node.inputs[i]).map(|t| &t.shape)
                    == shapes.get(&node.outputs[0]).map(|t| &t.shape)
            }
            Plan::ChannelSum(_) | Plan::ChannelsLast | Plan::ShapeOf => i == 0,
            Plan::FromChannelsLast => false,
        }
    }

    fn writes_blocked(&self) -> bool {
        matches!(
            self,
            Plan::Conv(_)
                | Plan::Scale(_)
                | Plan::Fused { .. }
                | Plan::Elementwise
                | Plan::ChannelWise
                | Plan::FromChannelsLast
        )
    }

    fn epilogue(&self) -> Option<&Epilogue> {
        match self {
            Plan::Conv(ConvPlan { epilogue, .. }) | Plan::Scale(ScalePlan { epilogue, .. }) => {
                Some(epilogue)
            }
            _ => None,
        }
    }

    fn epilogue_mut(&mut self) -> Option<&mut Epilogue> {
        match self {
            Plan::Conv(ConvPlan { epilogue, .. }) | Plan::Scale(ScalePlan { epilogue, .. }) => {
                Some(epilogue)
            }
            _ => None,
        }
    }
}

/// Rewrites `model` to ORT's blocked convolutions with channel blocks of `block`.
pub fn block_convolutions(model: &mut Model, block: i64) -> Result<Blocked, OnnxError> {
    // Shapes computed at run time (beyond what inference follows) leave their values plain.
    let mut shapes = crate::rules::registry().infer_partial(&model.graph)?;
    let strided = crate::strided::batch_gemm_dx(&mut model.graph, &shapes);
    if !strided.is_empty() {
        shapes = crate::rules::registry().infer_partial(&model.graph)?;
    }
    let mut vetoed = HashSet::new();
    let plans = loop {
        let plans = plan(&model.graph, &shapes, block, &vetoed, &strided);
        // A blocked bool (a ReLU mask) has no conversion back: its producer stays plain
        // when a reader needs it plain.
        let stuck: Vec<usize> = (0..plans.len())
            .filter(|&i| {
                let node = &model.graph.nodes[i];
                plans[i].writes_blocked()
                    && shapes[&node.outputs[0]].dtype != DataType::Float
                    && (model
                        .graph
                        .outputs
                        .iter()
                        .any(|o| o.name == node.outputs[0])
                        || readers(&model.graph, &node.outputs[0]).any(|(j, k)| {
                            !plans[j].reads_blocked(k, &model.graph.nodes[j], &shapes)
                        }))
            })
            .collect();
        if stuck.is_empty() {
            break plans;
        }
        vetoed.extend(stuck);
    };
    let mut summary = rewrite(&mut model.graph, &shapes, block, &plans);
    summary.strided = strided.len();
    if summary.convs + summary.transposed > 0 && !model.opsets.iter().any(|(d, _)| d == DOMAIN) {
        model.opsets.push((DOMAIN.into(), 1));
    }
    passes::validate(&model.graph)?;
    Ok(summary)
}

/// (node index, input index) of every reader of `value`.
fn readers<'a>(graph: &'a Graph, value: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    graph.nodes.iter().enumerate().flat_map(move |(j, n)| {
        n.inputs
            .iter()
            .enumerate()
            .filter(move |(_, input)| *input == value)
            .map(move |(k, _)| (j, k))
    })
}

/// `[N, C, H, W]` of a 4-D activation whose C, H and W are known and C is a multiple of 4
/// (what `ReorderInput` takes).
fn activation(shapes: &HashMap<String, TypedShape>, value: &str) -> Option<[i64; 3]> {
    let shape = &shapes.get(value)?.shape;
    match shape.as_slice() {
        [_, Some(c), Some(h), Some(w)] if c % 4 == 0 => Some([*c, *h, *w]),
        _ => None,
    }
}

/// A `[1, C, 1, 1]` value: one number per channel of an activation with `c` channels.
fn is_channel_vector(shapes: &HashMap<String, TypedShape>, value: &str, c: i64) -> bool {
    shapes
        .get(value)
        .is_some_and(|t| t.shape == [Some(1), Some(c), Some(1), Some(1)])
}

/// A value of one element, broadcast over anything.
fn is_scalar(shapes: &HashMap<String, TypedShape>, value: &str) -> bool {
    shapes
        .get(value)
        .is_some_and(|t| t.shape.iter().all(|d| *d == Some(1)))
}

fn round_up(n: i64, block: i64) -> i64 {
    (n + block - 1) / block * block
}

/// `channels_last_results`: values written by a `Transpose(·, [0, 3, 1, 2])` from
/// channels-last that blocked readers will read (the batch-GEMM dXs).
fn plan(
    graph: &Graph,
    shapes: &HashMap<String, TypedShape>,
    block: i64,
    vetoed: &HashSet<usize>,
    channels_last_results: &HashSet<String>,
) -> Vec<Plan> {
    let mut blocked: HashSet<&str> = HashSet::new();
    let mut plans: Vec<Plan> = Vec::with_capacity(graph.nodes.len());
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for node in &graph.nodes {
        for input in &node.inputs {
            *readers.entry(input.as_str()).or_default() += 1;
        }
    }
    for output in &graph.outputs {
        *readers.entry(output.name.as_str()).or_default() += 1;
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        let plan = if vetoed.contains(&i) || !node.domain.is_empty() {
            Plan::Plain
        } else if let Some(fused) =
            fuse(i, graph, shapes, &blocked, &producer, &readers, &mut plans)
        {
            fused
        } else {
            let planning = Planning {
                graph,
                shapes,
                block,
                blocked: &blocked,
                channels_last_results,
            };
            PLANNERS
                .iter()
                .find(|(op, _)| *op == node.op)
                .map_or(Plan::Plain, |(_, planner)| planner(&planning, node))
        };
        if plan.writes_blocked() {
            blocked.insert(&node.outputs[0]);
        }
        for output in &node.outputs {
            producer.insert(output, i);
        }
        plans.push(plan);
    }
    plans
}

fn conv_plan(
    node: &Node,
    graph: &Graph,
    shapes: &HashMap<String, TypedShape>,
    block: i64,
    blocked: &HashSet<&str>,
    transposed: bool,
) -> Plan {
    let dims = |v: &str| -> Option<Vec<i64>> {
        let shape = &shapes.get(v)?.shape;
        shape[1..].iter().copied().collect::<Option<Vec<i64>>>()
    };
    let (Some(x), Some(w)) = (
        dims(&node.inputs[0]),
        node.inputs.get(1).and_then(|w| dims(w)),
    ) else {
        return Plan::Plain;
    };
    let Some(w0) = shapes.get(&node.inputs[1]).and_then(|t| t.shape[0]) else {
        return Plan::Plain;
    };
    if x.len() != 3
        || w.len() != 3
        || node.int("group").unwrap_or(1) != 1
        || dims(&node.outputs[0]).is_none()
    {
        return Plan::Plain;
    }
    let auto_pad = match node.attr("auto_pad") {
        Some(Attr::String(s)) => s.as_str(),
        _ => "NOTSET",
    };
    let kernel = [w[1], w[2]];
    // ConvTranspose's filter is [C_in, C_out, kh, kw]; Conv's is [C_out, C_in, kh, kw].
    let (c, o) = if transposed { (w0, w[0]) } else { (w[0], w0) };
    if x[0] != c {
        return Plan::Plain;
    }
    let flipped_pads = if transposed {
        let ones = |name| node.ints(name).is_none_or(|v| v.iter().all(|&s| s == 1));
        let zeros = |name| node.ints(name).is_none_or(|v| v.iter().all(|&s| s == 0));
        if auto_pad != "NOTSET"
            || !ones("strides")
            || !ones("dilations")
            || !zeros("output_padding")
            || node.attr("output_shape").is_some()
        {
            return Plan::Plain;
        }
        let pads = node.ints("pads").map_or(vec![0; 4], <[i64]>::to_vec);
        let flipped: Vec<i64> = (0..4).map(|i| kernel[i % 2] - 1 - pads[i]).collect();
        if flipped.iter().any(|&p| p < 0) {
            return Plan::Plain;
        }
        Some([flipped[0], flipped[1], flipped[2], flipped[3]])
    } else {
        None
    };
    let blocked_input = if blocked.contains(node.inputs[0].as_str()) || (c % 4 == 0 && c >= block) {
        true
    } else if c < block {
        false
    } else {
        return Plan::Plain;
    };
    let swapping = graph.producer(&node.inputs[1]).filter(|p| {
        !transposed && p.op == "Transpose" && p.ints("perm") == Some(&[1, 0, 2, 3][..])
    });
    let (filter, swapped) = match swapping {
        Some(t) => (t.inputs[0].clone(), true),
        None => (node.inputs[1].clone(), transposed),
    };
    Plan::Conv(ConvPlan {
        blocked_input,
        c,
        o,
        kernel,
        flipped_pads,
        filter,
        swapped,
        epilogue: Epilogue::default(),
    })
}

/// Folds node `i` into the epilogue of the blocked Conv or Scale that computes one of its
/// inputs, when that input has no other reader: a ReLU, or an Add or Sum of it with at
/// most one same-shaped blocked activation and (for a Scale) one per-channel bias.
fn fuse(
    i: usize,
    graph: &Graph,
    shapes: &HashMap<String, TypedShape>,
    blocked: &HashSet<&str>,
    producer: &HashMap<&str, usize>,
    readers: &HashMap<&str, usize>,
    plans: &mut [Plan],
) -> Option<Plan> {
    let node = &graph.nodes[i];
    let adds = matches!(node.op.as_str(), "Add" | "Sum") && node.inputs.len() > 1;
    if node.outputs.len() != 1 || !(adds || node.op == "Relu") {
        return None;
    }
    let out = shapes.get(&node.outputs[0])?;
    let [c, ..] = activation(shapes, &node.outputs[0])?;
    // The head that writes input `k` as the last step of its epilogue so far.
    let head_of = |plans: &[Plan], k: usize| -> Option<usize> {
        let value = node.inputs[k].as_str();
        let &p = producer.get(value)?;
        let head = match &plans[p] {
            Plan::Fused { into, .. } => *into,
            _ => p,
        };
        let sole_reader = readers.get(value) == Some(&1);
        let same_shape = shapes.get(value).map(|t| &t.shape) == Some(&out.shape);
        (sole_reader && same_shape).then_some(head)
    };
    for k in 0..node.inputs.len() {
        let Some(head) = head_of(plans, k) else {
            continue;
        };
        let head_inputs = &graph.nodes[head].inputs;
        let is_scale = matches!(plans[head], Plan::Scale(_));
        let Some(epilogue) = plans[head].epilogue_mut() else {
            continue;
        };
        if epilogue.relu {
            continue;
        }
        let (mut bias, mut sum) = (None, None);
        let fits = node
            .inputs
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != k)
            .all(|(j, v)| {
                let t = shapes.get(v);
                if t.is_none_or(|t| t.dtype != DataType::Float) {
                    false
                } else if is_scale
                    && bias.is_none()
                    && epilogue.bias.is_none()
                    && is_channel_vector(shapes, v, c)
                {
                    bias = Some(v.clone());
                    true
                } else if sum.is_none()
                    && epilogue.sum.is_none()
                    && blocked.contains(v.as_str())
                    && t.is_some_and(|t| t.shape == out.shape)
                    && !head_inputs.contains(v)
                {
                    sum = Some(j);
                    true
                } else {
                    false
                }
            });
        if !fits {
            continue;
        }
        epilogue.relu = !adds;
        if bias.is_some() {
            epilogue.bias = bias;
        }
        if let Some(j) = sum {
            epilogue.sum = Some(node.inputs[j].clone());
        }
        epilogue.tail = Some((i, node.outputs[0].clone()));
        return Some(Plan::Fused { into: head, sum });
    }
    None
}

fn elementwise_plan(
    node: &Node,
    shapes: &HashMap<String, TypedShape>,
    blocked: &HashSet<&str>,
) -> Plan {
    let Some(out) = shapes.get(&node.outputs[0]) else {
        return Plan::Plain;
    };
    let Some([c, ..]) = activation(shapes, &node.outputs[0]).filter(|_| node.outputs.len() == 1)
    else {
        return Plan::Plain;
    };
    let (mut first_blocked, mut per_channel) = (None, false);
    for (k, input) in node.inputs.iter().enumerate() {
        let Some(t) = shapes.get(input) else {
            return Plan::Plain;
        };
        if t.shape == out.shape {
            if blocked.contains(input.as_str()) {
                first_blocked = first_blocked.or(Some(k));
            } else if t.dtype != DataType::Float {
                return Plan::Plain;
            }
        } else if CHANNEL_WISE.contains(&node.op.as_str())
            && t.dtype == DataType::Float
            && is_channel_vector(shapes, input, c)
        {
            per_channel = true;
        } else if !is_scalar(shapes, input) {
            return Plan::Plain;
        }
    }
    match (first_blocked, per_channel) {
        (None, _) => Plan::Plain,
        (Some(_), false) => Plan::Elementwise,
        // An activation times a factor: the other input of a two-input Mul.
        (Some(x), true) if node.op == "Mul" => Plan::Scale(ScalePlan {
            x,
            c,
            epilogue: Epilogue::default(),
        }),
        (Some(_), true) => Plan::ChannelWise,
    }
}

fn channel_sum_plan(
    node: &Node,
    graph: &Graph,
    shapes: &HashMap<String, TypedShape>,
    blocked: &HashSet<&str>,
) -> Plan {
    if !blocked.contains(node.inputs[0].as_str()) || activation(shapes, &node.inputs[0]).is_none() {
        return Plan::Plain;
    }
    let axes: Option<Vec<i64>> = match node.inputs.get(1).filter(|a| !a.is_empty()) {
        Some(axes) => graph
            .initializers
            .get(axes)
            .and_then(|t| t.as_i64())
            .map(<[i64]>::to_vec),
        None => node.ints("axes").map(<[i64]>::to_vec),
    };
    let Some(mut axes) = axes else {
        return Plan::Plain;
    };
    for a in &mut axes {
        *a = a.rem_euclid(4);
    }
    axes.sort_unstable();
    if axes != [0, 2, 3] {
        return Plan::Plain;
    }
    Plan::ChannelSum(ChannelSum {
        keepdims: node.int("keepdims").unwrap_or(1) != 0,
        mean: node.op == "ReduceMean",
    })
}

/// Emits the planned graph: rewritten nodes, and one conversion per value that crosses
/// between the layouts.
fn rewrite(
    graph: &mut Graph,
    shapes: &HashMap<String, TypedShape>,
    block: i64,
    plans: &[Plan],
) -> Blocked {
    let mut summary = Blocked::default();
    let nodes = std::mem::take(&mut graph.nodes);
    let mut out = Emitter {
        nodes: Vec::with_capacity(nodes.len() * 2),
        initializers: &mut graph.initializers,
        counter: 0,
    };
    // Value → its blocked form, and blocked values whose plain form exists.
    let mut blocked_form: HashMap<String, String> = HashMap::new();
    let mut plain_too: HashSet<String> = HashSet::new();
    let channels = |v: &str| shapes[v].shape[1].expect("a blocked value has known channels");
    // Filter Transposes every reader of which now reads their input instead.
    let bypassed: HashSet<String> = nodes
        .iter()
        .filter(|n| n.op == "Transpose" && !graph.outputs.iter().any(|o| o.name == n.outputs[0]))
        .filter(|n| {
            let mut readers = nodes
                .iter()
                .zip(plans)
                .filter(|(r, _)| r.inputs.contains(&n.outputs[0]));
            readers.all(|(r, plan)| {
                matches!(plan, Plan::Conv(c) if c.swapped && c.flipped_pads.is_none()
                    && r.inputs[1] == n.outputs[0] && r.inputs[0] != n.outputs[0])
            })
        })
        .map(|n| n.outputs[0].clone())
        .collect();
    // Convs and Scales whose epilogue ends at a later node wait for it, with their inputs
    // in the layouts they read them in.
    let mut waiting: HashMap<usize, (Node, Vec<String>)> = HashMap::new();
    for (i, (node, plan)) in nodes.into_iter().zip(plans).enumerate() {
        if bypassed.contains(&node.outputs[0]) {
            continue;
        }
        // Inputs in the layout this node reads them in.
        let mut inputs = node.inputs.clone();
        for (k, input) in node.inputs.iter().enumerate() {
            if input.is_empty() {
                continue;
            }
            if plan.reads_blocked(k, &node, shapes) {
                if !blocked_form.contains_key(input) {
                    let name = blocked_name(input);
                    out.push(nchwc("ReorderInput", &[input], &name, vec![]));
                    summary.reorders += 1;
                    blocked_form.insert(input.clone(), name);
                    plain_too.insert(input.clone());
                }
                inputs[k] = blocked_form[input].clone();
            } else if blocked_form.contains_key(input) && !plain_too.contains(input) {
                out.push(nchwc(
                    "ReorderOutput",
                    &[&blocked_form[input]],
                    input,
                    vec![("channels", int(channels(input)))],
                ));
                summary.reorders += 1;
                plain_too.insert(input.clone());
            }
        }
        match plan {
            Plan::Plain | Plan::ShapeOf => {
                out.push(Node { inputs, ..node });
            }
            Plan::Conv(_) | Plan::Scale(_) if plan.epilogue().is_some_and(|e| e.tail.is_some()) => {
                waiting.insert(i, (node, inputs));
            }
            Plan::Conv(_) | Plan::Scale(_) => {
                let written = node.outputs[0].clone();
                let y = out.head(&node, plan, &inputs, &written, &blocked_form, block);
                blocked_form.insert(written, y);
                summary.count(plan);
            }
            Plan::Fused { into, .. } => {
                summary.fused += 1;
                let head = &plans[*into];
                let tail = head.epilogue().and_then(|e| e.tail.as_ref());
                if let Some((_, written)) = tail.filter(|(t, _)| *t == i) {
                    let (head_node, head_inputs) = waiting
                        .remove(into)
                        .expect("a head comes before its epilogue");
                    let y = out.head(
                        &head_node,
                        head,
                        &head_inputs,
                        written,
                        &blocked_form,
                        block,
                    );
                    blocked_form.insert(written.clone(), y);
                    summary.count(head);
                }
            }
            Plan::Elementwise => {
                let y = blocked_name(&node.outputs[0]);
                blocked_form.insert(node.outputs[0].clone(), y.clone());
                out.push(Node {
                    inputs,
                    outputs: vec![y],
                    ..node
                });
                summary.others += 1;
            }
            Plan::ChannelWise => {
                let [c, h, w] = activation(shapes, &node.outputs[0]).expect("planned");
                let c_blocked = round_up(c, block);
                let blocks = c_blocked / block;
                // One image as a row, `[N, C/B·H·W·B]`: a per-channel operand spread over one
                // image's plane broadcasts over the batch in whole rows, which ONNX Runtime
                // runs at the speed of a same-shaped operation (over the 5-D view, in spans
                // of one block, it ran 1.5–2× slower).
                let plane = blocks * h * w * block;
                let y = blocked_name(&node.outputs[0]);
                let mut operands = Vec::with_capacity(inputs.len());
                for (k, input) in inputs.iter().enumerate() {
                    let stem = format!("{y}/{k}");
                    operands.push(if plan.reads_blocked(k, &node, shapes) {
                        out.reshape(input, &[0, plane], format!("{stem}/view"))
                    } else if is_channel_vector(shapes, input, c) {
                        let padded =
                            out.pad_end(input, &[0, c_blocked - c, 0, 0], format!("{stem}/padded"));
                        let blocks_view =
                            out.reshape(&padded, &[1, blocks, 1, block], format!("{stem}/blocks"));
                        let to = out.constant(&stem, Tensor::i64s(&[1, blocks, h * w, block]));
                        let spread = out.op(
                            "Expand",
                            &[&blocks_view, &to],
                            format!("{stem}/spread"),
                            vec![],
                        );
                        out.reshape(&spread, &[1, plane], format!("{stem}/view"))
                    } else {
                        input.clone()
                    });
                }
                let operands: Vec<&str> = operands.iter().map(String::as_str).collect();
                let view = out.op(&node.op, &operands, format!("{y}/view"), vec![]);
                out.reshape(&view, &[0, c_blocked, h, w], y.clone());
                blocked_form.insert(node.outputs[0].clone(), y);
                summary.others += 1;
            }
            Plan::ChannelSum(sum) => {
                let [c, h, w] = activation(shapes, &node.inputs[0]).expect("planned");
                out.channel_sum(&inputs[0], &node.outputs[0], [c, h, w], *sum, block);
                summary.others += 1;
            }
            Plan::FromChannelsLast => {
                let name = blocked_name(&node.outputs[0]);
                out.push(nchwc(
                    "ReorderInput",
                    &[&inputs[0]],
                    &name,
                    vec![("channels_last", int(1))],
                ));
                blocked_form.insert(node.outputs[0].clone(), name);
                summary.reorders += 1;
            }
            Plan::ChannelsLast => {
                let c = channels(&node.inputs[0]);
                out.push(nchwc(
                    "ReorderOutput",
                    &[&inputs[0]],
                    &node.outputs[0],
                    vec![("channels", int(c)), ("channels_last", int(1))],
                ));
                summary.others += 1;
            }
        }
    }
    for output in &graph.outputs {
        if let Some(b) = blocked_form.get(&output.name)
            && !plain_too.contains(&output.name)
        {
            let c = channels(&output.name);
            out.push(nchwc(
                "ReorderOutput",
                &[b],
                &output.name,
                vec![("channels", int(c))],
            ));
            summary.reorders += 1;
        }
    }
    graph.nodes = out.nodes;
    summary
}

impl Blocked {
    fn count(&mut self, head: &Plan) {
        match head {
            Plan::Conv(conv) if conv.flipped_pads.is_some() => self.transposed += 1,
            Plan::Conv(_) => self.convs += 1,
            Plan::Scale(_) => self.scales += 1,
            _ => {}
        }
    }
}

fn blocked_name(value: &str) -> String {
    format!("{value}/nchwc")
}

fn nchwc(op: &str, inputs: &[&str], output: &str, attrs: Vec<(&str, Attr)>) -> Node {
    node(DOMAIN, op, inputs, output, attrs)
}

/// A one-output node named after its output.
fn node(domain: &str, op: &str, inputs: &[&str], output: &str, attrs: Vec<(&str, Attr)>) -> Node {
    Node {
        name: format!("{output}/{op}"),
        op: op.into(),
        domain: domain.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.into()],
        attrs: attrs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
    }
}

/// What a channel reduction keeps and computes.
#[derive(Clone, Copy, Debug)]
struct ChannelSum {
    keepdims: bool,
    mean: bool,
}

/// Appends nodes and constants with names derived from the values they make.
struct Emitter<'a> {
    nodes: Vec<Node>,
    initializers: &'a mut std::collections::BTreeMap<String, Tensor>,
    counter: usize,
}

impl Emitter<'_> {
    fn push(&mut self, node: Node) {
        self.nodes.push(node);
    }

    fn constant(&mut self, stem: &str, tensor: Tensor) -> String {
        self.counter += 1;
        let name = format!("{stem}/nchwc_const_{}", self.counter);
        self.initializers.insert(name.clone(), tensor);
        name
    }

    fn op(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: String,
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        self.nodes.push(node("", op, inputs, &output, attrs));
        output
    }

    fn push_nchwc(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: String,
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        self.nodes.push(nchwc(op, inputs, &output, attrs));
        output
    }

    fn reshape(&mut self, x: &str, shape: &[i64], output: String) -> String {
        let shape = self.constant(&output, Tensor::i64s(shape));
        self.op("Reshape", &[x, &shape], output, vec![])
    }

    /// `x` zero-padded at the end of each axis by `extra`; `x` itself when nothing is added.
    fn pad_end(&mut self, x: &str, extra: &[i64], output: String) -> String {
        if extra.iter().all(|&e| e == 0) {
            return x.into();
        }
        let mut pads = vec![0; extra.len()];
        pads.extend_from_slice(extra);
        let pads = self.constant(&output, Tensor::i64s(&pads));
        self.op("Pad", &[x, &pads], output, vec![])
    }

    /// The blocked Conv of a Conv or Scale `plan` with its epilogue, writing the blocked form
    /// of `written` (returned).
    fn head(
        &mut self,
        node: &Node,
        plan: &Plan,
        inputs: &[String],
        written: &str,
        blocked_form: &HashMap<String, String>,
        block: i64,
    ) -> String {
        let y = blocked_name(written);
        let (mut conv_inputs, mut attrs) = match plan {
            Plan::Conv(conv) => self.conv_operands(node, conv, inputs, block),
            Plan::Scale(scale) => self.scale_operands(scale, inputs, &y, block),
            _ => unreachable!("only Convs and Scales have epilogues"),
        };
        let epilogue = plan.epilogue().expect("a Conv or Scale");
        if let Some(sum) = &epilogue.sum {
            conv_inputs.resize(3, String::new());
            conv_inputs.push(blocked_form[sum].clone());
        }
        if epilogue.relu {
            attrs.push(("activation".into(), Attr::String("Relu".into())));
        }
        self.nodes.push(Node {
            name: format!("{y}/Conv"),
            op: "Conv".into(),
            domain: DOMAIN.into(),
            inputs: conv_inputs,
            outputs: vec![y.clone()],
            attrs: attrs.into_iter().collect(),
        });
        y
    }

    /// A Scale's blocked Conv: depthwise and 1×1, with the factor (zero-padded to whole
    /// blocks) as its filter and the epilogue's bias as its bias.
    fn scale_operands(
        &mut self,
        plan: &ScalePlan,
        inputs: &[String],
        y: &str,
        block: i64,
    ) -> (Vec<String>, Vec<(String, Attr)>) {
        let c_blocked = round_up(plan.c, block);
        let pad = c_blocked - plan.c;
        let factor = self.reshape(
            &inputs[1 - plan.x],
            &[plan.c, 1, 1, 1],
            format!("{y}/factor"),
        );
        let filter = self.pad_end(&factor, &[pad, 0, 0, 0], format!("{y}/factor_padded"));
        let mut conv_inputs = vec![inputs[plan.x].clone(), filter];
        if let Some(bias) = &plan.epilogue.bias {
            let flat = self.reshape(bias, &[plan.c], format!("{y}/bias"));
            conv_inputs.push(self.pad_end(&flat, &[pad], format!("{y}/bias_padded")));
        }
        let attrs = vec![
            ("kernel_shape".into(), ints(&[1, 1])),
            ("group".into(), int(c_blocked)),
        ];
        (conv_inputs, attrs)
    }

    /// A Conv's blocked filter (and bias), prepared in the graph, and its attributes.
    fn conv_operands(
        &mut self,
        node: &Node,
        plan: &ConvPlan,
        inputs: &[String],
        block: i64,
    ) -> (Vec<String>, Vec<(String, Attr)>) {
        let stem = &node.outputs[0];
        let [kh, kw] = plan.kernel;
        let o_blocked = round_up(plan.o, block);
        let c_in = if plan.blocked_input {
            round_up(plan.c, block)
        } else {
            plan.c
        };
        let (o_pad, c_pad) = (o_blocked - plan.o, c_in - plan.c);
        // The blocked layouts, [O/B][I/B][K][Bi][Bo] for a blocked input and [O/B][I][K][Bo]
        // for an NCHW one (K = KH·KW), from OIHW, or from IOHW when the source is swapped.
        // Each is a few transposes that move one axis or swap two halves: ONNX Runtime runs
        // those 4–6× faster than the one general 6-D permutation (measured on ResNet50's
        // filters).
        let (k, b) = (kh * kw, block);
        let (ob, ib) = (o_blocked / b, c_in / b);
        type Steps = Vec<(Vec<i64>, Vec<i64>)>;
        let (pads, steps): (Vec<i64>, Steps) = match (plan.blocked_input, plan.swapped) {
            (true, false) => (
                vec![o_pad, c_pad, 0, 0],
                vec![
                    (vec![ob, b, c_in * k], vec![0, 2, 1]),
                    (vec![ob * ib, b, k, b], vec![0, 2, 1, 3]),
                ],
            ),
            (true, true) => (
                vec![c_pad, o_pad, 0, 0],
                vec![
                    (vec![c_in * ob, b, k], vec![0, 2, 1]),
                    (vec![ib, b, ob * k, b], vec![0, 2, 1, 3]),
                    (vec![ib, ob, k * b * b], vec![1, 0, 2]),
                ],
            ),
            (false, false) => (
                vec![o_pad, 0, 0, 0],
                vec![(vec![ob, b, c_in * k], vec![0, 2, 1])],
            ),
            (false, true) => (
                vec![0, o_pad, 0, 0],
                vec![
                    (vec![c_in * ob, b, k], vec![0, 2, 1]),
                    (vec![c_in, ob, k * b], vec![1, 0, 2]),
                ],
            ),
        };
        // The first step gathers blocks of output channels; ReorderInput does that (zero-
        // padding them to a whole block) 1.5× faster than Transpose, for channel counts it
        // takes (multiples of 4).
        let mut steps = steps.as_slice();
        let mut pads = pads;
        let mut blocks = plan.filter.clone();
        if plan.o % 4 == 0 {
            let (outer, padded_axis) = if plan.swapped { (c_in, 1) } else { (1, 0) };
            let inner = if plan.swapped { k } else { c_in * k };
            pads[padded_axis] = 0;
            blocks = self.pad_end(&blocks, &pads, format!("{stem}/filter_padded"));
            let rows = self.reshape(
                &blocks,
                &[outer, plan.o, inner, 1],
                format!("{stem}/filter_rows"),
            );
            blocks = self.push_nchwc(
                "ReorderInput",
                &[&rows],
                format!("{stem}/filter_blocks"),
                vec![],
            );
            steps = &steps[1..];
        } else {
            blocks = self.pad_end(&blocks, &pads, format!("{stem}/filter_padded"));
        }
        for (i, (dims, perm)) in steps.iter().enumerate() {
            // A transpose that only moves an axis of one element is a no-op (1×1 kernels).
            if dims[2] == 1 && (perm == &[0, 2, 1] || perm == &[0, 2, 1, 3]) {
                continue;
            }
            let split = self.reshape(&blocks, dims, format!("{stem}/filter_split{i}"));
            blocks = self.op(
                "Transpose",
                &[&split],
                format!("{stem}/filter_blocks{i}"),
                vec![("perm", ints(perm))],
            );
        }
        if plan.flipped_pads.is_some() && k > 1 {
            // Conv of G with the ConvTranspose's filter turned by 180° (and swapped, above):
            // the kernel offsets in reverse, flipped once blocked, where each offset is a
            // run of B·Bi floats, not one (ResNet50's 3×3 filters: 0.7–0.8 ms instead of
            // 2.5–5.5 at 256×256, 3.4–6 instead of 10–11.5 at 512×512).
            let inner = if plan.blocked_input { b * b } else { b };
            let offsets = self.reshape(&blocks, &[-1, k, inner], format!("{stem}/filter_offsets"));
            let starts = self.constant(stem, Tensor::i64s(&[-1]));
            let ends = self.constant(stem, Tensor::i64s(&[i64::MIN]));
            let axes = self.constant(stem, Tensor::i64s(&[1]));
            let steps = self.constant(stem, Tensor::i64s(&[-1]));
            blocks = self.op(
                "Slice",
                &[&offsets, &starts, &ends, &axes, &steps],
                format!("{stem}/filter_flipped"),
                vec![],
            );
        }
        let blocked_filter = self.reshape(
            &blocks,
            &[o_blocked, c_in, kh, kw],
            format!("{stem}/filter_nchwc"),
        );
        let mut conv_inputs = vec![inputs[0].clone(), blocked_filter];
        if let Some(bias) = inputs.get(2).filter(|b| !b.is_empty()) {
            conv_inputs.push(self.pad_end(
                bias,
                &[o_blocked - plan.o],
                format!("{stem}/bias_padded"),
            ));
        }
        let attrs: Vec<(String, Attr)> = match plan.flipped_pads {
            Some(pads) => vec![
                ("kernel_shape".into(), ints(&[kh, kw])),
                ("pads".into(), ints(&pads)),
            ],
            None => node
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        (conv_inputs, attrs)
    }

    /// A sum (or mean) over `axis`, dropping it. A mean of means over groups of one size is
    /// the mean, so a mean reduces in steps as a sum does. Opset 17: ReduceSum takes its
    /// axes as an input, ReduceMean as an attribute.
    fn reduce(&mut self, x: &str, axis: i64, mean: bool, output: String) -> String {
        if mean {
            self.op(
                "ReduceMean",
                &[x],
                output,
                vec![("axes", ints(&[axis])), ("keepdims", int(0))],
            )
        } else {
            let axes = self.constant(&output, Tensor::i64s(&[axis]));
            self.op("ReduceSum", &[x, &axes], output, vec![("keepdims", int(0))])
        }
    }

    /// ReduceSum (or ReduceMean) over batch and space of a blocked `[N, C/B·B, H, W]`
    /// tensor, as a reduction of its `[N, C/B, H·W, B]` view.
    fn channel_sum(&mut self, x: &str, y: &str, [c, h, w]: [i64; 3], sum: ChannelSum, block: i64) {
        let c_blocked = round_up(c, block);
        // Over each image's space first (the middle axis of `[N·C/B, H·W, B]`), then over
        // the batch of `[N, C/B·B]`: on ONNX Runtime 1.31 that is 1.3–7× faster than the
        // batch first (which reads the whole tensor as one leading-axis reduction), and as
        // fast as or faster than the plain layout's reduction over {0, 2, 3}
        // (`[32, C, H, W]` from 64×50×50 to 2048×4×4, two threads).
        let images = self.reshape(x, &[-1, h * w, block], format!("{y}/images"));
        let over_space = self.reduce(&images, 1, sum.mean, format!("{y}/space_sums"));
        let rows = self.reshape(&over_space, &[-1, c_blocked], format!("{y}/rows"));
        let sums = self.reduce(&rows, 0, sum.mean, format!("{y}/batch_sums"));
        let shape = if sum.keepdims {
            vec![1, c, 1, 1]
        } else {
            vec![c]
        };
        if c_blocked == c {
            self.reshape(&sums, &shape, y.into());
        } else {
            let flat = self.reshape(&sums, &[c_blocked], format!("{y}/padded"));
            let starts = self.constant(y, Tensor::i64s(&[0]));
            let ends = self.constant(y, Tensor::i64s(&[c]));
            let sliced = self.op(
                "Slice",
                &[&flat, &starts, &ends],
                format!("{y}/sliced"),
                vec![],
            );
            self.reshape(&sliced, &shape, y.into());
        }
    }
}
