//! ortl-train's work: turn an inference classifier into a training step graph (forward with
//! batch statistics and dropout masks, loss, backward, optimizer), run it step by step on
//! ONNX Runtime, and write the trained classifier back out.
//!
//! - [`graph`]: the step graph and the list of state it reads and writes.
//! - [`trainer`]: the step runner holding parameters, optimizer state and BN statistics.

pub mod callbacks;
pub mod checkpoint;
pub mod fit;
pub mod graph;
pub mod schedule;
pub mod trainer;

pub use graph::{BnMode, StepGraph, TrainSpec, Trainable, UpdateOn, build_step};
pub use trainer::{Batch, Targets, Trainer};
