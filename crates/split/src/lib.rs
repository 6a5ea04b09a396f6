//! ortl-split's work: find the images of each class folder, check that every one decodes,
//! and assign each to a split, reproducibly from a seed.
//!
//! - [`scan`]: class folders → candidate files (sorted, hidden files and other extensions
//!   skipped), as Keras' `image_dataset_from_directory` reads a folder.
//! - [`verify`]: decode (or probe) every candidate in parallel, keeping the readable ones.
//! - [`assign`]: stratified or plain shuffles into train/val/test, or k folds.

pub mod assign;
pub mod scan;
pub mod verify;

pub use assign::{SplitPlan, assign};
pub use scan::{Scan, ScanError, scan};
pub use verify::{Verify, verify};
