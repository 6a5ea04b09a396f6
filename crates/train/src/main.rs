//! ortl-train: tensors/ to a trained, self-contained model.onnx.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::Parser;
use ortl_autodiff::loss::Loss;
use ortl_autodiff::optim::{Optimizer, OptimizerKind};
use ortl_cli::{AtomicFile, usage};
use ortl_hub::{HubFile, WeightsSpec};
use ortl_manifest::train_record::{Environment, TrainRecord, TrainSettings, TrainSummary};
use ortl_manifest::{Task, TensorSet};
use ortl_models::{ClassifierSpec, Head, Normalization, classifier};
use ortl_runtime::{Device, RuntimeArgs};
use ortl_train::Trainer;
use ortl_train::callbacks::{EarlyStopping, Metric};
use ortl_train::fit::{
    ClassWeights, Dataset, EpochRecord, FeatureCache, FitConfig, Fitter, Outcome, Progress, Sink,
    State, StepRecord,
};
use ortl_train::graph::{BnMode, ConvLayout, TrainSpec, Trainable, UpdateOn};
use ortl_train::schedule::Schedule;

/// Trains an image classifier by transfer learning on ONNX Runtime.
///
/// Builds backbone + head + preprocessing as one ONNX graph, differentiates it
/// into a training step of standard ONNX operators, and trains on the tensors
/// from ortl-augment. Epoch e uses each training image's stored variant e mod K,
/// so every epoch sees fresh augmentations. Writes into the output folder:
///   model.onnx    final classifier: uint8 [N,H,W,3] in, probabilities [N,C] out
///   best.onnx     the best epoch by --checkpoint (as Keras' ModelCheckpoint)
///   history.csv   epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,val_auc
///   train.json    every resolved setting, classes, sizes, versions, timings
///
/// Multi-label tensors (from a multi-label manifest) train a sigmoid per finding:
/// binary cross-entropy with unknown labels left out (their terms are 0, and the
/// sum is divided by the number of findings, as PyTorch's mean), --pos-weight for
/// rare findings, best.onnx by val_auc (macro ROC AUC over the findings).
///
/// Pretrained weights: --weights imagenet downloads a built-in family's ImageNet
/// weights once into the model cache (HF_HOME; ortl-weights fetches ahead and
/// lists them), as Keras' weights='imagenet' does; or give a pretrained .onnx.
///
/// BatchNorm in the backbone: --bn-mode frozen uses the stored statistics while
/// scale and shift still train, as Keras' base(x, training=False) — the default
/// for a pretrained backbone (--weights, or an .onnx); --bn-mode train uses batch
/// statistics — the default for a built-in backbone from random weights, whose
/// fresh statistics mean nothing yet.
/// Getting this wrong is the most common fine-tuning pitfall; train.json records
/// the mode used.
///
/// EXAMPLES:
///     ortl-train work/tensors -o work/run --backbone resnet-mini --epochs 10
///     ortl-train work/tensors -o work/run --preset tutorial \
///         --backbone resnet50 --weights imagenet
///     ortl-train work/tensors -o work/run --backbone resnet50.onnx
///     ortl-train work/tensors -o work/run --freeze backbone --head mlp:256 \
///         --optimizer sgd --momentum 0.9 --lr 0.01
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Tensors folder from ortl-augment.
    tensors: PathBuf,
    /// Output run folder.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace a finished run in the output folder.
    #[arg(long)]
    force: bool,
    /// Start from a recipe's settings; other flags override them.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// A built-in backbone (He init, torchvision's layout and names): resnet50, resnet101,
    /// resnet26, mobilenet_v2, vgg19, vgg19_bn, densenet121, densenet201, efficientnet_b0,
    /// inception_v3, inception_resnet_v2 (timm's names), or a reduced member for quick runs
    /// (resnet-mini, mobilenet-mini, vgg-mini, densenet-mini, efficientnet-mini,
    /// inception-mini, inception-resnet-mini); or a pretrained classifier .onnx to cut at
    /// its pooled features. [default: resnet50]
    #[arg(long)]
    backbone: Option<String>,
    /// Input normalisation: of an imported backbone, detected from the file when omitted;
    /// of a built-in one, imagenet (or what --weights imagenet's source was trained with).
    #[arg(long)]
    normalize: Option<Normalization>,
    /// Pretrained weights for a built-in backbone: `imagenet` (downloaded once from the
    /// model hub into its cache and verified: `ortl-weights sources` lists them), a hub
    /// file hf:ORG/REPO[@REVISION][:FILE] (default model.safetensors), or a local
    /// safetensors file; in torchvision's names (timm's for inception_resnet_v2, and timm's
    /// MobileNetV2/EfficientNet names are renamed); every name and shape is checked.
    /// HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE and HF_TOKEN apply.
    #[arg(long, value_name = "imagenet|hf:ORG/REPO|FILE")]
    weights: Option<WeightsSpec>,
    /// With an imported backbone: cut it at this named tensor instead of at the pooled
    /// features graph analysis finds: a feature map (pooled by the head) or an embedding
    /// [N, C], for encoders that are not classifiers.
    #[arg(long, value_name = "NAME")]
    features: Option<String>,
    /// Head: linear, tutorial, or mlp:W1,W2,… [default: linear; with --preset tutorial:
    /// tutorial]
    #[arg(long)]
    head: Option<Head>,
    /// Dropout rate of linear and mlp heads. [default: 0.2]
    #[arg(long)]
    dropout: Option<f32>,
    /// What is frozen: none (everything trains), backbone (head only), or upto:NAME (the
    /// layers up to and including the last node or parameter named NAME…, e.g. upto:layer3).
    #[arg(long, default_value = "none")]
    freeze: Trainable,
    /// L2 penalty coefficient on the head's dense kernels (Keras kernel_regularizer);
    /// the tutorial head's is 0.3, the others' 0.
    #[arg(long)]
    l2: Option<f32>,
    /// Backbone BatchNorm. [default: frozen for a pretrained backbone (an .onnx file or
    /// --weights), train for a built-in one from random weights]
    #[arg(long, value_enum)]
    bn_mode: Option<BnMode>,
    /// Loss. [default: sigmoid-bce for multi-label tensors (a sigmoid per finding, unknown
    /// labels masked); else sigmoid-categorical with the tutorial head, softmax-ce]
    #[arg(long)]
    loss: Option<Loss>,
    /// Optimizer, with Keras' defaults.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    optimizer: OptimizerKind,
    /// Learning rate (the schedule's base where it has none of its own). [default: 0.001]
    #[arg(long)]
    lr: Option<f64>,
    /// Weight decay (L2 on all weights for sgd/adam/rmsprop, decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// Learning-rate schedule: constant, exp:BASE,RATE,OFFSET, step:EVERY,FACTOR,
    /// cosine[:WARMUP], onecycle, plateau:PATIENCE,FACTOR. [default: constant; with --preset
    /// tutorial: exp:1e-5,0.99,100]
    #[arg(long)]
    schedule: Option<Schedule>,
    /// Clip gradients to this global L2 norm.
    #[arg(long)]
    clip_norm: Option<f32>,
    /// Label smoothing ε: one-hot targets become (1 − ε)·one-hot + ε/C; a finding's 0/1
    /// becomes t·(1 − ε) + ε/2.
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f32,
    /// Class weights of the loss: auto (balanced), none, or w0,w1,… [default: none]
    #[arg(long)]
    class_weights: Option<ClassWeights>,
    /// Multi-label: the weight of each finding's positive labels: auto (its negatives
    /// over its positives in training), none, or w0,w1,… in meta.json's finding order.
    /// [default: none]
    #[arg(long, value_name = "WEIGHTS")]
    pos_weight: Option<ClassWeights>,
    /// Images per optimizer step. [default: 32]
    #[arg(long)]
    batch: Option<usize>,
    /// Epochs to train (one pass over every training image each). [default: 10; with
    /// --preset tutorial: 100]
    #[arg(long)]
    epochs: Option<usize>,
    /// Early stopping: monitor=M,patience=N[,min_delta=D][,restore_best]; `off` disables it.
    /// [default: off; with --preset tutorial: monitor=loss,patience=10]
    #[arg(long, value_parser = stopping_flag)]
    early_stopping: Option<Stopping>,
    /// Metric whose best epoch is saved as best.onnx: monitor=M or a bare name (loss,
    /// accuracy, val_loss, val_accuracy, val_auc: macro ROC AUC). [default: val_accuracy;
    /// val_auc for multi-label tensors]
    #[arg(long, value_parser = checkpoint_metric)]
    checkpoint: Option<Metric>,
    /// Validation fold of a k-fold manifest (the other folds train).
    #[arg(long)]
    val_fold: Option<u32>,
    /// Seed of everything random: initial weights, batch order, dropout masks. [default: 12]
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// How convolutions compute on the CPU.
    #[arg(long, value_enum, default_value_t = ConvLayout::Auto)]
    conv_layout: ConvLayout,
    /// Where the optimizer update runs; the parameters come out the same to the bit.
    #[arg(long, value_enum, default_value_t = UpdateOn::Auto)]
    update_on: UpdateOn,
    /// Continue the interrupted (or finished, with more --epochs) run in the output folder
    /// from its checkpoint, exactly: weights, optimizer state, epoch, step, schedule and
    /// generator. Give the same settings as the first time.
    #[arg(long)]
    resume: bool,
    /// Two-phase fine-tuning: E1 epochs training the head only, then E2 epochs training
    /// everything at a tenth of the learning rate (fresh optimizer state), as the classic
    /// Keras transfer-learning recipe.
    #[arg(long, value_name = "E1,E2", value_parser = epochs_pair)]
    fine_tune: Option<(usize, usize)>,
    /// Run the frozen backbone on every step instead of caching its pooled features
    /// (head-only training caches by default: each stored image passes the backbone once).
    #[arg(long)]
    no_feature_cache: bool,
    /// Append one CSV row per optimizer step to this file (epoch,step,loss,lr,seconds),
    /// flushed as each step ends: a log to watch or plot, kept across --resume.
    #[arg(long, value_name = "FILE")]
    step_log: Option<PathBuf>,
    /// Write the training step graph (forward, loss, backward, optimizer) to this .onnx
    /// file and exit without training: for Netron, profilers, or another runtime.
    #[arg(long, value_name = "FILE")]
    export_step_graph: Option<PathBuf>,
    /// Also say how the training graph was built (blocked convolutions, fused nodes).
    #[arg(short, long)]
    verbose: bool,
}

