//! The blocked-layout pass against the plain graph, through ONNX Runtime's CPU EP: the same
//! loss and gradients from a small residual network whose convolutions cover the stem (RGB
//! input), channel counts that are not whole blocks, 1×1, strided and biased kernels, and
//! every filter layout the pass writes.

use ortl_onnx::builder::Conv;
use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use ortl_autodiff::batch_norm;
use ortl_autodiff::blocked::{self, Blocked};
use ortl_autodiff::gradients;
use ortl_onnx::{DataType, Dim, GraphBuilder, Model};
use ortl_runtime::Feed;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PARAMS: [(&str, [usize; 4]); 10] = [
    ("stem", [12, 3, 3, 3]),
    ("a", [16, 12, 3, 3]),
    ("b", [16, 16, 1, 1]),
    ("b2", [16, 16, 3, 3]),
    ("b3", [16, 16, 1, 1]),
    ("down", [32, 16, 3, 3]),
    ("c", [32, 32, 3, 3]),
    ("d", [20, 32, 1, 1]),
    ("e", [24, 20, 3, 3]),
    ("f", [8, 24, 1, 1]),
];

fn conv(b: &mut GraphBuilder, x: &str, w: &str, bias: Option<&str>, k: i64, stride: i64) -> String {
    let pad = k / 2;
    b.conv(x, w, bias, &Conv::square(k, stride, pad))
}

/// Loss and the gradient of every parameter, as outputs `loss` and `grad_<name>`.
fn step_model() -> Model {
    let mut b = GraphBuilder::new("blocked");
    let x = b.input(
        "x",
        DataType::Float,
        [2, 3, 12, 12].map(Dim::Fixed).to_vec(),
    );
    for (name, dims) in PARAMS {
        b.input(
            name,
            DataType::Float,
            dims.map(|d| Dim::Fixed(d as i64)).to_vec(),
        );
    }
    b.input("stem_bias", DataType::Float, vec![Dim::Fixed(12)]);
    b.input("c_bias", DataType::Float, vec![Dim::Fixed(32)]);
    let y = conv(&mut b, &x, "stem", Some("stem_bias"), 3, 1);
    let y = b.relu(&y);
    let y = conv(&mut b, &y, "a", None, 3, 1);
    let a = b.relu(&y);
    // A residual around one convolution (its input is the sum's other operand) and one
    // around two (ResNet's).
    let y = conv(&mut b, &a, "b", None, 1, 1);
    let y = b.add(&y, &a);
    let r = b.relu(&y);
    let y = conv(&mut b, &r, "b2", None, 3, 1);
    let y = b.relu(&y);
    let y = conv(&mut b, &y, "b3", None, 1, 1);
    let y = b.add(&y, &r);
    let y = b.relu(&y);
    let y = conv(&mut b, &y, "down", None, 3, 2);
    let y = b.relu(&y);
    let y = conv(&mut b, &y, "c", Some("c_bias"), 3, 1);
    let y = b.relu(&y);
    let y = conv(&mut b, &y, "d", None, 1, 1);
    let y = b.relu(&y);
    let y = conv(&mut b, &y, "e", None, 3, 1);
    let y = conv(&mut b, &y, "f", None, 1, 1);
    let wrt: Vec<String> = PARAMS
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(["stem_bias".into(), "c_bias".into()])
        .collect();
    differentiated(b, &y, 8, &wrt)
}

/// The model with outputs `loss` (a fixed weighting of `y`'s `channels` pooled channels)
/// and `grad_<parameter>` for each of `wrt`, ortl's own operators lowered.
fn differentiated(mut b: GraphBuilder, y: &str, channels: usize, wrt: &[String]) -> Model {
    let pooled = b.global_average_pool(y);
    let flat = b.flatten(&pooled, 1);
    let weights = b.constant(ortl_onnx::Tensor::f32(
        &[1, channels as i64],
        (0..channels).map(|i| (i as f32 * 0.37).sin()).collect(),
    ));
    let weighted = b.mul(&flat, &weights);
    let loss = b.reduce_sum(&weighted, None, false);
    let shapes = ortl_autodiff::rules::registry().infer(b.graph()).unwrap();
    let grads = gradients(&mut b, &loss, wrt, &shapes).unwrap();
    let named: Vec<(String, String)> = grads
        .of
        .iter()
        .map(|(param, grad)| (param.clone(), b.identity(grad)))
        .collect();
    let mut graph = b.finish();
    batch_norm::lower(&mut graph).unwrap();
    ortl_onnx::passes::rename_value(&mut graph, &loss, "loss");
    graph
        .outputs
        .push(ortl_onnx::ValueInfo::new("loss", DataType::Float, vec![]));
    for (param, value) in named {
        let name = format!("grad_{param}");
        ortl_onnx::passes::rename_value(&mut graph, &value, &name);
        graph.outputs.push(ortl_onnx::ValueInfo {
            name,
            dtype: DataType::Float,
            shape: None,
        });
    }
    Model::new(graph)
}

