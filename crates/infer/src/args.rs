//! ortl-infer's command line: its help text is the spec of the binary, and
//! [`crate::Settings::resolve`] turns what was given into the settings of a run.

use std::path::PathBuf;

use clap::Parser;
use ortl_imaging::{DecodeLimits, Window};
use ortl_manifest::Split;
use ortl_manifest::predictions::Format;
use ortl_metrics::ThresholdRule;
use ortl_runtime::RuntimeArgs;

use crate::explain::CamClass;
use crate::inputs::Shard;

/// Classifies images with an ortl model and writes one row per image to stdout
/// (or -o).
///
/// Columns: path,label,class,predicted,predicted_class,p_<class>…, then
/// top1…topK, cam_path,cam_true_path when asked for, then
/// split,model,model_epoch: the manifest split of the image, the model file and
/// the epoch its weights are from, so that a report can say what it evaluated
/// (label, class, split and epoch are empty when unknown). Class names and input
/// size come from the model's metadata; images are decoded and resized with the
/// same code and filter as the training tensors, so a validation image gets the
/// same probabilities here as during training. Decoding of the next batch
/// overlaps with inference; rows are flushed per batch, in input order. An
/// unreadable image is reported on stderr and skipped (or fatal with --strict).
///
/// A multi-label model (ortl-train on a multi-label manifest) gives a sigmoid
/// per finding and rows path, then y_<f>… (truth from a multi-label --manifest:
/// 1, 0, empty when unknown), p_<f>…, t_<f>… (the thresholds), predicted (the
/// findings with p ≥ t, joined by |), cam_path,cam_class with --cam, then
/// split,model,model_epoch.
///
/// EXAMPLES:
///     ortl-infer --model run/model.onnx scans/*.png
///     ortl-infer --model run/best.onnx --manifest work/manifest.csv \
///         --split val -o preds.csv
///     find scans -name '*.png' | ortl-infer --model run/model.onnx - \
///         | sort -t, -k6 -gr | head
///   Multi-label: thresholds for sensitivity 0.9 chosen on validation images,
///   then applied to the test split:
///     ortl-infer --model nih/best.onnx --manifest nih.csv --split val -o val.csv
///     ortl-infer --model nih/best.onnx --manifest nih.csv --split test \
///         --threshold-from val.csv --threshold-rule sensitivity=0.9 -o test.csv
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment, max_term_width = 78)]
pub struct Args {
    /// Model from ortl-train (model.onnx or best.onnx), or any single-input ONNX image
    /// classifier (float input, logits or probabilities out), which is wrapped with the
    /// preprocessing it expects (see --normalize).
    #[arg(long)]
    pub model: PathBuf,
    /// Input normalisation of a model not made by ortl-train (detected from the file's
    /// producer when omitted).
    #[arg(long)]
    pub normalize: Option<ortl_models::Normalization>,
    /// Height and width to run a model not made by ortl-train at, as HxW, when its input
    /// size is dynamic (e.g. 224x224; images are resized to it).
    #[arg(long, value_name = "HxW", value_parser = ortl_cli::args::parse_size)]
    pub size: Option<(usize, usize)>,
    /// Image files, folders (recursed; a sub-folder named like a class gives a
    /// single-label model's true label), or `-` for newline-separated paths on stdin.
    pub inputs: Vec<PathBuf>,
    /// Read the images of a manifest (its labels become the label column, or a multi-label
    /// manifest's findings the y_ columns; its splits the split column). Its form must be
    /// the model's: one class per image, or findings.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// With --manifest: only this split (train, val, test or a fold number).
    #[arg(long, requires = "manifest")]
    pub split: Option<Split>,
    /// Where the rows go (`-`: stdout). A file appears only once every row is written.
    #[arg(short, long, default_value = "-")]
    pub output: PathBuf,
    /// Classify only part I of N of the inputs (contiguous, in input order; I from 1), for
    /// array jobs: shard 1 writes the header, so concatenating the shards' outputs in order
    /// gives exactly the unsharded output (without --unordered).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// How rows are written.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Omit the header row.
    #[arg(long)]
    pub no_header: bool,
    /// Two classes: predict class 1 when its probability is at least this (default: the
    /// most probable class). Multi-label: every finding's threshold (default 0.5).
    #[arg(long, value_parser = probability)]
    pub threshold: Option<f64>,
    /// Choose the threshold on these predictions of labelled images (ortl-infer's output
    /// for the validation split, made by this model) by --threshold-rule: each finding's
    /// of a multi-label model, class 1's of a two-class one. Prints each threshold with the
    /// sensitivity and specificity it gave there. With a warning, a finding with no
    /// positive or no negative image there keeps 0.5, and one whose rule holds only by
    /// predicting no image gets 1.
    #[arg(long, value_name = "PREDICTIONS", conflicts_with = "threshold")]
    pub threshold_from: Option<PathBuf>,
    /// How --threshold-from chooses: youden (max sensitivity + specificity − 1),
    /// sensitivity=S (the highest threshold keeping sensitivity ≥ S), specificity=S (the
    /// lowest keeping specificity ≥ S), or a fixed number (its rates printed).
    #[arg(
        long,
        value_name = "RULE",
        default_value = "youden",
        requires = "threshold_from"
    )]
    pub threshold_rule: ThresholdRule,
    /// Images per inference batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Add columns top1…topK: the K most probable class names, most probable first
    /// (single-label models; multi-label rows give every finding's p_ already).
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Test-time augmentation: average the probabilities of the image and its mirror
    /// images: none, flip (left-right), flip4 (left-right, up-down and both).
    #[arg(long, default_value = "none", value_parser = ["none", "flip", "flip4"])]
    pub tta: String,
    /// Emit rows as images finish decoding instead of in input order (a slow file no longer
    /// holds back the rows after it).
    #[arg(long)]
    pub unordered: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Threads decoding and resizing images while the model runs; more pays only when there
    /// are more cores than --threads, or for slow formats such as DICOM JPEG 2000.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub decode_threads: usize,
    /// Intensity window mapping stored values to 8 bits: auto, min-max, or CENTER,WIDTH in
    /// stored units (DICOM: after the modality LUT). Default: the window the model's training
    /// tensors were made with (ortl-augment --window).
    #[arg(long, value_name = "WINDOW")]
    pub window: Option<Window>,
    /// Fail on the first unreadable image.
    #[arg(long)]
    pub strict: bool,
    /// Largest image accepted, in pixels (width × height).
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Write a Grad-CAM heatmap per image into this folder: NAME.png (the map over the
    /// grey image, its class and probability above it and a colour bar beside it) and NAME.npy (float32
    /// [H, W] at the model's input size, not normalised); adds a cam_path column, and a
    /// cam_true_path column with NAME.true.png, the map of the true class, for labelled
    /// images the model got wrong (with --cam-class predicted). Multi-label: cam_path
    /// and cam_class, the finding the map shows.
    #[arg(long, value_name = "DIR")]
    pub cam: Option<PathBuf>,
    /// Class each heatmap explains: predicted (multi-label: each image's most probable
    /// finding), true (single-label; images without a label get none), or a class or
    /// finding name. The cam_class column of multi-label rows names it.
    #[arg(long, default_value = "predicted", requires = "cam")]
    pub cam_class: CamClass,
    /// How the heatmap is made: Grad-CAM weights the feature maps by their gradients;
    /// attention (vision transformers) shows where the class token looks.
    #[arg(long, default_value = "gradcam", requires = "cam")]
    pub cam_method: ortl_explain::Method,
    /// Colour map of the heatmap PNGs.
    #[arg(long, value_enum, default_value_t = ortl_draw::overlay::Colormap::Jet, requires = "cam")]
    pub cam_colormap: ortl_draw::overlay::Colormap,
    /// Heatmap colour scale.
    #[arg(long, value_enum, default_value_t = ortl_draw::overlay::Scale::Image, requires = "cam")]
    pub cam_scale: ortl_draw::overlay::Scale,
    /// Feature map to explain (a rank-4 value of the graph; default: the one the
    /// classifier's global pooling reads).
    #[arg(long, value_name = "NAME", requires = "cam")]
    pub cam_layer: Option<String>,
    /// Replace an existing -o file and --cam folder.
    #[arg(long)]
    pub force: bool,
}

/// A threshold: a probability in [0, 1].
fn probability(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|t| (0.0..=1.0).contains(t))
        .ok_or_else(|| format!("'{text}' is not a probability in [0, 1]"))
}
