//! The flags every binary that runs a model shares, so each states them alike in `--help`.

use std::path::PathBuf;

use crate::{Device, Runtime, RuntimeError, SessionOptions};

/// Where and how ONNX Runtime runs (`#[command(flatten)]` into a binary's arguments).
#[derive(clap::Args, Clone, Debug)]
pub struct RuntimeArgs {
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// CPU threads for ONNX Runtime (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// libonnxruntime to load (default: ORT_DYLIB_PATH, then .ort/ from `make setup`).
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
}

impl RuntimeArgs {
    /// Loads the library these flags name (once per process).
    pub fn init(&self) -> Result<&'static Runtime, RuntimeError> {
        crate::init(self.ort_lib.as_deref())
    }

    pub fn session_options(&self) -> SessionOptions {
        SessionOptions {
            device: self.device,
            threads: self.threads,
        }
    }
}
