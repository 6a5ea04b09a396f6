//! The command line of ortl-train: its help text is the spec of every flag. Values are
//! parsed here; [`crate::Settings::resolve`] fills in defaults and checks how they combine.
// The doc comments below are clap's help text, where `[N,C]` and `[:FILE]` are literal.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::Parser;
use ortl_autodiff::loss::Loss;
use ortl_autodiff::optim::OptimizerKind;
use ortl_hub::WeightsSpec;
use ortl_models::{Head, Normalization, TokenPool};
use ortl_runtime::RuntimeArgs;

use crate::callbacks::{EarlyStopping, Metric};
use crate::fit::ClassWeights;
use crate::graph::{BnMode, ConvLayout, Trainable, UpdateOn};
use crate::schedule::Schedule;

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
pub struct Args {
    /// Tensors folder from ortl-augment.
    pub tensors: PathBuf,
    /// Output run folder.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace a finished run in the output folder.
    #[arg(long)]
    pub force: bool,
    /// Start from a recipe's settings; other flags override them.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// A built-in backbone (He init, torchvision's layout and names): resnet50, resnet101,
    /// resnet26, mobilenet_v2, vgg19, vgg19_bn, densenet121, densenet201, efficientnet_b0,
    /// inception_v3, inception_resnet_v2 (timm's names), or a reduced member for quick runs
    /// (resnet-mini, mobilenet-mini, vgg-mini, densenet-mini, efficientnet-mini,
    /// inception-mini, inception-resnet-mini); or a pretrained classifier .onnx to cut at
    /// its pooled features. [default: resnet50]
    #[arg(long)]
    pub backbone: Option<String>,
    /// Input normalisation: of an imported backbone, detected from the file when omitted;
    /// of a built-in one, imagenet (or what --weights imagenet's source was trained with).
    #[arg(long)]
    pub normalize: Option<Normalization>,
    /// Pretrained weights for a built-in backbone: `imagenet` (downloaded once from the
    /// model hub into its cache and verified: `ortl-weights sources` lists them), a hub
    /// file hf:ORG/REPO[@REVISION][:FILE] (default model.safetensors), or a local
    /// safetensors file; in torchvision's names (timm's for inception_resnet_v2, and timm's
    /// MobileNetV2/EfficientNet names are renamed); every name and shape is checked.
    /// HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE and HF_TOKEN apply.
    #[arg(long, value_name = "imagenet|hf:ORG/REPO|FILE")]
    pub weights: Option<WeightsSpec>,
    /// With an imported backbone: cut it at this named tensor instead of at the pooled
    /// features graph analysis finds: a feature map (pooled by the head), an embedding
    /// [N, C], or a transformer's tokens [N, T, C] (with --pool), for encoders that are not
    /// classifiers.
    #[arg(long, value_name = "NAME")]
    pub features: Option<String>,
    /// How the tokens [N, T, C] --features names become an embedding: cls (the class
    /// token, token 0) or mean (the mean over the tokens).
    #[arg(long, value_enum, requires = "features")]
    pub pool: Option<TokenPool>,
    /// Head: linear, tutorial, or mlp:W1,W2,… [default: linear; with --preset tutorial:
    /// tutorial]
    #[arg(long)]
    pub head: Option<Head>,
    /// Dropout rate of linear and mlp heads. [default: 0.2]
    #[arg(long)]
    pub dropout: Option<f32>,
    /// What is frozen: none (everything trains), backbone (head only), or upto:NAME (the
    /// layers up to and including the last node or parameter named NAME…, e.g. upto:layer3).
    #[arg(long, default_value = "none")]
    pub freeze: Trainable,
    /// L2 penalty coefficient on the head's dense kernels (Keras kernel_regularizer);
    /// the tutorial head's is 0.3, the others' 0.
    #[arg(long)]
    pub l2: Option<f32>,
    /// Backbone BatchNorm. [default: frozen for a pretrained backbone (an .onnx file or
    /// --weights), train for a built-in one from random weights]
    #[arg(long, value_enum)]
    pub bn_mode: Option<BnMode>,
    /// Loss. [default: sigmoid-bce for multi-label tensors (a sigmoid per finding, unknown
    /// labels masked); else sigmoid-categorical with the tutorial head, softmax-ce]
    #[arg(long)]
    pub loss: Option<Loss>,
    /// Optimizer, with Keras' defaults.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// Learning rate (the schedule's base where it has none of its own). [default: 0.001]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight decay (L2 on all weights for sgd/adam/rmsprop, decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Learning-rate schedule: constant, exp:BASE,RATE,OFFSET, step:EVERY,FACTOR,
    /// cosine[:WARMUP], onecycle, plateau:PATIENCE,FACTOR. [default: constant; with --preset
    /// tutorial: exp:1e-5,0.99,100]
    #[arg(long)]
    pub schedule: Option<Schedule>,
    /// Clip gradients to this global L2 norm.
    #[arg(long)]
    pub clip_norm: Option<f32>,
    /// Label smoothing ε: one-hot targets become (1 − ε)·one-hot + ε/C; a finding's 0/1
    /// becomes t·(1 − ε) + ε/2.
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f32,
    /// Class weights of the loss: auto (balanced), none, or w0,w1,… [default: none]
    #[arg(long)]
    pub class_weights: Option<ClassWeights>,
    /// Multi-label: the weight of each finding's positive labels: auto (its negatives
    /// over its positives in training), none, or w0,w1,… in meta.json's finding order.
    /// [default: none]
    #[arg(long, value_name = "WEIGHTS")]
    pub pos_weight: Option<ClassWeights>,
    /// Images per optimizer step. [default: 32]
    #[arg(long)]
    pub batch: Option<usize>,
    /// Epochs to train (one pass over every training image each). [default: 10; with
    /// --preset tutorial: 100]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Early stopping: monitor=M,patience=N[,min_delta=D][,restore_best]; `off` disables it.
    /// [default: off; with --preset tutorial: monitor=loss,patience=10]
    #[arg(long, value_parser = stopping_flag)]
    pub early_stopping: Option<Stopping>,
    /// Metric whose best epoch is saved as best.onnx: monitor=M or a bare name (loss,
    /// accuracy, val_loss, val_accuracy, val_auc: macro ROC AUC). [default: val_accuracy;
    /// val_auc for multi-label tensors]
    #[arg(long, value_parser = checkpoint_metric)]
    pub checkpoint: Option<Metric>,
    /// Validation fold of a k-fold manifest (the other folds train).
    #[arg(long)]
    pub val_fold: Option<u32>,
    /// Seed of everything random: initial weights, batch order, dropout masks. [default: 12]
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// How convolutions compute on the CPU.
    #[arg(long, value_enum, default_value_t = ConvLayout::Auto)]
    pub conv_layout: ConvLayout,
    /// Where the optimizer update runs; the parameters come out the same to the bit.
    #[arg(long, value_enum, default_value_t = UpdateOn::Auto)]
    pub update_on: UpdateOn,
    /// Continue the interrupted (or finished, with more --epochs) run in the output folder
    /// from its checkpoint, exactly: weights, optimizer state, epoch, step, schedule and
    /// generator. Give the same settings as the first time.
    #[arg(long)]
    pub resume: bool,
    /// Two-phase fine-tuning: E1 epochs training the head only, then E2 epochs training
    /// everything at a tenth of the learning rate (fresh optimizer state), as the classic
    /// Keras transfer-learning recipe.
    #[arg(long, value_name = "E1,E2", value_parser = epochs_pair)]
    pub fine_tune: Option<(usize, usize)>,
    /// Run the frozen backbone on every step instead of caching its pooled features
    /// (head-only training caches by default: each stored image passes the backbone once).
    #[arg(long)]
    pub no_feature_cache: bool,
    /// Append one CSV row per optimizer step to this file (epoch,step,loss,lr,seconds),
    /// flushed as each step ends: a log to watch or plot, kept across --resume.
    #[arg(long, value_name = "FILE")]
    pub step_log: Option<PathBuf>,
    /// Write the training step graph (forward, loss, backward, optimizer) to this .onnx
    /// file and exit without training: for Netron, profilers, or another runtime.
    #[arg(long, value_name = "FILE")]
    pub export_step_graph: Option<PathBuf>,
    /// Also say how the training graph was built (blocked convolutions, fused nodes).
    #[arg(short, long)]
    pub verbose: bool,
}

/// Settings that start from a published recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The chest X-ray tutorial's: tutorial head, sigmoid outputs with sparse categorical
    /// cross-entropy, Adam, exp:1e-5,0.99,100 schedule, early stopping on loss (patience 10),
    /// best checkpoint on val_accuracy, 100 epochs, batch 32, seed 12, backbone trainable
    /// with frozen BatchNorm.
    Tutorial,
}

/// `--early-stopping`: off, or how to stop.
#[derive(Clone, Debug)]
pub enum Stopping {
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

fn epochs_pair(text: &str) -> Result<(usize, usize), String> {
    let parse = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("'{t}' is not a whole number"))
    };
    let (a, b) = text.split_once(',').ok_or("expected E1,E2, e.g. 5,20")?;
    Ok((parse(a)?, parse(b)?))
}
