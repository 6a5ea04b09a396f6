//! Models built, exported, imported and cut by ortl, run through ONNX Runtime (installed by
//! `make setup`, which `make test` runs first), with the numbers checked.

use ndarray::{ArrayD, IxDyn};
use ortl_models::import::cut;
use ortl_models::preprocess::preprocess;
use ortl_models::resnet::resnet;
use ortl_models::{
    Backbone, ClassifierSpec, Head, Layout, Normalization, ResNetConfig, classifier,
};
use ortl_onnx::{DataType, Dim, GraphBuilder, Model, Tensor, ValueInfo, io, passes};
use ortl_onnx::{builder::Gemm, builder::Pool};
use ortl_runtime::{Feed, SessionOptions};

use ortl_runtime::testing::run;

/// Deterministic pseudo-random images, `uint8 [n, h, w, 3]`.
fn images(n: usize, h: usize, w: usize) -> ArrayD<u8> {
    ArrayD::from_shape_fn(IxDyn(&[n, h, w, 3]), |i| {
        ((i[0] * 131 + i[1] * 17 + i[2] * 29 + i[3] * 71) % 256) as u8
    })
}

fn spec(classes: usize, size: usize, head: Head) -> ClassifierSpec {
    ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: (0..classes).map(|c| format!("class{c}")).collect(),
        height: size,
        width: size,
        head,
        seed: 5,
    }
}

#[test]
fn tiny_classifier_runs_and_outputs_probabilities() {
    let backbone = resnet(&ResNetConfig::tiny(), 1);
    for head in [
        Head::Linear { dropout: 0.2 },
        Head::Tutorial,
        "mlp:16,8".parse().unwrap(),
    ] {
        let (model, _) = classifier(&backbone, &spec(3, 40, head.clone()));
        let out = run(&model, vec![("image", Feed::U8(images(2, 40, 40)))]);
        let p = &out["probabilities"];
        assert_eq!(p.shape(), [2, 3], "{head}");
        assert!(p.iter().all(|&v| (0.0..=1.0).contains(&v)), "{head}: {p:?}");
        if head != Head::Tutorial {
            for row in p.rows() {
                assert!(
                    (row.sum() - 1.0).abs() < 1e-5,
                    "{head}: softmax rows sum to 1"
                );
            }
        }
        assert_eq!(
            model.metadata["ortl.classes"],
            r#"["class0","class1","class2"]"#
        );
    }
}

#[test]
fn resnet50_feature_maps_at_100_and_224() {
    let backbone = resnet(&ResNetConfig::resnet50(), 0);
    let mut model = Model::new(backbone.graph.clone());
    model.graph.outputs[0].shape = None;
    for (size, side) in [(100, 4), (224, 7)] {
        let x = ArrayD::from_elem(IxDyn(&[1, 3, size, size]), 0.5f32);
        let out = run(&model, vec![(backbone.input.as_str(), Feed::F32(x))]);
        assert_eq!(
            out[&backbone.features].shape(),
            [1, 2048, side, side],
            "at {size}"
        );
    }
}

