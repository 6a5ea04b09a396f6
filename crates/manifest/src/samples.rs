//! Complete, plausible contract records for the tests of the stages that read them, so no
//! test writes a stage's file by hand. (Compiled always: a feature for it would give test
//! and release builds different dependency features and rebuild the workspace twice.)

use crate::train_record::{
    BnMode, Environment, EpochMetric, Loss, Normalization, Optimizer, Preset, TrainRecord,
    TrainSettings, TrainSummary, VERSION, Weights,
};

/// A complete train.json record with plausible values (ResNet50, the tutorial's settings).
pub fn train_record() -> TrainRecord {
    TrainRecord {
        format: VERSION,
        settings: TrainSettings {
            tensors: "work/tensors".into(),
            task: crate::Task::SingleLabel,
            classes: vec!["normal".into(), "tb".into()],
            image_height: 100,
            image_width: 100,
            val_fold: None,
            preset: Some(Preset::Tutorial),
            backbone: "resnet50".into(),
            backbone_parameters: 23_508_032,
            backbone_weights: Weights::Random { seed: 12 },
            backbone_pretrained: false,
            backbone_provenance: Weights::Random { seed: 12 }.to_string(),
            features: None,
            pool: None,
            normalization: Normalization::ImageNet,
            normalization_reason: "built-in backbone".into(),
            head: "tutorial".into(),
            freeze: "none".into(),
            l2: None,
            fine_tune: Some((2, 3)),
            bn_mode: BnMode::Frozen,
            loss: Loss::SigmoidCategorical,
            optimizer: Optimizer::Adam,
            weight_decay: 0.0,
            momentum: 0.9,
            lr: 1e-3,
            schedule: "exp:1e-5,0.99,100".into(),
            batch: 32,
            epochs: 100,
            early_stopping: "monitor=loss,patience=10".into(),
            checkpoint: EpochMetric::ValAccuracy,
            class_weights: "none".into(),
            pos_weight: "none".into(),
            label_smoothing: 0.0,
            clip_norm: Some(1.0),
            seed: 12,
        },
        environment: Environment {
            trained_at: "2026-12-01T12:00:00Z".into(),
            git_commit: None,
            ortl_version: "0.1.0".into(),
            onnxruntime: "1.31.1".into(),
            onnxruntime_library: ".ort/libonnxruntime.so.1.31.1".into(),
            device: "cpu".into(),
            threads: Some(2),
            conv_layout: "blocked".into(),
            update_on: Some("host".into()),
        },
        summary: TrainSummary {
            epochs_run: 5,
            best_epoch: Some(4),
            stopped_early: false,
            images_per_second: 13.5,
            seconds: 60.25,
        },
    }
}