/// Settings that start from a published recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Preset {
    /// The chest X-ray tutorial's: tutorial head, sigmoid outputs with sparse categorical
    /// cross-entropy, Adam, exp:1e-5,0.99,100 schedule, early stopping on loss (patience 10),
    /// best checkpoint on val_accuracy, 100 epochs, batch 32, seed 12, backbone trainable
    /// with frozen BatchNorm.
    Tutorial,
}

/// Every setting after the preset and flags are combined.
struct Settings {
    backbone: String,
    head: Head,
    trainable: Trainable,
    bn_mode: BnMode,
    loss: Loss,
    lr: f64,
    schedule: Schedule,
    batch: usize,
    epochs: usize,
    early_stopping: Option<EarlyStopping>,
    checkpoint: Metric,
    class_weights: ClassWeights,
    positive_weights: ClassWeights,
    seed: u64,
}

impl Args {
    /// The settings for tensors of `task` with `classes` (or findings).
    fn settings(&self, task: Task, classes: &[String]) -> Result<Settings> {
        let tutorial = self.preset == Some(Preset::Tutorial);
        let multi_label = task == Task::MultiLabel;
        // Checked before anything is built: a list of the wrong length is a typing slip.
        for (flag, weights, (each, all)) in [
            ("--class-weights", &self.class_weights, ("class", "classes")),
            ("--pos-weight", &self.pos_weight, ("finding", "findings")),
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
        if multi_label && self.class_weights.is_some() {
            return Err(usage(
                "--class-weights weighs one class per image; for multi-label tensors weigh each finding's positives with --pos-weight",
            ));
        }
        if !multi_label && self.pos_weight.is_some() {
            return Err(usage(
                "--pos-weight is for multi-label tensors; weigh classes with --class-weights",
            ));
        }
        if multi_label && self.loss.is_some_and(|l| l != Loss::SigmoidBinary) {
            return Err(usage(
                "multi-label tensors train a sigmoid per finding with --loss sigmoid-bce (the default for them)",
            ));
        }
        // Built-in names in their own spelling whatever the case or `-`/`_` given.
        let backbone = match self.backbone.as_deref() {
            None => "resnet50".to_string(),
            Some(name) => ortl_models::zoo::canonical(name).map_or(name.into(), String::from),
        };
        let mut head = self.head.clone().unwrap_or(if tutorial {
            Head::Tutorial
        } else {
            Head::Linear { dropout: 0.2 }
        });
        if let Some(rate) = self.dropout {
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
        let loss = self.loss.unwrap_or(if multi_label {
            Loss::SigmoidBinary
        } else if head == Head::Tutorial {
            Loss::SigmoidCategorical
        } else {
            Loss::SoftmaxCrossEntropy
        });
        let early_stopping = match &self.early_stopping {
            Some(Stopping::Off) => None,
            Some(Stopping::On(early)) => Some(early.clone()),
            None if tutorial => Some("monitor=loss,patience=10".parse().expect("valid")),
            None => None,
        };
        Ok(Settings {
            backbone: backbone.clone(),
            head,
            trainable: self.freeze.clone(),
            bn_mode: match self.bn_mode {
                Some(mode) => mode,
                // Pretrained statistics are kept (Keras' training=False), whether the
                // weights came in an .onnx file or through --weights.
                None if ortl_models::zoo::canonical(&backbone).is_none() => BnMode::Frozen,
                None if self.weights.is_some() => BnMode::Frozen,
                None => BnMode::Train,
            },
            loss,
            lr: self.lr.unwrap_or(1e-3),
            schedule: self.schedule.clone().unwrap_or(if tutorial {
                "exp:1e-5,0.99,100".parse().expect("valid")
            } else {
                Schedule::Constant
            }),
            batch: self.batch.unwrap_or(32),
            epochs: self.epochs.unwrap_or(if tutorial { 100 } else { 10 }),
            early_stopping,
            checkpoint: self.checkpoint.unwrap_or(if multi_label {
                Metric::ValAuc
            } else {
                Metric::ValAccuracy
            }),
            class_weights: self.class_weights.clone().unwrap_or(ClassWeights::None),
            positive_weights: self.pos_weight.clone().unwrap_or(ClassWeights::None),
            seed: self.seed.unwrap_or(12),
        })
    }
}

/// `--early-stopping`: off, or how to stop.
#[derive(Clone, Debug)]
enum Stopping {
    Off,
    On(EarlyStopping),
}

fn stopping_flag(text: &str) -> Result<Stopping, String> {
    match text {
        "off" => Ok(Stopping::Off),
        _ => text.parse().map(Stopping::On),
    }
}

/// `--checkpoint monitor=M` or `--checkpoint M`.
fn checkpoint_metric(text: &str) -> Result<Metric, String> {
    text.trim_start_matches("monitor=").parse()
}

/// A flag value's command-line spelling.
fn flag_value(value: &impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

fn epochs_pair(text: &str) -> Result<(usize, usize), String> {
    let parse = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("'{t}' is not a whole number"))
    };
    let (a, b) = text.split_once(',').ok_or("expected E1,E2, e.g. 5,20")?;
    Ok((parse(a)?, parse(b)?))
}

/// Raised by Ctrl-C or SIGTERM; the loop stops after the step in progress.
static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-train", run)
}

