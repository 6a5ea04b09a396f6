//! Every setting of a run, resolved once from the command line and the tensors it names:
//! the preset's and the task's defaults filled in, the choices that depend on the device or
//! the backbone made, and every mistake fixed on the command line found before anything is
//! loaded. What runs from here on reads these values, never the flags.

use std::path::PathBuf;

use ortl_autodiff::loss::Loss;
use ortl_autodiff::optim::{Optimizer, OptimizerKind};
use ortl_cli::UsageError;
use ortl_hub::WeightsSpec;
use ortl_manifest::train_record::{self as record, TrainSettings};
use ortl_manifest::{Task, TensorSet};
use ortl_models::{Head, Normalization};
use ortl_runtime::{Device, RuntimeArgs};

use crate::args::{Args, Preset, Stopping};
use crate::callbacks::{EarlyStopping, Metric};
use crate::fit::{ClassWeights, FitConfig};
use crate::graph::{BnMode, ConvLayout, Trainable, UpdateOn};
use crate::schedule::Schedule;

/// Every setting after the preset, the flags and the tensors are combined.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The tensors folder, opened and checked (shards are read when training starts).
    pub tensors: TensorSet,
    /// The run folder.
    pub output: PathBuf,
    pub start: Start,
    /// Write the step graph here and stop, leaving the run folder alone.
    pub export_step_graph: Option<PathBuf>,
    pub step_log: Option<PathBuf>,
    /// Say how the step graph was built in detail.
    pub verbose: bool,
    pub preset: Option<Preset>,
    /// A built-in backbone's own spelling of its name, else the name or path as given.
    pub backbone: String,
    pub weights: Option<WeightsSpec>,
    pub features: Option<String>,
    /// How the tokens `features` names are pooled.
    pub pool: Option<ortl_models::TokenPool>,
    pub normalize: Option<Normalization>,
    pub head: Head,
    pub trainable: Trainable,
    /// The L2 coefficient on every dense kernel of the head, in place of the head's own.
    pub l2: Option<f32>,
    pub bn_mode: BnMode,
    pub loss: Loss,
    pub optimizer: OptimizerKind,
    pub weight_decay: f32,
    pub momentum: f32,
    pub lr: f64,
    pub schedule: Schedule,
    pub batch: usize,
    pub epochs: usize,
    /// Head-only epochs, then epochs of everything.
    pub fine_tune: Option<(usize, usize)>,
    pub early_stopping: Option<EarlyStopping>,
    pub checkpoint: Metric,
    pub class_weights: ClassWeights,
    pub positive_weights: ClassWeights,
    pub label_smoothing: f32,
    pub clip_norm: Option<f32>,
    pub val_fold: Option<u32>,
    pub seed: u64,
    pub runtime: RuntimeArgs,
    /// Checked against the device; where ONNX Runtime has blocked kernels is known only
    /// once it is loaded.
    pub conv_layout: ConvLayout,
    /// [`UpdateOn::Graph`] or [`UpdateOn::Host`]: resolved for the device.
    pub update_on: UpdateOn,
    /// Cache a frozen backbone's pooled features when only the head trains.
    pub feature_cache: bool,
}

/// How the run folder is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run; `replace`: a finished run already there may be replaced.
    Fresh { replace: bool },
    /// Continue the run in the folder from its checkpoint.
    Resume,
}

/// A stretch of epochs training one part of the model at one learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub trainable: Trainable,
    pub lr: f64,
    /// The epoch it ends with (1-based, counted over the whole run).
    pub until: usize,
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

impl Settings {
    /// The settings `args` ask for, with the tensors they name opened.
    pub fn resolve(args: &Args) -> Result<Settings, UsageError> {
        let tensors = TensorSet::open(&args.tensors).map_err(|e| usage(e.to_string()))?;
        Self::for_tensors(args, tensors)
    }

