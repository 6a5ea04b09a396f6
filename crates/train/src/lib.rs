//! ortl-train's work: turn an inference classifier into a training step graph (forward with
//! batch statistics and dropout masks, loss, backward, optimizer), run it step by step on
//! ONNX Runtime, and write the trained classifier back out.
//!
//! - [`args`]: the command line; [`settings`]: every setting resolved from it once.
//! - [`run()`]: a whole run from those settings, reporting to a [`Console`].
//! - [`graph`]: the step graph and the list of state it reads and writes.
//! - [`trainer`]: the step runner holding parameters, optimizer state and BN statistics.
//! - [`fit`]: the epoch loop; [`callbacks`], [`schedule`]: what it monitors and the
//!   learning rate; [`checkpoint`]: what `--resume` continues from.

pub mod args;
mod backbone;
pub mod callbacks;
pub mod checkpoint;
pub mod fit;
pub mod graph;
pub mod run;
mod run_folder;
pub mod schedule;
pub mod settings;
pub mod trainer;

pub use args::Args;
pub use graph::{BnMode, StepGraph, TrainSpec, Trainable, UpdateOn, build_step};
pub use run::{Console, Outcome, run};
pub use settings::Settings;
pub use trainer::{Batch, Targets, Trainer};
