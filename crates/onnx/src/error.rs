//! Errors name what was looked at (file, node, tensor) and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not an ONNX model ({reason})", path.display())]
    Decode { path: PathBuf, reason: String },
    #[error("{}: {message}", path.display())]
    Unsafe { path: PathBuf, message: String },
    #[error("tensor '{name}': {message}")]
    Tensor { name: String, message: String },
    #[error("node '{node}' ({op}): {message}")]
    Node {
        node: String,
        op: String,
        message: String,
    },
    /// A Reshape whose target holds a size the export fixed (the traced image size, or a
    /// batch of 1) that the values reaching it do not have.
    #[error("node '{node}' (Reshape): {message}")]
    FixedAtExport { node: String, message: String },
    #[error("graph: {0}")]
    Graph(String),
}