fn run(args: Args) -> Result<()> {
    let set = TensorSet::open(&args.tensors).map_err(|e| usage(e.to_string()))?;
    let s = args.settings(set.meta.task, &set.meta.classes)?;
    if s.batch == 0 || s.epochs == 0 {
        return Err(usage("--batch and --epochs must be at least 1"));
    }
    let optimizer = Optimizer::keras(args.optimizer, args.weight_decay, args.momentum);
    if args.conv_layout == ConvLayout::Blocked && args.runtime.device != Device::Cpu {
        return Err(usage(
            "--conv-layout blocked is for the CPU; CUDA runs the plain graph (use auto)",
        ));
    }
    let update_on = args
        .update_on
        .resolve(args.runtime.device)
        .map_err(|e| usage(e.to_string()))?;
    eprintln!(
        "ortl-train: {} from {}; loading the backbone {}{} …",
        ortl_cli::count(set.rows.len(), "stored image", "stored images"),
        args.tensors.display(),
        s.backbone,
        weights_wanted(&s.backbone, args.weights.as_ref())
    );
    // Before any output is replaced: a download that fails (no network, a wrong name)
    // leaves the previous run as it was.
    let backbone = load_backbone(&args, &s)?;
    // One run per output folder at a time (checked before anything is replaced).
    let _lock = match &args.export_step_graph {
        None => Some(ortl_cli::OutputLock::acquire(&args.output)?),
        Some(_) => None,
    };
    if args.export_step_graph.is_none() && !args.resume {
        prepare_output(&args.output, args.force)?;
    }
    let runtime = args.runtime.init()?;
    let options = args.runtime.session_options();
    // Checked before any graph is built, so a too-small image is one line, not an error
    // deep inside the gradient graph.
    if let Some(minimum) = backbone.minimum_size()
        && (set.meta.height < minimum || set.meta.width < minimum)
    {
        return Err(usage(format!(
            "{}: images are {}x{}, below {}'s minimum of {minimum}x{minimum}; make the tensors again with ortl-augment --size {minimum}x{minimum} or larger",
            args.tensors.display(),
            set.meta.height,
            set.meta.width,
            backbone.name
        )));
    }
    if let Some(why) = backbone.unfit_size(set.meta.height, set.meta.width) {
        return Err(usage(format!("{}: {why}", s.backbone)));
    }
    eprintln!(
        "ortl-train: backbone {} ({} parameters, {}), cut {}, normalisation {} ({})",
        backbone.name,
        backbone.parameter_count(),
        backbone.weights,
        backbone.cut,
        backbone.normalization,
        backbone.normalization_reason
    );
    if args.preset == Some(Preset::Tutorial) && !backbone.weights.is_pretrained() {
        eprintln!(
            "ortl-train: warning: the tutorial fine-tunes ImageNet weights, but this {} starts from random weights; give --weights imagenet (downloaded once and cached) or a pretrained classifier as --backbone FILE.onnx (README: pretrained weights)",
            backbone.name
        );
    }
    let spec = ClassifierSpec {
        task: set.meta.task,
        classes: set.meta.classes.clone(),
        height: set.meta.height,
        width: set.meta.width,
        head: s.head.clone(),
        seed: s.seed,
    };
    let (mut model, mut head) = classifier(&backbone, &spec);
    if let Some(coefficient) = args.l2 {
        if !(coefficient.is_finite() && coefficient >= 0.0) {
            return Err(usage("--l2 must be a non-negative number"));
        }
        // Every dense kernel of the head (Gemm weights named head.*).
        head.l2 = model
            .graph
            .nodes
            .iter()
            .filter(|n| n.op == "Gemm" && n.inputs.get(1).is_some_and(|w| w.starts_with("head.")))
            .map(|n| (n.inputs[1].clone(), coefficient))
            .collect();
    }
    // ortl-infer must decode and resize new images exactly as these tensors were made.
    model.metadata.insert(
        ortl_models::classifier::keys::RESIZE.into(),
        set.meta.filter.to_string(),
    );
    model.metadata.insert(
        ortl_models::classifier::keys::WINDOW.into(),
        set.meta.window.to_string(),
    );
    let train_spec = TrainSpec {
        trainable: s.trainable.clone(),
        bn_mode: s.bn_mode,
        head_bn_momentum: 0.99,
        backbone_bn_momentum: 0.9,
        loss: s.loss,
        optimizer,
        clip_norm: args.clip_norm,
        conv_layout: args.conv_layout,
        update_on,
    };
    // An operator without a gradient rule in the part that trains is named before any
    // data is read, with the freeze that trains around it.
    let widest = if args.fine_tune.is_some() {
        Trainable::All
    } else {
        s.trainable.clone()
    };
    if let Some((node, op)) = ortl_train::graph::untrainable_node(&model, &widest)? {
        return Err(usage(format!(
            "--backbone {}: node '{node}' ({op}) has no gradient rule in ortl, so the layers before it cannot train; add --freeze upto:{node} to train what follows it, or --freeze backbone to train the head only",
            s.backbone
        )));
    }
    if let Some(path) = &args.export_step_graph {
        eprintln!("ortl-train: building the training step graph …");
        let mut step = ortl_train::build_step(&model, &head, &train_spec)?;
        ortl_train::graph::apply_conv_layout(
            &mut step,
            args.conv_layout,
            args.runtime.device,
            runtime.nchwc_block(),
        )?;
        save_model(&step.model, path)?;
        eprintln!(
            "ortl-train: wrote the step graph ({} nodes) to {}",
            step.model.graph.nodes.len(),
            path.display()
        );
        return Ok(());
    }
    let data = Dataset::load(&set, args.val_fold)?;
    let settings = train_settings(&args, &s, &set, &backbone);
    // Phases: (what trains, learning rate, last epoch).
    let phases = match args.fine_tune {
        Some((head_epochs, all_epochs)) => vec![
            (Trainable::Head, s.lr, head_epochs),
            (Trainable::All, s.lr / 10.0, head_epochs + all_epochs),
        ],
        None => vec![(s.trainable, s.lr, s.epochs)],
    };
    let total_epochs = phases.last().map_or(0, |p| p.2);
    let mut config = FitConfig {
        epochs: total_epochs,
        batch: s.batch,
        lr: s.lr,
        schedule: s.schedule.clone(),
        early_stopping: s.early_stopping.clone(),
        checkpoint: s.checkpoint,
        class_weights: s.class_weights.clone(),
        positive_weights: s.positive_weights.clone(),
        seed: s.seed,
    };
    let (class_weights, positive_weights) = data.loss_weights(&config).map_err(usage)?;
    for (flag, setting, weights) in [
        ("--class-weights", &s.class_weights, class_weights),
        ("--pos-weight", &s.positive_weights, positive_weights),
    ] {
        if *setting != ClassWeights::None && !weights.is_empty() {
            let each: Vec<String> = data
                .classes
                .iter()
                .zip(&weights)
                .map(|(name, w)| format!("{name} {w:.3}"))
                .collect();
            eprintln!("ortl-train: {flag} {setting}: {}", each.join(", "));
        }
    }
    let (mut progress, mut restore, mut resumed_state) = if args.resume {
        let saved = resume(&args.output, &settings)?;
        (saved.progress, saved.restore, Some(saved.state))
    } else {
        (Progress::start(&config), None, None)
    };
    ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;

    let mut trainer: Option<Trainer> = None;
    let mut sink = RunFolder {
        dir: args.output.clone(),
        epochs: total_epochs,
        settings: settings.clone(),
        step_log: match &args.step_log {
            Some(path) => Some(StepLog::open(path, args.resume)?),
            None => None,
        },
        live: LiveProgress::default(),
    };
    let mut phase_start = 0;
    for (trainable, lr, until) in phases {
        let first_epoch = std::mem::replace(&mut phase_start, until);
        if progress.epoch >= until || progress.stopped_early {
            continue;
        }
        if let Some(previous) = trainer.take() {
            // Between phases the weights carry over; the optimizer starts afresh (as Keras'
            // recompile in the two-phase recipe).
            model = previous.export()?;
        }
        let spec = TrainSpec {
            trainable: trainable.clone(),
            ..train_spec.clone()
        };
        let mut cache = if trainable == Trainable::Head && !args.no_feature_cache {
            let extractor =
                ortl_train::graph::feature_extractor(&model, &head.pooled, backbone.channels);
            Some(FeatureCache::new(
                runtime,
                &options,
                &extractor,
                data.labels.len(),
            )?)
        } else {
            None
        };
        eprintln!(
            "ortl-train: building the training step ({}) and its ONNX Runtime session …",
            if trainable == Trainable::Head {
                "head only"
            } else {
                "backbone and head"
            }
        );
        let mut current = match &cache {
            Some(_) => Trainer::on_features(
                runtime,
                &options,
                model.clone(),
                &head,
                spec,
                backbone.channels,
            )?,
            None => Trainer::new(runtime, &options, model.clone(), &head, spec)?,
        };
        current.label_smoothing = args.label_smoothing;
        if let Some(state) = resumed_state.take() {
            // Resuming exactly at a phase boundary: the new phase's optimizer starts afresh.
            let fresh_optimizer =
                first_epoch > 0 && progress.epoch == first_epoch && progress.step == 0;
            if fresh_optimizer {
                progress.steps_done = 0;
            }
            let carried: State = state
                .into_iter()
                .filter(|(name, _)| {
                    !(fresh_optimizer && current.step_graph.optimizer_state.contains(name))
                })
                .collect();
            current.set_state(&carried)?;
        }
        let layout = match &current.blocked {
            Some(b) if args.verbose => format!(
                "blocked convolutions ({} Conv, {} ConvTranspose, {} per-channel products rewritten; {} nodes fused into them; {} strided dX as batch GEMMs)",
                b.convs, b.transposed, b.scales, b.fused, b.strided
            ),
            Some(_) => "blocked convolutions".into(),
            None => "plain convolutions".into(),
        };
        let epochs = match progress.epoch + 1 {
            first if first == until => format!("epoch {first}"),
            first => format!("epochs {first}–{until}"),
        };
        eprintln!(
            "ortl-train: {} training images ({} stored variants), {} validation images, {} trainable tensors, {layout}, {epochs}",
            data.train.len(),
            data.train.iter().map(Vec::len).sum::<usize>(),
            data.val.len(),
            current.step_graph.params.len(),
        );
        config.epochs = until;
        config.lr = lr;
        let outcome = Fitter {
            trainer: &mut current,
            data: &data,
            config: &config,
            runtime,
            options: &options,
            sink: &mut sink,
            stop: &STOP,
            cache: cache.as_mut(),
        }
        .fit(&mut progress, &mut restore)?;
        if outcome == Outcome::Interrupted {
            return Err(interrupted(&progress, &args.output));
        }
        trainer = Some(current);
        progress.steps_done = 0;
    }
    let mut trainer = trainer.ok_or_else(|| {
        usage("nothing to train: the run already reached --epochs; raise --epochs to continue it")
    })?;
    // restore_best: the weights of the best epoch by the early-stopping metric, whether or
    // not stopping triggered (Keras' restore_best_weights restores only when it stops).
    let weights_epoch = match (&restore, &progress.early) {
        (Some(_), Some(early)) => early.best.epoch,
        _ => Some(progress.epoch),
    };
    if let Some(state) = restore {
        trainer.set_state(&state)?;
    }
    let mut model = trainer.export()?;
    if let Some(epoch) = weights_epoch {
        ortl_train::fit::mark_epoch(&mut model, epoch);
    }
    save_model(&model, &args.output.join("model.onnx"))?;
    let record = TrainRecord {
        format: ortl_manifest::train_record::VERSION,
        settings,
        environment: environment(&args, runtime, update_on)?,
        summary: progress.summary(),
    };
    let mut file = AtomicFile::create(&args.output.join("train.json"))?;
    file.write_all(record.to_json().as_bytes())?;
    file.commit()?;
    print_summary(&record.summary, &args.output, s.checkpoint);
    Ok(())
}

