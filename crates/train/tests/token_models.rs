//! Transformers and ConvNeXt imported from their exporters' forms
//! ([`ortl_models::exports::vit`], [`convnext`](ortl_models::exports::convnext)) train: a
//! head on each frozen backbone, and the tiny ViT through ortl-train, its head and then the
//! whole network for an epoch, cut where the analysis finds or at tokens `--pool` pools.

mod common;

use clap::Parser;
use ndarray::{ArrayD, IxDyn};
use ortl_autodiff::optim::{Optimizer, OptimizerKind};
use ortl_fixtures::Workdir;
use ortl_models::exports::{self, ConvNextHead, TokenHead};
use ortl_models::import::cut;
use ortl_models::{ClassifierSpec, Head, classifier};
use ortl_runtime::SessionOptions;
use ortl_train::graph::{BnMode, ConvLayout, TrainSpec, Trainable, UpdateOn};
use ortl_train::trainer::Input;
use ortl_train::{Args, Batch, Outcome, Settings, Trainer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SIZE: usize = exports::VIT_SIZE as usize;
const LABELS: [usize; 8] = [0, 1, 0, 1, 0, 1, 0, 1];

/// Eight images, class 1 with a bright square in the middle.
fn batch() -> Batch<'static> {
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
        weights: vec![1.0; 8],
    }
}

/// A linear head on each generated model's cut, the backbone frozen, fits the batch.
#[test]
fn a_head_trains_on_every_token_and_convnext_form() {
    let models = [
        ("vit ClassToken", exports::vit(TokenHead::ClassToken, 5, 3)),
        ("vit MeanFcNorm", exports::vit(TokenHead::MeanFcNorm, 5, 3)),
        (
            "vit Dynamo",
            exports::vit(TokenHead::DynamoClassToken, 5, 3),
        ),
        (
            "convnext GlobalAveragePool",
            exports::convnext(ConvNextHead::GlobalAveragePool, 5, 3),
        ),
        (
            "convnext ReduceMean",
            exports::convnext(ConvNextHead::ReduceMean, 5, 3),
        ),
        (
            "convnext AsStrided",
            exports::convnext(ConvNextHead::AsStrided, 5, 3),
        ),
    ];
    for (case, model) in models {
        let model = ortl_onnx::io::from_bytes(&ortl_onnx::io::to_bytes(&model), None).unwrap();
        let backbone = cut(model, "export", None).unwrap_or_else(|e| panic!("{case}: {e}"));
        let spec = ClassifierSpec {
            task: ortl_manifest::Task::SingleLabel,
            classes: vec!["normal".into(), "tuberculosis".into()],
            height: SIZE,
            width: SIZE,
            head: Head::Linear { dropout: 0.0 },
            seed: 3,
        };
        let (model, head) = classifier(&backbone, &spec);
        let train = TrainSpec {
            trainable: Trainable::Head,
            bn_mode: BnMode::Frozen,
            head_bn_momentum: 0.99,
            backbone_bn_momentum: 0.9,
            loss: ortl_autodiff::loss::Loss::SoftmaxCrossEntropy,
            optimizer: Optimizer::keras(OptimizerKind::Adam, 0.0, 0.0),
            clip_norm: None,
            conv_layout: ConvLayout::Auto,
            update_on: UpdateOn::Auto,
        };
        let options = SessionOptions {
            threads: Some(1),
            ..Default::default()
        };
        let runtime = ortl_runtime::testing::runtime();
        let mut t = Trainer::new(runtime, &options, model, &head, train)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let (batch, mut rng) = (batch(), ChaCha8Rng::seed_from_u64(1));
        let first = t.step(&batch, 0.1, &mut rng).unwrap().loss;
        let mut last = first;
        for _ in 0..40 {
            last = t.step(&batch, 0.1, &mut rng).unwrap().loss;
        }
        assert!(last < 0.6 * first, "{case}: loss {first} → {last}");
    }
}

/// Trains through ortl-train on a 32×32 tensors folder with the tiny ViT `head` as the
/// backbone, with `flags`; the run folder is `wd/run`.
fn train_vit(wd: &Workdir, head: TokenHead, flags: &[&str]) -> ortl_manifest::TrainRecord {
    train_on(wd, &exports::vit(head, 1000, 9), flags)
}

