//! Finding and loading `libonnxruntime`, and building sessions for a device.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

use crate::Device;

/// The ONNX Runtime release `make setup` installs and ortl is tested with.
pub const ORT_VERSION: &str = "1.31.1";
const LIBRARY: &str = "libonnxruntime.so.1.31.1";
const CUDA_PROVIDER: &str = "libonnxruntime_providers_cuda.so";
const SHARED_PROVIDER: &str = "libonnxruntime_providers_shared.so";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime library not found (looked in: {}); run 'make setup', or pass --ort-lib / set ORT_DYLIB_PATH",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { searched: Vec<PathBuf> },
    #[error("cannot load ONNX Runtime from {}: {reason}", path.display())]
    Load { path: PathBuf, reason: String },
    #[error(
        "--device {device} needs {} beside {}; run 'make setup-cuda' (the CUDA 13 and cuDNN 9 runtime libraries must be installed too)",
        missing.display(), library.display()
    )]
    CudaMissing {
        device: Device,
        missing: PathBuf,
        library: PathBuf,
    },
    #[error(
        "--device {device}: ONNX Runtime's CUDA provider could not start ({reason}); install the CUDA 13 and cuDNN 9 runtime libraries where the loader finds them (docs/GPU.md), or use --device cpu"
    )]
    CudaUnavailable { device: Device, reason: String },
    /// ONNX Runtime's own message on one line (not a `source`, so error chains print it
    /// once).
    #[error("ONNX Runtime: {}", one_line(.0))]
    Ort(ort::Error),
    #[error("state tensor {name} has shape {expected:?}; the value given has {found:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(
        "state tensor {name}: the host updates it in place, which needs it in host memory; on --device {device} the update runs in the graph"
    )]
    HostUpdateOffCpu { name: String, device: Device },
}

impl RuntimeError {
    /// Whether the device, not the model or input, is at fault.
    pub fn is_device(&self) -> bool {
        matches!(
            self,
            RuntimeError::CudaMissing { .. } | RuntimeError::CudaUnavailable { .. }
        )
    }
}

/// ONNX Runtime's message on one line.
fn one_line(error: &ort::Error) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The part of a provider-loading error a user can act on: ONNX Runtime's text after
/// "with error:" (the loader's message naming the missing library), else all of it.
fn provider_reason(text: String) -> String {
    match text.split_once("with error: ") {
        Some((_, reason)) => reason.to_string(),
        None => text,
    }
}

/// On CUDA, an error that names CUDA or its libraries is the device's, not the model's.
fn classify(device: Device, error: ort::Error) -> RuntimeError {
    let text = one_line(&error);
    let lower = text.to_lowercase();
    match device {
        Device::Cuda(_)
            if ["cuda", "cudnn", "cublas"]
                .iter()
                .any(|k| lower.contains(k)) =>
        {
            RuntimeError::CudaUnavailable {
                device,
                reason: provider_reason(text),
            }
        }
        _ => RuntimeError::Ort(error),
    }
}

impl From<ort::Error> for RuntimeError {
    fn from(e: ort::Error) -> Self {
        RuntimeError::Ort(e)
    }
}

/// ONNX Runtime as loaded into this process (once): the library file and its environment.
pub struct Runtime {
    pub library: PathBuf,
    environment: Environment,
}

static LOADED: OnceLock<Runtime> = OnceLock::new();

/// Finds the library: `explicit` (`--ort-lib`), `ORT_DYLIB_PATH`, a `.ort/` folder in the
/// working directory or any parent (the workspace), then beside the executable and in
/// `../lib` from it (an installed layout).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    let mut searched = Vec::new();
    if let Some(path) = explicit {
        return found_or(path.to_path_buf(), searched);
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return found_or(PathBuf::from(path), searched);
    }
    let mut candidates = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        candidates.extend(cwd.ancestors().map(|dir| dir.join(".ort").join(LIBRARY)));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.extend(
            exe_dir
                .ancestors()
                .map(|dir| dir.join(".ort").join(LIBRARY)),
        );
        candidates.push(exe_dir.join(LIBRARY));
        candidates.push(exe_dir.join("../lib").join(LIBRARY));
    }
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(candidate);
    }
    searched.dedup();
    Err(RuntimeError::NotFound { searched })
}

fn found_or(path: PathBuf, mut searched: Vec<PathBuf>) -> Result<PathBuf, RuntimeError> {
    if path.is_file() {
        Ok(path)
    } else {
        searched.push(path);
        Err(RuntimeError::NotFound { searched })
    }
}

