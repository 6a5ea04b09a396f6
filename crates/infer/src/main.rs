//! ortl-infer: classify images with a model from ortl-train, one row per image on stdout.

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Context, Result};
use clap::Parser;
use ndarray::{ArrayD, IxDyn};
use ortl_cli::{Output, usage};
use ortl_imaging::{DecodeError, DecodeLimits, DecodeOptions, Intensity, Window, decode, resize};
use ortl_infer::decision::{self, Decision};
use ortl_infer::explain::{CamClass, CamOptions, Explained, Explainer};
use ortl_infer::inputs::Shard;
use ortl_infer::rows::RowWriter;
use ortl_infer::{Item, ModelInfo, inputs};
use ortl_manifest::Split;
use ortl_manifest::predictions::{Columns, EvaluatedModel, Format};
use ortl_metrics::ThresholdRule;
use ortl_runtime::{Feed, RuntimeArgs};
use rayon::prelude::*;

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
struct Args {
    /// Model from ortl-train (model.onnx or best.onnx), or any single-input ONNX image
    /// classifier (float input, logits or probabilities out), which is wrapped with the
    /// preprocessing it expects (see --normalize).
    #[arg(long)]
    model: PathBuf,
    /// Input normalisation of a model not made by ortl-train (detected from the file's
    /// producer when omitted).
    #[arg(long)]
    normalize: Option<ortl_models::Normalization>,
    /// Height and width to run a model not made by ortl-train at, as HxW, when its input
    /// size is dynamic (e.g. 224x224; images are resized to it).
    #[arg(long, value_name = "HxW", value_parser = ortl_cli::args::parse_size)]
    size: Option<(usize, usize)>,
    /// Image files, folders (recursed; a sub-folder named like a class gives a
    /// single-label model's true label), or `-` for newline-separated paths on stdin.
    inputs: Vec<PathBuf>,
    /// Read the images of a manifest (its labels become the label column, or a multi-label
    /// manifest's findings the y_ columns; its splits the split column). Its form must be
    /// the model's: one class per image, or findings.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// With --manifest: only this split (train, val, test or a fold number).
    #[arg(long, requires = "manifest")]
    split: Option<Split>,
    /// Where the rows go (`-`: stdout). A file appears only once every row is written.
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    /// Classify only part I of N of the inputs (contiguous, in input order; I from 1), for
    /// array jobs: shard 1 writes the header, so concatenating the shards' outputs in order
    /// gives exactly the unsharded output (without --unordered).
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// How rows are written.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Omit the header row.
    #[arg(long)]
    no_header: bool,
    /// Two classes: predict class 1 when its probability is at least this (default: the
    /// most probable class). Multi-label: every finding's threshold (default 0.5).
    #[arg(long, value_parser = probability)]
    threshold: Option<f64>,
    /// Choose the threshold on these predictions of labelled images (ortl-infer's output
    /// for the validation split, made by this model) by --threshold-rule: each finding's
    /// of a multi-label model, class 1's of a two-class one. Prints each threshold with the
    /// sensitivity and specificity it gave there. With a warning, a finding with no
    /// positive or no negative image there keeps 0.5, and one whose rule holds only by
    /// predicting no image gets 1.
    #[arg(long, value_name = "PREDICTIONS", conflicts_with = "threshold")]
    threshold_from: Option<PathBuf>,
    /// How --threshold-from chooses: youden (max sensitivity + specificity − 1),
    /// sensitivity=S (the highest threshold keeping sensitivity ≥ S), specificity=S (the
    /// lowest keeping specificity ≥ S), or a fixed number (its rates printed).
    #[arg(
        long,
        value_name = "RULE",
        default_value = "youden",
        requires = "threshold_from"
    )]
    threshold_rule: ThresholdRule,
    /// Images per inference batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Add columns top1…topK: the K most probable class names, most probable first
    /// (single-label models; multi-label rows give every finding's p_ already).
    #[arg(long, value_name = "K")]
    top_k: Option<usize>,
    /// Test-time augmentation: average the probabilities of the image and its mirror
    /// images: none, flip (left-right), flip4 (left-right, up-down and both).
    #[arg(long, default_value = "none", value_parser = ["none", "flip", "flip4"])]
    tta: String,
    /// Emit rows as images finish decoding instead of in input order (a slow file no longer
    /// holds back the rows after it).
    #[arg(long)]
    unordered: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Threads decoding and resizing images while the model runs; more pays only when there
    /// are more cores than --threads, or for slow formats such as DICOM JPEG 2000.
    #[arg(long, default_value_t = 1, value_name = "N")]
    decode_threads: usize,
    /// Intensity window mapping stored values to 8 bits: auto, min-max, or CENTER,WIDTH in
    /// stored units (DICOM: after the modality LUT). Default: the window the model's training
    /// tensors were made with (ortl-augment --window).
    #[arg(long, value_name = "WINDOW")]
    window: Option<Window>,
    /// Fail on the first unreadable image.
    #[arg(long)]
    strict: bool,
    /// Largest image accepted, in pixels (width × height).
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Write a Grad-CAM heatmap per image into this folder: NAME.png (the map over the
    /// grey image, its class and probability above it and a colour bar beside it) and NAME.npy (float32
    /// [H, W] at the model's input size, not normalised); adds a cam_path column, and a
    /// cam_true_path column with NAME.true.png, the map of the true class, for labelled
    /// images the model got wrong (with --cam-class predicted). Multi-label: cam_path
    /// and cam_class, the finding the map shows.
    #[arg(long, value_name = "DIR")]
    cam: Option<PathBuf>,
    /// Class each heatmap explains: predicted (multi-label: each image's most probable
    /// finding), true (single-label; images without a label get none), or a class or
    /// finding name. The cam_class column of multi-label rows names it.
    #[arg(long, default_value = "predicted", requires = "cam")]
    cam_class: CamClass,
    /// How the heatmap weights the feature maps.
    #[arg(long, default_value = "gradcam", requires = "cam")]
    cam_method: ortl_explain::Method,
    /// Colour map of the heatmap PNGs.
    #[arg(long, value_enum, default_value_t = ortl_draw::overlay::Colormap::Jet, requires = "cam")]
    cam_colormap: ortl_draw::overlay::Colormap,
    /// Heatmap colour scale.
    #[arg(long, value_enum, default_value_t = ortl_draw::overlay::Scale::Image, requires = "cam")]
    cam_scale: ortl_draw::overlay::Scale,
    /// Feature map to explain (a rank-4 value of the graph; default: the one the
    /// classifier's global pooling reads).
    #[arg(long, value_name = "NAME", requires = "cam")]
    cam_layer: Option<String>,
    /// Replace an existing -o file and --cam folder.
    #[arg(long)]
    force: bool,
}

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-infer", run)
}

