//! ONNX graphs as ortl builds and edits them. No ONNX Runtime here: this crate only reads,
//! writes, builds and rewrites graphs; `ortl-runtime` runs them.
//!
//! - [`ir`]: the in-memory model — nodes wired by tensor names, as in ONNX itself, so a
//!   reader sees the graph in it; initializers as typed tensors.
//! - [`io`]: `ModelProto` bytes ⇄ [`ir::Model`], external data with path checks.
//! - [`builder`]: a small wiring API (`input`, `param`, `constant`, typed operators such as
//!   `conv` and `mul`) with unique names.
//! - [`passes`]: validation, topological order, dead-node removal.
//! - [`ops`]: every operator ortl knows, one entry each, grouped by family; the registry
//!   that shape inference, folding and opset conversion look operators up in.
//! - [`shapes`]: static shape inference.
//! - [`opset`]: imported graphs of opset 7–22 rewritten to ortl's opset.
//! - [`fold`]: constants and exporters' shape arithmetic evaluated once sizes are fixed.
//! - [`proto`]: the protobuf types, generated once from `onnx.proto` and checked in.

pub mod builder;
pub mod error;
pub mod fold;
pub mod io;
pub mod ir;
pub mod ops;
pub mod opset;
pub mod passes;
pub mod shapes;
#[rustfmt::skip]
pub mod proto;

pub use builder::GraphBuilder;
pub use error::OnnxError;
pub use ir::{Attr, DataType, Dim, Graph, Model, Node, Tensor, TensorData, ValueInfo};

/// The default ONNX operator set of graphs ortl builds.
pub const OPSET: i64 = 17;
/// The IR version written (ONNX 1.13+, read by every ONNX Runtime since 1.14).
pub const IR_VERSION: i64 = 8;