/// Loads ONNX Runtime (once per process; later calls return the first load).
pub fn init(explicit: Option<&Path>) -> Result<&'static Runtime, RuntimeError> {
    if let Some(runtime) = LOADED.get() {
        return Ok(runtime);
    }
    let library = locate(explicit)?;
    let load = |reason: String| RuntimeError::Load {
        path: library.clone(),
        reason,
    };
    let builder = ort::init_from(&library).map_err(|e| load(e.to_string()))?;
    let environment = builder
        .with_name("ortl")
        .build()
        .map_err(|e| load(e.to_string()))?;
    Ok(LOADED.get_or_init(|| Runtime {
        library,
        environment,
    }))
}

impl Runtime {
    /// A session builder for `options` (see [`SessionOptions::builder`]).
    pub fn session(&self, options: &SessionOptions) -> Result<SessionBuilder, RuntimeError> {
        options.builder(&self.environment, &self.library)
    }

    /// A ready session for an encoded model (`ModelProto` bytes).
    pub fn load(&self, options: &SessionOptions, model: &[u8]) -> Result<Session, RuntimeError> {
        self.session(options)?
            .commit_from_memory(model)
            .map_err(|e| classify(options.device, e))
    }

    /// The channel block of ONNX Runtime's blocked (NCHWc) CPU kernels on this machine: 16
    /// with AVX-512, 8 with AVX2; `None` where the CPU has none (the kernels are then not
    /// registered). Only ORT knows it, so it is read once from a one-node graph.
    pub fn nchwc_block(&self) -> Option<i64> {
        static BLOCK: OnceLock<Option<i64>> = OnceLock::new();
        *BLOCK.get_or_init(|| self.probe_nchwc_block().ok().flatten())
    }

    fn probe_nchwc_block(&self) -> Result<Option<i64>, RuntimeError> {
        use ortl_onnx::{DataType, Dim, GraphBuilder, Model};
        // ReorderInput pads 4 channels to one whole block.
        let mut b = GraphBuilder::new("nchwc_probe");
        let x = b.input("x", DataType::Float, [1, 4, 1, 1].map(Dim::Fixed).to_vec());
        let y = b.op("ReorderInput", &[&x], vec![]);
        b.graph_mut().nodes[0].domain = "com.microsoft.nchwc".into();
        b.output(&y, DataType::Float, vec![Dim::Unknown; 4]);
        let mut model = Model::new(b.finish());
        model.opsets.push(("com.microsoft.nchwc".into(), 1));
        let options = SessionOptions {
            device: Device::Cpu,
            threads: Some(1),
        };
        let Ok(mut session) = self.load_model(&options, &model) else {
            return Ok(None);
        };
        let input = ndarray::ArrayD::<f32>::zeros(vec![1, 4, 1, 1]);
        let outputs = crate::exec::run(&mut session, vec![("x", crate::Feed::F32(input))])?;
        let block = outputs[&y].shape()[1] as i64;
        Ok((block > 1).then_some(block))
    }

    /// A ready session for `model`. On CUDA, nodes the provider has no kernel for (which
    /// ONNX Runtime would quietly run on the CPU, copying across the bus on every run) are
    /// named in one warning on stderr.
    pub fn load_model(
        &self,
        options: &SessionOptions,
        model: &ortl_onnx::Model,
    ) -> Result<Session, RuntimeError> {
        if let Some(warning) = cpu_fallback_warning(options.device, model) {
            eprintln!("{warning}");
        }
        self.load(options, &ortl_onnx::io::to_bytes(model))
    }
}

/// On CUDA, the one-line warning naming `model`'s nodes without a CUDA kernel (at most five),
/// or `None` when there are none or the device is the CPU.
fn cpu_fallback_warning(device: Device, model: &ortl_onnx::Model) -> Option<String> {
    let Device::Cuda(_) = device else {
        return None;
    };
    let gaps = crate::kernels::cuda().gaps(model);
    if gaps.is_empty() {
        return None;
    }
    let shown: Vec<String> = gaps.iter().take(5).map(ToString::to_string).collect();
    let graph = match model.graph.name.as_str() {
        "" => "a graph".to_string(),
        name => format!("graph '{name}'"),
    };
    Some(format!(
        "ortl: warning: {} node(s) of {graph} have no CUDA kernel and will run on the CPU: {}{}",
        gaps.len(),
        shown.join("; "),
        if gaps.len() > shown.len() {
            "; …"
        } else {
            ""
        }
    ))
}

