//! What tests that run graphs on ONNX Runtime's CPU EP share (compiled always, like
//! `ortl_manifest::samples`, so test and release builds share one set of features): one
//! way to load the library that tells a reader without it what to do, and one-thread
//! sessions, so numeric tests are reproducible and do not compete for cores.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use ortl_onnx::{Model, io};

use crate::{Feed, Runtime, Session, SessionOptions};

/// The loaded library; panics with the fix when there is none.
pub fn runtime() -> &'static Runtime {
    crate::init(None).unwrap_or_else(|e| {
        panic!("these tests need ONNX Runtime: run 'make setup' (or set ORT_DYLIB_PATH): {e}")
    })
}

/// A one-thread CPU session of `model`; panics naming ORT's objection.
pub fn session(model: &Model) -> Session {
    let options = SessionOptions {
        threads: Some(1),
        ..Default::default()
    };
    runtime()
        .load(&options, &io::to_bytes(model))
        .unwrap_or_else(|e| panic!("ORT rejects the graph: {e}"))
}

/// Runs `model` once on `feeds` in a fresh one-thread session; every output by name.
pub fn run(model: &Model, feeds: Vec<(&str, Feed)>) -> BTreeMap<String, ArrayD<f32>> {
    crate::run(&mut session(model), feeds).unwrap_or_else(|e| panic!("ORT run failed: {e}"))
}
