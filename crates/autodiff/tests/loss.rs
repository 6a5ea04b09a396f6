//! Loss values through ORT against the definitions computed in Rust, with per-sample
//! (class) weights and smoothed targets.

use ndarray::{Array1, Array2};
use ortl_autodiff::loss::{BinaryWeights, Loss, batch_loss, l2_penalty};
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, Tensor, io};
use ortl_runtime::{Feed, SessionOptions};

const LOGITS: [[f32; 3]; 2] = [[2.0, -1.0, 0.5], [0.1, 0.3, -2.0]];
const TARGET: [[f32; 3]; 2] = [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]];
const WEIGHT: [f32; 2] = [2.0, 0.5];
/// Binary cross-entropy's mask (0: an unknown label) and positive weights (PyTorch's
/// pos_weight, one per class broadcast over the batch).
const MASK: [[f32; 3]; 2] = [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]];
const POSITIVE_WEIGHT: [[f32; 3]; 2] = [[2.0, 0.5, 3.0], [2.0, 0.5, 3.0]];

fn through_ort(loss: Loss) -> f32 {
    let mut b = GraphBuilder::new("loss");
    let dims = vec![Dim::Fixed(2), Dim::Fixed(3)];
    let z = b.input("z", DataType::Float, dims.clone());
    let t = b.input("t", DataType::Float, dims);
    let w = b.input("w", DataType::Float, vec![Dim::Fixed(2)]);
    let m = b.input("m", DataType::Float, vec![Dim::Fixed(2), Dim::Fixed(3)]);
    let p = b.input("p", DataType::Float, vec![Dim::Fixed(2), Dim::Fixed(3)]);
    let binary = loss.weighs_elements().then_some(BinaryWeights {
        mask: &m,
        positive: &p,
    });
    let out = batch_loss(&mut b, loss, &z, &t, &w, binary);
    b.output(&out, DataType::Float, vec![]);
    let runtime = ortl_runtime::testing::runtime();
    let mut session = runtime
        .load(
            &SessionOptions::default(),
            &io::to_bytes(&Model::new(b.finish())),
        )
        .unwrap();
    let matrix = |m: [[f32; 3]; 2]| Array2::from_shape_fn((2, 3), |(i, j)| m[i][j]).into_dyn();
    let out = ortl_runtime::run(
        &mut session,
        vec![
            ("z", Feed::F32(matrix(LOGITS))),
            ("t", Feed::F32(matrix(TARGET))),
            ("w", Feed::F32(Array1::from(WEIGHT.to_vec()).into_dyn())),
            ("m", Feed::F32(matrix(MASK))),
            ("p", Feed::F32(matrix(POSITIVE_WEIGHT))),
        ],
    )
    .unwrap();
    out[&out_name(&out)].iter().next().copied().unwrap()
}

fn out_name(out: &std::collections::BTreeMap<String, ndarray::ArrayD<f32>>) -> String {
    out.keys().next().unwrap().clone()
}

/// Weighted mean over the batch of per-sample losses (Keras' sum-over-batch-size).
fn weighted_mean(per_sample: impl Fn(&[f32; 3], &[f32; 3]) -> f64) -> f32 {
    ((0..2)
        .map(|i| f64::from(WEIGHT[i]) * per_sample(&LOGITS[i], &TARGET[i]))
        .sum::<f64>()
        / 2.0) as f32
}

#[test]
fn softmax_cross_entropy_with_class_weights_and_smoothing() {
    let expected = weighted_mean(|z, t| {
        let lse = z.iter().map(|&v| f64::from(v).exp()).sum::<f64>().ln();
        -(0..3)
            .map(|c| f64::from(t[c]) * (f64::from(z[c]) - lse))
            .sum::<f64>()
    });
    assert!((through_ort(Loss::SoftmaxCrossEntropy) - expected).abs() < 1e-5);
}

#[test]
fn the_tutorials_sigmoid_categorical_loss() {
    // Keras: p = σ(z) renormalised to sum 1, clipped, −Σ t·log p.
    let expected = weighted_mean(|z, t| {
        let p: Vec<f64> = z
            .iter()
            .map(|&v| 1.0 / (1.0 + (-f64::from(v)).exp()))
            .collect();
        let s: f64 = p.iter().sum();
        -(0..3)
            .map(|c| f64::from(t[c]) * (p[c] / s).clamp(1e-7, 1.0 - 1e-7).ln())
            .sum::<f64>()
    });
    assert!((through_ort(Loss::SigmoidCategorical) - expected).abs() < 1e-5);
}

#[test]
fn per_class_binary_cross_entropy_with_masked_and_weighted_elements() {
    // PyTorch's BCEWithLogitsLoss(weight=mask, pos_weight=w) on smoothed targets: the
    // positive weight scales the positive term only.
    let expected = ((0..2)
        .map(|i| {
            let (z, t) = (&LOGITS[i], &TARGET[i]);
            let per_sample = (0..3)
                .map(|c| {
                    let p = 1.0 / (1.0 + (-f64::from(z[c])).exp());
                    let (t, w) = (f64::from(t[c]), f64::from(POSITIVE_WEIGHT[i][c]));
                    -f64::from(MASK[i][c]) * (w * t * p.ln() + (1.0 - t) * (1.0 - p).ln())
                })
                .sum::<f64>()
                / 3.0;
            f64::from(WEIGHT[i]) * per_sample
        })
        .sum::<f64>()
        / 2.0) as f32;
    assert!((through_ort(Loss::SigmoidBinary) - expected).abs() < 1e-5);
}

#[test]
fn l2_penalty_is_the_coefficient_times_the_sum_of_squares() {
    let mut b = GraphBuilder::new("l2");
    let w = b.param("w", Tensor::f32(&[2, 2], vec![1.0, -2.0, 0.5, 3.0]));
    let out = l2_penalty(&mut b, &[(w, 0.3)]).unwrap();
    b.output(&out, DataType::Float, vec![]);
    let runtime = ortl_runtime::testing::runtime();
    let mut session = runtime
        .load(
            &SessionOptions::default(),
            &io::to_bytes(&Model::new(b.finish())),
        )
        .unwrap();
    let value = ortl_runtime::run(&mut session, vec![]).unwrap()[&out]
        .iter()
        .next()
        .copied()
        .unwrap();
    assert!((value - 0.3 * (1.0 + 4.0 + 0.25 + 9.0)).abs() < 1e-6);
}
