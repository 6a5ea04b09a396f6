//! `-` means stdin or stdout wherever a stage reads or writes a file; any other path is
//! read directly or written atomically.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::AtomicFile;

/// True when `path` is the conventional `-` for a standard stream.
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A readable source: a file or stdin.
pub enum Input {
    Stdin(io::Stdin),
    File(BufReader<File>, PathBuf),
}

impl Input {
    pub fn open(path: &Path) -> Result<Self> {
        if is_stdio(path) {
            return Ok(Input::Stdin(io::stdin()));
        }
        let file = File::open(path)
            .with_context(|| format!("cannot open {} (check the path)", path.display()))?;
        Ok(Input::File(BufReader::new(file), path.to_path_buf()))
    }

    /// The name to use in messages: the path, or `<stdin>`.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin(_) => "<stdin>".into(),
            Input::File(_, path) => path.display().to_string(),
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Stdin(stdin) => stdin.read(buf),
            Input::File(file, _) => file.read(buf),
        }
    }
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
