//! ortl-infer's work: what the model expects ([`ModelInfo`]) and which images to read
//! ([`inputs`]); the rows it writes are `ortl_manifest::predictions`'. Decoding and resizing
//! are `ortl-imaging`'s, the same code `ortl-augment` used for the training tensors.

pub mod explain;
pub mod inputs;
pub mod model_info;

pub use inputs::Item;
pub use model_info::ModelInfo;

/// A session that would not load, with `context` naming what was loaded; a device at fault
/// (no GPU, a missing CUDA library) is said alone, since the model is not to blame.
pub fn load_error(error: ortl_runtime::RuntimeError, context: String) -> anyhow::Error {
    if error.is_device() {
        anyhow::Error::from(error)
    } else {
        anyhow::Error::from(error).context(context)
    }
}
