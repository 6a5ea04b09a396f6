//! Catching unreadable images at split time, not an hour into training.

use std::path::{Path, PathBuf};

use ortl_imaging::{DecodeError, DecodeLimits, DecodeOptions, decode, probe};
use rayon::prelude::*;

/// How much of each file is read to check it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// Decode every pixel: catches truncated and corrupt data.
    #[default]
    Full,
    /// Read only the header: format and size (fast; misses truncated pixel data).
    Header,
    /// Trust the files.
    None,
}

/// Checks `files` in parallel; returns, in input order, whether each is usable and the
/// errors of the unusable ones. `on_done` is called once per file (progress).
pub fn verify(
    files: &[PathBuf],
    mode: Verify,
    limits: DecodeLimits,
    on_done: impl Fn() + Sync,
) -> (Vec<bool>, Vec<DecodeError>) {
    let check = |path: &Path| -> Result<(), DecodeError> {
        match mode {
            Verify::Full => decode(
                path,
                DecodeOptions {
                    limits,
                    ..DecodeOptions::default()
                },
            )
            .map(drop),
            Verify::Header => probe(path, limits).map(drop),
            Verify::None => Ok(()),
        }
    };
    let results: Vec<Result<(), DecodeError>> = files
        .par_iter()
        .map(|path| {
            let result = check(path);
            on_done();
            result
        })
        .collect();
    let ok = results.iter().map(Result::is_ok).collect();
    (ok, results.into_iter().filter_map(Result::err).collect())
}