    /// The settings `args` ask for training on `tensors`, whose task and classes decide
    /// some defaults.
    pub fn for_tensors(args: &Args, tensors: TensorSet) -> Result<Settings, UsageError> {
        let tutorial = args.preset == Some(Preset::Tutorial);
        let multi_label = tensors.meta.task == Task::MultiLabel;
        let classes = &tensors.meta.classes;
        // Checked before anything is built: a list of the wrong length is a typing slip.
        for (flag, weights, (each, all)) in [
            ("--class-weights", &args.class_weights, ("class", "classes")),
            ("--pos-weight", &args.pos_weight, ("finding", "findings")),
        ] {
            if let Some(ClassWeights::Given(w)) = weights
                && w.len() != classes.len()
            {
                return Err(usage(format!(
                    "{flag} has {} values for the {} {all} ({}); give one per {each}, in that order",
                    w.len(),
                    classes.len(),
                    classes.join(", "),
                )));
            }
        }
        if multi_label && args.class_weights.is_some() {
            return Err(usage(
                "--class-weights weighs one class per image; for multi-label tensors weigh each finding's positives with --pos-weight",
            ));
        }
        if !multi_label && args.pos_weight.is_some() {
            return Err(usage(
                "--pos-weight is for multi-label tensors; weigh classes with --class-weights",
            ));
        }
        if multi_label && args.loss.is_some_and(|l| l != Loss::SigmoidBinary) {
            return Err(usage(
                "multi-label tensors train a sigmoid per finding with --loss sigmoid-bce (the default for them)",
            ));
        }
        // Built-in names in their own spelling whatever the case or `-`/`_` given.
        let backbone = match args.backbone.as_deref() {
            None => "resnet50".to_string(),
            Some(name) => ortl_models::zoo::canonical(name).map_or(name.into(), String::from),
        };
        let head = head(args, tutorial)?;
        let loss = args.loss.unwrap_or(if multi_label {
            Loss::SigmoidBinary
        } else if head == Head::Tutorial {
            Loss::SigmoidCategorical
        } else {
            Loss::SoftmaxCrossEntropy
        });
        let early_stopping = match &args.early_stopping {
            Some(Stopping::Off) => None,
            Some(Stopping::On(early)) => Some(early.clone()),
            None if tutorial => Some("monitor=loss,patience=10".parse().expect("valid")),
            None => None,
        };
        let bn_mode = match args.bn_mode {
            Some(mode) => mode,
            // Pretrained statistics are kept (Keras' training=False), whether the weights
            // came in an .onnx file or through --weights.
            None if ortl_models::zoo::canonical(&backbone).is_none() => BnMode::Frozen,
            None if args.weights.is_some() => BnMode::Frozen,
            None => BnMode::Train,
        };
        let batch = args.batch.unwrap_or(32);
        let epochs = args.epochs.unwrap_or(if tutorial { 100 } else { 10 });
        if batch == 0 || epochs == 0 {
            return Err(usage("--batch and --epochs must be at least 1"));
        }
        let device = args.runtime.device;
        if args.conv_layout == ConvLayout::Blocked && device != Device::Cpu {
            return Err(usage(
                "--conv-layout blocked is for the CPU; CUDA runs the plain graph (use auto)",
            ));
        }
        let update_on = args
            .update_on
            .resolve(device)
            .map_err(|e| usage(e.to_string()))?;
        if let Some(coefficient) = args.l2
            && !(coefficient.is_finite() && coefficient >= 0.0)
        {
            return Err(usage("--l2 must be a non-negative number"));
        }
        Ok(Settings {
            tensors,
            output: args.output.clone(),
            start: if args.resume {
                Start::Resume
            } else {
                Start::Fresh {
                    replace: args.force,
                }
            },
            export_step_graph: args.export_step_graph.clone(),
            step_log: args.step_log.clone(),
            verbose: args.verbose,
            preset: args.preset,
            backbone,
            weights: args.weights.clone(),
            features: args.features.clone(),
            pool: args.pool,
            normalize: args.normalize,
            head,
            trainable: args.freeze.clone(),
            l2: args.l2,
            bn_mode,
            loss,
            optimizer: args.optimizer,
            weight_decay: args.weight_decay,
            momentum: args.momentum,
            lr: args.lr.unwrap_or(1e-3),
            schedule: args.schedule.clone().unwrap_or(if tutorial {
                "exp:1e-5,0.99,100".parse().expect("valid")
            } else {
                Schedule::Constant
            }),
            batch,
            epochs,
            fine_tune: args.fine_tune,
            early_stopping,
            checkpoint: args.checkpoint.unwrap_or(if multi_label {
                Metric::ValAuc
            } else {
                Metric::ValAccuracy
            }),
            class_weights: args.class_weights.clone().unwrap_or(ClassWeights::None),
            positive_weights: args.pos_weight.clone().unwrap_or(ClassWeights::None),
            label_smoothing: args.label_smoothing,
            clip_norm: args.clip_norm,
            val_fold: args.val_fold,
            seed: args.seed.unwrap_or(12),
            runtime: args.runtime.clone(),
            conv_layout: args.conv_layout,
            update_on,
            feature_cache: !args.no_feature_cache,
        })
    }

