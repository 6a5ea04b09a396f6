//! ortl-split's work: find the images of each class folder, check that every one decodes,
//! and assign each to a split, reproducibly from a seed. The command line ([`args`]) is
//! resolved into [`Settings`]; [`run()`] does the work, called by the binary and by tests.
//!
//! - [`scan`]: class folders → candidate files (sorted, hidden files and other extensions
//!   skipped), as Keras' `image_dataset_from_directory` reads a folder.
//! - [`verify`]: decode (or probe) every candidate in parallel, keeping the readable ones.
//! - [`table`]: a label table (one row per image) → candidate files with labels and groups.
//! - [`data`]: the candidates from either layout, with their groups.
//! - [`assign`]: stratified or plain shuffles into train/val/test, or k folds;
//!   [`grouped`]: the same by group (patient), no group crossing splits.
//! - [`summary`]: the counts per class (or finding) and split, said at the end.

pub mod args;
pub mod assign;
pub mod data;
pub mod grouped;
pub mod run;
pub mod scan;
pub mod settings;
pub mod summary;
pub mod table;
pub mod verify;

pub use args::Args;
pub use assign::{SplitPlan, assign};
pub use grouped::assign_grouped;
pub use ortl_cli::Sink;
pub use run::run;
pub use scan::{Scan, ScanError, scan};
pub use settings::Settings;
pub use verify::{Verify, verify};
