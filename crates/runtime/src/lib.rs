//! ONNX Runtime for ortl: the C library is loaded at run time (`ort`'s `load-dynamic`), taken
//! from the PyPI wheel by `make setup`, so no build step downloads anything and the same
//! binaries run on CPU or, with `make setup-cuda`, on an NVIDIA GPU.

pub mod args;
pub mod bound;
pub mod device;
pub mod kernels;
pub mod library;
pub mod testing;

pub use args::RuntimeArgs;
pub use device::Device;
pub use library::{ORT_VERSION, Runtime, RuntimeError, SessionOptions, init, locate};
pub mod exec;
pub use bound::{PingPong, RunTraffic, StateTensor, StateTraffic, Update};
pub use exec::{Feed, run};
pub use ort::session::Session;
