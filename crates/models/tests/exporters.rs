//! Models in the shapes other exporters write ([`ortl_models::exports`]), at opsets 9 to 20,
//! through the import: ONNX Runtime runs each file as written and as ortl rewrote it, and
//! the numbers must agree.

use ndarray::{ArrayD, IxDyn};
use ortl_models::exports::{self, Classifier, Export};
use ortl_models::import::cut;
use ortl_models::{ClassifierSpec, Head, Layout, classifier};
use ortl_onnx::{DataType, Dim, Model, ValueInfo, io, passes};
use ortl_runtime::Feed;
use ortl_runtime::testing::run;

fn pixels(n: usize, size: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[n, 3, size, size]), |i| {
        ((i[0] * 7 + i[1] * 13 + i[2] * 5 + i[3] * 3) % 17) as f32 / 8.0 - 1.0
    })
}

fn nhwc(x: ArrayD<f32>) -> ArrayD<f32> {
    x.permuted_axes(IxDyn(&[0, 2, 3, 1]))
        .as_standard_layout()
        .to_owned()
}

fn export(opset: i64, size: Option<i64>, classifier: Classifier) -> Model {
    exports::mobile(&Export {
        opset,
        size,
        classifier,
        classes: 3,
        seed: 7,
    })
}

/// A linear head over two classes on 40×40 images.
fn two_classes_at_40() -> ClassifierSpec {
    ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: vec!["a".into(), "b".into()],
        height: 40,
        width: 40,
        head: Head::Linear { dropout: 0.0 },
        seed: 1,
    }
}

