//! `train.json`: what `ortl-train` trained and how — every resolved setting, where the
//! backbone's weights came from, the environment and the outcome — written at the end of a
//! run and read by `ortl-report` (provenance) and `ortl-report compare`. The settings part is
//! also what a checkpoint keeps, so `--resume` can name any setting that changed.
//! Settings with a command-line spelling are stored in it (`exp:1e-5,0.99,100`), so a value
//! can be pasted back as the flag; a setting chosen from a closed set is an enum here, stored
//! as that spelling.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::FormatError;

/// The format version this ortl writes and reads (`format` in the file).
pub const VERSION: u32 = 1;

/// The whole of train.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    /// [`VERSION`] when written.
    pub format: u32,
    #[serde(flatten)]
    pub settings: TrainSettings,
    #[serde(flatten)]
    pub environment: Environment,
    pub summary: TrainSummary,
}

/// Everything that decides what a run computes; `--resume` requires all of it unchanged but
/// `epochs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// The tensors folder trained on, as given.
    pub tensors: PathBuf,
    /// One class per image, or findings (`classes` then names them); absent before
    /// multi-label training: single-label.
    #[serde(default)]
    pub task: crate::Task,
    pub classes: Vec<String>,
    pub image_height: usize,
    pub image_width: usize,
    /// The validation fold of a k-fold manifest.
    pub val_fold: Option<u32>,
    pub preset: Option<Preset>,
    /// A built-in backbone's name, or the imported file's path.
    pub backbone: String,
    pub backbone_parameters: usize,
    pub backbone_weights: Weights,
    pub backbone_pretrained: bool,
    /// `backbone_weights` in words.
    pub backbone_provenance: String,
    /// `--features`: the tensor an imported backbone was cut at, when named.
    pub features: Option<String>,
    /// `--pool`, when `features` names tokens (absent otherwise, as in files before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<TokenPool>,
    pub normalization: Normalization,
    /// Why that normalisation (given, read from metadata, or the exporter's convention).
    pub normalization_reason: String,
    pub head: String,
    pub freeze: String,
    pub l2: Option<f32>,
    /// `--fine-tune E1,E2`.
    pub fine_tune: Option<(usize, usize)>,
    pub bn_mode: BnMode,
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub weight_decay: f32,
    pub momentum: f32,
    pub lr: f64,
    pub schedule: String,
    pub batch: usize,
    pub epochs: usize,
    pub early_stopping: String,
    /// The metric whose best epoch is best.onnx.
    pub checkpoint: EpochMetric,
    pub class_weights: String,
    /// Multi-label: `--pos-weight` (absent before it existed: none).
    #[serde(default = "no_weights")]
    pub pos_weight: String,
    pub label_smoothing: f32,
    pub clip_norm: Option<f32>,
    pub seed: u64,
}

fn no_weights() -> String {
    "none".into()
}

/// Declares a closed set of recorded values, each variant with its one spelling: in the
/// file (a serde rename), in words (`Display`), and to compare with text.
macro_rules! recorded {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$doc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// The spelling in train.json, which is also the command line's.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, text: &&str) -> bool {
                self.name() == *text
            }
        }
    };
}

recorded! {
    /// `--preset`.
    Preset {
        Tutorial = "tutorial",
    }
}

recorded! {
    /// How input pixels were normalised for the backbone.
    Normalization {
        ImageNet = "imagenet",
        Caffe = "caffe",
        Unit = "unit",
        Symmetric = "symmetric",
    }
}

recorded! {
    /// `--pool`: how the tokens `--features` named were reduced to the head's input.
    TokenPool {
        Cls = "cls",
        Mean = "mean",
    }
}

recorded! {
    /// `--bn-mode`: how the backbone's BatchNorms trained.
    BnMode {
        Frozen = "frozen",
        Train = "train",
    }
}

recorded! {
    /// `--loss`.
    Loss {
        SoftmaxCrossEntropy = "softmax-ce",
        SigmoidCategorical = "sigmoid-categorical",
        SigmoidBinary = "sigmoid-bce",
    }
}

recorded! {
    /// `--optimizer`.
    Optimizer {
        Adam = "adam",
        Adamw = "adamw",
        Sgd = "sgd",
        Nesterov = "nesterov",
        Rmsprop = "rmsprop",
    }
}

recorded! {
    /// A metric of each epoch in history.csv, as `--checkpoint` names it.
    EpochMetric {
        Loss = "loss",
        Accuracy = "accuracy",
        ValLoss = "val_loss",
        ValAccuracy = "val_accuracy",
        ValAuc = "val_auc",
    }
}