/// The checkpoint of the run in `output`, if its settings are `settings` (but `--epochs`).
fn resume(output: &Path, settings: &TrainSettings) -> Result<ortl_train::checkpoint::Checkpoint> {
    let saved = ortl_train::checkpoint::load(output).map_err(|e| usage(ortl_cli::one_line(&e)))?;
    let differing = settings.changed_since(&saved.settings);
    if !differing.is_empty() {
        return Err(usage(format!(
            "--resume needs the settings of the first run; these differ: {}",
            differing.join("; ")
        )));
    }
    eprintln!(
        "ortl-train: resuming at epoch {}, step {}",
        saved.progress.epoch + 1,
        saved.progress.step
    );
    Ok(saved)
}

/// Ctrl-C's exit: where the run stopped and how to continue it.
fn interrupted(progress: &Progress, output: &Path) -> anyhow::Error {
    let position = if progress.step > 0 {
        format!(
            "in epoch {} after step {}",
            progress.epoch + 1,
            progress.step
        )
    } else {
        format!("after epoch {}", progress.epoch)
    };
    ortl_cli::interrupted(format!(
        "interrupted {position}; the checkpoint is in {}; continue with the same command plus --resume",
        output.join(ortl_train::checkpoint::DIR).display()
    ))
}

/// The run's last line: epochs, time, speed and the best epoch.
fn print_summary(summary: &TrainSummary, output: &Path, checkpoint: Metric) {
    let best = match summary.best_epoch {
        Some(epoch) => format!(
            "best epoch by {} {epoch} -> {}",
            checkpoint.name(),
            output.join("best.onnx").display()
        ),
        // The checkpoint metric was never defined (no validation images for val_*).
        None => format!("no best epoch by {} (no best.onnx)", checkpoint.name()),
    };
    eprintln!(
        "ortl-train: {} in {:.1} s ({:.1} training images/s){}; {best}",
        ortl_cli::count(summary.epochs_run, "epoch", "epochs"),
        summary.seconds,
        summary.images_per_second,
        if summary.stopped_early {
            ", stopped early"
        } else {
            ""
        },
    );
}

