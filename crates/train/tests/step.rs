//! The training step, end to end through ONNX Runtime: its forward pass against the
//! inference model, its gradients against finite differences, and learning itself.

use ndarray::{ArrayD, IxDyn};
use ortl_autodiff::loss::Loss;
use ortl_autodiff::optim::{Optimizer, OptimizerKind};
use ortl_models::resnet::resnet;
use ortl_models::{ClassifierSpec, Head, ResNetConfig, classifier};
use ortl_runtime::{Feed, SessionOptions};
use ortl_train::graph::{BnMode, ConvLayout, TrainSpec, Trainable, UpdateOn};
use ortl_train::trainer::Input;
use ortl_train::{Batch, Trainer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SIZE: usize = 32;

fn tiny() -> ResNetConfig {
    ResNetConfig {
        name: "tiny".into(),
        blocks: [1, 1, 1, 1],
        width: 4,
    }
}

fn spec(trainable: Trainable, loss: Loss, optimizer: Optimizer) -> TrainSpec {
    TrainSpec {
        trainable,
        bn_mode: BnMode::Frozen,
        head_bn_momentum: 0.99,
        backbone_bn_momentum: 0.9,
        loss,
        optimizer,
        clip_norm: None,
        conv_layout: ConvLayout::Auto,
        update_on: UpdateOn::Auto,
    }
}

fn sgd() -> Optimizer {
    Optimizer::Sgd {
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    }
}

/// Synthetic fixture radiographs resized to SIZE, half per class.
fn batch_images(n: usize) -> (ArrayD<u8>, Vec<usize>) {
    batch_images_at(n, SIZE)
}

fn batch_images_at(n: usize, size: usize) -> (ArrayD<u8>, Vec<usize>) {
    let mut pixels = Vec::with_capacity(n * size * size * 3);
    let mut labels = Vec::new();
    for i in 0..n {
        let (finding, label) = if i % 2 == 0 {
            (ortl_fixtures::Finding::Normal, 0)
        } else {
            (ortl_fixtures::Finding::Tuberculosis, 1)
        };
        let grey = ortl_fixtures::chest_xray(finding, i as u32, 9);
        let rgb = image_to_rgb(&grey);
        let resized =
            ortl_imaging::resize(&rgb, size, size, ortl_imaging::Filter::BilinearAntialias);
        pixels.extend(resized.to_u8());
        labels.push(label);
    }
    (
        ArrayD::from_shape_vec(IxDyn(&[n, size, size, 3]), pixels).unwrap(),
        labels,
    )
}

fn image_to_rgb(grey: &ortl_imaging::image::GrayImage) -> ortl_imaging::image::RgbImage {
    ortl_imaging::image::DynamicImage::ImageLuma8(grey.clone()).to_rgb8()
}

fn trainer(head: Head, train: TrainSpec) -> Trainer {
    trainer_on(resnet(&tiny(), 11), head, train, SIZE)
}

fn trainer_on(
    backbone: ortl_models::Backbone,
    head: Head,
    train: TrainSpec,
    size: usize,
) -> Trainer {
    let spec = ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: vec!["normal".into(), "tuberculosis".into()],
        height: size,
        width: size,
        head,
        seed: 3,
    };
    trainer_for(&backbone, &spec, train)
}

fn trainer_for(
    backbone: &ortl_models::Backbone,
    spec: &ClassifierSpec,
    train: TrainSpec,
) -> Trainer {
    let (model, head) = classifier(backbone, spec);
    let runtime = ortl_runtime::testing::runtime();
    Trainer::new(
        runtime,
        &SessionOptions {
            threads: Some(1),
            ..Default::default()
        },
        model,
        &head,
        train,
    )
    .unwrap()
}

