//! ortl-augment: manifest.csv to tensors/.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use ortl_cli::{AtomicDir, usage};
use ortl_imaging::{
    AugmentSpec, DecodeLimits, DecodeOptions, FillMode, Filter, Flip, Interpolation, Window,
};
use ortl_manifest::multilabel::AnyManifest;

/// Decodes, resizes and augments the images of a manifest into uint8 tensor
/// shards.
///
/// Training images get --copies augmented variants; validation and test images
/// are only resized. Every variant depends only on (--seed, image path, variant
/// number), never on thread count. Augmentation follows Keras' preprocessing
/// layers, applied in the tutorial's order: flip, rotation, contrast, zoom,
/// translation (then brightness). Resizing defaults to Keras'
/// image_dataset_from_directory (bilinear, no antialiasing, aspect not kept).
///
/// Output folder: tensors.csv (shard,index,label,class,split,path,variant,
/// intensity,targets: a multi-label manifest's findings per image, 1/0/- each),
/// meta.json (size, task, classes or findings, seed, every augmentation setting) and
/// shard-NNNNN.npy files of uint8 [N,H,W,3] (numpy.load reads them). The folder
/// appears only when complete.
///
/// EXAMPLES:
///     ortl-augment manifest.csv -o tensors --size 100x100 --copies 4 \
///         --preset tutorial
///     ortl-augment manifest.csv -o tensors --copies 3 --flip horizontal \
///         --rotate 0.05
///     ortl-split data/xray | ortl-augment - -o tensors --copies 0
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Manifest from ortl-split (`-` for stdin; relative paths then resolve from the
    /// working directory).
    manifest: PathBuf,
    /// Output folder.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an existing output folder (the old one stays until the new one is complete).
    #[arg(long)]
    force: bool,
    /// Stored image size as HxW (height x width, like Keras' image_size), or one number.
    #[arg(long, default_value = "100x100", value_parser = ortl_cli::args::parse_size)]
    size: (usize, usize),
    /// Resize filter (bilinear is Keras').
    #[arg(long, default_value = "bilinear")]
    filter: Filter,
    /// Augmented variants per training image (0: store them resized only).
    #[arg(long, default_value_t = 4)]
    copies: u32,
    /// Also store each training image un-augmented (as variant 0).
    #[arg(long)]
    keep_original: bool,
    /// Seed of the augmentation draws.
    #[arg(long, default_value_t = 12)]
    seed: u64,
    /// Start from a named pipeline; the flags below override its parts. `tutorial` is the
    /// chest X-ray tutorial's: --flip horizontal_and_vertical --rotate 0.2 --contrast 1.0
    /// --zoom 0.5,0.2 --translate 0.3,0.5 (reflect fill, bilinear).
    #[arg(long, value_parser = ["none", "tutorial"], default_value = "none")]
    preset: String,
    /// Random flips: none, horizontal, vertical, horizontal_and_vertical (Keras RandomFlip).
    #[arg(long)]
    flip: Option<Flip>,
    /// Rotation factor as a fraction of a full turn: 0.2 = up to ±72° (Keras RandomRotation).
    #[arg(long, value_name = "FACTOR")]
    rotate: Option<f32>,
    /// Contrast factor: factors drawn in [max(0, 1-F), 1+F] (Keras RandomContrast).
    #[arg(long, value_name = "FACTOR")]
    contrast: Option<f32>,
    /// Zoom height,width factors: each axis scales by 1+u, u in [-F, F]; positive zooms
    /// out (Keras RandomZoom). One number applies to both.
    #[arg(long, value_name = "H,W", value_parser = pair)]
    zoom: Option<(f32, f32)>,
    /// Translation height,width factors as fractions of the size (Keras RandomTranslation).
    #[arg(long, value_name = "H,W", value_parser = pair)]
    translate: Option<(f32, f32)>,
    /// Brightness: adds u·255, u in [-F, F] (Keras RandomBrightness).
    #[arg(long, value_name = "FACTOR")]
    brightness: Option<f32>,
    /// What lies outside the image after a geometric transform (reflect is Keras').
    #[arg(long)]
    fill: Option<FillMode>,
    /// Pixel value used with --fill constant.
    #[arg(long)]
    fill_value: Option<f32>,
    /// Sampling for rotation, zoom and translation: bilinear or nearest.
    #[arg(long)]
    interpolation: Option<Interpolation>,
    /// Images per .npy shard.
    #[arg(long, default_value_t = 2048)]
    shard_size: usize,
    /// Fail on the first unreadable image instead of skipping it with a warning.
    #[arg(long)]
    strict: bool,
    /// Largest image accepted, in pixels (width × height).
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Intensity window mapping stored values to 8 bits: auto (8-bit images as stored,
    /// 16-bit PNG/TIFF scaled from 16 bits, DICOM through its modality LUT and its own
    /// window or VOI LUT, MONOCHROME1 inverted), min-max (each image stretched), or
    /// CENTER,WIDTH in stored units (DICOM: after the modality LUT, e.g. 40,400 in HU).
    /// Recorded in meta.json; ortl-train passes it to the model and ortl-infer applies it.
    #[arg(long, default_value = "auto", value_name = "WINDOW")]
    window: Window,
    /// Worker threads (default: all cores). The output does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

fn pair(text: &str) -> Result<(f32, f32), String> {
    let parse = |s: &str| {
        s.trim()
            .parse::<f32>()
            .map_err(|_| format!("'{s}' is not a number"))
    };
    match text.split_once(',') {
        Some((a, b)) => Ok((parse(a)?, parse(b)?)),
        None => parse(text).map(|v| (v, v)),
    }
}

impl Args {
    fn spec(&self) -> AugmentSpec {
        let base = match self.preset.as_str() {
            "tutorial" => ortl_imaging::augment::tutorial(),
            _ => AugmentSpec::default(),
        };
        AugmentSpec {
            flip: self.flip.unwrap_or(base.flip),
            rotate: self.rotate.unwrap_or(base.rotate),
            contrast: self.contrast.unwrap_or(base.contrast),
            zoom: self.zoom.unwrap_or(base.zoom),
            translate: self.translate.unwrap_or(base.translate),
            brightness: self.brightness.unwrap_or(base.brightness),
            fill: self.fill.unwrap_or(base.fill),
            fill_value: self.fill_value.unwrap_or(base.fill_value),
            interpolation: self.interpolation.unwrap_or(base.interpolation),
        }
    }
}

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-augment", run)
}

fn run(args: Args) -> Result<()> {
    let spec = args.spec();
    spec.validate().map_err(usage)?;
    if args.shard_size == 0 {
        return Err(usage("--shard-size must be at least 1"));
    }
    if args.copies > 0 && spec.is_identity() {
        eprintln!(
            "ortl-augment: warning: --copies {} with no augmentation stores identical copies; add --preset tutorial or augmentation flags, or use --copies 0",
            args.copies
        );
    }
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }
    let manifest = AnyManifest::read(&args.manifest).map_err(|e| usage(e.to_string()))?;
    let (height, width) = args.size;
    let job = ortl_augment::Job {
        height,
        width,
        filter: args.filter,
        spec,
        copies: args.copies,
        keep_original: args.keep_original,
        seed: args.seed,
        shard_size: args.shard_size,
        decoding: DecodeOptions {
            limits: DecodeLimits {
                max_pixels: args.max_pixels,
            },
            window: args.window,
        },
        strict: args.strict,
    };
    let out = AtomicDir::create(&args.output, args.force)?;
    let started = Instant::now();
    let progress = ortl_cli::progress::bar(manifest.len() as u64, "augmenting");
    let summary = ortl_augment::write_tensors(
        &manifest,
        &args.manifest.to_string_lossy(),
        &job,
        out.staging(),
        &args.output,
        || progress.inc(1),
    )
    .with_context(|| format!("writing {}", args.output.display()))?;
    progress.finish_and_clear();
    for skipped in &summary.skipped {
        eprintln!("ortl-augment: warning: skipped {skipped}");
    }
    for (kind, count) in &summary.intensity {
        eprintln!("ortl-augment: {count} source images: {kind}");
    }
    if summary.sources == 0 {
        anyhow::bail!(
            "{}: no readable images; nothing written",
            args.manifest.display()
        );
    }
    out.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "ortl-augment: {} source images -> {} stored {height}x{width} images in {} shard(s) at {} ({} skipped), {seconds:.1} s, {:.0} source images/s",
        summary.sources,
        summary.images,
        summary.shards,
        args.output.display(),
        summary.skipped.len(),
        summary.sources as f64 / seconds.max(1e-9),
    );
    Ok(())
}
