//! ortl-report's work: read predictions (and training history; the readers are
//! `ortl_manifest`'s), compute the tutorial's
//! metrics and the ones screening studies report, with stratified bootstrap confidence
//! intervals, draw the plots, and write a report a reviewer can open offline.
//!
//! - [`args`]: the command line as clap parses it; [`settings`]: the same checked and typed,
//!   once ([`Settings::resolve`]).
//! - [`command`]: the report and the comparison, from settings ([`run`]): what the binary
//!   calls and tests call directly.
//! - [`input`]: predictions files of either kind (one class per image, or findings per
//!   image), told apart by their header.
//! - [`metrics`]: binary metrics, curves, AUC with ties (the `ortl-metrics` crate, which
//!   ortl-train and ortl-infer share).
//! - [`evaluate`]: point estimates and bootstrap intervals, at the given and the
//!   Youden-optimal threshold.
//! - [`multilabel`]: per-finding metrics, macro and micro AUC, co-occurrence.
//! - [`delong`]: DeLong's interval of an AUC and test of two.
//! - [`provenance`]: what was evaluated and how it trained, and warnings about the images.
//! - [`plots`]: ROC, precision–recall, confusion matrix, training curves (PNG and SVG).
//! - [`html`]: the self-contained report.html and report.md.
//! - [`gallery`]: the Grad-CAM gallery of misclassified and most confident images.
//! - [`compare`]: the comparison across runs.
//! - [`crossval`]: per-backbone means and intervals over folds, paired comparisons.
//! - [`tables`]: the CSV tables: metrics, the comparison across runs (wide and long),
//!   per-backbone summaries and paired comparisons.

pub mod args;
pub mod command;
pub mod compare;
pub mod crossval;
pub mod delong;
pub mod evaluate;
pub mod gallery;
pub mod html;
pub mod input;
pub mod intervals;
pub use ortl_metrics as metrics;
pub mod multilabel;
pub mod plots;
pub mod provenance;
pub mod settings;
pub mod tables;

pub use command::{Done, run};
pub use settings::Settings;