    /// The optimizer with Keras' defaults for what is not set.
    pub fn optimizer(&self) -> Optimizer {
        Optimizer::keras(self.optimizer, self.weight_decay, self.momentum)
    }

    /// What trains in which epochs: `--fine-tune E1,E2` trains the head for E1 epochs, then
    /// everything for E2 at a tenth of the rate; otherwise one phase of `--epochs`.
    pub fn phases(&self) -> Vec<Phase> {
        match self.fine_tune {
            Some((head_epochs, all_epochs)) => vec![
                Phase {
                    trainable: Trainable::Head,
                    lr: self.lr,
                    until: head_epochs,
                },
                Phase {
                    trainable: Trainable::All,
                    lr: self.lr / 10.0,
                    until: head_epochs + all_epochs,
                },
            ],
            None => vec![Phase {
                trainable: self.trainable.clone(),
                lr: self.lr,
                until: self.epochs,
            }],
        }
    }

    /// The widest part of the model any phase trains.
    pub fn widest_trainable(&self) -> Trainable {
        match self.fine_tune {
            Some(_) => Trainable::All,
            None => self.trainable.clone(),
        }
    }

    /// The training loop's settings for a run of `epochs` in all.
    pub fn fit_config(&self, epochs: usize) -> FitConfig {
        FitConfig {
            epochs,
            batch: self.batch,
            lr: self.lr,
            schedule: self.schedule.clone(),
            early_stopping: self.early_stopping.clone(),
            checkpoint: self.checkpoint,
            class_weights: self.class_weights.clone(),
            positive_weights: self.positive_weights.clone(),
            seed: self.seed,
        }
    }

    /// What train.json and the checkpoint record of these settings, with what loading
    /// `backbone` found.
    pub fn record(&self, backbone: &ortl_models::Backbone) -> TrainSettings {
        let meta = &self.tensors.meta;
        TrainSettings {
            tensors: self.tensors.dir.clone(),
            task: meta.task,
            classes: meta.classes.clone(),
            image_height: meta.height,
            image_width: meta.width,
            val_fold: self.val_fold,
            preset: self.preset.map(|Preset::Tutorial| record::Preset::Tutorial),
            backbone: self.backbone.clone(),
            backbone_parameters: backbone.parameter_count(),
            backbone_weights: backbone.weights.clone(),
            backbone_pretrained: backbone.weights.is_pretrained(),
            backbone_provenance: backbone.weights.to_string(),
            features: self.features.clone(),
            pool: self.pool.map(|pool| match pool {
                ortl_models::TokenPool::Cls => record::TokenPool::Cls,
                ortl_models::TokenPool::Mean => record::TokenPool::Mean,
            }),
            normalization: recorded_normalization(backbone.normalization),
            normalization_reason: backbone.normalization_reason.clone(),
            head: self.head.to_string(),
            freeze: self.trainable.to_string(),
            l2: self.l2,
            fine_tune: self.fine_tune,
            bn_mode: match self.bn_mode {
                BnMode::Frozen => record::BnMode::Frozen,
                BnMode::Train => record::BnMode::Train,
            },
            loss: recorded_loss(self.loss),
            optimizer: recorded_optimizer(self.optimizer),
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            lr: self.lr,
            schedule: self.schedule.to_string(),
            batch: self.batch,
            epochs: self.epochs,
            early_stopping: self
                .early_stopping
                .as_ref()
                .map_or_else(|| "off".into(), ToString::to_string),
            checkpoint: recorded_metric(self.checkpoint),
            class_weights: self.class_weights.to_string(),
            pos_weight: self.positive_weights.to_string(),
            label_smoothing: self.label_smoothing,
            clip_norm: self.clip_norm,
            seed: self.seed,
        }
    }
}

