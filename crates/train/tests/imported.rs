//! Training on backbones imported from other exporters' files ([`ortl_models::exports`]):
//! a head trains on every classifier form and on an encoder cut at a named tensor, and the
//! whole imported graph (hard-swish, PReLU, squeeze-and-excitation, reflect padding, ReLU6,
//! nearest upsampling, erf-GELU), unfrozen, has gradients that match finite differences.

use ndarray::{ArrayD, IxDyn};
use ortl_autodiff::loss::Loss;
use ortl_autodiff::optim::{Optimizer, OptimizerKind};
use ortl_models::exports::{self, Classifier, Export};
use ortl_models::import::cut_at;
use ortl_models::{Backbone, ClassifierSpec, Head, classifier};
use ortl_onnx::{Dim, ValueInfo};
use ortl_runtime::SessionOptions;
use ortl_train::graph::{BnMode, ConvLayout, TrainSpec, Trainable, UpdateOn};
use ortl_train::trainer::Input;
use ortl_train::{Batch, Trainer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SIZE: usize = 32;

fn imported(opset: i64, size: Option<i64>, form: Classifier, features: Option<&str>) -> Backbone {
    let model = exports::mobile(&Export {
        opset,
        size,
        classifier: form,
        classes: 5,
        seed: 3,
    });
    let model = ortl_onnx::io::from_bytes(&ortl_onnx::io::to_bytes(&model), None).unwrap();
    cut_at(model, "export", None, features, None).unwrap_or_else(|e| panic!("{form:?}: {e}"))
}

fn spec(trainable: Trainable, optimizer: Optimizer) -> TrainSpec {
    TrainSpec {
        trainable,
        bn_mode: BnMode::Frozen,
        head_bn_momentum: 0.99,
        backbone_bn_momentum: 0.9,
        loss: Loss::SoftmaxCrossEntropy,
        optimizer,
        clip_norm: None,
        conv_layout: ConvLayout::Auto,
        update_on: UpdateOn::Auto,
    }
}

/// SGD without momentum or decay: at lr 1 its update is the gradient.
fn plain_sgd() -> Optimizer {
    Optimizer::Sgd {
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    }
}

fn trainer(backbone: &Backbone, train: TrainSpec) -> Trainer {
    let spec = ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: vec!["normal".into(), "tuberculosis".into()],
        height: SIZE,
        width: SIZE,
        head: Head::Linear { dropout: 0.0 },
        seed: 3,
    };
    let (model, head) = classifier(backbone, &spec);
    let runtime = ortl_runtime::testing::runtime();
    let options = SessionOptions {
        threads: Some(1),
        ..Default::default()
    };
    Trainer::new(runtime, &options, model, &head, train).unwrap_or_else(|e| panic!("{e}"))
}

/// The eight images' classes, alternating.
const LABELS: [usize; 8] = [0, 1, 0, 1, 0, 1, 0, 1];

/// Eight images, class 1 with a bright square in the middle, each sample weighted `weight`.
fn batch(weight: f32) -> Batch<'static> {
    let pixels = ArrayD::from_shape_fn(IxDyn(&[8, SIZE, SIZE, 3]), |i| {
        let centre = (8..24).contains(&i[1]) && (8..24).contains(&i[2]);
        let base = ((i[0] * 37 + i[1] * 11 + i[2] * 7) % 64) as u8;
        if LABELS[i[0]] == 1 && centre {
            200 + base / 4
        } else {
            base
        }
    });
    Batch {
        input: Input::Images(pixels),
        targets: ortl_train::Targets::Classes(&LABELS),
        weights: vec![weight; 8],
    }
}