/// The backbone the settings name: built in (with `--weights`), or imported from a file,
/// local or on a hub.
fn load_backbone(args: &Args, s: &Settings) -> Result<ortl_models::Backbone> {
    if s.backbone.starts_with("hf:") {
        if args.weights.is_some() {
            return Err(usage(
                "--weights loads a built-in backbone's weights; an imported .onnx backbone brings its own",
            ));
        }
        let file =
            HubFile::parse(&s.backbone, None).map_err(|e| usage(format!("--backbone {e}")))?;
        if !file.file.ends_with(".onnx") {
            return Err(usage(format!(
                "--backbone {file}: a backbone from a hub is an .onnx file (hf:ORG/REPO[@REVISION]:FILE.onnx); weights for a built-in backbone go to --weights"
            )));
        }
        let hub = ortl_hub::Hub::from_env("ortl-train");
        let fetched = hub.fetch(&file, ortl_hub::Pin::default(), &file.to_string())?;
        let mut backbone = import_onnx(args, &fetched.path)?;
        backbone.name = file.to_string();
        backbone.weights = fetched.weights();
        return Ok(backbone);
    }
    Ok(match ortl_models::zoo::builtin(&s.backbone, s.seed) {
        Some(_) if args.features.is_some() => {
            return Err(usage(
                "--features cuts an imported .onnx backbone; a built-in backbone is cut at its last feature map already",
            ));
        }
        Some(mut backbone) => {
            if let Some(spec) = &args.weights {
                load_weights(&mut backbone, &s.backbone, spec)?;
            }
            if let Some(normalization) = args.normalize {
                backbone.normalization = normalization;
                backbone.normalization_reason = "given with --normalize".into();
            }
            backbone
        }
        None if args.weights.is_some() => {
            return Err(usage(
                "--weights loads a built-in backbone's weights; an imported .onnx backbone brings its own",
            ));
        }
        None if Path::new(&s.backbone).is_file() => import_onnx(args, Path::new(&s.backbone))?,
        None if s.backbone.ends_with(".onnx") || s.backbone.contains('/') => {
            return Err(usage(format!("--backbone {}: no such file", s.backbone)));
        }
        None => {
            return Err(usage(match ortl_models::zoo::closest(&s.backbone) {
                Some(name) => format!(
                    "--backbone '{}' is not a built-in backbone; did you mean '{name}'?",
                    s.backbone
                ),
                None => format!(
                    "--backbone '{}' is neither a built-in backbone ({}) nor an .onnx file",
                    s.backbone,
                    ortl_models::zoo::NAMES.join(", ")
                ),
            }));
        }
    })
}

