//! ortl-infer's work: the command line ([`args`]) resolved into [`Settings`], and
//! [`run()`], which tests call as the binary does. What the model expects ([`ModelInfo`]:
//! classes, or a multi-label model's findings), which images to read ([`inputs`]), their
//! decoding ahead of inference ([`batches`]), how probabilities become a decision and where
//! thresholds come from ([`decision`]), heatmaps ([`explain`]) and the rows written
//! ([`rows`], in `ortl_manifest::predictions`' forms). Decoding and resizing are
//! `ortl-imaging`'s, the same code `ortl-augment` used for the training tensors.

pub mod args;
pub mod batches;
pub mod decision;
pub mod explain;
pub mod inputs;
pub mod model_info;
pub mod rows;
pub mod run;
pub mod settings;

pub use args::Args;
pub use inputs::Item;
pub use model_info::ModelInfo;
pub use ortl_cli::Sink;
pub use run::run;
pub use settings::Settings;

/// A session that would not load, with `context` naming what was loaded; a device at fault
/// (no GPU, a missing CUDA library) is said alone, since the model is not to blame.
pub fn load_error(error: ortl_runtime::RuntimeError, context: String) -> anyhow::Error {
    if error.is_device() {
        anyhow::Error::from(error)
    } else {
        anyhow::Error::from(error).context(context)
    }
}