#[test]
fn a_head_trains_on_every_exporters_form_and_on_an_encoder() {
    let cases = [
        (17, None, Classifier::ShapeFlatten, None),
        (13, Some(SIZE as i64), Classifier::SqueezeMatMul, None),
        (11, Some(SIZE as i64), Classifier::Conv1x1, None),
        (9, None, Classifier::KerasNhwc, None),
        (20, None, Classifier::None, Some(exports::FEATURES)),
    ];
    for (opset, size, form, features) in cases {
        let backbone = imported(opset, size, form, features);
        let adam = Optimizer::keras(OptimizerKind::Adam, 0.0, 0.0);
        let mut t = trainer(&backbone, spec(Trainable::Head, adam));
        let batch = batch(1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let first = t.step(&batch, 0.1, &mut rng).unwrap().loss;
        let mut last = first;
        for _ in 0..40 {
            last = t.step(&batch, 0.1, &mut rng).unwrap().loss;
        }
        assert!(
            last < 0.6 * first,
            "opset {opset} {form:?}: loss {first} → {last}"
        );
    }
}

/// torch.export (`torch.onnx.export(..., dynamo=True)`) records every intermediate value's
/// shape at the traced size in value_info. Trained at another size, the gradient graph
/// meets those stale shapes with real ones and ONNX Runtime refused the step graph
/// ("Incompatible dimensions"); the import drops them.
#[test]
fn shapes_recorded_at_the_traced_size_do_not_bind_training_at_another() {
    let mut model = exports::mobile(&Export {
        opset: 20,
        size: None,
        classifier: Classifier::SqueezeMatMul,
        classes: 5,
        seed: 3,
    });
    let traced_size = 2 * SIZE as i64;
    let mut traced = model.graph.clone();
    traced.inputs[0].shape = Some(vec![
        Dim::Symbolic("batch".into()),
        Dim::Fixed(3),
        Dim::Fixed(traced_size),
        Dim::Fixed(traced_size),
    ]);
    let shapes = ortl_onnx::shapes::infer(&traced).unwrap();
    model.graph.value_info = model
        .graph
        .nodes
        .iter()
        .flat_map(|n| &n.outputs)
        .filter_map(|value| {
            let typed = shapes.get(value)?;
            let dims = typed
                .shape
                .iter()
                .map(|d| d.map_or(Dim::Symbolic("batch".into()), Dim::Fixed))
                .collect();
            Some(ValueInfo::new(value, typed.dtype, dims))
        })
        .collect();
    // After the stride-2 stem: the traced size halved.
    let stem_map = Some(traced_size / 2);
    assert!(
        model
            .graph
            .value_info
            .iter()
            .any(|v| v.dims().is_some_and(|d| d.len() == 4 && d[2] == stem_map)),
        "the traced feature maps' sizes are recorded"
    );
    let model = ortl_onnx::io::from_bytes(&ortl_onnx::io::to_bytes(&model), None).unwrap();
    let backbone = cut_at(model, "export", None, None, None).unwrap();
    let adam = Optimizer::keras(OptimizerKind::Adam, 0.0, 0.0);
    let mut t = trainer(&backbone, spec(Trainable::All, adam));
    let batch = batch(1.0);
    let result = t
        .step(&batch, 0.01, &mut ChaCha8Rng::seed_from_u64(1))
        .unwrap();
    assert!(result.loss.is_finite(), "{}", result.loss);
    assert_eq!(result.probabilities.shape(), [8, 2]);
}

/// PyTorch's exporters keep one initializer for tensors that happen to be equal (a fresh
/// BatchNorm's ones, its statistics): `torch.onnx.export` forwards it to the others through
/// Identity nodes, torch.export feeds the one name to each user. Each use gets its own copy
/// back: the statistics stay statistics (not trainable; training stopped at "running
/// statistics are not trainable"), and parameters that were merely equal train apart.
#[test]
fn tensors_the_exporter_deduplicated_train_as_separate_parameters() {
    for through_identity in [true, false] {
        let mut model = exports::mobile(&Export {
            opset: 17,
            size: None,
            classifier: Classifier::ShapeFlatten,
            classes: 5,
            seed: 3,
        });
        let graph = &mut model.graph;
        let scale = graph.initializers["dw_bn.weight"].clone();
        for forwarded in ["dw_bn.running_var", "dw_bn.bias"] {
            graph.initializers.remove(forwarded);
            if through_identity {
                graph.nodes.insert(
                    0,
                    ortl_onnx::Node {
                        name: format!("Identity_{forwarded}"),
                        op: "Identity".into(),
                        domain: String::new(),
                        inputs: vec!["dw_bn.weight".into()],
                        outputs: vec![forwarded.into()],
                        attrs: Default::default(),
                    },
                );
            } else {
                ortl_onnx::passes::rename_value(graph, forwarded, "dw_bn.weight");
            }
        }
        let case = format!("through Identity: {through_identity}");
        let model = ortl_onnx::io::from_bytes(&ortl_onnx::io::to_bytes(&model), None).unwrap();
        let backbone = cut_at(model, "export", None, None, None).unwrap();
        let bn = backbone
            .graph
            .nodes
            .iter()
            .find(|n| n.op == "BatchNormalization")
            .unwrap();
        let names: std::collections::HashSet<&String> = bn.inputs[1..].iter().collect();
        assert_eq!(names.len(), 4, "{case}: {:?}", bn.inputs);
        for input in &bn.inputs[1..] {
            if input != "dw_bn.running_mean" {
                assert_eq!(backbone.graph.initializers[input], scale, "{case}: {input}");
            }
        }
        let sgd = plain_sgd();
        let mut t = trainer(&backbone, spec(Trainable::All, sgd));
        let batch = batch(1.0);
        t.step(&batch, 0.1, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let after = t.state().unwrap();
        let (weight, bias) = (&after[&bn.inputs[1]], &after[&bn.inputs[2]]);
        assert!(
            weight
                .iter()
                .zip(scale.as_f32().unwrap())
                .any(|(a, b)| a != b),
            "{case}: the scale trained"
        );
        assert_ne!(weight, bias, "{case}: scale and shift train apart");
        assert_eq!(
            t.export().unwrap().graph.initializers[&bn.inputs[4]],
            scale,
            "{case}: frozen statistics stay as exported"
        );
    }
}

#[test]
fn an_imported_graph_unfrozen_has_gradients_matching_finite_differences() {
    let backbone = imported(17, None, Classifier::ShapeFlatten, None);
    let sgd = plain_sgd();
    let mut t = trainer(&backbone, spec(Trainable::All, sgd));
    // Weights scale the loss (a weighted mean) and every gradient 40×, so each
    // checked gradient stands well above the float32 rounding of the loss.
    let batch = batch(40.0);
    let before = t.state().unwrap();
    // With plain SGD at lr = 1 the update is exactly the gradient.
    t.step(&batch, 1.0, &mut ChaCha8Rng::seed_from_u64(5))
        .unwrap();
    let after = t.state().unwrap();
    let eps = 1e-3f32;
    for name in [
        "se.fc2.weight",
        "stem.weight",
        "dw_bn.weight",
        "dw_prelu.weight",
        "se.fc1.bias",
        "se.fc1.weight",
        "se.fc2.bias",
        "project.weight",
        "down.weight",
        "up.weight",
        "head.fc.weight",
    ] {
        let delta: Vec<f32> = before[name]
            .iter()
            .zip(after[name].iter())
            .map(|(b, a)| b - a)
            .collect();
        let largest = delta.iter().fold(0.0f32, |m, d| m.max(d.abs()));
        assert!(
            largest > 5e-3,
            "{name}: largest gradient {largest}, too small to check"
        );
        let index = (0..delta.len())
            .find(|&i| delta[i].abs() > largest / 4.0)
            .unwrap_or_else(|| panic!("no gradient reaches {name}"));
        let analytic = delta[index];
        let mut loss_at = |d: f32| {
            let mut moved = before[name].clone();
            moved.as_slice_mut().unwrap()[index] += d;
            t.set_state(&before).unwrap();
            t.set_state(&[(name.to_string(), moved)].into()).unwrap();
            t.peek(&batch, &mut ChaCha8Rng::seed_from_u64(5))
                .unwrap()
                .loss
        };
        let numeric = (loss_at(eps) - loss_at(-eps)) / (2.0 * eps);
        assert!(
            (numeric - analytic).abs() <= 2e-3 + 2e-2 * analytic.abs(),
            "{name}[{index}]: analytic {analytic} vs numeric {numeric}"
        );
    }
}

/// An operator without a gradient rule is found before anything is built, and freezing up
/// to it lets the rest train.
#[test]
fn an_operator_without_a_rule_is_named_with_the_freeze_that_trains_around_it() {
    let mut backbone = imported(17, None, Classifier::ShapeFlatten, None);
    let node = backbone
        .graph
        .nodes
        .iter_mut()
        .find(|n| n.op == "LeakyRelu")
        .unwrap();
    node.op = "Softsign".into();
    node.attrs.clear();
    let name = node.name.clone();
    let spec_ = ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: vec!["a".into(), "b".into()],
        height: SIZE,
        width: SIZE,
        head: Head::Linear { dropout: 0.0 },
        seed: 3,
    };
    let (model, _) = classifier(&backbone, &spec_);
    let found = ortl_train::graph::untrainable_node(&model, &Trainable::All).unwrap();
    assert_eq!(found, Some((name.clone(), "Softsign".to_string())));
    let upto = Trainable::Upto(name.clone());
    assert_eq!(
        ortl_train::graph::untrainable_node(&model, &upto).unwrap(),
        None
    );
    assert_eq!(
        ortl_train::graph::untrainable_node(&model, &Trainable::Head).unwrap(),
        None
    );
    let sgd = plain_sgd();
    let mut t = trainer(&backbone, spec(upto, sgd));
    let batch = batch(1.0);
    let before = t.state().unwrap();
    t.step(&batch, 0.1, &mut ChaCha8Rng::seed_from_u64(5))
        .unwrap();
    let after = t.state().unwrap();
    assert!(
        !before.contains_key("stem.weight"),
        "frozen layers are not state"
    );
    assert_ne!(
        before["down.weight"], after["down.weight"],
        "layers after it train"
    );
}