/// A step computes each value once: the gradient graph's repeats (each convolution reading
/// an activation transposes it for its own weight gradient; a residual block's input feeds
/// two) are merged into one node.
#[test]
fn the_step_graph_computes_nothing_twice() {
    for bn_mode in [BnMode::Frozen, BnMode::Train] {
        let t = trainer(
            Head::Tutorial,
            TrainSpec {
                bn_mode,
                conv_layout: ConvLayout::Plain,
                ..spec(Trainable::All, Loss::SigmoidCategorical, sgd())
            },
        );
        let graph = &t.step_graph.model.graph;
        let outputs: std::collections::HashSet<&str> =
            graph.outputs.iter().map(|o| o.name.as_str()).collect();
        let mut seen = std::collections::HashSet::new();
        for node in &graph.nodes {
            if node.outputs.iter().any(|o| outputs.contains(o.as_str())) {
                continue;
            }
            let key = (
                &node.domain,
                &node.op,
                &node.inputs,
                format!("{:?}", node.attrs),
            );
            assert!(seen.insert(key), "{bn_mode:?}: computed twice: {node:?}");
        }
    }
}

#[test]
fn training_forward_equals_the_exported_models_forward() {
    for conv_layout in [ConvLayout::Plain, ConvLayout::Blocked] {
        training_forward_equals_inference(conv_layout);
    }
}