#[test]
fn exported_file_runs_like_the_in_memory_model() {
    let (model, _) = classifier(
        &resnet(&ResNetConfig::tiny(), 2),
        &spec(2, 32, Head::Tutorial),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    io::save(&model, &path).unwrap();
    assert_eq!(io::load(&path).unwrap(), model, "structural round trip");

    let batch = images(3, 32, 32);
    let in_memory = run(&model, vec![("image", Feed::U8(batch.clone()))]);
    let runtime = ortl_runtime::testing::runtime();
    let mut from_file = runtime
        .session(&SessionOptions::default())
        .unwrap()
        .commit_from_file(&path)
        .unwrap();
    let from_file = ortl_runtime::run(&mut from_file, vec![("image", Feed::U8(batch))]).unwrap();
    assert_eq!(in_memory["probabilities"], from_file["probabilities"]);
}

#[test]
fn preprocessing_equals_the_rust_reference() {
    let pixels = images(2, 3, 4);
    for normalization in [
        Normalization::ImageNet,
        Normalization::Caffe,
        Normalization::Unit,
        Normalization::Symmetric,
    ] {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            let mut b = GraphBuilder::new("pre");
            let image = b.input(
                "image",
                DataType::Uint8,
                vec![Dim::Fixed(2), Dim::Fixed(3), Dim::Fixed(4), Dim::Fixed(3)],
            );
            let out = preprocess(&mut b, &image, normalization, layout);
            b.output(&out, DataType::Float, vec![]);
            let got = run(
                &Model::new(b.finish()),
                vec![("image", Feed::U8(pixels.clone()))],
            )
            .remove(&out)
            .unwrap();
            for n in 0..2 {
                for y in 0..3 {
                    for x in 0..4 {
                        let rgb = [
                            pixels[[n, y, x, 0]],
                            pixels[[n, y, x, 1]],
                            pixels[[n, y, x, 2]],
                        ];
                        let expected = normalization.apply(rgb);
                        for c in 0..3 {
                            let value = match layout {
                                Layout::Nchw => got[[n, c, y, x]],
                                Layout::Nhwc => got[[n, y, x, c]],
                            };
                            assert!(
                                (value - expected[c]).abs() < 1e-5,
                                "{normalization} {layout:?}: {value} vs {}",
                                expected[c]
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Gives every BatchNorm non-trivial statistics so folding and cutting are really tested.
fn randomise_batchnorms(backbone: &mut Backbone) {
    let names: Vec<String> = backbone
        .graph
        .initializers
        .keys()
        .filter(|n| n.contains("bn") || n.contains("downsample.1"))
        .cloned()
        .collect();
    for (i, name) in names.iter().enumerate() {
        let t = backbone.graph.initializers.get_mut(name).unwrap();
        let values: Vec<f32> = (0..t.numel())
            .map(|j| {
                let r = (((i * 7919 + j * 104729) % 1000) as f32) / 1000.0;
                if name.ends_with("running_var") || name.ends_with("weight") {
                    0.5 + r
                } else {
                    r - 0.5
                }
            })
            .collect();
        *t = Tensor::f32(&t.dims.clone(), values);
    }
}

/// A torchvision-style export: float NCHW input → ResNet → GAP → Flatten → Gemm. Returns
/// the model and the name of its pooled value.
fn torchvision_export(backbone: &Backbone, classes: usize) -> (Model, String) {
    torchvision_export_at(backbone, classes, 32)
}

fn torchvision_export_at(backbone: &Backbone, classes: usize, size: i64) -> (Model, String) {
    let mut b = GraphBuilder::from_graph(backbone.graph.clone());
    let pooled = b.global_average_pool(&backbone.features);
    let flat = b.flatten(&pooled, 1);
    let c = backbone.channels as i64;
    let w = b.param(
        "fc.weight",
        Tensor::f32(
            &[classes as i64, c],
            vec![0.01; classes * backbone.channels],
        ),
    );
    let bias = b.param(
        "fc.bias",
        Tensor::f32(&[classes as i64], vec![0.0; classes]),
    );
    let logits = b.gemm(&flat, &w, Some(&bias), &Gemm::B_TRANSPOSED);
    let mut graph = b.finish();
    graph.inputs[0] = ValueInfo::new(
        &backbone.input,
        DataType::Float,
        vec![
            Dim::Symbolic("batch".into()),
            Dim::Fixed(3),
            Dim::Fixed(size),
            Dim::Fixed(size),
        ],
    );
    graph.outputs = vec![ValueInfo::new(&logits, DataType::Float, vec![])];
    let mut model = Model::new(graph);
    model.producer_name = "pytorch".into();
    (model, pooled)
}

/// Folds each Conv → BatchNormalization pair into one Conv with a bias, as torch.onnx does
/// in eval mode.
fn fold_batchnorms(model: &mut Model) {
    let graph = &mut model.graph;
    let bn_nodes: Vec<usize> = (0..graph.nodes.len())
        .filter(|&i| graph.nodes[i].op == "BatchNormalization")
        .collect();
    for &i in bn_nodes.iter().rev() {
        let bn = graph.nodes[i].clone();
        let conv_index = graph
            .nodes
            .iter()
            .position(|n| n.op == "Conv" && n.outputs[0] == bn.inputs[0])
            .unwrap();
        let get = |name: &str| graph.initializers[name].as_f32().unwrap().to_vec();
        let (gamma, beta, mean, var) = (
            get(&bn.inputs[1]),
            get(&bn.inputs[2]),
            get(&bn.inputs[3]),
            get(&bn.inputs[4]),
        );
        let eps = bn.float("epsilon").unwrap();
        let conv = &mut graph.nodes[conv_index];
        let weight_name = conv.inputs[1].clone();
        let bias_name = format!("{weight_name}.folded_bias");
        conv.inputs.push(bias_name.clone());
        conv.outputs[0] = bn.outputs[0].clone();
        let weight = graph.initializers.get_mut(&weight_name).unwrap();
        let per_out = weight.numel() / gamma.len();
        let mut w = weight.as_f32().unwrap().to_vec();
        let mut bias = vec![0.0; gamma.len()];
        for o in 0..gamma.len() {
            let scale = gamma[o] / (var[o] + eps).sqrt();
            w[o * per_out..(o + 1) * per_out]
                .iter_mut()
                .for_each(|v| *v *= scale);
            bias[o] = beta[o] - mean[o] * scale;
        }
        *weight = Tensor::f32(&weight.dims.clone(), w);
        graph
            .initializers
            .insert(bias_name, Tensor::f32(&[gamma.len() as i64], bias));
        graph.nodes.remove(i);
    }
    passes::prune(&mut model.graph);
}

/// Pooled features of `model` at `pooled`, and of the imported backbone + GAP, on the same
/// float batch.
fn compare_cut(model: &Model, pooled: &str, input: ArrayD<f32>, imported: &Backbone) -> f32 {
    let mut probe = model.clone();
    probe.graph.outputs.push(ValueInfo {
        name: pooled.into(),
        dtype: DataType::Float,
        shape: None,
    });
    let expected = run(
        &probe,
        vec![(imported.input.as_str(), Feed::F32(input.clone()))],
    )
    .remove(pooled)
    .unwrap();

    let mut b = GraphBuilder::from_graph(imported.graph.clone());
    let gap = b.global_average_pool(&imported.features);
    let mut graph = b.finish();
    graph.outputs = vec![ValueInfo {
        name: gap.clone(),
        dtype: DataType::Float,
        shape: None,
    }];
    let got = run(
        &Model::new(graph),
        vec![(imported.input.as_str(), Feed::F32(input))],
    )
    .remove(&gap)
    .unwrap();
    let expected: Vec<f32> = expected.iter().copied().collect();
    let got: Vec<f32> = got.iter().copied().collect();
    assert_eq!(expected.len(), got.len());
    expected
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn nchw_batch() -> ArrayD<f32> {
    nchw_batch_at(32)
}

fn nchw_batch_at(size: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[2, 3, size, size]), |i| {
        ((i[1] * 7 + i[2] * 3 + i[3] * 5 + i[0]) % 11) as f32 / 5.0 - 1.0
    })
}

#[test]
fn imports_torchvision_layout_with_and_without_folded_batchnorm() {
    let mut backbone = resnet(&ResNetConfig::tiny(), 3);
    randomise_batchnorms(&mut backbone);
    let (model, pooled) = torchvision_export(&backbone, 10);
    let mut folded = model.clone();
    fold_batchnorms(&mut folded);
    assert!(
        folded
            .graph
            .nodes
            .iter()
            .all(|n| n.op != "BatchNormalization")
    );

    for (label, m) in [("unfolded", &model), ("folded", &folded)] {
        let imported = cut(m.clone(), "tv", None).unwrap();
        assert_eq!(imported.layout, Layout::Nchw, "{label}");
        assert_eq!(imported.channels, 256, "{label}");
        assert_eq!(imported.size, Some((32, 32)), "{label}");
        assert_eq!(imported.normalization, Normalization::ImageNet, "{label}");
        assert!(
            !imported.graph.initializers.contains_key("fc.weight"),
            "{label}: classifier dropped"
        );
        let diff = compare_cut(m, &pooled, nchw_batch(), &imported);
        assert!(diff < 1e-5, "{label}: features differ by {diff}");
    }
    // Folding itself preserved the network's function.
    let a = run(
        &model,
        vec![(backbone.input.as_str(), Feed::F32(nchw_batch()))],
    );
    let b = run(
        &folded,
        vec![(backbone.input.as_str(), Feed::F32(nchw_batch()))],
    );
    let (a, b) = (a.values().next().unwrap(), b.values().next().unwrap());
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4));

    // The imported backbone takes a head and runs from uint8 pixels.
    let imported = cut(folded, "tv", None).unwrap();
    let (classifier_model, _) = classifier(&imported, &spec(2, 32, Head::Tutorial));
    let out = run(
        &classifier_model,
        vec![("image", Feed::U8(images(2, 32, 32)))],
    );
    assert_eq!(out["probabilities"].shape(), [2, 2]);
}

#[test]
fn imports_an_nhwc_keras_style_export() {
    let backbone = resnet(&ResNetConfig::tiny(), 4);
    let mut base = backbone.graph.clone();
    base.inputs.clear();
    let mut b = GraphBuilder::from_graph(base);
    let image = b.input(
        "input_1",
        DataType::Float,
        vec![
            Dim::Symbolic("unk".into()),
            Dim::Fixed(32),
            Dim::Fixed(32),
            Dim::Fixed(3),
        ],
    );
    let nchw = b.transpose(&image, &[0, 3, 1, 2]);
    let nhwc = b.transpose(&backbone.features, &[0, 2, 3, 1]);
    let pooled = b.reduce_mean(&nhwc, &[1, 2], false);
    let w = b.param("dense/kernel", Tensor::f32(&[256, 5], vec![0.02; 256 * 5]));
    let bias = b.param("dense/bias", Tensor::f32(&[5], vec![0.0; 5]));
    let mm = b.matmul(&pooled, &w);
    let logits = b.add(&mm, &bias);
    let probs = b.softmax(&logits, -1);
    let mut graph = b.finish();
    passes::rename_value(&mut graph, &backbone.input, &nchw);
    graph.outputs = vec![ValueInfo::new(&probs, DataType::Float, vec![])];
    passes::toposort(&mut graph).unwrap();
    let mut model = Model::new(graph);
    model.producer_name = "tf2onnx".into();

    let imported = cut(model.clone(), "keras", None).unwrap();
    assert_eq!(imported.layout, Layout::Nhwc);
    assert_eq!(imported.channels, 256);
    assert_eq!(imported.normalization, Normalization::Caffe);
    let input = ArrayD::from_shape_fn(IxDyn(&[2, 32, 32, 3]), |i| {
        ((i[1] * 3 + i[2] * 5 + i[3] * 7) % 13) as f32 / 6.0 - 1.0
    });
    let diff = compare_cut(&model, &pooled, input, &imported);
    assert!(diff < 1e-5, "features differ by {diff}");
}

#[test]
fn a_graph_without_global_pooling_is_refused_with_what_was_found() {
    let mut b = GraphBuilder::new("flat");
    let x = b.input(
        "x",
        DataType::Float,
        vec![Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(8), Dim::Fixed(8)],
    );
    let y = b.relu(&x);
    // A map at the output is taken for an encoder's, and the cut says so.
    let mut graph = b.graph().clone();
    graph.outputs = vec![ValueInfo::new(&y, DataType::Float, vec![])];
    let encoder = cut(Model::new(graph), "encoder", None).unwrap();
    assert_eq!(
        (encoder.features.as_str(), encoder.channels),
        (y.as_str(), 3)
    );
    assert!(encoder.cut.contains("encoder"), "{}", encoder.cut);
    // A rank-3 output is neither a map nor an embedding.
    let target = b.constant(Tensor::i64s(&[1, 3, 64]));
    let tokens = b.reshape(&y, &target);
    b.output(&tokens, DataType::Float, vec![]);
    let err = cut(Model::new(b.finish()), "flat", None).unwrap_err();
    assert!(
        err.contains("GlobalAveragePool") && err.contains("Relu"),
        "{err}"
    );

    let mut old = Model::new(ortl_onnx::Graph::default());
    old.opsets = vec![(String::new(), 5)];
    assert!(cut(old, "old", None).unwrap_err().contains("opset 5"));
}

/// An export of each comparison family (reduced width, BatchNorms with real statistics):
/// the cut keeps the whole feature extractor, drops the classifier, and computes the same
/// pooled features as the original through ONNX Runtime.
#[test]
fn imports_an_export_of_each_comparison_family() {
    for (name, size) in [
        ("mobilenet-mini", 32),
        ("vgg-mini", 32),
        ("densenet-mini", 32),
        ("efficientnet-mini", 32),
        ("inception-mini", 80),
        ("inception-resnet-mini", 80),
    ] {
        let mut backbone = ortl_models::zoo::builtin(name, 5).unwrap();
        let stats: Vec<String> = backbone
            .graph
            .initializers
            .keys()
            .filter(|k| k.ends_with("running_var") || k.ends_with("running_mean"))
            .cloned()
            .collect();
        for (i, key) in stats.iter().enumerate() {
            let t = backbone.graph.initializers.get_mut(key).unwrap();
            let values = (0..t.numel())
                .map(|j| {
                    let r = ((i * 31 + j * 17) % 100) as f32 / 100.0;
                    if key.ends_with("running_var") {
                        0.5 + r
                    } else {
                        r - 0.5
                    }
                })
                .collect();
            *t = Tensor::f32(&t.dims.clone(), values);
        }
        let (model, pooled) = torchvision_export_at(&backbone, 10, size);
        let imported = cut(model.clone(), name, None).unwrap();
        assert_eq!(imported.channels, backbone.channels, "{name}");
        assert!(
            !imported.graph.initializers.contains_key("fc.weight"),
            "{name}: classifier dropped"
        );
        let diff = compare_cut(&model, &pooled, nchw_batch_at(size as usize), &imported);
        assert!(diff < 1e-4, "{name}: features differ by {diff}");
    }
}

/// torchvision's VGG has no global pooling: an adaptive average pool (exported as a 1×1
/// AveragePool, or dropped) then Flatten into Linear(512·7·7, …). The cut still ends at the
/// feature map, with its real channel count.
#[test]
fn imports_a_vgg_style_export_that_flattens_the_feature_map() {
    let backbone = ortl_models::zoo::builtin("vgg-mini", 6).unwrap();
    for with_pool in [true, false] {
        let mut b = GraphBuilder::from_graph(backbone.graph.clone());
        let map = if with_pool {
            b.average_pool(&backbone.features, &Pool::square(1, 1))
        } else {
            backbone.features.clone()
        };
        let flat = b.flatten(&map, 1);
        // 64 pixels: a 2×2 map of 64 channels, 256 values per image.
        let w = b.param(
            "classifier.0.weight",
            Tensor::f32(&[10, 256], vec![0.01; 2560]),
        );
        let logits = b.gemm(&flat, &w, None, &Gemm::B_TRANSPOSED);
        let mut graph = b.finish();
        graph.inputs[0] = ValueInfo::new(
            &backbone.input,
            DataType::Float,
            vec![
                Dim::Symbolic("n".into()),
                Dim::Fixed(3),
                Dim::Fixed(64),
                Dim::Fixed(64),
            ],
        );
        graph.outputs = vec![ValueInfo::new(&logits, DataType::Float, vec![])];
        let model = Model::new(graph);
        let imported = cut(model.clone(), "vgg", None).unwrap();
        assert_eq!(imported.channels, 64, "with_pool {with_pool}");
        assert!(
            !imported
                .graph
                .initializers
                .contains_key("classifier.0.weight")
        );
        let batch = nchw_batch_at(64);
        let mut probe = model.clone();
        probe
            .graph
            .outputs
            .push(ValueInfo::new(&backbone.features, DataType::Float, vec![]));
        let expected = run(
            &probe,
            vec![(backbone.input.as_str(), Feed::F32(batch.clone()))],
        )
        .remove(&backbone.features)
        .unwrap();
        let got = run(
            &Model::new(imported.graph.clone()),
            vec![(imported.input.as_str(), Feed::F32(batch))],
        )
        .remove(&imported.features)
        .unwrap();
        assert_eq!(expected.shape(), [2, 64, 2, 2]);
        assert_eq!(expected, got, "with_pool {with_pool}");
    }
}

/// A model ortl exported, passed back as a backbone (`--backbone run/best.onnx`): its own
/// preprocessing is recognised from its metadata (not guessed from its uint8 NHWC input),
/// its head is cut away, and the new classifier's names never collide with the old ones.
#[test]
fn an_ortl_classifier_is_importable_as_a_backbone() {
    for normalization in [Normalization::ImageNet, Normalization::Symmetric] {
        let mut backbone = resnet(&ResNetConfig::tiny(), 1);
        backbone.normalization = normalization;
        let (first, _) = classifier(&backbone, &spec(2, 32, Head::Tutorial));
        // Through the file format, as ortl-train writes it and reads it back.
        let first = io::from_bytes(&io::to_bytes(&first), None).unwrap();
        let imported = cut(first.clone(), "best", None).unwrap();
        assert_eq!(imported.normalization, normalization);
        assert!(
            imported.normalization_reason.contains("metadata"),
            "{}",
            imported.normalization_reason
        );
        assert_eq!(imported.layout, Layout::Nchw);
        let (second, _) = classifier(&imported, &spec(3, 32, "mlp:8".parse().unwrap()));
        passes::validate(&second.graph).unwrap();

        // The same pixels reach the same feature map in both models.
        let features = |model: &Model, value: &str| {
            let mut graph = model.graph.clone();
            passes::end_at(
                &mut graph,
                ValueInfo::new(value, DataType::Float, vec![Dim::Unknown; 4]),
            );
            let out = run(
                &Model::new(graph),
                vec![("image", Feed::U8(images(2, 32, 32)))],
            );
            out[value].clone()
        };
        let original = features(&first, &first.metadata["ortl.features"]);
        let again = features(&second, &imported.features);
        assert_eq!(original.shape(), again.shape());
        let worst = original
            .iter()
            .zip(again.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{normalization}: features differ by {worst}");
        let p = &run(&second, vec![("image", Feed::U8(images(2, 32, 32)))])["probabilities"];
        assert_eq!(p.shape(), [2, 3]);
    }
}

/// `x.view(x.size(0), -1)` after the pooling, and height and width left dynamic: the default
/// shape of many exporters' files.
#[test]
fn a_dynamic_size_export_with_a_shape_computed_flatten_imports() {
    let backbone = resnet(&ResNetConfig::tiny(), 2);
    let (mut model, _) = torchvision_export(&backbone, 4);
    let graph = &mut model.graph;
    let flatten = graph.nodes.iter().position(|n| n.op == "Flatten").unwrap();
    let pooled = graph.nodes[flatten].inputs[0].clone();
    let flat = graph.nodes[flatten].outputs[0].clone();
    graph.nodes.remove(flatten);
    let mut b = GraphBuilder::from_graph(model.graph.clone());
    let shape = b.shape(&pooled);
    let zero = b.constant(Tensor::i64(&[], vec![0]));
    let n = b.gather(&shape, &zero, 0);
    let axes = b.constant(Tensor::i64s(&[0]));
    let n = b.unsqueeze(&n, &axes);
    let minus_one = b.constant(Tensor::i64s(&[-1]));
    let target = b.concat(&[&n, &minus_one], 0);
    b.named(&flat, |b| b.reshape(&pooled, &target));
    let mut graph = b.finish();
    passes::toposort(&mut graph).unwrap();
    graph.inputs[0].shape = Some(vec![
        Dim::Symbolic("batch".into()),
        Dim::Fixed(3),
        Dim::Symbolic("height".into()),
        Dim::Symbolic("width".into()),
    ]);
    model.graph = graph;
    let model = io::from_bytes(&io::to_bytes(&model), None).unwrap();
    let imported = cut(model, "dynamic", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(imported.size, None, "the size comes from the tensors");
    assert_eq!(imported.channels, backbone.channels);
    let (classifier_model, _) = classifier(&imported, &spec(2, 40, Head::Linear { dropout: 0.0 }));
    let p = &run(
        &classifier_model,
        vec![("image", Feed::U8(images(2, 40, 40)))],
    )["probabilities"];
    assert_eq!(p.shape(), [2, 2]);
}