fn worst(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every opset's node forms (attributes that became inputs, Upsample, Resize-10, Dropout,
/// Gelu-20, ReduceMean-18) rewritten to opset 17 compute what the original computes.
#[test]
fn every_opset_converts_to_an_equal_opset_17_graph() {
    for opset in [7, 8, 9, 10, 11, 12, 13, 14, 17, 18, 20] {
        for classifier in [
            Classifier::ShapeFlatten,
            Classifier::SqueezeMatMul,
            Classifier::Conv1x1,
            Classifier::KerasNhwc,
        ] {
            let original = export(opset, Some(32), classifier);
            let batch = if classifier == Classifier::KerasNhwc {
                nhwc(pixels(2, 32))
            } else {
                pixels(2, 32)
            };
            let input = || vec![("input", Feed::F32(batch.clone()))];
            let expected = run(&original, input());
            let mut converted = original.clone();
            let changed = ortl_onnx::opset::convert(&mut converted.graph, opset).unwrap();
            converted.opsets = vec![(String::new(), ortl_onnx::OPSET)];
            passes::toposort(&mut converted.graph).unwrap();
            if !(11..18).contains(&opset) {
                assert!(changed > 0, "opset {opset}: nothing rewritten");
            }
            let got = run(&converted, input());
            let (e, g) = (
                expected.values().next().unwrap(),
                got.values().next().unwrap(),
            );
            assert!(
                worst(e, g) < 1e-5,
                "opset {opset} {classifier:?}: differs by {}",
                worst(e, g)
            );
        }
    }
}

/// Each classifier form is cut at the same feature map, fixed or dynamic in size, and the
/// assembled classifier holds no shape arithmetic and no Constant nodes.
#[test]
fn each_classifier_form_is_cut_at_its_features() {
    for opset in [11, 17, 20] {
        for classifier_form in [
            Classifier::ShapeFlatten,
            Classifier::SqueezeMatMul,
            Classifier::Conv1x1,
            Classifier::KerasNhwc,
        ] {
            for size in [Some(32), None] {
                let model = export(opset, size, classifier_form);
                let model = io::from_bytes(&io::to_bytes(&model), None).unwrap();
                let case = format!("opset {opset} {classifier_form:?} size {size:?}");
                let imported =
                    cut(model.clone(), "mobile", None).unwrap_or_else(|e| panic!("{case}: {e}"));
                let nhwc = classifier_form == Classifier::KerasNhwc;
                if nhwc {
                    // The NHWC map, transposed to NCHW for the head.
                    let transpose = imported.graph.producer(&imported.features).unwrap();
                    assert_eq!(transpose.inputs, [exports::FEATURES], "{case}");
                } else {
                    assert_eq!(imported.features, exports::FEATURES, "{case}");
                }
                assert_eq!(imported.channels, exports::CHANNELS as usize, "{case}");
                let layout = if nhwc { Layout::Nhwc } else { Layout::Nchw };
                assert_eq!(imported.layout, layout, "{case}");
                assert_eq!(
                    imported.size,
                    size.map(|s| (s as usize, s as usize)),
                    "{case}"
                );
                let spec = two_classes_at_40();
                if size.is_some() {
                    continue; // a fixed-size export runs at its own size
                }
                let (assembled, _) = classifier(&imported, &spec);
                let ops: Vec<&str> = assembled
                    .graph
                    .nodes
                    .iter()
                    .map(|n| n.op.as_str())
                    .collect();
                for gone in ["Shape", "Constant", "Dropout", "Upsample"] {
                    assert!(!ops.contains(&gone), "{case}: {gone} left in {ops:?}");
                }
                ortl_onnx::shapes::infer(&assembled.graph)
                    .unwrap_or_else(|e| panic!("{case}: {e}"));
                let images =
                    ArrayD::from_shape_fn(IxDyn(&[2, 40, 40, 3]), |i| (i[1] * 5 + i[2] * 3) as u8);
                let p = &run(&assembled, vec![("image", Feed::U8(images))])["probabilities"];
                assert_eq!(p.shape(), [2, 2], "{case}");
            }
        }
    }
}

/// The features the assembled classifier computes are the original file's, value for value
/// (the original run at the same preprocessed pixels).
#[test]
fn the_cut_computes_the_original_features() {
    let model = export(11, None, Classifier::ShapeFlatten);
    let mut original = model.clone();
    original.graph.outputs = vec![ValueInfo::new(
        exports::FEATURES,
        DataType::Float,
        vec![Dim::Unknown; 4],
    )];
    let expected = run(&original, vec![("input", Feed::F32(pixels(2, 48)))]);
    let imported = cut(model, "mobile", None).unwrap();
    let mut features = imported.graph.clone();
    features.inputs[0].shape = Some(vec![
        Dim::Symbolic("N".into()),
        Dim::Fixed(3),
        Dim::Fixed(48),
        Dim::Fixed(48),
    ]);
    ortl_onnx::fold::fold(&mut features);
    let got = run(
        &Model::new(features),
        vec![(imported.input.as_str(), Feed::F32(pixels(2, 48)))],
    );
    let (e, g) = (&expected[exports::FEATURES], got.values().next().unwrap());
    assert!(worst(e, g) < 1e-5, "differs by {}", worst(e, g));
}

/// Exporters name values as ortl names its own (`torch.onnx.export(..., input_names=
/// ["image"], output_names=["logits"])`); the classifier built on such a graph keeps its
/// own `image`, `logits` and `probabilities` apart from them.
#[test]
fn a_graph_using_ortls_own_names_is_assembled_apart_from_them() {
    let mut model = export(17, None, Classifier::None);
    passes::rename_value(&mut model.graph, "input", "image");
    passes::rename_value(&mut model.graph, exports::FEATURES, "logits");
    let inner = model.graph.nodes[1].outputs[0].clone();
    passes::rename_value(&mut model.graph, &inner, "probabilities");
    let imported = cut(model, "mobile", None).unwrap();
    let spec = two_classes_at_40();
    let (assembled, head) = classifier(&imported, &spec);
    let graph = &assembled.graph;
    assert_eq!(graph.inputs.len(), 1);
    assert_eq!(graph.inputs[0].dtype, DataType::Uint8);
    assert_eq!(
        graph.producer("logits").map(|n| n.op.as_str()),
        Some("Gemm"),
        "the head's logits"
    );
    assert_eq!(head.logits, "logits");
    let features = assembled.metadata["ortl.features"].clone();
    assert!(
        graph.producer(&features).is_some() && features != "logits",
        "the metadata names the backbone's feature map as renamed: {features}"
    );
    let images = ArrayD::from_shape_fn(IxDyn(&[2, 40, 40, 3]), |i| (i[1] * 5 + i[2] * 3) as u8);
    let p = &run(&assembled, vec![("image", Feed::U8(images))])["probabilities"];
    assert_eq!(p.shape(), [2, 2]);
    for row in p.outer_iter() {
        assert!((row.sum() - 1.0).abs() < 1e-5, "{row}");
    }
}
