//! The contracts between ortl's stages, as serde types with checked readers, so no stage
//! parses another's file by hand. Relative paths inside any ortl CSV are relative to the
//! folder holding that CSV, so a project folder can be moved or shared whole.
//!
//! - [`manifest`]: `manifest.csv` (`path,label,class,split`), written by `ortl-split`;
//!   [`multilabel`]: its multi-label form (`path,split,y_<finding>…`).
//! - [`tensors`]: `tensors/` (`tensors.csv`, `meta.json`, `uint8 [N,H,W,3]` `.npy` shards),
//!   written by `ortl-augment`.
//! - [`history`]: `run/history.csv`, written by `ortl-train`, read by `ortl-report`.
//! - [`train_record`]: `run/train.json`, written by `ortl-train` (its settings also in each
//!   checkpoint), read by `ortl-report` and `ortl-report compare`.
//! - [`predictions`]: `predictions.csv` (or TSV, JSON lines), written by `ortl-infer`, read by
//!   `ortl-report`.

pub mod error;
pub mod history;
pub mod manifest;
pub mod multilabel;
pub mod paths;
pub mod predictions;
pub mod samples;
pub mod split;
pub mod stages;
pub mod tensors;
pub mod train_record;

pub use error::FormatError;
pub use manifest::{Manifest, ManifestRow};
pub use predictions::Predictions;
pub use split::Split;
pub use tensors::{Shard, Task, TensorMeta, TensorRow, TensorSet};
pub use train_record::{TrainRecord, TrainSettings};