/// A decoded batch: the items that decoded, their pixels, and those that failed.
struct Prepared {
    items: Vec<Item>,
    pixels: ArrayD<u8>,
    failed: Vec<DecodeError>,
    /// What decoding did to each image's values beyond reading 8 bits, by kind.
    intensity: Vec<Intensity>,
}

/// One image decoded and resized, with what was done to its values.
type Loaded = Result<(Vec<u8>, Option<Intensity>), DecodeError>;

fn run(args: Args) -> Result<()> {
    if args.batch == 0 {
        return Err(usage("--batch must be at least 1"));
    }
    let stdin_readers = [args.manifest.as_ref(), args.threshold_from.as_ref()]
        .into_iter()
        .flatten()
        .chain(&args.inputs)
        .filter(|p| p.as_os_str() == "-")
        .count();
    if stdin_readers > 1 {
        return Err(usage(
            "only one of --manifest, --threshold-from and the inputs can be - (stdin)",
        ));
    }
    let (info, model) = ModelInfo::read(&args.model, args.normalize, args.size)
        .map_err(|e| usage(ortl_cli::one_line(&e)))?;
    if args.top_k.is_some() && info.is_multilabel() {
        return Err(usage(
            "--top-k ranks classes of a single-label model; a multi-label model's rows give every finding's p_, and predicted lists those at or above their thresholds",
        ));
    }
    let chosen_on = match &args.threshold_from {
        Some(file) => {
            let chosen_on = decision::from_file(file, args.threshold_rule, &info, &args.model)
                .map_err(|e| usage(ortl_cli::one_line(&e)))?;
            for c in &chosen_on.chosen {
                eprintln!("ortl-infer: {}", c.describe(args.threshold_rule, file));
            }
            Some(chosen_on)
        }
        None => None,
    };
    let decision = match &chosen_on {
        Some(chosen_on) => Decision::chosen(&info, &chosen_on.chosen),
        None => Decision::new(&info, args.threshold).map_err(|e| usage(ortl_cli::one_line(&e)))?,
    };
    // Refused now, before any image is read, when it exists and --force is not given.
    let output = Output::create(&args.output, args.force)?;
    let mut items = match &args.manifest {
        Some(manifest) => inputs::from_manifest(manifest, args.split, &info, &args.model)
            .map_err(|e| usage(ortl_cli::one_line(&e)))?,
        None => Vec::new(),
    };
    // Decisions on the images the thresholds were tuned on are optimistic, as scores on
    // training images are.
    if let (Some(chosen_on), Some(file)) = (&chosen_on, &args.threshold_from) {
        let reused = items
            .iter()
            .filter(|i| chosen_on.paths.contains(&i.shown))
            .count();
        if reused > 0 {
            eprintln!(
                "ortl-infer: warning: {} scored here {} among those {} chose the thresholds on; decisions on them are optimistic (score images the thresholds never saw, e.g. --split test)",
                ortl_cli::count(reused, "image", "images"),
                if reused == 1 { "is" } else { "are" },
                file.display()
            );
        }
    }
    let training = items
        .iter()
        .filter(|i| i.split == Some(Split::Train))
        .count();
    if training > 0 {
        eprintln!(
            "ortl-infer: note: {training} of the manifest's images are training images{}; their rows say split 'train', and scores on them are optimistic",
            if args.split.is_none() {
                " (no --split given)"
            } else {
                ""
            }
        );
    }
    // A path given on the command line that does not exist is a mistake in the command, not
    // an unreadable image to skip (paths streamed on stdin still are skipped and counted).
    if let Some(missing) = args
        .inputs
        .iter()
        .find(|p| p.as_os_str() != "-" && !p.exists())
    {
        return Err(usage(format!(
            "{}: no such file or folder",
            missing.display()
        )));
    }
    items.extend(inputs::from_args(&args.inputs, &info)?);
    if items.is_empty() {
        return Err(usage(
            "no images given: pass files, folders, --manifest, or - for paths on stdin",
        ));
    }
    if let Some(shard) = args.shard {
        items = shard.select(items);
    }

    let runtime = args.runtime.init()?;
    let options = args.runtime.session_options();
    let limits = DecodeLimits {
        max_pixels: args.max_pixels,
    };
    let window = match args.window {
        Some(window) => {
            if window != info.window {
                eprintln!(
                    "ortl-infer: warning: --window {window} differs from the window the model was trained with ({}): probabilities may be off",
                    info.window
                );
            }
            window
        }
        None => info.window,
    };
    let decoding = DecodeOptions { limits, window };
    if args.decode_threads == 0 {
        return Err(usage("--decode-threads must be at least 1"));
    }
    // On a terminal, a bar on stderr (stdout carries the rows).
    let progress = ortl_cli::progress::bar(items.len() as u64, "classifying");
    // Decoding runs ahead of inference on its own threads, and starts before the session is
    // built: on a small job, building a ResNet50 session takes as long as decoding 300 images.
    let (tx, rx) = mpsc::sync_channel::<Prepared>(2);
    let decode_info = info.clone();
    let batch_size = args.batch;
    let unordered = args.unordered;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.decode_threads)
        .thread_name(|i| format!("ortl-decode-{i}"))
        .build()
        .context("cannot start the decoding threads")?;
    let producer = std::thread::spawn(move || {
        if unordered {
            produce_unordered(items, batch_size, &decode_info, decoding, pool, &tx);
        } else {
            for batch in items.chunks(batch_size) {
                let prepared = pool.install(|| prepare(batch.to_vec(), &decode_info, decoding));
                if tx.send(prepared).is_err() {
                    break;
                }
            }
        }
    });

    let (mut explainer, model) = match &args.cam {
        Some(dir) => {
            let cam = CamOptions {
                dir: dir.clone(),
                class: args.cam_class.clone(),
                method: args.cam_method,
                colormap: args.cam_colormap,
                scale: args.cam_scale,
                layer: args.cam_layer.clone(),
                force: args.force,
                decoding,
            };
            let (explainer, exposed) = Explainer::new(runtime, &options, &model, &info, cam)?;
            (Some(explainer), exposed)
        }
        None => (None, model),
    };
    let mut session = runtime.load_model(&options, &model).map_err(|e| {
        ortl_infer::load_error(
            e,
            format!("{}: ONNX Runtime cannot load it", args.model.display()),
        )
    })?;
    drop(model);

    let top_k = args.top_k.map(|k| k.clamp(1, info.classes.len()));
    let columns = Columns {
        threshold: decision.class_threshold(),
        top_k: top_k.unwrap_or(0),
        cam: explainer.is_some(),
        model: EvaluatedModel {
            path: ortl_manifest::paths::tidy(&args.model),
            epoch: info.epoch,
        },
    };
    let mut writer = RowWriter::new(output, args.format, &info, decision.clone(), columns);
    if args.tta == "flip4" {
        eprintln!(
            "ortl-infer: warning: --tta flip4 averages in upside-down images, which rarely suit radiographs (anatomy has an up); --tta flip mirrors left-right only"
        );
    }
    let flips: &[(bool, bool)] = match args.tta.as_str() {
        "flip" => &[(false, false), (true, false)],
        "flip4" => &[(false, false), (true, false), (false, true), (true, true)],
        _ => &[(false, false)],
    };
    if !args.no_header && args.shard.is_none_or(Shard::is_first) {
        writer.header()?;
    }
    let (mut written, mut skipped) = (0usize, 0usize);
    let mut intensity_kinds = std::collections::BTreeMap::<String, usize>::new();
    for prepared in rx {
        for intensity in &prepared.intensity {
            *intensity_kinds.entry(intensity.kind.clone()).or_default() += 1;
        }
        for err in &prepared.failed {
            if args.strict {
                anyhow::bail!("{err} (--strict)");
            }
            progress.suspend(|| eprintln!("ortl-infer: warning: skipped {err}"));
        }
        skipped += prepared.failed.len();
        progress.inc((prepared.items.len() + prepared.failed.len()) as u64);
        if prepared.items.is_empty() {
            continue;
        }
        // Test-time augmentation: the mean of the passes over mirrored copies.
        let mut probs: Option<ArrayD<f32>> = None;
        // The heatmap explains the unmirrored image (the first pass).
        let mut features: Option<ArrayD<f32>> = None;
        for &(horizontal, vertical) in flips {
            let pixels = mirrored(&prepared.pixels, horizontal, vertical);
            let mut outputs =
                ortl_runtime::run(&mut session, vec![(info.input.as_str(), Feed::U8(pixels))])?;
            if let Some(explainer) = explainer.as_ref().filter(|_| features.is_none()) {
                features = outputs.remove(explainer.features());
            }
            let p = outputs
                .remove(&info.output)
                .context("the model produced no output")?;
            probs = Some(match probs {
                Some(sum) => sum + p,
                None => p,
            });
        }
        let probs = probs.expect("at least one pass") / flips.len() as f32;
        let cams = match (&mut explainer, features) {
            (Some(explainer), Some(features)) => {
                let predicted: Vec<usize> = probs
                    .outer_iter()
                    .map(|p| decision.top(p.as_slice().expect("a standard-layout row")))
                    .collect();
                explainer.explain(&prepared.items, features, &predicted, &probs)?
            }
            _ => vec![Explained::default(); prepared.items.len()],
        };
        // The bar steps aside while rows go out: on a terminal that shows both stdout and
        // stderr, rows never land among a half-drawn bar.
        progress.suspend(|| -> Result<()> {
            for ((item, p), cam) in prepared.items.iter().zip(probs.outer_iter()).zip(&cams) {
                let p: Vec<f32> = p.iter().copied().collect();
                writer.row(item, &p, cam)?;
                written += 1;
            }
            writer.flush()?;
            Ok(())
        })?;
    }
    let output = writer.into_inner()?;
    let _ = producer.join();
    progress.finish_and_clear();
    if written == 0 && skipped > 0 {
        // An -o file is not left behind with a header and no rows. (A shard with no images
        // of its own writes its header alone: that is its whole share of the output.)
        anyhow::bail!("no image could be classified ({skipped} unreadable, named above)");
    }
    output.finish()?;
    eprintln!(
        "ortl-infer: {} classified, {skipped} skipped",
        ortl_cli::count(written, "image", "images")
    );
    for (kind, count) in &intensity_kinds {
        eprintln!("ortl-infer: {count} images: {kind}");
    }
    if let Some(explainer) = explainer {
        let dir = args
            .cam
            .as_ref()
            .expect("explainer implies --cam")
            .display();
        if explainer.unlabelled > 0 {
            eprintln!(
                "ortl-infer: {} images without a true label got no heatmap (--cam-class true)",
                explainer.unlabelled
            );
        }
        explainer.finish()?;
        eprintln!("ortl-infer: heatmaps in {dir}");
    }
    Ok(())
}

