//! `-` means stdout wherever a stage writes a file; any other path is written atomically.
//! (Readers of `-` are the contract readers in ortl-manifest and ortl-report.)

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::AtomicFile;

/// True when `path` is the conventional `-` for a standard stream.
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A writable destination: stdout, or a file that appears only when [`Output::finish`]es.
pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    File(AtomicFile),
}

impl Output {
    pub fn create(path: &Path) -> Result<Self> {
        if is_stdio(path) {
            return Ok(Output::Stdout(BufWriter::new(io::stdout())));
        }
        Ok(Output::File(AtomicFile::create(path)?))
    }

    /// Flushes stdout, or commits the file into place.
    pub fn finish(self) -> Result<()> {
        match self {
            Output::Stdout(mut out) => out.flush().context("writing stdout"),
            Output::File(file) => file.commit(),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::File(file) => file.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File(file) => file.flush(),
        }
    }
}