/// Where and with what the run ran: free to differ between a run and its `--resume`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// RFC 3339, seconds.
    pub trained_at: String,
    pub git_commit: Option<String>,
    pub ortl_version: String,
    pub onnxruntime: String,
    pub onnxruntime_library: PathBuf,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// `--threads`; all cores when absent.
    pub threads: Option<usize>,
    /// The convolution layout the step graph ran in: `plain` or `blocked`.
    pub conv_layout: String,
    /// Where the optimizer update ran: `host` or `graph` (absent in records from before
    /// `--update-on`, which updated in the graph).
    #[serde(default)]
    pub update_on: Option<String>,
}

/// How the run went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub epochs_run: usize,
    /// The epoch saved as best.onnx (1-based); absent when the checkpoint metric was never
    /// defined.
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
    pub images_per_second: f64,
    pub seconds: f64,
}

impl TrainRecord {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a record serialises")
    }

    /// Reads a run's train.json, saying which ortl it needs when the version differs.
    pub fn read(path: &Path) -> Result<Self, FormatError> {
        let text = std::fs::read_to_string(path).map_err(|source| FormatError::Io {
            file: path.into(),
            source,
        })?;
        let invalid = |message: String| FormatError::Invalid {
            file: path.into(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        match value.get("format").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(VERSION) => {}
            found => {
                return Err(invalid(format!(
                    "train.json format {} where this ortl reads format {VERSION}; read it with the ortl that wrote it, or train the run again",
                    found.map_or(
                        "none (an ortl from before formats were numbered)".into(),
                        |v| v.to_string()
                    )
                )));
            }
        }
        serde_json::from_value(value).map_err(|e| invalid(format!("not an ortl-train record: {e}")))
    }
}

impl TrainSettings {
    /// The settings that differ from `earlier`'s, but `epochs`, as `name (was A, now B)`.
    pub fn changed_since(&self, earlier: &TrainSettings) -> Vec<String> {
        let as_map = |s: &TrainSettings| match serde_json::to_value(s) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => unreachable!("settings serialise to an object"),
        };
        let (now, was) = (as_map(self), as_map(earlier));
        now.iter()
            .filter(|(name, value)| {
                name.as_str() != "epochs" && was.get(name.as_str()) != Some(value)
            })
            .map(|(name, value)| {
                let before = was.get(name.as_str()).unwrap_or(&serde_json::Value::Null);
                format!("{name} (was {before}, now {value})")
            })
            .collect()
    }
}

/// Where a backbone's weights come from: said in train.json, the model's metadata, the
/// training log and the report, since a user expecting Keras' `weights='imagenet'` must
/// not get random weights unawares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Weights {
    /// Drawn from a seed: not pretrained.
    Random { seed: u64 },
    /// Read from a file (a pretrained ONNX classifier or a weights file), with its SHA-256
    /// when read from disk.
    File {
        file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    /// Downloaded from a model hub (Hugging Face's layout) into its cache: the repository,
    /// the commit the revision resolved to, the file and its SHA-256, and whether that hash
    /// was pinned in ortl's table (or given) or recorded on first download.
    Hub {
        repo: String,
        revision: String,
        file: String,
        sha256: String,
        pinned: bool,
    },
}

impl Weights {
    pub fn is_pretrained(&self) -> bool {
        matches!(self, Weights::File { .. } | Weights::Hub { .. })
    }

    /// The weights of `path`, with the SHA-256 of its bytes.
    pub fn of_file(path: &Path) -> std::io::Result<Self> {
        Ok(Self::named(path, sha256_of_file(path)?))
    }

    /// The weights of `path` whose `bytes` are already read.
    pub fn of_bytes(path: &Path, bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self::named(path, hex(&sha2::Sha256::digest(bytes)))
    }

    fn named(path: &Path, sha256: String) -> Self {
        Weights::File {
            file: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            sha256: Some(sha256),
        }
    }
}