/// A threshold: a probability in [0, 1].
fn probability(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|t| (0.0..=1.0).contains(t))
        .ok_or_else(|| format!("'{text}' is not a probability in [0, 1]"))
}

/// `[N, H, W, 3]` pixels mirrored left-right and/or up-down.
fn mirrored(pixels: &ArrayD<u8>, horizontal: bool, vertical: bool) -> ArrayD<u8> {
    let mut view = pixels.view();
    if horizontal {
        view.invert_axis(ndarray::Axis(2));
    }
    if vertical {
        view.invert_axis(ndarray::Axis(1));
    }
    view.as_standard_layout().into_owned()
}

/// Decodes all items in parallel and sends batches in the order images finish.
fn produce_unordered(
    items: Vec<Item>,
    batch: usize,
    info: &ModelInfo,
    options: DecodeOptions,
    pool: rayon::ThreadPool,
    tx: &mpsc::SyncSender<Prepared>,
) {
    let (done_tx, done_rx) = mpsc::channel::<(Item, Loaded)>();
    let decode_info = info.clone();
    // The decoding pool works on its own thread; this one gathers what it finishes.
    let workers = std::thread::spawn(move || {
        pool.install(|| {
            items.into_par_iter().for_each_with(done_tx, |done, item| {
                let result = load(&item, &decode_info, options);
                let _ = done.send((item, result));
            })
        })
    });
    let mut pending = Vec::new();
    for finished in done_rx {
        pending.push(finished);
        if pending.len() == batch
            && tx
                .send(assemble(std::mem::take(&mut pending), info))
                .is_err()
        {
            break;
        }
    }
    if !pending.is_empty() {
        let _ = tx.send(assemble(pending, info));
    }
    let _ = workers.join();
}