/// Trains through ortl-train on a 32×32 tensors folder with `export` as the backbone.
fn train_on(wd: &Workdir, export: &ortl_onnx::Model, flags: &[&str]) -> ortl_manifest::TrainRecord {
    common::tensors_with(wd, ortl_imaging::AugmentSpec::default());
    let vit = wd.join("vit.onnx");
    ortl_onnx::io::save(export, &vit).unwrap();
    let (tensors, run) = (wd.join("tensors"), wd.join("run"));
    let mut command = vec![
        "ortl-train",
        tensors.to_str().unwrap(),
        "-o",
        run.to_str().unwrap(),
        "--backbone",
        vit.to_str().unwrap(),
        "--batch",
        "8",
        "--threads",
        "1",
    ];
    command.extend_from_slice(flags);
    let settings = Settings::resolve(&Args::try_parse_from(command).unwrap()).unwrap();
    let mut lines = Vec::new();
    match ortl_train::run(settings, &mut lines).unwrap_or_else(|e| panic!("{e:#}")) {
        Outcome::Trained(record) => *record,
        other => panic!("expected a trained run, got {other:?}"),
    }
}

/// The tiny ViT, cut at its class token, trains its head for an epoch and then the whole
/// network (the patch embedding, the class token expanded to the batch as exporters write it,
/// the position embedding, attention, LayerNorms) for one; in torch.onnx's form and in
/// torch.export's (the batch on axis 1 of the fused q/k/v, heads folded into the batch).
#[test]
fn the_tiny_vit_trains_its_head_then_fine_tunes_whole_through_ortl_train() {
    for (head, attention) in [
        (TokenHead::ClassToken, "attn.q.weight"),
        (TokenHead::DynamoClassToken, "attn.qkv.weight"),
    ] {
        let wd = Workdir::new();
        let record = train_vit(&wd, head, &["--fine-tune", "1,1"]);
        assert_eq!(record.summary.epochs_run, 2, "{head:?}");
        let original = exports::vit(head, 1000, 9).graph.initializers;
        let trained = ortl_onnx::io::load(&wd.join("run/model.onnx"))
            .unwrap()
            .graph
            .initializers;
        for name in [
            "conv_proj.weight",
            "class_token",
            "pos_embedding",
            attention,
            "ln_1.weight",
            "encoder.ln.bias",
        ] {
            assert_ne!(
                trained[name], original[name],
                "{head:?}: {name} did not train"
            );
        }
    }
}

/// `--features` naming the encoder's tokens with `--pool mean` trains a head on their mean.
#[test]
fn named_tokens_pooled_by_pool_train_through_ortl_train() {
    let head = TokenHead::MeanFcNorm;
    let record = train_vit(
        &Workdir::new(),
        head,
        &[
            "--features",
            head.tokens(),
            "--pool",
            "mean",
            "--freeze",
            "backbone",
            "--epochs",
            "1",
        ],
    );
    assert_eq!(record.summary.epochs_run, 1);
    assert_eq!(record.settings.features.as_deref(), Some(head.tokens()));
    assert_eq!(
        record.settings.pool,
        Some(ortl_manifest::train_record::TokenPool::Mean)
    );
}

/// timm keeps ConvNeXt's final LayerNorm under `head.norm`: it belongs to the backbone. A
/// frozen backbone (with its features cached) leaves it as it was, and only the classifier's
/// head trains; unfrozen, it trains with the backbone.
#[test]
fn a_backbone_parameter_named_head_stays_in_the_backbone() {
    let export = exports::convnext(ConvNextHead::GlobalAveragePool, 1000, 9);
    let original = &export.graph.initializers["head.norm.weight"];
    for (flags, trains) in [
        (&["--freeze", "backbone", "--epochs", "1"][..], false),
        (&["--epochs", "1"][..], true),
    ] {
        let wd = Workdir::new();
        train_on(&wd, &export, flags);
        let trained = ortl_onnx::io::load(&wd.join("run/model.onnx"))
            .unwrap()
            .graph
            .initializers;
        assert_eq!(
            &trained["backbone.head.norm.weight"] != original,
            trains,
            "{flags:?}"
        );
    }
}
