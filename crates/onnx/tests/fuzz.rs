//! Mutation fuzzing of the ONNX loader and of the passes that walk a loaded graph (see
//! `ortl_fixtures::fuzz`): hostile bytes give `Err`, never a panic or an allocation beyond
//! the input.

use ortl_fixtures::fuzz;
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, Tensor, io, passes, shapes};
use ortl_onnx::{builder::Conv, builder::Gemm};
use proptest::prelude::*;

/// A small classifier with every kind of field the loader decodes: inputs with symbolic
/// and fixed dims, float and int64 initializers, int/ints/float attributes, metadata.
fn seed() -> Vec<u8> {
    let mut b = GraphBuilder::new("seed");
    let n = Dim::Symbolic("N".into());
    let x = b.input(
        "x",
        DataType::Float,
        vec![n.clone(), Dim::Fixed(2), Dim::Fixed(4), Dim::Fixed(4)],
    );
    let w = b.param("w", Tensor::f32(&[3, 2, 3, 3], vec![0.5; 54]));
    let padded = Conv {
        pads: Some(vec![1; 4]),
        ..Conv::default()
    };
    let conv = b.conv(&x, &w, None, &padded);
    let relu = b.relu(&conv);
    let pooled = b.global_average_pool(&relu);
    let shape = b.constant(Tensor::i64s(&[-1, 3]));
    let flat = b.reshape(&pooled, &shape);
    let fc = b.param(
        "fc",
        Tensor::f32(&[2, 3], vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
    );
    let dense = Gemm {
        alpha: Some(1.0),
        ..Gemm::B_TRANSPOSED
    };
    let y = b.gemm(&flat, &fc, None, &dense);
    b.output(&y, DataType::Float, vec![n, Dim::Fixed(2)]);
    let mut model = Model::new(b.finish());
    model
        .metadata
        .insert("ortl.classes".into(), r#"["a","b"]"#.into());
    io::to_bytes(&model)
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn the_loader_and_graph_passes_never_panic(mutations in fuzz::mutations()) {
        let bytes = fuzz::mutate(&seed(), &mutations);
        if let Ok(mut model) = io::from_bytes(&bytes, None) {
            let _ = passes::validate(&model.graph);
            let _ = shapes::infer(&model.graph);
            let _ = passes::toposort(&mut model.graph);
            let _ = io::to_bytes(&model);
        }
    }
}

#[test]
fn the_seed_itself_loads() {
    let model = io::from_bytes(&seed(), None).unwrap();
    passes::validate(&model.graph).unwrap();
    shapes::infer(&model.graph).unwrap();
    assert_eq!(model.graph.nodes.len(), 5);
}
