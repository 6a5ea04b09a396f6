//! ortl-infer's work: what the model expects ([`ModelInfo`]), which images to read
//! ([`inputs`]), and the rows it writes ([`output`]). Decoding and resizing are
//! `ortl-imaging`'s, the same code `ortl-augment` used for the training tensors.

pub mod explain;
pub mod inputs;
pub mod model_info;
pub mod output;

pub use inputs::Item;
pub use model_info::ModelInfo;