/// Decodes and resizes one image exactly as ortl-augment did for the training tensors.
fn load(item: &Item, info: &ModelInfo, options: DecodeOptions) -> Loaded {
    decode(&item.path, options).map(|decoded| {
        let pixels = resize(&decoded.pixels, info.height, info.width, info.filter).to_u8();
        (pixels, decoded.intensity)
    })
}

/// Decodes and resizes a batch in parallel, keeping input order.
fn prepare(batch: Vec<Item>, info: &ModelInfo, options: DecodeOptions) -> Prepared {
    let decoded: Vec<Loaded> = batch
        .par_iter()
        .map(|item| load(item, info, options))
        .collect();
    assemble(batch.into_iter().zip(decoded).collect(), info)
}

/// Stacks decoded images into one batch, setting aside the failures.
fn assemble(decoded: Vec<(Item, Loaded)>, info: &ModelInfo) -> Prepared {
    let mut items = Vec::new();
    let mut pixels = Vec::with_capacity(decoded.len() * info.height * info.width * 3);
    let mut failed = Vec::new();
    let mut intensity = Vec::new();
    for (item, result) in decoded {
        match result {
            Ok((p, applied)) => {
                pixels.extend(p);
                items.push(item);
                intensity.extend(applied);
            }
            Err(e) => failed.push(e),
        }
    }
    let shape = IxDyn(&[items.len(), info.height, info.width, 3]);
    Prepared {
        pixels: ArrayD::from_shape_vec(shape, pixels).expect("sizes match"),
        items,
        failed,
        intensity,
    }
}
