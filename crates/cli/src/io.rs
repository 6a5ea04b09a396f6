//! `-` means stdout wherever a stage writes a file; any other path is written atomically
//! (a device or FIFO directly: see [`crate::atomic`]). An existing file is replaced only
//! with `--force`, the same in every binary. (Readers of `-` are the contract readers in
//! ortl-manifest and ortl-report.)

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::AtomicFile;
use crate::atomic::Destination;

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
    /// Opens `path` for writing: stdout for `-`; a regular file that exists already only
    /// with `force` (a device or FIFO is a destination, not a result to protect).
    pub fn create(path: &Path, force: bool) -> Result<Self> {
        if is_stdio(path) {
            return Ok(Output::Stdout(BufWriter::new(io::stdout())));
        }
        let destination = Destination::of(path)?;
        if !force && matches!(&destination, Destination::Regular(file) if file.exists()) {
            return Err(crate::usage(format!(
                "{} already exists; pass --force to replace it",
                path.display()
            )));
        }
        Ok(Output::File(AtomicFile::at(path, destination)?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_is_replaced_only_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        std::fs::write(&path, "old").unwrap();
        let err = Output::create(&path, false).err().unwrap();
        assert!(err.is::<crate::UsageError>());
        assert!(err.to_string().contains("pass --force"), "{err}");
        let mut out = Output::create(&path, true).unwrap();
        out.write_all(b"new").unwrap();
        out.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        // A device is written without --force.
        Output::create(Path::new("/dev/null"), false)
            .unwrap()
            .finish()
            .unwrap();
    }
}
