//! Plumbing every `ortl-<stage>` binary shares, so that all of them behave the same way at
//! the edges: exit codes, error lines, `-` for stdin/stdout, atomic and locked outputs, and progress.

pub mod args;
pub mod atomic;
pub mod exit;
pub mod io;
pub mod lock;
pub mod progress;
pub mod sink;

pub use atomic::{AtomicDir, AtomicFile};
pub use exit::{
    Interrupted, UsageError, count, interrupted, main_with, name_list, one_line, usage,
};
pub use io::Output;
pub use lock::OutputLock;
pub use sink::{Sink, with_stdio};
