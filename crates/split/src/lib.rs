//! ortl-split's work: find the images of each class folder, check that every one decodes,
//! and assign each to a split, reproducibly from a seed.
//!
//! - [`scan`]: class folders → candidate files (sorted, hidden files and other extensions
//!   skipped), as Keras' `image_dataset_from_directory` reads a folder.
//! - [`verify`]: decode (or probe) every candidate in parallel, keeping the readable ones.
//! - [`table`]: a label table (one row per image) → candidate files with labels and groups.
//! - [`assign`]: stratified or plain shuffles into train/val/test, or k folds;
//!   [`grouped`]: the same by group (patient), no group crossing splits.

pub mod assign;
pub mod grouped;
pub mod scan;
pub mod table;
pub mod verify;

pub use assign::{SplitPlan, assign};
pub use grouped::assign_grouped;
pub use scan::{Scan, ScanError, scan};
pub use verify::{Verify, verify};
