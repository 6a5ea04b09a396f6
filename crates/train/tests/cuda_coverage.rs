//! Every graph ortl sends to ONNX Runtime has a CUDA kernel for each node (operator, opset,
//! input types), so `--device cuda` never falls back to the CPU with copies every step.
//! Checked against ONNX Runtime's CUDA kernel table without a GPU.

use clap::ValueEnum;
use ortl_autodiff::loss::Loss;
use ortl_autodiff::optim::{Optimizer, OptimizerKind};
use ortl_explain::Method;
use ortl_models::heads::HeadOutput;
use ortl_models::{Backbone, ClassifierSpec, Head, classifier};
use ortl_onnx::Model;
use ortl_train::graph::{self, BnMode, ConvLayout, TrainSpec, Trainable, UpdateOn};

const SIZE: usize = 64;

fn build(backbone: &Backbone, head: Head) -> (Model, HeadOutput) {
    build_at(backbone, head, SIZE)
}

fn build_at(backbone: &Backbone, head: Head, size: usize) -> (Model, HeadOutput) {
    let spec = ClassifierSpec {
        task: ortl_manifest::Task::SingleLabel,
        classes: vec!["normal".into(), "tuberculosis".into()],
        height: size,
        width: size,
        head,
        seed: 1,
    };
    classifier(backbone, &spec)
}

fn spec(trainable: Trainable, bn_mode: BnMode, loss: Loss, optimizer: OptimizerKind) -> TrainSpec {
    TrainSpec {
        trainable,
        bn_mode,
        head_bn_momentum: 0.99,
        backbone_bn_momentum: 0.9,
        loss,
        optimizer: Optimizer::keras(optimizer, 1e-4, 0.9),
        clip_norm: Some(1.0),
        conv_layout: ConvLayout::Auto,
        update_on: UpdateOn::Graph,
    }
}

/// Fails with every node the CUDA provider has no kernel for, per graph.
fn assert_covered(graphs: &[(String, Model)]) {
    let mut report = Vec::new();
    for (what, model) in graphs {
        let gaps = ortl_runtime::kernels::cuda().gaps(model);
        assert!(
            !model.graph.nodes.is_empty(),
            "{what}: the graph under test is empty"
        );
        // Every node input has a known type, so the type check is complete.
        let types = ortl_runtime::kernels::element_types(&model.graph);
        for node in &model.graph.nodes {
            for input in node.inputs.iter().filter(|i| !i.is_empty()) {
                assert!(
                    types.contains_key(input),
                    "{what}: no type for {input}, input of {}",
                    node.name
                );
            }
        }
        for gap in gaps {
            report.push(format!("{what}: {gap}"));
        }
    }
    assert!(
        report.is_empty(),
        "nodes without a CUDA kernel:\n{}",
        report.join("\n")
    );
}

#[test]
fn resnet50_step_graphs_for_every_optimizer_loss_and_bn_mode_run_on_cuda() {
    let backbone = ortl_models::zoo::builtin("resnet50", 1).unwrap();
    let (model, head) = build(&backbone, Head::Tutorial);
    let mut graphs = Vec::new();
    for &optimizer in OptimizerKind::value_variants() {
        let step = graph::build_step(
            &model,
            &head,
            &spec(
                Trainable::All,
                BnMode::Frozen,
                Loss::SigmoidCategorical,
                optimizer,
            ),
        )
        .unwrap();
        graphs.push((format!("resnet50 step, {optimizer:?}"), step.model));
    }
    for loss in [Loss::SoftmaxCrossEntropy, Loss::SigmoidBinary] {
        let step = graph::build_step(
            &model,
            &head,
            &spec(Trainable::All, BnMode::Train, loss, OptimizerKind::Adam),
        )
        .unwrap();
        graphs.push((format!("resnet50 step, {loss}, BN train"), step.model));
    }
    assert_covered(&graphs);
}

#[test]
fn head_only_feature_inference_and_grad_cam_graphs_run_on_cuda() {
    let backbone = ortl_models::zoo::builtin("resnet-mini", 1).unwrap();
    let mut graphs = Vec::new();
    for head in [
        Head::Tutorial,
        Head::Linear { dropout: 0.2 },
        Head::Mlp {
            widths: vec![16, 8],
            dropout: 0.5,
        },
    ] {
        let (model, out) = build(&backbone, head.clone());
        let head_only = spec(
            Trainable::Head,
            BnMode::Frozen,
            Loss::SoftmaxCrossEntropy,
            OptimizerKind::Sgd,
        );
        let step = graph::build_step(&model, &out, &head_only).unwrap();
        let cached = graph::on_features(step.clone(), &out.pooled, backbone.channels);
        graphs.push((format!("{head} head-only step"), step.model));
        graphs.push((
            format!("{head} head-only step on cached features"),
            cached.model,
        ));
        graphs.push((
            format!("{head} feature extractor"),
            graph::feature_extractor(&model, &out.pooled, backbone.channels),
        ));
        graphs.push((
            format!("{head} head (validation on features)"),
            graph::head_model(&model, &out.pooled, backbone.channels),
        ));
        let target = ortl_explain::locate(&model, None).unwrap();
        for method in [Method::GradCam, Method::GradCamPlusPlus] {
            graphs.push((
                format!("{head} {method}"),
                ortl_explain::cam_model(&model, &target, method).unwrap(),
            ));
        }
        graphs.push((
            format!("{head} exposed features"),
            ortl_explain::expose_features(&model, &target),
        ));
        graphs.push((format!("{head} inference model"), model));
    }
    assert_covered(&graphs);
}

#[test]
fn every_builtin_family_trains_on_cuda() {
    let mut graphs = Vec::new();
    // The reduced members have each family's operators at a fraction of the size.
    for name in ortl_models::zoo::NAMES
        .iter()
        .filter(|n| n.ends_with("-mini"))
    {
        let backbone = ortl_models::zoo::builtin(name, 1).unwrap();
        // The Inception stems need more than 64 pixels.
        let size = if name.starts_with("inception") {
            96
        } else {
            SIZE
        };
        let (model, head) = build_at(&backbone, Head::Linear { dropout: 0.2 }, size);
        let step = graph::build_step(
            &model,
            &head,
            &spec(
                Trainable::All,
                BnMode::Train,
                Loss::SoftmaxCrossEntropy,
                OptimizerKind::Adamw,
            ),
        )
        .unwrap();
        graphs.push((format!("{name} step"), step.model));
        graphs.push((format!("{name} inference model"), model));
    }
    assert!(graphs.len() >= 14, "seven families");
    assert_covered(&graphs);
}
