//! One writer per output: a run takes an exclusive lock on `.NAME.lock` beside its output
//! before writing, so a second run aimed at the same output stops with a clear error
//! instead of interleaving. The lock is the operating system's (`flock`), so it is
//! released when its process ends, even by SIGKILL: a crashed run never blocks the next.
//! The lock file is removed when the run ends; a run that locked a file just removed (it
//! opened the path before the removal) sees that the path now names another file, or none,
//! and tries again, so two runs can never both hold the lock.

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
        loop {
            let lock = Self::try_once(output, &path)?;
            if lock.names_the_path() {
                return Ok(lock);
            }
            // The holder before us removed this file after we opened it: the lock we hold
            // is on a file nobody else will open. Forget it (without removing the path,
            // which may be another run's lock file by now) and lock what the path names.
            let mut stale = lock;
            drop(stale.file.take());
        }
    }

    /// Whether the locked file is still the one at the path (same device and inode).
    #[cfg(unix)]
    fn names_the_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let held = self.file.as_ref().and_then(|f| f.metadata().ok());
        let named = fs::metadata(&self.path).ok();
        matches!((held, named), (Some(h), Some(n)) if (h.dev(), h.ino()) == (n.dev(), n.ino()))
    }

    /// Elsewhere a lock file is never removed while locked by another run (Windows refuses
    /// to delete an open file), so whatever was locked is the path's.
    #[cfg(not(unix))]
    fn names_the_path(&self) -> bool {
        true
    }

    fn try_once(output: &Path, path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
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
        // and locks it afterwards finds the path no longer names it, and tries again.
        if self.file.is_some() {
            let _ = fs::remove_file(&self.path);
        }
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

    /// Many writers started together, each locking, checking that it is alone, and
    /// releasing (which removes the lock file), over and over: never two holders at once.
    /// `flock` locks belong to open files, so threads contend exactly as processes do.
    #[test]
    fn writers_started_together_never_both_hold_the_lock() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let holders = AtomicUsize::new(0);
        let acquired = AtomicUsize::new(0);
        let start = std::sync::Barrier::new(16);
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    start.wait();
                    for _ in 0..2000 {
                        if let Ok(lock) = OutputLock::acquire(&out) {
                            let before = holders.fetch_add(1, Ordering::SeqCst);
                            assert_eq!(before, 0, "two runs hold the lock at once");
                            std::thread::yield_now();
                            holders.fetch_sub(1, Ordering::SeqCst);
                            acquired.fetch_add(1, Ordering::SeqCst);
                            drop(lock);
                        }
                    }
                });
            }
        });
        assert!(
            acquired.load(Ordering::SeqCst) > 16,
            "the lock was taken and released"
        );
    }
}
