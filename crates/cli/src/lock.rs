//! One writer per output: a run takes an exclusive lock on `.NAME.lock` beside its output
//! before writing, so a second run aimed at the same output stops with a clear error
//! instead of interleaving. The lock is the operating system's (`flock`), so it is
//! released when its process ends, even by SIGKILL: a crashed run never blocks the next.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Held while an output is being written; removes its lock file when dropped.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    file: Option<File>,
}

impl OutputLock {
    /// Locks `output` (a file or folder, existing or not).
    pub fn acquire(output: &Path) -> Result<Self> {
        let path = lock_path(output);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| {
                format!(
                    "cannot create the lock file {} (is the folder writable?)",
                    path.display()
                )
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                path,
                file: Some(file),
            }),
            Err(TryLockError::WouldBlock) => Err(anyhow::anyhow!(
                "{} is being written by another ortl run (lock {}); wait for it to finish or choose another output",
                output.display(),
                path.display()
            )),
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock: a run that opened it meanwhile
        // fails to lock it; one that opens the path afterwards creates a fresh one.
        let _ = fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

/// `.NAME.lock` in the output's folder.
pub fn lock_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    dir.join(format!(".{name}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_until_the_first_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report");
        let first = OutputLock::acquire(&out).unwrap();
        let err = format!("{:#}", OutputLock::acquire(&out).unwrap_err());
        assert!(
            err.contains("report is being written by another ortl run")
                && err.contains(".report.lock"),
            "{err}"
        );
        drop(first);
        assert!(!lock_path(&out).exists(), "lock file removed");
        let again = OutputLock::acquire(&out).unwrap();
        drop(again);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
