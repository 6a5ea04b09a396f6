//! A strided convolution's dX as one batch GEMM and a scatter (`ortl_autodiff::strided`)
//! against ONNX Runtime's ConvTranspose, over the geometries the scatter distinguishes:
//! kernels larger than, equal to and smaller than the stride (phases no tap lands on),
//! taps shifted off either edge, odd and even sizes (the dropped last row), unequal strides.

use ortl_onnx::builder::Conv;
use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use ortl_autodiff::{gradients, strided};
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, shapes};
use ortl_runtime::Feed;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `grad_x` of Σ c·Conv(x, w) for fixed random c, with x `[2, 8, size]`, w `[6, 8, kernel]`.
fn dx_model(size: [i64; 2], kernel: [i64; 2], strides: [i64; 2], pads: [i64; 4]) -> Model {
    let mut b = GraphBuilder::new("strided");
    let x = b.input(
        "x",
        DataType::Float,
        [2, 8, size[0], size[1]].map(Dim::Fixed).to_vec(),
    );
    let w = b.input(
        "w",
        DataType::Float,
        [6, 8, kernel[0], kernel[1]].map(Dim::Fixed).to_vec(),
    );
    let attrs = Conv {
        kernel_shape: Some(kernel.to_vec()),
        strides: Some(strides.to_vec()),
        pads: Some(pads.to_vec()),
        ..Conv::default()
    };
    let y = b.conv(&x, &w, None, &attrs);
    let shape = shapes::infer(b.graph()).unwrap()[&y].clone();
    let dims: Vec<i64> = shape.shape.iter().map(|d| d.unwrap()).collect();
    let count: i64 = dims.iter().product();
    let c = b.constant(ortl_onnx::Tensor::f32(
        &dims,
        (0..count).map(|i| (i as f32 * 0.61).sin()).collect(),
    ));
    let weighted = b.mul(&y, &c);
    let loss = b.reduce_sum(&weighted, None, false);
    let shapes = shapes::infer(b.graph()).unwrap();
    let grads = gradients(&mut b, &loss, &["x".to_string()], &shapes).unwrap();
    b.named("grad_x", |b| b.identity(&grads.of["x"]));
    b.output("grad_x", DataType::Float, vec![]);
    Model::new(b.finish())
}

fn run(model: &Model, values: &HashMap<&str, ArrayD<f32>>) -> ArrayD<f32> {
    let feeds = values
        .iter()
        .map(|(k, v)| (*k, Feed::F32(v.clone())))
        .collect();
    let mut out = ortl_runtime::run(&mut ortl_runtime::testing::session(model), feeds).unwrap();
    out.remove("grad_x").unwrap()
}

type Geometry = ([i64; 2], [i64; 2], [i64; 2], [i64; 4]);

#[test]
fn batch_gemm_dx_equals_conv_transpose() {
    // (input size, kernel, strides, pads)
    let cases: [Geometry; 7] = [
        ([7, 7], [3, 3], [2, 2], [1, 1, 1, 1]),
        ([8, 8], [3, 3], [2, 2], [1, 1, 1, 1]),
        ([7, 7], [1, 1], [2, 2], [0, 0, 0, 0]),
        ([9, 8], [2, 2], [3, 3], [0, 0, 0, 0]),
        ([11, 11], [5, 5], [2, 2], [2, 2, 2, 2]),
        ([9, 7], [3, 3], [2, 1], [1, 0, 1, 0]),
        ([10, 10], [4, 4], [2, 2], [3, 1, 0, 2]),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (size, kernel, strides, pads) in cases {
        let case = format!("size {size:?} kernel {kernel:?} strides {strides:?} pads {pads:?}");
        let plain = dx_model(size, kernel, strides, pads);
        let mut rewritten = plain.clone();
        let shapes = shapes::infer_partial(&rewritten.graph).unwrap();
        let written = strided::batch_gemm_dx(&mut rewritten.graph, &shapes);
        assert_eq!(written.len(), 1, "{case}");
        assert!(
            !rewritten
                .graph
                .nodes
                .iter()
                .any(|n| n.op == "ConvTranspose"),
            "{case}"
        );
        ortl_onnx::passes::validate(&rewritten.graph).unwrap();
        let mut values = HashMap::new();
        for (name, dims) in [
            ("x", [2, 8, size[0], size[1]]),
            ("w", [6, 8, kernel[0], kernel[1]]),
        ] {
            let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
            values.insert(
                name,
                ArrayD::from_shape_fn(IxDyn(&dims), |_| rng.random_range(-1.0f32..1.0)),
            );
        }
        let expected = run(&plain, &values);
        let got = run(&rewritten, &values);
        assert_eq!(expected.shape(), got.shape(), "{case}");
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = expected
            .iter()
            .zip(got.iter())
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            scale > 0.0 && worst <= 1e-5 * scale,
            "{case}: differs by {worst} (largest {scale})"
        );
    }
}
