//! Loads the ONNX Runtime library that `make setup` installs (this test runs under
//! `make test`, which depends on setup) and builds a CPU session builder with it.

use ortl_runtime::{Device, ORT_VERSION, SessionOptions};

#[test]
fn loads_the_pinned_library_and_builds_a_cpu_session() {
    let runtime = ortl_runtime::init(None).expect("run 'make setup' first");
    assert!(
        runtime.library.to_string_lossy().ends_with(ORT_VERSION),
        "{}",
        runtime.library.display()
    );
    // ort's loader has already refused a library older than the API it was built for.
    assert!(ort::info().starts_with("ORT Build Info"), "{}", ort::info());
    runtime
        .session(&SessionOptions {
            device: Device::Cpu,
            threads: Some(1),
        })
        .unwrap();
}