/// The head `--head` and `--dropout` ask for (the tutorial's with its preset).
fn head(args: &Args, tutorial: bool) -> Result<Head, UsageError> {
    let mut head = args.head.clone().unwrap_or(if tutorial {
        Head::Tutorial
    } else {
        Head::Linear { dropout: 0.2 }
    });
    if let Some(rate) = args.dropout {
        if !(0.0..1.0).contains(&rate) {
            return Err(usage("--dropout must be in [0, 1)"));
        }
        match &mut head {
            Head::Linear { dropout } | Head::Mlp { dropout, .. } => *dropout = rate,
            Head::Tutorial => {
                return Err(usage(
                    "the tutorial head's dropout is fixed at 0.8; use --head linear or mlp to set it",
                ));
            }
        }
    }
    Ok(head)
}

fn recorded_normalization(normalization: Normalization) -> record::Normalization {
    match normalization {
        Normalization::ImageNet => record::Normalization::ImageNet,
        Normalization::Caffe => record::Normalization::Caffe,
        Normalization::Unit => record::Normalization::Unit,
        Normalization::Symmetric => record::Normalization::Symmetric,
    }
}

fn recorded_loss(loss: Loss) -> record::Loss {
    match loss {
        Loss::SoftmaxCrossEntropy => record::Loss::SoftmaxCrossEntropy,
        Loss::SigmoidCategorical => record::Loss::SigmoidCategorical,
        Loss::SigmoidBinary => record::Loss::SigmoidBinary,
    }
}

fn recorded_optimizer(kind: OptimizerKind) -> record::Optimizer {
    match kind {
        OptimizerKind::Adam => record::Optimizer::Adam,
        OptimizerKind::Adamw => record::Optimizer::Adamw,
        OptimizerKind::Sgd => record::Optimizer::Sgd,
        OptimizerKind::Nesterov => record::Optimizer::Nesterov,
        OptimizerKind::Rmsprop => record::Optimizer::Rmsprop,
    }
}

