//! Grad-CAM graphs run through ONNX Runtime and checked against the definitions computed
//! directly in Rust on a tiny classifier whose head is non-linear (two dense layers with a
//! ReLU), so the gradient is not a constant.

use ndarray::{Array2, ArrayD, Axis, IxDyn};
use ortl_explain::{Method, cam, cam_model, expose_features, locate};
use ortl_models::Layout;
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, Tensor, io};
use ortl_onnx::{builder::Conv, builder::Gemm};
use ortl_runtime::Feed;

const SIZE: i64 = 8;
const CHANNELS: usize = 3;
const HIDDEN: usize = 4;
const CLASSES: usize = 3;

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect()
}

struct Tiny {
    model: Model,
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
}

/// image uint8 [N,8,8,3] → /255 → NCHW → Conv 3×3 (3 channels) → Relu = `features`
/// → GAP → Flatten → Gemm 4 → Relu → Gemm 3 = logits → Softmax.
fn tiny() -> Tiny {
    let mut b = GraphBuilder::new("tiny");
    let n = Dim::Symbolic("N".into());
    let image = b.input(
        "image",
        DataType::Uint8,
        vec![n.clone(), Dim::Fixed(SIZE), Dim::Fixed(SIZE), Dim::Fixed(3)],
    );
    let x = b.cast(&image, DataType::Float);
    let scale = b.constant(Tensor::scalar(1.0 / 255.0));
    let x = b.mul(&x, &scale);
    let x = b.transpose(&x, &[0, 3, 1, 2]);
    let conv_w = b.param(
        "conv.weight",
        Tensor::f32(&[CHANNELS as i64, 3, 3, 3], values(CHANNELS * 27, 1)),
    );
    let conv_b = b.param(
        "conv.bias",
        Tensor::f32(&[CHANNELS as i64], vec![0.1; CHANNELS]),
    );
    let padded = Conv {
        pads: Some(vec![1; 4]),
        ..Conv::default()
    };
    let conv = b.conv(&x, &conv_w, Some(&conv_b), &padded);
    let features = b.relu(&conv);
    let pooled = b.global_average_pool(&features);
    let flat = b.flatten(&pooled, 1);
    let (w1, b1, w2) = (
        values(HIDDEN * CHANNELS, 2),
        values(HIDDEN, 3),
        values(CLASSES * HIDDEN, 4),
    );
    let w1_name = b.param(
        "fc1.weight",
        Tensor::f32(&[HIDDEN as i64, CHANNELS as i64], w1.clone()),
    );
    let b1_name = b.param("fc1.bias", Tensor::f32(&[HIDDEN as i64], b1.clone()));
    let hidden = b.gemm(&flat, &w1_name, Some(&b1_name), &Gemm::B_TRANSPOSED);
    let hidden = b.relu(&hidden);
    let w2_name = b.param(
        "fc2.weight",
        Tensor::f32(&[CLASSES as i64, HIDDEN as i64], w2.clone()),
    );
    let b2_name = b.param(
        "fc2.bias",
        Tensor::f32(&[CLASSES as i64], vec![0.0; CLASSES]),
    );
    let logits = b.gemm(&hidden, &w2_name, Some(&b2_name), &Gemm::B_TRANSPOSED);
    let probabilities = b.softmax(&logits, -1);
    b.output(
        &probabilities,
        DataType::Float,
        vec![n, Dim::Fixed(CLASSES as i64)],
    );
    Tiny {
        model: Model::new(b.finish()),
        w1,
        b1,
        w2,
    }
}

fn run(model: &Model, feeds: Vec<(&str, Feed)>) -> std::collections::BTreeMap<String, ArrayD<f32>> {
    let runtime = ortl_runtime::testing::runtime();
    let mut session = runtime
        .load(&Default::default(), &io::to_bytes(model))
        .unwrap_or_else(|e| panic!("ORT accepts the graph: {e}"));
    ortl_runtime::run(&mut session, feeds).unwrap()
}

fn images(n: usize) -> ArrayD<u8> {
    let v = values(n * 64 * 3, 9);
    ArrayD::from_shape_vec(
        IxDyn(&[n, 8, 8, 3]),
        v.iter().map(|x| ((x + 1.0) * 127.5) as u8).collect(),
    )
    .unwrap()
}

/// ∂S_c/∂p_k for pooled features p, by the chain rule through the two dense layers.
fn score_gradient(t: &Tiny, pooled: &[f32], class: usize) -> Vec<f32> {
    let active: Vec<bool> = (0..HIDDEN)
        .map(|j| {
            t.b1[j]
                + (0..CHANNELS)
                    .map(|k| t.w1[j * CHANNELS + k] * pooled[k])
                    .sum::<f32>()
                > 0.0
        })
        .collect();
    (0..CHANNELS)
        .map(|k| {
            (0..HIDDEN)
                .filter(|&j| active[j])
                .map(|j| t.w2[class * HIDDEN + j] * t.w1[j * CHANNELS + k])
                .sum()
        })
        .collect()
}