/// The SHA-256 of a file's bytes in lower-case hex, read in chunks (a model file can be
/// large).
pub fn sha256_of_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut hasher = sha2::Sha256::new();
    let mut file = std::fs::File::open(path)?;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Display for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Weights::Random { seed } => {
                write!(f, "randomly initialised (seed {seed}), not pretrained")
            }
            Weights::File {
                file,
                sha256: Some(sha),
            } => {
                write!(
                    f,
                    "pretrained: {file} (sha256 {})",
                    &sha[..sha.len().min(12)]
                )
            }
            Weights::File { file, sha256: None } => write!(f, "pretrained: {file}"),
            Weights::Hub {
                repo,
                revision,
                file,
                sha256,
                pinned,
            } => write!(
                f,
                "pretrained: hf:{repo}@{revision}:{file} (sha256 {sha256}, {})",
                if *pinned {
                    "pinned by ortl"
                } else {
                    "not pinned by ortl; checked against the hub's hash"
                }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes_with_flat_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.json");
        let written = crate::samples::train_record();
        std::fs::write(&path, written.to_json()).unwrap();
        assert_eq!(TrainRecord::read(&path).unwrap(), written);
        // Flat keys: `jq .backbone train.json` works, as it did before formats were typed.
        let value: serde_json::Value = serde_json::from_str(&written.to_json()).unwrap();
        assert_eq!(value["backbone"], "resnet50");
        assert_eq!(value["backbone_weights"]["kind"], "random");
        assert_eq!(value["conv_layout"], "blocked");
        assert_eq!(value["summary"]["best_epoch"], 4);
        assert_eq!(value["update_on"], "host");
    }

    /// The sample record as JSON, to edit.
    fn sample_json() -> serde_json::Value {
        serde_json::from_str(&crate::samples::train_record().to_json()).unwrap()
    }

    #[test]
    fn a_record_from_before_update_on_reads_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.json");
        let mut value = sample_json();
        value.as_object_mut().unwrap().remove("update_on");
        std::fs::write(&path, value.to_string()).unwrap();
        let read = TrainRecord::read(&path).unwrap();
        assert_eq!(read.environment.update_on, None);
        assert_eq!(read.settings, crate::samples::train_record().settings);
    }

    #[test]
    fn another_format_version_or_a_missing_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.json");
        let mut value = sample_json();
        value["format"] = 2.into();
        std::fs::write(&path, value.to_string()).unwrap();
        let err = TrainRecord::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("train.json format 2") && err.contains("format 1"),
            "{err}"
        );
        value.as_object_mut().unwrap().remove("format");
        std::fs::write(&path, value.to_string()).unwrap();
        let err = TrainRecord::read(&path).unwrap_err().to_string();
        assert!(err.contains("format none"), "{err}");
        value["format"] = VERSION.into();
        value.as_object_mut().unwrap().remove("seed");
        std::fs::write(&path, value.to_string()).unwrap();
        let err = TrainRecord::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("train.json: not an ortl-train record") && err.contains("seed"),
            "{err}"
        );
    }

    /// train.json as ortl-train wrote it while its settings were strings (a mini run with
    /// `--preset tutorial --class-weights auto --l2 0.1`).
    const WRITTEN: &str = include_str!("../tests/data/train.json");

    fn read_text(text: &str) -> TrainRecord {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.json");
        std::fs::write(&path, text).unwrap();
        TrainRecord::read(&path).unwrap()
    }

    #[test]
    fn a_written_record_reads_into_enums_and_writes_back_byte_for_byte() {
        let record = read_text(WRITTEN);
        let s = &record.settings;
        assert_eq!(s.preset, Some(Preset::Tutorial));
        assert_eq!(s.normalization, Normalization::ImageNet);
        assert_eq!(s.bn_mode, BnMode::Train);
        assert_eq!(s.loss, Loss::SigmoidCategorical);
        assert_eq!(s.optimizer, Optimizer::Adam);
        assert_eq!(s.checkpoint, EpochMetric::ValAccuracy);
        assert_eq!(record.to_json(), WRITTEN);
    }

    #[test]
    fn a_record_from_before_multi_label_and_update_on_still_reads() {
        let old = include_str!("../tests/data/train-before-multi-label.json");
        let record = read_text(old);
        assert_eq!(record.settings.task, crate::Task::SingleLabel);
        assert_eq!(record.settings.pos_weight, "none");
        assert_eq!(record.environment.update_on, None);
        assert_eq!(record.settings, read_text(WRITTEN).settings);
    }

    #[test]
    fn a_recorded_value_is_its_flag_spelling_in_words_and_in_comparisons() {
        assert_eq!(Loss::SoftmaxCrossEntropy.to_string(), "softmax-ce");
        assert_eq!(EpochMetric::ValAuc, "val_auc");
        assert_eq!(
            serde_json::to_string(&EpochMetric::ValLoss).unwrap(),
            "\"val_loss\""
        );
        let unknown = serde_json::from_str::<BnMode>("\"thawed\"").unwrap_err();
        assert!(unknown.to_string().contains("frozen"), "{unknown}");
    }

    #[test]
    fn changed_settings_are_named_but_epochs_may_grow() {
        let before = crate::samples::train_record().settings;
        let mut after = before.clone();
        after.epochs = 200;
        assert!(after.changed_since(&before).is_empty());
        after.lr = 0.01;
        after.schedule = "constant".into();
        let changed = after.changed_since(&before);
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(
            changed.contains(&"lr (was 0.001, now 0.01)".to_string()),
            "{changed:?}"
        );
        assert!(
            changed.contains(&"schedule (was \"exp:1e-5,0.99,100\", now \"constant\")".to_string()),
            "{changed:?}"
        );
    }
}
