//! The contracts between ortl's stages, as serde types with checked readers, so no stage
//! parses another's file by hand. Relative paths inside any ortl CSV are relative to the
//! folder holding that CSV, so a project folder can be moved or shared whole.
//!
//! - [`manifest`]: `manifest.csv` (`path,label,class,split`), written by `ortl-split`.
//! - [`tensors`]: `tensors/` (`tensors.csv`, `meta.json`, `uint8 [N,H,W,3]` `.npy` shards),
//!   written by `ortl-augment`.

pub mod error;
pub mod manifest;
pub mod paths;
pub mod split;
pub mod tensors;

pub use error::FormatError;
pub use manifest::{Manifest, ManifestRow};
pub use split::Split;
pub use tensors::{Shard, TensorMeta, TensorRow, TensorSet};