/// Grad-CAM and Grad-CAM++ from their definitions, given the feature map `[K, h, w]`.
fn reference(t: &Tiny, a: ndarray::ArrayView3<f32>, class: usize, method: Method) -> Vec<f32> {
    let area = (a.shape()[1] * a.shape()[2]) as f32;
    let pooled: Vec<f32> = a.outer_iter().map(|m| m.sum() / area).collect();
    // G is constant over space: ∂S/∂A_kij = (∂S/∂p_k) / (h·w).
    let g: Vec<f32> = score_gradient(t, &pooled, class)
        .into_iter()
        .map(|d| d / area)
        .collect();
    let weights: Vec<f32> = match method {
        Method::GradCam => g.clone(),
        Method::GradCamPlusPlus => (0..CHANNELS)
            .map(|k| {
                let sum_a = a.index_axis(Axis(0), k).sum();
                let denominator = 2.0 * g[k] * g[k] + sum_a * g[k].powi(3);
                let alpha = if denominator == 0.0 {
                    0.0
                } else {
                    g[k] * g[k] / denominator
                };
                area * alpha * g[k].max(0.0)
            })
            .collect(),
        Method::Attention => unreachable!("a CNN has no attention map"),
    };
    let mut cam = vec![0.0f32; a.shape()[1] * a.shape()[2]];
    for (k, map) in a.outer_iter().enumerate() {
        for (c, v) in cam.iter_mut().zip(map.iter()) {
            *c += weights[k] * v;
        }
    }
    cam.into_iter().map(|v| v.max(0.0)).collect()
}

#[test]
fn cam_equals_the_definition_for_each_image_class_and_method() {
    let t = tiny();
    let target = locate(&t.model, None).unwrap();
    assert_eq!(target.layout, Layout::Nchw);
    assert_eq!(target.dims, [CHANNELS as i64, SIZE, SIZE]);
    assert_eq!(target.classes, CLASSES);
    let exposed = expose_features(&t.model, &target);
    let batch = images(4);
    let out = run(&exposed, vec![("image", Feed::U8(batch))]);
    let features = out[&target.features].clone();
    assert_eq!(features.shape(), [4, CHANNELS, 8, 8]);
    // A different class per image, so mixing images up would show.
    let chosen = [0, 1, 2, 1];
    for method in [Method::GradCam, Method::GradCamPlusPlus] {
        let graph = cam_model(&t.model, &target, method).unwrap();
        let out = run(
            &graph,
            vec![
                (target.features.as_str(), Feed::F32(features.clone())),
                (
                    cam::CLASS_WEIGHTS,
                    Feed::F32(ortl_explain::one_hot(&chosen, CLASSES).into_dyn()),
                ),
            ],
        );
        let maps = &out[cam::CAM];
        assert_eq!(maps.shape(), [4, 8, 8]);
        let mut nonzero = 0;
        for (i, &class) in chosen.iter().enumerate() {
            let a = features
                .index_axis(Axis(0), i)
                .into_dimensionality::<ndarray::Ix3>()
                .unwrap();
            let expected = reference(&t, a, class, method);
            let got: Vec<f32> = maps.index_axis(Axis(0), i).iter().copied().collect();
            let scale = expected.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            for (e, g) in expected.iter().zip(&got) {
                assert!(
                    (e - g).abs() <= 1e-4 * scale,
                    "{method} image {i} class {class}: {g} vs definition {e}"
                );
            }
            nonzero += usize::from(expected.iter().any(|&v| v > 0.0));
        }
        assert!(nonzero >= 2, "{method}: the test must see non-trivial maps");
    }
}

#[test]
fn explicit_layer_and_missing_layer() {
    let t = tiny();
    let conv_output = t
        .model
        .graph
        .nodes
        .iter()
        .find(|n| n.op == "Conv")
        .unwrap()
        .outputs[0]
        .clone();
    let target = locate(&t.model, Some(&conv_output)).unwrap();
    assert_eq!(target.features, conv_output);
    // The graph from the pre-ReLU map differentiates through the ReLU too.
    let graph = cam_model(&t.model, &target, Method::GradCam).unwrap();
    let out = run(
        &expose_features(&t.model, &target),
        vec![("image", Feed::U8(images(2)))],
    );
    let out = run(
        &graph,
        vec![
            (conv_output.as_str(), Feed::F32(out[&conv_output].clone())),
            (
                cam::CLASS_WEIGHTS,
                Feed::F32(Array2::from_elem((2, CLASSES), 0.0).into_dyn()),
            ),
        ],
    );
    assert!(
        out[cam::CAM].iter().all(|&v| v == 0.0),
        "no class chosen, no map"
    );
    let err = locate(&t.model, Some("nope")).unwrap_err().to_string();
    assert!(
        err.contains("'nope' is not a rank-4 feature map") && err.contains(&conv_output),
        "{err}"
    );
}
