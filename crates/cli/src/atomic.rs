//! Outputs appear whole or not at all: everything is written under a temporary name in the
//! destination's folder and renamed into place once complete, so an interrupted run never
//! leaves a file (or a folder of shards) that looks finished.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::{NamedTempFile, TempDir};

use crate::OutputLock;

/// A file written under a temporary name beside `path`, renamed to `path` by [`commit`].
/// Dropped without a commit, the temporary file is removed and `path` is untouched.
///
/// [`commit`]: AtomicFile::commit
pub struct AtomicFile {
    path: PathBuf,
    writer: BufWriter<NamedTempFile>,
    _lock: OutputLock,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let lock = OutputLock::acquire(path)?;
        let dir = parent_dir(path);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let prefix = format!(".{}.", name.as_deref().unwrap_or("out"));
        // Temporary files are private (0600) by default; the output is an ordinary file,
        // readable as the user's umask allows.
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".partial")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "cannot create a file in {} (is the folder writable?)",
                    dir.display()
                )
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: BufWriter::new(temp),
            _lock: lock,
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let temp = self
            .writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
        temp.as_file()
            .sync_all()
            .with_context(|| format!("writing {}", path.display()))?;
        temp.persist(&path).map_err(|e| e.error).with_context(|| {
            format!(
                "cannot move the finished file into place at {}",
                path.display()
            )
        })?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// A folder built under a temporary name beside `path` and swapped into place by
/// [`commit`]; an earlier folder at `path` survives until the new one is complete.
///
/// [`commit`]: AtomicDir::commit
pub struct AtomicDir {
    path: PathBuf,
    staging: TempDir,
    _lock: OutputLock,
}

impl AtomicDir {
    /// Starts a new output folder. An existing non-empty `path` is an error unless `force`.
    pub fn create(path: &Path, force: bool) -> Result<Self> {
        if path.exists() && !force && !is_empty_dir(path) {
            return Err(crate::usage(format!(
                "{} already exists; pass --force to replace it",
                path.display()
            )));
        }
        if path.exists() && !path.is_dir() {
            return Err(crate::usage(format!(
                "{} exists and is not a folder; choose another output path",
                path.display()
            )));
        }
        let dir = parent_dir(path);
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let lock = OutputLock::acquire(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.as_deref().unwrap_or("out")))
            .suffix(".partial")
            .tempdir_in(dir)
            .with_context(|| {
                format!(
                    "cannot create a folder in {} (is it writable?)",
                    dir.display()
                )
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            staging,
            _lock: lock,
        })
    }

    /// Where to write the folder's files while it is being built.
    pub fn staging(&self) -> &Path {
        self.staging.path()
    }

    /// The final location.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished folder into place, replacing an earlier one at the same path.
    pub fn commit(self) -> Result<()> {
        let staging = self.staging.keep();
        let result = swap_into_place(&staging, &self.path);
        if result.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        result
    }
}

fn swap_into_place(staging: &Path, path: &Path) -> Result<()> {
    let old = if path.exists() {
        let old = staging.with_extension("old");
        fs::rename(path, &old)
            .with_context(|| format!("cannot move the earlier {} aside", path.display()))?;
        Some(old)
    } else {
        None
    };
    if let Err(err) = fs::rename(staging, path) {
        if let Some(old) = &old {
            let _ = fs::rename(old, path);
        }
        return Err(err).with_context(|| format!("cannot move the output into {}", path.display()));
    }
    if let Some(old) = old {
        fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove the replaced folder {}", old.display()))?;
    }
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"a,b\n").unwrap();
        assert!(!path.exists());
        file.commit().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a,b\n");
    }

    #[test]
    fn committed_files_get_ordinary_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        AtomicFile::create(&path).unwrap().commit().unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // 0o666 less the umask (022 on CI: 0644), not the temporary file's 0600.
        assert_eq!(mode & 0o600, 0o600, "mode {mode:o}");
        assert_ne!(
            mode, 0o600,
            "mode {mode:o}: left private like a temporary file"
        );
    }

    #[test]
    fn dropped_file_leaves_old_content_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new").unwrap();
        drop(file);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dir_replaces_earlier_only_when_forced_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tensors");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("old.npy"), "old").unwrap();
        assert!(AtomicDir::create(&out, false).is_err());

        let staged = AtomicDir::create(&out, true).unwrap();
        fs::write(staged.staging().join("new.npy"), "new").unwrap();
        assert!(
            out.join("old.npy").exists(),
            "earlier output stays until commit"
        );
        staged.commit().unwrap();
        assert!(!out.join("old.npy").exists());
        assert_eq!(fs::read_to_string(out.join("new.npy")).unwrap(), "new");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no staging left behind"
        );
    }

    /// An output path that is a symlink is replaced by the new output; what it pointed to,
    /// possibly outside the output's folder, is never written or removed.
    #[test]
    fn symlinked_outputs_are_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep.txt"), "keep").unwrap();
        let out_dir = dir.path().join("report");
        std::os::unix::fs::symlink(&outside, &out_dir).unwrap();
        let staged = AtomicDir::create(&out_dir, true).unwrap();
        fs::write(staged.staging().join("report.html"), "new").unwrap();
        staged.commit().unwrap();
        assert!(!out_dir.is_symlink() && out_dir.join("report.html").is_file());
        assert_eq!(
            fs::read_to_string(outside.join("keep.txt")).unwrap(),
            "keep"
        );
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);

        let target = outside.join("target.csv");
        fs::write(&target, "old").unwrap();
        let link = dir.path().join("out.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut file = AtomicFile::create(&link).unwrap();
        file.write_all(b"new").unwrap();
        file.commit().unwrap();
        assert!(!link.is_symlink());
        assert_eq!(fs::read_to_string(&link).unwrap(), "new");
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
    }

    #[test]
    fn dropped_dir_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let staged = AtomicDir::create(&dir.path().join("t"), false).unwrap();
        fs::write(staged.staging().join("x"), "x").unwrap();
        drop(staged);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