fn feeds(model: &Model) -> HashMap<String, ArrayD<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    model
        .graph
        .inputs
        .iter()
        .map(|input| {
            let dims: Vec<usize> = input
                .dims()
                .unwrap()
                .iter()
                .map(|d| d.unwrap() as usize)
                .collect();
            let fan_in: usize = dims[1..].iter().product::<usize>().max(1);
            let scale = if input.name == "x" {
                1.0
            } else {
                (2.0 / fan_in as f32).sqrt()
            };
            let value =
                ArrayD::from_shape_fn(IxDyn(&dims), |_| scale * rng.random_range(-1.0..1.0));
            (input.name.clone(), value)
        })
        .collect()
}

fn run(
    model: &Model,
    values: &HashMap<String, ArrayD<f32>>,
) -> std::collections::BTreeMap<String, ArrayD<f32>> {
    let feeds = values
        .iter()
        .map(|(k, v)| (k.as_str(), Feed::F32(v.clone())))
        .collect();
    ortl_runtime::run(&mut ortl_runtime::testing::session(model), feeds).unwrap()
}

fn block() -> i64 {
    let runtime = ortl_runtime::testing::runtime();
    runtime
        .nchwc_block()
        .expect("this CPU has ONNX Runtime's blocked kernels (AVX2 or AVX-512); the pass cannot be checked without them")
}

/// The blocked model's loss and gradients equal the plain one's to 1e-4 of each output's
/// largest value.
fn assert_same_outputs(plain: &Model, blocked_model: &Model) {
    let values = feeds(plain);
    let expected = run(plain, &values);
    let got = run(blocked_model, &values);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (name, e) in &expected {
        let g = &got[name];
        assert_eq!(e.shape(), g.shape(), "{name}");
        let scale = e.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = e
            .iter()
            .zip(g.iter())
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(scale > 0.0, "{name} is all zeros: the check would be empty");
        assert!(
            worst <= 1e-4 * scale,
            "{name}: blocked differs from plain by {worst} (largest value {scale})"
        );
    }
}

fn ops(m: &Model, domain: &str, op: &str) -> usize {
    m.graph
        .nodes
        .iter()
        .filter(|n| n.domain == domain && n.op == op)
        .count()
}

#[test]
fn blocked_step_gives_the_plain_loss_and_gradients() {
    let plain = step_model();
    let mut blocked_model = plain.clone();
    let block = block();
    let summary = blocked::block_convolutions(&mut blocked_model, block).unwrap();
    // 10 forward Convs, the 1×1 dX Convs of b, b3, d and f (f's reads a plain gradient of
    // fewer channels than a block), and the stride-1 k×k dX ConvTransposes of a, b2, c and e;
    // the strided one of `down` (6×6 maps) is one batch GEMM and a scatter; nothing needs the
    // stem's dX.
    assert_eq!(
        (summary.convs, summary.transposed, summary.strided),
        (14, 4, 1),
        "{summary:?}"
    );
    // Into their Convs: the ReLUs after stem, a, b2, down, c and d; b3's residual Add and
    // the ReLU after it; and one gradient sum (b's residual Add, whose other operand is b's
    // own input, and the ReLU after it stay element-wise).
    assert_eq!(summary.fused, 9, "{summary:?}");
    let epilogues: Vec<(usize, bool)> = blocked_model
        .graph
        .nodes
        .iter()
        .filter(|n| n.domain == blocked::DOMAIN && n.op == "Conv")
        .map(|n| (n.inputs.len(), n.attrs.contains_key("activation")))
        .collect();
    assert!(epilogues.contains(&(4, true)), "{epilogues:?}");
    assert!(epilogues.contains(&(4, false)), "{epilogues:?}");
    assert!(summary.others > 10, "{summary:?}");
    assert_eq!(ops(&blocked_model, "", "Conv"), 0);
    assert_eq!(ops(&blocked_model, "", "ConvTranspose"), 0);
    // The batch-GEMM dX goes from channels-last to blocked in one reorder.
    let from_channels_last =
        |n: &&ortl_onnx::Node| n.op == "ReorderInput" && n.int("channels_last") == Some(1);
    assert_eq!(
        blocked_model
            .graph
            .nodes
            .iter()
            .filter(from_channels_last)
            .count(),
        1
    );
    assert!(
        blocked_model
            .opsets
            .iter()
            .any(|(d, _)| d == blocked::DOMAIN)
    );
    assert_same_outputs(&plain, &blocked_model);
}

