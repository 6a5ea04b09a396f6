//! The settings of one run, resolved once from the command line: what [`crate::run()`]
//! reads, and all it reads.

use std::path::PathBuf;

use anyhow::Result;
use ortl_cli::usage;
use ortl_imaging::{DecodeLimits, Window};
use ortl_manifest::Split;
use ortl_manifest::predictions::Format;
use ortl_metrics::ThresholdRule;
use ortl_runtime::SessionOptions;

use crate::Args;
use crate::explain::CamOptions;
use crate::inputs::Shard;

/// Everything a run of ortl-infer needs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub model: PathBuf,
    /// How a model not made by ortl-train is wrapped: its input normalisation (detected
    /// when `None`) and the size to run a dynamic-size one at.
    pub normalize: Option<ortl_models::Normalization>,
    pub size: Option<(usize, usize)>,
    /// Image files, folders, or `-` for paths on stdin.
    pub inputs: Vec<PathBuf>,
    pub manifest: Option<PathBuf>,
    /// With a manifest: only this split.
    pub split: Option<Split>,
    /// Where the rows go: `-` is the sink's stdout.
    pub output: PathBuf,
    /// Replace an existing output file and heatmap folder.
    pub force: bool,
    pub shard: Option<Shard>,
    pub format: Format,
    pub header: bool,
    pub thresholds: Thresholds,
    /// Images per inference batch (at least 1).
    pub batch: usize,
    pub top_k: Option<usize>,
    pub tta: Tta,
    /// Rows in the order images finish decoding, not input order.
    pub unordered: bool,
    /// The ONNX Runtime library to load (`None`: ORT_DYLIB_PATH, then `.ort/`).
    pub ort_lib: Option<PathBuf>,
    pub session: SessionOptions,
    /// Threads decoding images; 0 is refused once the inputs are known, where ortl-infer
    /// has always refused it (after the notes on them).
    pub decode_threads: usize,
    /// The intensity window; `None`: the model's.
    pub window: Option<Window>,
    /// Fail on the first unreadable image instead of skipping it.
    pub strict: bool,
    pub limits: DecodeLimits,
    /// Grad-CAM heatmaps, when asked for.
    pub cam: Option<CamOptions>,
}

/// Where the decision thresholds come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Thresholds {
    /// The most probable class; 0.5 for each finding of a multi-label model.
    Default,
    /// Class 1's threshold of a two-class model, or every finding's.
    Fixed(f64),
    /// Chosen by `rule` on predictions of labelled images in `file`.
    ChosenOn { file: PathBuf, rule: ThresholdRule },
}

/// Test-time augmentation: the passes whose probabilities are averaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tta {
    None,
    /// The image and its left-right mirror.
    Flip,
    /// Also mirrored up-down, and both.
    Flip4,
}

impl Tta {
    /// Each pass's mirroring: (left-right, up-down); the unmirrored image first.
    pub fn flips(self) -> &'static [(bool, bool)] {
        match self {
            Tta::None => &[(false, false)],
            Tta::Flip => &[(false, false), (true, false)],
            Tta::Flip4 => &[(false, false), (true, false), (false, true), (true, true)],
        }
    }
}

impl Settings {
    /// The settings `args` ask for; a contradiction among them is a usage error.
    pub fn resolve(args: &Args) -> Result<Self> {
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
        let thresholds = match (&args.threshold_from, args.threshold) {
            (Some(file), _) => Thresholds::ChosenOn {
                file: file.clone(),
                rule: args.threshold_rule,
            },
            (None, Some(threshold)) => Thresholds::Fixed(threshold),
            (None, None) => Thresholds::Default,
        };
        let tta = match args.tta.as_str() {
            "flip" => Tta::Flip,
            "flip4" => Tta::Flip4,
            _ => Tta::None,
        };
        let cam = args.cam.as_ref().map(|dir| CamOptions {
            dir: dir.clone(),
            class: args.cam_class.clone(),
            method: args.cam_method,
            colormap: args.cam_colormap,
            scale: args.cam_scale,
            layer: args.cam_layer.clone(),
            force: args.force,
        });
        Ok(Self {
            model: args.model.clone(),
            normalize: args.normalize,
            size: args.size,
            inputs: args.inputs.clone(),
            manifest: args.manifest.clone(),
            split: args.split,
            output: args.output.clone(),
            force: args.force,
            shard: args.shard,
            format: args.format,
            header: !args.no_header,
            thresholds,
            batch: args.batch,
            top_k: args.top_k,
            tta,
            unordered: args.unordered,
            ort_lib: args.runtime.ort_lib.clone(),
            session: args.runtime.session_options(),
            decode_threads: args.decode_threads,
            window: args.window,
            strict: args.strict,
            limits: DecodeLimits {
                max_pixels: args.max_pixels,
            },
            cam,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::explain::CamClass;

    fn resolve(args: &[&str]) -> Result<Settings> {
        let args = Args::try_parse_from(["ortl-infer", "--model", "m.onnx"].iter().chain(args))
            .expect("arguments clap accepts");
        Settings::resolve(&args)
    }

    fn usage_error(args: &[&str]) -> String {
        let err = resolve(args).expect_err("a usage error");
        assert!(err.is::<ortl_cli::UsageError>(), "{err}");
        err.to_string()
    }

    #[test]
    fn defaults_are_the_helps() {
        let s = resolve(&["scans"]).unwrap();
        assert_eq!(s.inputs, [PathBuf::from("scans")]);
        assert_eq!(s.output, PathBuf::from("-"));
        assert_eq!((s.batch, s.decode_threads), (32, 1));
        assert!(s.header && !s.force && !s.strict && !s.unordered);
        assert_eq!(s.format, Format::Csv);
        assert_eq!(s.thresholds, Thresholds::Default);
        assert_eq!(s.tta.flips(), [(false, false)]);
        assert_eq!(s.limits, DecodeLimits::default());
        assert!(s.cam.is_none() && s.window.is_none() && s.ort_lib.is_none());
    }

    #[test]
    fn flags_become_typed_settings() {
        let s = resolve(&[
            "--threshold-from",
            "val.csv",
            "--threshold-rule",
            "sensitivity=0.9",
            "--tta",
            "flip4",
            "--no-header",
            "--cam",
            "maps",
            "--cam-class",
            "true",
            "--force",
            "--threads",
            "2",
            "-",
        ])
        .unwrap();
        assert_eq!(
            s.thresholds,
            Thresholds::ChosenOn {
                file: "val.csv".into(),
                rule: "sensitivity=0.9".parse().unwrap()
            }
        );
        assert_eq!(s.tta, Tta::Flip4);
        assert_eq!(s.tta.flips().len(), 4);
        assert!(!s.header);
        assert_eq!(s.session.threads, Some(2));
        let cam = s.cam.expect("--cam");
        assert_eq!(cam.dir, PathBuf::from("maps"));
        assert_eq!(cam.class, CamClass::True);
        assert!(cam.force, "--force replaces the heatmap folder too");
        assert_eq!(
            resolve(&["--threshold", "0.3", "x.png"])
                .unwrap()
                .thresholds,
            Thresholds::Fixed(0.3)
        );
    }

    #[test]
    fn contradictions_are_usage_errors() {
        assert_eq!(
            usage_error(&["--batch", "0", "x.png"]),
            "--batch must be at least 1"
        );
        assert_eq!(
            usage_error(&["--manifest", "-", "-"]),
            "only one of --manifest, --threshold-from and the inputs can be - (stdin)"
        );
        usage_error(&["--threshold-from", "-", "-"]);
    }
}