/// What `--weights` asks for, in words, for the log's first line (the backbone line
/// after loading gives the commit and hash found).
fn weights_wanted(backbone: &str, spec: Option<&WeightsSpec>) -> String {
    match spec {
        None => String::new(),
        Some(WeightsSpec::ImageNet) => match ortl_models::pretrained::imagenet(backbone) {
            Some(source) => format!(
                " with ImageNet weights from {}{}",
                ortl_hub::spec::source_file(source),
                source
                    .sha256
                    .as_deref()
                    .map_or(String::new(), |sha| format!(" (sha256 {sha}, pinned)"))
            ),
            None => " with ImageNet weights".into(),
        },
        Some(WeightsSpec::Hub(file)) => format!(" with weights from {file}"),
        Some(WeightsSpec::File(path)) => format!(" with weights from {}", path.display()),
    }
}

/// An imported `.onnx` backbone, cut where `--features` says or graph analysis finds.
fn import_onnx(args: &Args, path: &Path) -> Result<ortl_models::Backbone> {
    // A file that cannot be cut as asked is fixed by the arguments (--features).
    ortl_models::import(path, args.normalize, args.features.as_deref()).map_err(|e| match e {
        ortl_models::ImportError::Cut { .. } => usage(e.to_string()),
        other => other.into(),
    })
}

