//! Training on stock ONNX Runtime: ORT's training builds are discontinued, so ortl writes the
//! whole step — forward, loss, backward, optimizer update — as one graph of standard ONNX
//! operators that any ONNX Runtime runs, on CPU or CUDA.
//!
//! - [`grad`]: reverse-mode differentiation over `ortl-onnx` graphs; only values that lead
//!   from a trainable parameter to the loss get backward ops.
//! - [`rules`]: gradient rules by operator family, each family declaring every operator once.
//! - [`batch_norm`]: BatchNorm on batch statistics as one node with a closed-form gradient.
//! - [`blocked`]: ONNX Runtime's blocked (NCHWc) CPU convolutions written into a step graph.
//! - [`strided`]: a strided convolution's dX on small maps as one batch GEMM (CPU, with
//!   `blocked`).
//! - [`emit`]: small helpers the rules share (reductions, reshapes, un-broadcasting).
//! - [`loss`]: softmax / sigmoid cross-entropies, L2 penalties, as forward graph pieces.
//! - [`optim`]: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, global-norm clipping.

pub mod batch_norm;
pub mod blocked;
pub mod emit;
pub mod grad;
pub mod loss;
pub mod optim;
pub mod rules;
pub mod strided;

pub use grad::{AutodiffError, Gradients, first_without_rule, gradients};