fn recorded_metric(metric: Metric) -> record::EpochMetric {
    match metric {
        Metric::Loss => record::EpochMetric::Loss,
        Metric::Accuracy => record::EpochMetric::Accuracy,
        Metric::ValLoss => record::EpochMetric::ValLoss,
        Metric::ValAccuracy => record::EpochMetric::ValAccuracy,
        Metric::ValAuc => record::EpochMetric::ValAuc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use ortl_manifest::tensors::{FORMAT, TensorMeta};

    /// Tensors of `task` with two classes (or findings), in memory: resolving reads only
    /// their metadata.
    fn tensors(task: Task) -> TensorSet {
        TensorSet {
            dir: "tensors".into(),
            meta: TensorMeta {
                format: FORMAT.into(),
                height: 32,
                width: 32,
                channels: 3,
                task,
                classes: vec!["normal".into(), "tb".into()],
                seed: 1,
                copies: 1,
                keep_original: false,
                filter: ortl_imaging::Filter::Bilinear,
                window: ortl_imaging::Window::Auto,
                intensity: Default::default(),
                augmentation: ortl_imaging::AugmentSpec::default(),
                shards: Vec::new(),
                manifest: "manifest.csv".into(),
                ortl_version: "test".into(),
            },
            rows: Vec::new(),
        }
    }

    fn resolve_for(task: Task, flags: &[&str]) -> Result<Settings, UsageError> {
        let command = ["ortl-train", "tensors", "-o", "run"];
        let args = Args::try_parse_from(command.iter().chain(flags)).expect("flags parse");
        Settings::for_tensors(&args, tensors(task))
    }

    fn resolve(flags: &[&str]) -> Settings {
        resolve_for(Task::SingleLabel, flags).expect("settings resolve")
    }

    fn refusal(task: Task, flags: &[&str]) -> String {
        resolve_for(task, flags).expect_err("a usage error").0
    }

    #[test]
    fn defaults_are_keras_like_and_the_optimizer_update_runs_on_the_host_on_a_cpu() {
        let s = resolve(&[]);
        assert_eq!(s.backbone, "resnet50");
        assert_eq!(s.head, Head::Linear { dropout: 0.2 });
        assert_eq!(s.trainable, Trainable::All);
        assert_eq!(s.loss, Loss::SoftmaxCrossEntropy);
        assert_eq!(
            s.optimizer(),
            Optimizer::keras(OptimizerKind::Adam, 0.0, 0.9)
        );
        assert_eq!((s.lr, s.batch, s.epochs, s.seed), (1e-3, 32, 10, 12));
        assert_eq!(s.schedule, Schedule::Constant);
        assert_eq!(s.early_stopping, None);
        assert_eq!(s.checkpoint, Metric::ValAccuracy);
        assert_eq!(s.class_weights, ClassWeights::None);
        // A built-in backbone starts from random weights: its BatchNorm statistics train.
        assert_eq!(s.bn_mode, BnMode::Train);
        assert_eq!(s.update_on, UpdateOn::Host);
        assert_eq!(s.conv_layout, ConvLayout::Auto);
        assert_eq!(s.start, Start::Fresh { replace: false });
        assert!(s.feature_cache);
        assert_eq!(
            s.phases(),
            [Phase {
                trainable: Trainable::All,
                lr: 1e-3,
                until: 10
            }]
        );
    }

    #[test]
    fn the_tutorial_preset_sets_its_recipe_and_flags_override_it() {
        let s = resolve(&["--preset", "tutorial", "--epochs", "3"]);
        assert_eq!(s.head, Head::Tutorial);
        assert_eq!(s.loss, Loss::SigmoidCategorical);
        assert_eq!(s.schedule.to_string(), "exp:1e-5,0.99,100");
        assert_eq!(s.epochs, 3);
        let early = s.early_stopping.expect("the tutorial stops early");
        assert_eq!((early.monitor, early.patience), (Metric::Loss, 10));
        let s = resolve(&["--preset", "tutorial", "--early-stopping", "off"]);
        assert_eq!((s.early_stopping, s.epochs), (None, 100));
        assert_eq!(
            refusal(
                Task::SingleLabel,
                &["--preset", "tutorial", "--dropout", "0.3"]
            ),
            "the tutorial head's dropout is fixed at 0.8; use --head linear or mlp to set it"
        );
    }

    #[test]
    fn pretrained_backbones_keep_their_batchnorm_statistics_unless_told() {
        assert_eq!(resolve(&["--weights", "imagenet"]).bn_mode, BnMode::Frozen);
        let imported = resolve(&["--backbone", "exported/classifier.onnx"]);
        assert_eq!(imported.bn_mode, BnMode::Frozen);
        assert_eq!(imported.backbone, "exported/classifier.onnx");
        let told = resolve(&["--weights", "imagenet", "--bn-mode", "train"]);
        assert_eq!(told.bn_mode, BnMode::Train);
        // Built-in names in their own spelling, whatever the case or separator given.
        assert_eq!(
            resolve(&["--backbone", "ResNet_Mini"]).backbone,
            "resnet-mini"
        );
    }

    #[test]
    fn multi_label_tensors_default_to_a_sigmoid_per_finding_and_refuse_class_flags() {
        let s = resolve_for(Task::MultiLabel, &["--pos-weight", "auto"]).unwrap();
        assert_eq!(s.loss, Loss::SigmoidBinary);
        assert_eq!(s.checkpoint, Metric::ValAuc);
        assert_eq!(s.positive_weights, ClassWeights::Auto);
        assert!(refusal(Task::MultiLabel, &["--class-weights", "auto"]).contains("--pos-weight"));
        assert!(refusal(Task::MultiLabel, &["--loss", "softmax-ce"]).contains("sigmoid-bce"));
        assert_eq!(
            refusal(Task::SingleLabel, &["--pos-weight", "auto"]),
            "--pos-weight is for multi-label tensors; weigh classes with --class-weights"
        );
        assert_eq!(
            refusal(Task::MultiLabel, &["--pos-weight", "1,2,3"]),
            "--pos-weight has 3 values for the 2 findings (normal, tb); give one per finding, in that order"
        );
    }

    #[test]
    fn choices_that_depend_on_the_device_are_made_or_refused_for_it() {
        let cuda = resolve(&["--device", "cuda"]);
        assert_eq!(cuda.update_on, UpdateOn::Graph);
        assert!(
            refusal(
                Task::SingleLabel,
                &["--device", "cuda", "--update-on", "host"]
            )
            .starts_with("--update-on host is for the CPU")
        );
        assert_eq!(
            refusal(
                Task::SingleLabel,
                &["--device", "cuda", "--conv-layout", "blocked"]
            ),
            "--conv-layout blocked is for the CPU; CUDA runs the plain graph (use auto)"
        );
        assert_eq!(
            resolve(&["--update-on", "graph"]).update_on,
            UpdateOn::Graph
        );
    }

    #[test]
    fn values_out_of_range_are_refused_before_anything_loads() {
        for (flags, message) in [
            (
                &["--batch", "0"][..],
                "--batch and --epochs must be at least 1",
            ),
            (
                &["--epochs", "0"],
                "--batch and --epochs must be at least 1",
            ),
            (&["--dropout", "1"], "--dropout must be in [0, 1)"),
            (&["--l2=-0.1"], "--l2 must be a non-negative number"),
            (&["--l2", "NaN"], "--l2 must be a non-negative number"),
            (
                &["--class-weights", "1"],
                "--class-weights has 1 values for the 2 classes (normal, tb); give one per class, in that order",
            ),
        ] {
            assert_eq!(refusal(Task::SingleLabel, flags), message, "{flags:?}");
        }
    }

    #[test]
    fn fine_tuning_trains_the_head_then_everything_at_a_tenth_of_the_rate() {
        let s = resolve(&["--fine-tune", "2,3", "--lr", "0.01"]);
        assert_eq!(
            s.phases(),
            [
                Phase {
                    trainable: Trainable::Head,
                    lr: 0.01,
                    until: 2
                },
                Phase {
                    trainable: Trainable::All,
                    lr: 0.001,
                    until: 5
                }
            ]
        );
        assert_eq!(s.widest_trainable(), Trainable::All);
        let head_only = resolve(&["--freeze", "backbone", "--no-feature-cache", "--resume"]);
        assert_eq!(head_only.widest_trainable(), Trainable::Head);
        assert!(!head_only.feature_cache);
        assert_eq!(head_only.start, Start::Resume);
    }

    #[test]
    fn the_record_spells_each_setting_as_its_flag() {
        let s = resolve(&[
            "--preset",
            "tutorial",
            "--backbone",
            "resnet-mini",
            "--optimizer",
            "sgd",
            "--checkpoint",
            "monitor=val_loss",
            "--freeze",
            "upto:layer2",
            "--class-weights",
            "auto",
        ]);
        let backbone = ortl_models::zoo::builtin(&s.backbone, s.seed).unwrap();
        let r = s.record(&backbone);
        let json = serde_json::to_value(&r).unwrap();
        for (key, value) in [
            ("preset", "tutorial"),
            ("backbone", "resnet-mini"),
            ("normalization", "imagenet"),
            ("head", "tutorial"),
            ("freeze", "upto:layer2"),
            ("bn_mode", "train"),
            ("loss", "sigmoid-categorical"),
            ("optimizer", "sgd"),
            ("schedule", "exp:1e-5,0.99,100"),
            ("early_stopping", "monitor=loss,patience=10,min_delta=0"),
            ("checkpoint", "val_loss"),
            ("class_weights", "auto"),
            ("pos_weight", "none"),
        ] {
            assert_eq!(json[key], value, "{key}");
        }
        assert_eq!(r.backbone_parameters, backbone.parameter_count());
        assert!(!r.backbone_pretrained);
    }
}