/// Loads `--weights` into the built-in `backbone` called `name`: ortl's ImageNet source
/// with what it was trained with, or a hub or local file (renamed from timm's layout where
/// the family has one).
fn load_weights(
    backbone: &mut ortl_models::Backbone,
    name: &str,
    spec: &WeightsSpec,
) -> Result<()> {
    let hub = ortl_hub::Hub::from_env("ortl-train");
    let resolved = ortl_hub::resolve(name, spec, &hub).map_err(|e| match e {
        ortl_hub::spec::ResolveError::Usage(message) => usage(message),
        ortl_hub::spec::ResolveError::Hub(e) => e.into(),
    })?;
    let loaded = match resolved.source {
        Some(source) => source.load(backbone, &resolved.path),
        None => ortl_models::weights::load_safetensors_renamed(
            backbone,
            &resolved.path,
            ortl_models::pretrained::rename_for(name).as_ref(),
        ),
    };
    loaded.map_err(|e| usage(e.to_string()))?;
    // A local file's provenance is its name and hash, which loading recorded; a hub file's
    // is where it came from.
    if !matches!(spec, WeightsSpec::File(_)) {
        backbone.weights = resolved.weights;
    }
    Ok(())
}

/// What train.json and the checkpoint record of the run's settings.
fn train_settings(
    args: &Args,
    s: &Settings,
    set: &TensorSet,
    backbone: &ortl_models::Backbone,
) -> TrainSettings {
    TrainSettings {
        tensors: args.tensors.clone(),
        task: set.meta.task,
        classes: set.meta.classes.clone(),
        image_height: set.meta.height,
        image_width: set.meta.width,
        val_fold: args.val_fold,
        preset: args.preset.as_ref().map(flag_value),
        backbone: s.backbone.clone(),
        backbone_parameters: backbone.parameter_count(),
        backbone_weights: backbone.weights.clone(),
        backbone_pretrained: backbone.weights.is_pretrained(),
        backbone_provenance: backbone.weights.to_string(),
        features: args.features.clone(),
        normalization: backbone.normalization.to_string(),
        normalization_reason: backbone.normalization_reason.clone(),
        head: s.head.to_string(),
        freeze: args.freeze.to_string(),
        l2: args.l2,
        fine_tune: args.fine_tune,
        bn_mode: flag_value(&s.bn_mode),
        loss: s.loss.to_string(),
        optimizer: flag_value(&args.optimizer),
        weight_decay: args.weight_decay,
        momentum: args.momentum,
        lr: s.lr,
        schedule: s.schedule.to_string(),
        batch: s.batch,
        epochs: s.epochs,
        early_stopping: s
            .early_stopping
            .as_ref()
            .map_or_else(|| "off".into(), ToString::to_string),
        checkpoint: s.checkpoint.name().into(),
        class_weights: s.class_weights.to_string(),
        pos_weight: s.positive_weights.to_string(),
        label_smoothing: args.label_smoothing,
        clip_norm: args.clip_norm,
        seed: s.seed,
    }
}

