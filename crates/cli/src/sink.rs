//! Where a stage's `run` sends what it prints, so that a test can call `run` and read it all.

use std::io::{self, BufWriter, Write};

pub struct Sink<'a> {
    /// The stage's data when its output is `-` (the binary: stdout, written as it comes).
    pub stdout: &'a mut (dyn Write + Send),
    /// Each message for a person: notes, warnings, the summary (the binary: stderr, after
    /// `ortl-<stage>: `).
    pub say: &'a mut (dyn FnMut(&str) + Send),
}

/// Calls `run` with a sink on this process's stdout and stderr, each message on stderr
/// prefixed with `stage`.
pub fn with_stdio<T>(stage: &str, run: impl FnOnce(Sink<'_>) -> T) -> T {
    run(Sink {
        stdout: &mut BufWriter::new(io::stdout()),
        say: &mut |line| eprintln!("{stage}: {line}"),
    })
}