#[test]
fn batch_norms_on_batch_statistics_stay_blocked_and_give_the_plain_gradients() {
    let plain = batch_norm_step_model();
    let mut blocked_model = plain.clone();
    let summary = blocked::block_convolutions(&mut blocked_model, block()).unwrap();
    assert_eq!((summary.convs, summary.transposed), (5, 2), "{summary:?}");
    // Each BatchNorm's products by per-channel factors are depthwise blocked Convs — the
    // forward affine, and the backward's a·g and k·(x − mean) — and the Adds, Sum and ReLU
    // after them their epilogues: the bias and ReLU forward, the three-term sum back.
    assert_eq!((summary.scales, summary.fused), (12, 12), "{summary:?}");
    // Each BatchNorm's centring, affine and gradient run on the blocked tensors (one image
    // per row), and its statistics and gradient sums reduce blocked tensors.
    let centring: Vec<&ortl_onnx::Node> = blocked_model
        .graph
        .nodes
        .iter()
        .filter(|n| n.op == "Sub")
        .collect();
    assert_eq!(centring.len(), 4);
    assert!(
        centring.iter().all(|n| n.outputs[0].ends_with("/view")),
        "{centring:?}"
    );
    let blocked_reductions = |op| {
        blocked_model
            .graph
            .nodes
            .iter()
            .filter(|n| n.op == op && n.outputs[0].ends_with("/batch_sums"))
            .count()
    };
    // Mean and variance, Σg and Σg·(x − mean), for each of the four.
    assert_eq!(
        (
            blocked_reductions("ReduceMean"),
            blocked_reductions("ReduceSum")
        ),
        (8, 8)
    );
    // The backward's values-per-channel count of the two 32-channel BatchNorms (whole
    // blocks) reads the blocked gradient's size instead of reordering it.
    let sizes_of_blocked = blocked_model
        .graph
        .nodes
        .iter()
        .filter(|n| n.op == "Size" && n.inputs[0].ends_with("/nchwc"))
        .count();
    assert_eq!(sizes_of_blocked, 2);
    assert_same_outputs(&plain, &blocked_model);
}

#[test]
fn a_graph_without_eligible_convolutions_is_left_alone() {
    // Grouped convolutions stay plain; so does everything around them.
    let mut b = GraphBuilder::new("grouped");
    let x = b.input("x", DataType::Float, [1, 16, 6, 6].map(Dim::Fixed).to_vec());
    let w = b.input("w", DataType::Float, [16, 4, 3, 3].map(Dim::Fixed).to_vec());
    let grouped = Conv {
        group: Some(4),
        pads: Some(vec![1; 4]),
        ..Conv::default()
    };
    let y = b.conv(&x, &w, None, &grouped);
    let y = b.relu(&y);
    b.output(&y, DataType::Float, vec![Dim::Unknown; 4]);
    let plain = Model::new(b.finish());
    let mut model = plain.clone();
    let summary = blocked::block_convolutions(&mut model, 16).unwrap();
    assert_eq!(summary, Blocked::default());
    assert_eq!(model, plain);
}

/// A network whose convolutions feed BatchNorms on batch statistics (lowered as a step
/// graph lowers them), with channel counts that are whole blocks and counts that are not.
fn batch_norm_step_model() -> Model {
    const CONVS: [(&str, [usize; 4]); 4] = [
        ("stem", [12, 3, 3, 3]),
        ("a", [32, 12, 3, 3]),
        ("b", [20, 32, 1, 1]),
        ("c", [32, 20, 3, 3]),
    ];
    let mut b = GraphBuilder::new("blocked-bn");
    let mut y = b.input(
        "x",
        DataType::Float,
        [4, 3, 10, 10].map(Dim::Fixed).to_vec(),
    );
    let mut wrt = Vec::new();
    for (name, dims) in CONVS {
        b.input(
            name,
            DataType::Float,
            dims.map(|d| Dim::Fixed(d as i64)).to_vec(),
        );
        let (gamma, beta) = (format!("{name}_gamma"), format!("{name}_beta"));
        for p in [&gamma, &beta] {
            b.input(p, DataType::Float, vec![Dim::Fixed(dims[0] as i64)]);
        }
        let k = dims[2] as i64;
        let conv = conv(&mut b, &y, name, None, k, 1);
        let bn = format!("{name}_bn");
        let outputs = batch_norm::Outputs::named(&bn, &format!("{name}_normalised"));
        b.graph_mut().nodes.push(batch_norm::node(
            &bn,
            [&conv, &gamma, &beta],
            4,
            1e-3,
            &outputs,
        ));
        y = b.relu(&outputs.y);
        wrt.extend([name.to_string(), gamma, beta]);
    }
    differentiated(b, &y, 32, &wrt)
}