/// Where and with what this run ran; `update_on` as resolved for the device.
fn environment(
    args: &Args,
    runtime: &ortl_runtime::Runtime,
    update_on: UpdateOn,
) -> Result<Environment> {
    Ok(Environment {
        trained_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        git_commit: git_commit(),
        ortl_version: env!("CARGO_PKG_VERSION").into(),
        onnxruntime: ortl_runtime::ORT_VERSION.into(),
        onnxruntime_library: runtime.library.clone(),
        device: args.runtime.device.to_string(),
        threads: args.runtime.threads,
        conv_layout: match args
            .conv_layout
            .resolve(args.runtime.device, runtime.nchwc_block())?
        {
            Some(block) => format!("blocked (NCHW{block}c)"),
            None => "plain".into(),
        },
        update_on: Some(flag_value(&update_on)),
    })
}

/// The commit of the working directory's git checkout, when there is one.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A folder holding a finished run (train.json) is only replaced with --force.
fn prepare_output(dir: &Path, force: bool) -> Result<()> {
    if dir.join("train.json").exists() && !force {
        return Err(usage(format!(
            "{} holds a finished run; pass --force to replace it",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for stale in ["train.json", "history.csv", "best.onnx", "model.onnx"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    Ok(())
}

fn save_model(model: &ortl_onnx::Model, path: &Path) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(&ortl_onnx::io::to_bytes(model))?;
    file.commit()
}

struct RunFolder {
    dir: PathBuf,
    epochs: usize,
    settings: TrainSettings,
    step_log: Option<StepLog>,
    live: LiveProgress,
}

/// A bar per epoch on a terminal (steps, images/s, running loss, the epoch's and the run's
/// remaining time); invisible when stderr is not a terminal, where the epoch lines suffice.
#[derive(Default)]
struct LiveProgress {
    bar: Option<indicatif::ProgressBar>,
    epoch: usize,
    loss_sum: f64,
    images: usize,
    seconds: f64,
}

impl LiveProgress {
    fn step(&mut self, record: &StepRecord, epochs: usize) {
        if self.bar.is_none() || self.epoch != record.epoch {
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
            let bar = ortl_cli::progress::bar(
                record.steps as u64,
                &format!("epoch {}/{epochs}", record.epoch),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix} {bar:24} {pos}/{len} · {msg}")
                    .expect("progress template is valid"),
            );
            *self = LiveProgress {
                bar: Some(bar),
                epoch: record.epoch,
                ..Default::default()
            };
        }
        self.loss_sum += record.loss * record.images as f64;
        self.images += record.images;
        self.seconds += record.seconds;
        let Some(bar) = &self.bar else { return };
        bar.set_position(record.step as u64);
        let per_step = self.seconds / record.step as f64;
        let left = record.steps - record.step + record.steps * (epochs - record.epoch);
        let eta = |steps: usize| {
            humantime::format_duration(std::time::Duration::from_secs(
                (per_step * steps as f64) as u64,
            ))
        };
        bar.set_message(format!(
            "loss {:.4} · {:.0} img/s · eta {} (run {})",
            self.loss_sum / self.images.max(1) as f64,
            self.images as f64 / self.seconds.max(1e-9),
            eta(record.steps - record.step),
            eta(left)
        ));
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for LiveProgress {
    /// An interrupted or failed run leaves its message, not a half-drawn bar.
    fn drop(&mut self) {
        self.clear();
    }
}

/// `--step-log`: a CSV that grows by one flushed row per step (a log, so appended in place
/// rather than written atomically).
struct StepLog {
    path: PathBuf,
    csv: csv::Writer<std::fs::File>,
}

impl StepLog {
    fn open(path: &Path, resume: bool) -> Result<Self> {
        let append = resume && path.is_file();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .with_context(|| format!("cannot write the step log {}", path.display()))?;
        let csv = csv::WriterBuilder::new()
            .has_headers(!append)
            .from_writer(file);
        Ok(Self {
            path: path.to_path_buf(),
            csv,
        })
    }
}

impl Sink for RunFolder {
    fn step(&mut self, record: &StepRecord) -> Result<()> {
        self.live.step(record, self.epochs);
        if let Some(log) = &mut self.step_log {
            log.csv
                .serialize(record)
                .and_then(|()| Ok(log.csv.flush()?))
                .with_context(|| format!("writing the step log {}", log.path.display()))?;
        }
        Ok(())
    }

    fn epoch(&mut self, r: &EpochRecord, history: &[EpochRecord]) -> Result<()> {
        self.live.clear();
        eprintln!(
            "Epoch {}/{} - {:.1}s - loss: {:.4} - accuracy: {:.4} - val_loss: {:.4} - val_accuracy: {:.4} - val_auc: {:.4} - lr: {:.3e}",
            r.epoch,
            self.epochs,
            r.seconds,
            r.loss,
            r.accuracy,
            r.val_loss,
            r.val_accuracy,
            r.val_auc,
            r.lr
        );
        let mut file = AtomicFile::create(&self.dir.join("history.csv"))?;
        ortl_manifest::history::write(&mut file, history)?;
        file.commit()
    }

    fn best(&mut self, model: &ortl_onnx::Model, _record: &EpochRecord) -> Result<()> {
        save_model(model, &self.dir.join("best.onnx"))
    }

    fn checkpoint(
        &mut self,
        progress: &Progress,
        trainer: &Trainer,
        restore: Option<&State>,
    ) -> Result<()> {
        ortl_train::checkpoint::save(
            &self.dir,
            &self.settings,
            progress,
            &trainer.state()?,
            restore,
        )
    }
}