fn training_forward_equals_inference(conv_layout: ConvLayout) {
    let mut t = trainer(
        Head::Linear { dropout: 0.0 },
        TrainSpec {
            conv_layout,
            ..spec(Trainable::All, Loss::SoftmaxCrossEntropy, sgd())
        },
    );
    let (images, labels) = batch_images(4);
    let batch = Batch {
        input: Input::Images(images.clone()),
        targets: ortl_train::Targets::Classes(&labels),
        weights: vec![1.0; 4],
    };
    let train_p = t
        .peek(&batch, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap()
        .probabilities;
    let bytes = ortl_onnx::io::to_bytes(&t.export().unwrap());
    let runtime = ortl_runtime::testing::runtime();
    let mut session = runtime.load(&SessionOptions::default(), &bytes).unwrap();
    let infer_p = ortl_runtime::run(&mut session, vec![("image", Feed::U8(images))])
        .unwrap()
        .remove("probabilities")
        .unwrap();
    for (a, b) in train_p.iter().zip(infer_p.iter()) {
        assert!(
            (a - b).abs() < 1e-5,
            "{conv_layout:?}: training {a} vs inference {b}"
        );
    }
}

#[test]
fn whole_graph_gradients_match_finite_differences() {
    for conv_layout in [ConvLayout::Plain, ConvLayout::Blocked] {
        whole_graph_gradients(conv_layout);
    }
}

fn whole_graph_gradients(conv_layout: ConvLayout) {
    // Tutorial head: BatchNorms on batch statistics, dropout 0.8 with a fixed mask, L2 on
    // both dense kernels, sigmoid-categorical loss; backbone BN frozen but trainable.
    let train = TrainSpec {
        conv_layout,
        ..spec(Trainable::All, Loss::SigmoidCategorical, sgd())
    };
    let mut t = trainer(Head::Tutorial, train);
    let (images, labels) = batch_images(4);
    let batch = Batch {
        input: Input::Images(images),
        targets: ortl_train::Targets::Classes(&labels),
        weights: vec![1.0, 2.0, 1.0, 0.5],
    };
    let before = t.state().unwrap();
    // With plain SGD at lr = 1, the update is exactly the gradient.
    t.step(&batch, 1.0, &mut ChaCha8Rng::seed_from_u64(5))
        .unwrap();
    let after = t.state().unwrap();
    // A deep network is only piecewise smooth (ReLU, max-pool): a small step keeps the
    // difference quotient on one piece. ε = 1e-3 leaves float32 rounding of L near 1e-4.
    let eps = 1e-3f32;
    let checks = [
        ("conv1.weight", 17),
        ("layer1.0.bn1.weight", 2),
        ("layer2.0.conv1.weight", 5),
        ("layer3.0.downsample.0.weight", 40),
        ("layer4.0.conv3.weight", 777),
        ("head.bn1.weight", 5),
        ("head.fc1.weight", 333),
        ("head.fc2.weight", 100),
    ];
    for (name, start) in checks {
        // The first coordinate from `start` on that the batch reaches (ReLUs leave some dead).
        let delta: Vec<f32> = before[name]
            .iter()
            .zip(after[name].iter())
            .map(|(b, a)| b - a)
            .collect();
        let index = (0..delta.len())
            .map(|k| (start + k * 7) % delta.len())
            .find(|&i| delta[i] != 0.0)
            .expect("some gradient reaches the parameter");
        let analytic = delta[index];
        let numeric = central_difference(&mut t, &batch, &before, name, index, eps);
        assert!(
            (numeric - analytic).abs() <= 3e-3 + 5e-2 * analytic.abs(),
            "{conv_layout:?}: {name}[{index}]: analytic {analytic} vs numeric {numeric}"
        );
    }
}

// The comparison families (reduced width), one test each so that they run in parallel.
#[test]
fn vgg_gradients_match_finite_differences() {
    gradients_match_finite_differences("vgg-mini");
}

#[test]
fn efficientnet_gradients_match_finite_differences() {
    gradients_match_finite_differences("efficientnet-mini");
}

#[test]
fn densenet_gradients_match_finite_differences() {
    gradients_match_finite_differences("densenet-mini");
}

#[test]
fn mobilenet_gradients_match_finite_differences() {
    gradients_match_finite_differences("mobilenet-mini");
}

#[test]
fn inception_gradients_match_finite_differences() {
    gradients_match_finite_differences("inception-mini");
}

#[test]
fn inception_resnet_gradients_match_finite_differences() {
    gradients_match_finite_differences("inception-resnet-mini");
}

/// One SGD step at lr = 1 moves each parameter by its gradient; central differences of the
/// loss agree for parameters at the start, the middle and the end of the backbone `name` and
/// in the head.
fn gradients_match_finite_differences(name: &str) {
    let eps = 1e-3f32;
    let backbone = ortl_models::zoo::builtin(name, 11).unwrap();
    let mut params = ortl_models::backbone::parameters(&backbone.graph);
    params.retain(|p| !p.ends_with(".bias") || p.contains("fc"));
    // Batch statistics, as ortl-train uses for a built-in backbone: with fresh frozen
    // statistics the un-normalised activations saturate ReLU6 and gradients vanish.
    let train = TrainSpec {
        bn_mode: BnMode::Train,
        ..spec(Trainable::All, Loss::SoftmaxCrossEntropy, sgd())
    };
    // 96 pixels and 8 images: the last BatchNorms see 8·3·3 values, enough for a loss
    // smooth at the scale of the finite differences.
    let mut t = trainer_on(backbone, Head::Linear { dropout: 0.0 }, train, 96);
    let (images, labels) = batch_images_at(8, 96);
    let batch = Batch {
        input: Input::Images(images),
        targets: ortl_train::Targets::Classes(&labels),
        weights: vec![1.0; 8],
    };
    let before = t.state().unwrap();
    t.step(&batch, 1.0, &mut ChaCha8Rng::seed_from_u64(5))
        .unwrap();
    let after = t.state().unwrap();
    let head = after
        .keys()
        .find(|k| k.starts_with("head.") && k.ends_with("weight"))
        .unwrap()
        .clone();
    // Not the stem: through a dozen ReLU/ReLU6/max-pool layers its loss is too kinked
    // for a difference quotient (mobilenet-mini's drifts from -5.2 to -4.0 as ε goes
    // from 1e-2 to 1e-4); the convolution rule itself is checked alone in autodiff.
    let picks = [
        params[params.len() / 6].clone(),
        params[params.len() / 3].clone(),
        params[2 * params.len() / 3].clone(),
        params[params.len() - 1].clone(),
        head,
    ];
    for param in picks {
        let delta: Vec<f32> = before[&param]
            .iter()
            .zip(after[&param].iter())
            .map(|(b, a)| b - a)
            .collect();
        let largest = delta.iter().fold(0.0f32, |m, d| m.max(d.abs()));
        let Some(index) = (0..delta.len()).find(|&i| delta[i].abs() > largest / 4.0) else {
            panic!("{name}: no gradient reaches {param}");
        };
        let analytic = delta[index];
        let numeric = central_difference(&mut t, &batch, &before, &param, index, eps);
        assert!(
            (numeric - analytic).abs() <= 3e-3 + 5e-2 * analytic.abs(),
            "{name} {param}[{index}]: analytic {analytic} vs numeric {numeric}"
        );
    }
}

#[test]
fn a_small_resnet_overfits_sixteen_images() {
    let adam = Optimizer::keras(OptimizerKind::Adam, 0.0, 0.0);
    let mut t = trainer(
        Head::Linear { dropout: 0.0 },
        spec(Trainable::All, Loss::SoftmaxCrossEntropy, adam),
    );
    let (images, labels) = batch_images(16);
    let batch = Batch {
        input: Input::Images(images),
        targets: ortl_train::Targets::Classes(&labels),
        weights: vec![1.0; 16],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let first = t.step(&batch, 3e-3, &mut rng).unwrap().loss;
    let mut accuracy = 0.0;
    for _ in 0..80 {
        let result = t.step(&batch, 3e-3, &mut rng).unwrap();
        let correct = result
            .probabilities
            .rows()
            .into_iter()
            .zip(&labels)
            .filter(|(row, label)| {
                let best = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap()
                    .0;
                best == **label
            })
            .count();
        accuracy = correct as f32 / 16.0;
        if accuracy == 1.0 && result.loss < first * 0.2 {
            break;
        }
    }
    let last = t.peek(&batch, &mut rng).unwrap().loss;
    assert_eq!(accuracy, 1.0, "training accuracy");
    assert!(last < first * 0.5, "loss {first} -> {last}");
}

#[test]
fn frozen_backbone_trains_only_the_head() {
    let adam = Optimizer::keras(OptimizerKind::Adam, 0.0, 0.0);
    let mut t = trainer(
        Head::Tutorial,
        spec(Trainable::Head, Loss::SigmoidCategorical, adam),
    );
    assert!(t.step_graph.params.iter().all(|p| p.starts_with("head.")));
    let conv_before = t.export().unwrap().graph.initializers["conv1.weight"].clone();
    let (images, labels) = batch_images(4);
    let batch = Batch {
        input: Input::Images(images),
        targets: ortl_train::Targets::Classes(&labels),
        weights: vec![1.0; 4],
    };
    let head_before = t.value("head.fc1.weight").unwrap();
    t.step(&batch, 1e-2, &mut ChaCha8Rng::seed_from_u64(2))
        .unwrap();
    assert_ne!(t.value("head.fc1.weight").unwrap(), head_before);
    assert_eq!(
        t.export().unwrap().graph.initializers["conv1.weight"],
        conv_before
    );
    // No backward op reaches into the backbone.
    assert!(
        !t.step_graph
            .model
            .graph
            .nodes
            .iter()
            .any(|n| n.op == "ConvTranspose")
    );
}

#[test]
fn freeze_upto_trains_only_the_later_layers_and_the_head() {
    let t = trainer(
        Head::Tutorial,
        spec(
            Trainable::Upto("layer3".into()),
            Loss::SigmoidCategorical,
            sgd(),
        ),
    );
    let params = &t.step_graph.params;
    assert!(
        params.iter().any(|p| p.starts_with("layer4."))
            && params.iter().any(|p| p.starts_with("head."))
    );
    assert!(
        !params.iter().any(|p| p.starts_with("conv1")
            || p.starts_with("layer1.")
            || p.starts_with("layer3.")),
        "{params:?}"
    );
    let backbone = resnet(&tiny(), 11);
    let spec = ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: vec!["a".into(), "b".into()],
        height: SIZE,
        width: SIZE,
        head: Head::Tutorial,
        seed: 3,
    };
    let (model, head) = classifier(&backbone, &spec);
    let err = ortl_train::build_step(
        &model,
        &head,
        &TrainSpec {
            update_on: UpdateOn::Host,
            ..self::spec(
                Trainable::Upto("layer9".into()),
                Loss::SigmoidCategorical,
                sgd(),
            )
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("layer9"), "{err}");
}

/// (L(θ + ε·e_i) − L(θ − ε·e_i)) / 2ε for coordinate `index` of `name`, from state `before`
/// (dropout masks drawn from the same seed as the step's).
fn central_difference(
    t: &mut Trainer,
    batch: &Batch,
    before: &ortl_train::fit::State,
    name: &str,
    index: usize,
    eps: f32,
) -> f32 {
    let mut loss_at = |delta: f32| {
        let mut moved = before[name].clone();
        moved.as_slice_mut().unwrap()[index] += delta;
        t.set_state(before).unwrap();
        t.set_state(&[(name.to_string(), moved)].into()).unwrap();
        t.peek(batch, &mut ChaCha8Rng::seed_from_u64(5))
            .unwrap()
            .loss
    };
    (loss_at(eps) - loss_at(-eps)) / (2.0 * eps)
}

/// The device memory plan: state (parameters, optimizer moments, BatchNorm statistics) is
/// uploaded once and stays bound; a step copies only the batch in and the loss and
/// probabilities out. On CUDA the same PingPong binds device buffers, so this is what
/// crosses the bus there.
#[test]
fn a_step_moves_only_the_batch_in_and_the_scalars_out() {
    let mut t = trainer(
        Head::Tutorial,
        TrainSpec {
            bn_mode: BnMode::Train,
            ..spec(
                Trainable::All,
                Loss::SigmoidCategorical,
                Optimizer::keras(OptimizerKind::Adam, 0.0, 0.9),
            )
        },
    );
    let state_count = t.bound_state().names().len();
    let state_bytes: usize = t
        .state()
        .unwrap()
        .values()
        .map(|v| v.len() * size_of::<f32>())
        .sum();
    let after_build = t.bound_state().traffic();
    assert_eq!(
        after_build.writes, state_count,
        "each state tensor uploaded once"
    );
    // `state()` above read everything back once: that is export, not a step.
    assert_eq!(after_build.reads, state_count);

    let (images, labels) = batch_images(4);
    let batch = Batch {
        input: Input::Images(images.clone()),
        targets: ortl_train::Targets::Classes(&labels),
        weights: vec![1.0; 4],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for _ in 0..3 {
        t.step(&batch, 1e-3, &mut rng).unwrap();
    }
    assert_eq!(
        t.bound_state().traffic(),
        after_build,
        "steps must not copy state between host and device"
    );
    let run = t.bound_state().last_run();
    let state_names = t.bound_state().names();
    for (name, _) in run.fed.iter().chain(&run.returned) {
        assert!(
            !state_names.contains(name),
            "state tensor {name} was copied"
        );
    }
    let returned: Vec<&str> = run.returned.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(returned, ["loss", "probabilities"]);
    let fed: usize = run.fed.iter().map(|(_, b)| b).sum();
    let back: usize = run.returned.iter().map(|(_, b)| b).sum();
    // The batch (images, targets, weights, dropout masks; the learning rate and bias
    // corrections too where the graph updates) and 4 + 4·2 floats back: far below the
    // state's size.
    assert!(
        fed >= images.len() && fed < images.len() + 4096,
        "fed {fed} bytes"
    );
    assert_eq!(back, (1 + 4 * 2) * size_of::<f32>());
    assert!(state_bytes > 20 * (fed + back), "state {state_bytes} bytes");
}

/// The blocked (NCHWc) step graph against the plain one, on a backbone narrow enough that
/// most channel counts are not whole blocks, with the backbone's BatchNorms frozen (folded
/// into the convolutions) and on batch statistics: the same losses over three steps (to 1e-4), and
/// with SGD the same updates of every parameter and momentum (to 0.1 % of the update's norm). (Adam's parameters are not compared:
/// it turns gradients that are zero but for rounding — a bias before a BatchNorm on batch
/// statistics — into whole steps of either sign, whichever graph computes them.)
#[test]
fn blocked_and_plain_steps_agree_over_three_steps() {
    let momentum = Optimizer::Sgd {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 0.0,
    };
    let adam = Optimizer::keras(OptimizerKind::Adam, 0.0, 0.9);
    for (bn_mode, optimizer) in [
        (BnMode::Frozen, momentum.clone()),
        (BnMode::Train, momentum),
        (BnMode::Frozen, adam.clone()),
        (BnMode::Train, adam),
    ] {
        let case = format!("{bn_mode:?}, {optimizer:?}");
        let run = |conv_layout: ConvLayout| {
            // 64 px and 8 images: BatchNorm on batch statistics over the 1×1 maps of 4
            // images at 32 px is ill-conditioned enough to amplify rounding past 1e-4.
            let mut t = trainer_on(
                resnet(&tiny(), 11),
                Head::Tutorial,
                TrainSpec {
                    bn_mode,
                    conv_layout,
                    ..spec(Trainable::All, Loss::SigmoidCategorical, optimizer.clone())
                },
                64,
            );
            let blocked_convs = t
                .step_graph
                .model
                .graph
                .nodes
                .iter()
                .filter(|n| n.domain == ortl_autodiff::blocked::DOMAIN && n.op == "Conv")
                .count();
            let (images, labels) = batch_images_at(8, 64);
            let batch = Batch {
                input: Input::Images(images),
                targets: ortl_train::Targets::Classes(&labels),
                weights: vec![1.0, 2.0, 1.0, 0.5, 1.0, 1.0, 0.5, 2.0],
            };
            let before = t.state().unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let losses: Vec<f32> = (0..3)
                .map(|_| t.step(&batch, 1e-3, &mut rng).unwrap().loss)
                .collect();
            (blocked_convs, losses, before, t.state().unwrap())
        };
        let (plain_convs, plain_losses, before, plain) = run(ConvLayout::Plain);
        let (blocked_convs, blocked_losses, _, blocked) = run(ConvLayout::Blocked);
        assert_eq!(plain_convs, 0);
        assert!(blocked_convs >= 8, "{case}: {blocked_convs} blocked Convs");
        for (p, b) in plain_losses.iter().zip(&blocked_losses) {
            assert!(
                (p - b).abs() <= 1e-4 * p.abs(),
                "{case}: loss {b} blocked vs {p} plain"
            );
        }
        if !matches!(optimizer, Optimizer::Sgd { .. }) {
            continue;
        }
        for (name, p) in &plain {
            let b = &blocked[name];
            let norm = |v: &mut dyn Iterator<Item = f32>| v.map(|x| x * x).sum::<f32>().sqrt();
            let update = norm(&mut p.iter().zip(before[name].iter()).map(|(a, o)| a - o));
            let apart = norm(&mut p.iter().zip(b.iter()).map(|(x, y)| x - y));
            let scale = norm(&mut p.iter().copied());
            assert!(
                // (1e-6: gradients that are zero but for rounding, as above.)
                apart <= 1e-3 * update + 1e-7 * scale + 1e-6,
                "{case}: {name} differs by {apart} (norm {scale}, update {update})"
            );
        }
    }
}

/// The optimizer on the host (the CPU's default) and in the graph: the same losses, and every
/// parameter and optimizer state tensor to the bit, after three steps of the blocked tiny
/// ResNet with the tutorial head — Adam (coupled weight decay, bias corrections), AdamW, SGD
/// with Nesterov momentum and with global-norm clipping. The host-updated graph returns
/// gradients instead of updates (k×k kernels' as the GEMM's rows, which the host reorders)
/// and takes no learning rate.
#[test]
fn host_and_graph_updates_give_the_same_bits() {
    let optimizers = [
        Optimizer::keras(OptimizerKind::Adam, 1e-4, 0.0),
        Optimizer::keras(OptimizerKind::Adamw, 1e-2, 0.0),
        Optimizer::keras(OptimizerKind::Nesterov, 0.0, 0.9),
    ];
    for (optimizer, clip_norm) in optimizers.into_iter().zip([None, None, Some(0.5)]) {
        let case = format!("{optimizer:?}, clip {clip_norm:?}");
        let run = |update_on: UpdateOn| {
            let mut t = trainer(
                Head::Tutorial,
                TrainSpec {
                    bn_mode: BnMode::Train,
                    clip_norm,
                    update_on,
                    ..spec(Trainable::All, Loss::SigmoidCategorical, optimizer.clone())
                },
            );
            let graph = &t.step_graph.model.graph;
            let gradients = graph
                .outputs
                .iter()
                .filter(|o| o.name.starts_with("gradient/"))
                .count();
            let takes_lr = graph.inputs.iter().any(|i| i.name == "lr");
            let kernels: Vec<String> = graph
                .inputs
                .iter()
                .filter(|i| t.step_graph.params.contains(&i.name))
                .filter(|i| i.shape.as_ref().is_some_and(|s| s.len() == 4))
                .map(|i| i.name.clone())
                .collect();
            let (images, labels) = batch_images(4);
            let batch = Batch {
                input: Input::Images(images),
                targets: ortl_train::Targets::Classes(&labels),
                weights: vec![1.0, 2.0, 1.0, 0.5],
            };
            let mut rng = ChaCha8Rng::seed_from_u64(4);
            let losses: Vec<u32> = (0..3)
                .map(|_| t.step(&batch, 1e-3, &mut rng).unwrap().loss.to_bits())
                .collect();
            let params = t.step_graph.params.len();
            let rows = t.step_graph.ohwi_gradients.len();
            let shapes = &t.step_graph.gradient_shapes;
            let unshaped = kernels.iter().filter(|k| shapes.contains_key(*k)).count();
            let kernels = kernels.len();
            (
                gradients,
                takes_lr,
                (params, [rows, unshaped, kernels]),
                losses,
                t.state().unwrap(),
            )
        };
        let (graph_gradients, graph_lr, (params, [no_rows, none, _]), graph_losses, graph) =
            run(UpdateOn::Graph);
        let (host_gradients, host_lr, (_, [rows, unshaped, kernels]), host_losses, host) =
            run(UpdateOn::Host);
        assert_eq!(
            (graph_gradients, graph_lr, no_rows, none),
            (0, true, 0, 0),
            "{case}"
        );
        assert_eq!((host_gradients, host_lr), (params, false), "{case}");
        // Every kernel's gradient is bound as its GEMM's result, the stem's 7×7 and the
        // blocks' 3×3 as [O, kh, kw, C] rows (not with clipping, which scales the gradient
        // in its parameter's shape).
        match clip_norm {
            None => assert_eq!(
                (rows, unshaped),
                (5, kernels),
                "{case}: kernels read as [O, kh, kw, C] rows, every kernel as its GEMM's result"
            ),
            Some(_) => assert_eq!((rows, unshaped), (0, 0), "{case}"),
        }
        assert_eq!(host_losses, graph_losses, "{case}: losses");
        assert_eq!(
            host.keys().collect::<Vec<_>>(),
            graph.keys().collect::<Vec<_>>(),
            "{case}: the same state tensors"
        );
        for (name, value) in &graph {
            let bits = |v: &ArrayD<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&host[name]) == bits(value), "{case}: {name} differs");
        }
    }
}

/// Multi-label: a sigmoid per finding, binary cross-entropy with unknown labels masked and
/// positives weighted. The step's loss equals the definition computed here from its own
/// probabilities, the training forward equals the exported model's, a finding unknown in
/// the whole batch gets no gradient, and the others' gradients match finite differences.
#[test]
fn multi_label_masked_loss_matches_its_definition_and_finite_differences() {
    let findings = ["effusion", "mass", "nodule"];
    let spec = ClassifierSpec {
        task: ortl_manifest::Task::MultiLabel,
        classes: findings.iter().map(|f| f.to_string()).collect(),
        height: SIZE,
        width: SIZE,
        head: Head::Linear { dropout: 0.0 },
        seed: 3,
    };
    let mut t = trainer_for(&resnet(&tiny(), 11), &spec, spec_for_bce());
    let runtime = ortl_runtime::testing::runtime();
    let (images, _) = batch_images(4);
    // Nodule is unknown throughout; the others mix present, absent and unknown.
    let rows: [[Option<bool>; 3]; 4] = [
        [Some(true), Some(false), None],
        [Some(false), None, None],
        [None, Some(true), None],
        [Some(true), Some(true), None],
    ];
    let labels: Vec<&[Option<bool>]> = rows.iter().map(|r| r.as_slice()).collect();
    let positive_weights = [2.0, 0.5, 3.0];
    let batch = Batch {
        input: Input::Images(images.clone()),
        targets: ortl_train::Targets::Findings {
            labels: &labels,
            positive_weights: &positive_weights,
        },
        weights: vec![1.0; 4],
    };
    let peeked = t.peek(&batch, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let expected: f64 = rows
        .iter()
        .zip(peeked.probabilities.outer_iter())
        .map(|(row, p)| {
            row.iter()
                .zip(p.iter())
                .zip(positive_weights)
                .filter_map(|((t, &p), w)| {
                    let p = f64::from(p);
                    t.map(|t| match t {
                        true => -f64::from(w) * p.ln(),
                        false => -(1.0 - p).ln(),
                    })
                })
                .sum::<f64>()
                / 3.0
        })
        .sum::<f64>()
        / 4.0;
    assert!(
        (f64::from(peeked.loss) - expected).abs() < 1e-5,
        "step loss {} vs definition {expected}",
        peeked.loss
    );
    let bytes = ortl_onnx::io::to_bytes(&t.export().unwrap());
    let mut session = runtime.load(&SessionOptions::default(), &bytes).unwrap();
    let exported = ortl_runtime::run(&mut session, vec![("image", Feed::U8(images))])
        .unwrap()
        .remove("probabilities")
        .unwrap();
    for (a, b) in peeked.probabilities.iter().zip(exported.iter()) {
        assert!((a - b).abs() < 1e-5, "training {a} vs inference {b}");
    }
    let before = t.state().unwrap();
    t.step(&batch, 1.0, &mut ChaCha8Rng::seed_from_u64(5))
        .unwrap();
    let after = t.state().unwrap();
    let delta = |name: &str, i: usize| {
        before[name].as_slice().unwrap()[i] - after[name].as_slice().unwrap()[i]
    };
    let width = before["head.fc.weight"].len() / 3;
    assert_eq!(
        delta("head.fc.bias", 2),
        0.0,
        "the unknown finding's bias moved"
    );
    assert!(
        (2 * width..3 * width).all(|i| delta("head.fc.weight", i) == 0.0),
        "the unknown finding's weights moved"
    );
    for name in ["head.fc.bias", "head.fc.weight", "layer1.0.conv1.weight"] {
        // The first coordinate the batch reaches (ReLUs leave some pooled features dead).
        let index = (0..before[name].len())
            .find(|&i| delta(name, i) != 0.0)
            .expect("some gradient reaches the parameter");
        let analytic = delta(name, index);
        let numeric = central_difference(&mut t, &batch, &before, name, index, 1e-3);
        assert!(
            (numeric - analytic).abs() <= 3e-3 + 5e-2 * analytic.abs(),
            "{name}[{index}]: analytic {analytic} vs numeric {numeric}"
        );
    }
}

fn spec_for_bce() -> TrainSpec {
    TrainSpec {
        conv_layout: ConvLayout::Plain,
        ..spec(Trainable::All, Loss::SigmoidBinary, sgd())
    }
}