/// How to build a session: device and CPU threads.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    pub device: Device,
    /// Intra-op threads; `None` lets ONNX Runtime use every core.
    pub threads: Option<usize>,
}

impl SessionOptions {
    /// A session builder for this device. CUDA is registered so that a failure is an
    /// error, never a silent fall-back to the CPU.
    fn builder(
        &self,
        environment: &Environment,
        library: &Path,
    ) -> Result<SessionBuilder, RuntimeError> {
        let mut builder = Session::builder(environment)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort::Error::from)?;
        if let Some(threads) = self.threads {
            builder = builder
                .with_intra_threads(threads)
                .map_err(ort::Error::from)?;
        }
        if self.device == Device::Cpu {
            // The memory pattern plans one block for a run's intermediate values from the
            // first run's allocations and takes it from the arena beside what that run left
            // there. Without it a ResNet50 training step peaks 0.75-0.96 GB lower (3.17 ->
            // 2.20 GB, BatchNorm training) at the same speed, and inference is unchanged.
            builder = builder
                .with_memory_pattern(false)
                .map_err(ort::Error::from)?;
        }
        self.check_cuda(library)?;
        if let Device::Cuda(id) = self.device {
            let cuda = ort::ep::CUDA::default()
                .with_device_id(id as i32)
                .build()
                .error_on_failure();
            builder = builder.with_execution_providers([cuda]).map_err(|e| {
                RuntimeError::CudaUnavailable {
                    device: self.device,
                    reason: provider_reason(one_line(&ort::Error::from(e))),
                }
            })?;
        }
        Ok(builder)
    }

    /// CUDA needs its provider libraries beside the main one; name the first one missing.
    fn check_cuda(&self, library: &Path) -> Result<(), RuntimeError> {
        if self.device == Device::Cpu {
            return Ok(());
        }
        let dir = library.parent().unwrap_or(Path::new("."));
        match [SHARED_PROVIDER, CUDA_PROVIDER]
            .iter()
            .find(|p| !dir.join(p).is_file())
        {
            Some(provider) => Err(RuntimeError::CudaMissing {
                device: self.device,
                missing: dir.join(provider),
                library: library.to_path_buf(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_path_is_named_with_the_fix() {
        let err = locate(Some(Path::new("/nowhere/libonnxruntime.so")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nowhere/libonnxruntime.so") && err.contains("make setup"),
            "{err}"
        );
    }

    #[test]
    fn a_cuda_graph_with_nodes_off_the_gpu_gets_one_warning_naming_them() {
        use ortl_onnx::{DataType, Dim, GraphBuilder, Model};
        let mut b = GraphBuilder::new("imported");
        let x = b.input("x", DataType::Float, vec![Dim::Fixed(2), Dim::Fixed(2)]);
        let y = b.relu(&x);
        let mut last = y;
        for _ in 0..6 {
            last = b.op("Det", &[&last], vec![]);
        }
        b.output(&last, DataType::Float, vec![]);
        let model = Model::new(b.finish());
        assert_eq!(cpu_fallback_warning(Device::Cpu, &model), None);
        let warning = cpu_fallback_warning(Device::Cuda(0), &model).unwrap();
        assert!(
            warning.starts_with("ortl: warning: 6 node(s) of graph 'imported'")
                && warning.contains("Det_2 (Det): no CUDA kernel")
                && warning.ends_with("; …")
                && !warning.contains('\n'),
            "{warning}"
        );
    }

    #[test]
    fn a_provider_load_failure_names_the_missing_library() {
        let text = "provider_bridge_ort.cc:2043 [ONNXRuntimeError] : 1 : FAIL : Failed to load library /x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: No such file or directory".to_string();
        assert_eq!(
            provider_reason(text),
            "libcublasLt.so.13: cannot open shared object file: No such file or directory"
        );
        assert_eq!(provider_reason("other".into()), "other");
    }

    #[test]
    fn cuda_without_its_provider_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let library = dir.path().join(LIBRARY);
        let options = SessionOptions {
            device: Device::Cuda(0),
            threads: None,
        };
        // The check runs before ONNX Runtime is touched, so no library is needed here.
        let err = match options.check_cuda(&library) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("CUDA must be refused without its provider"),
        };
        assert!(
            err.contains(SHARED_PROVIDER) && err.contains("make setup-cuda"),
            "{err}"
        );
    }
}
