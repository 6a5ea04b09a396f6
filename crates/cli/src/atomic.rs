//! Outputs appear whole or not at all: a regular file is written under a temporary name in
//! the destination's folder and renamed into place once complete, so an interrupted run
//! never leaves a file (or a folder of shards) that looks finished. A path that names
//! something else — a character device (`/dev/null`), a FIFO, a socket, `/dev/stdout` — is
//! opened and written directly, since renaming over it would replace the device with a
//! file; a symlink is followed, and what it points to is written (atomically when that is
//! a regular file).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::{NamedTempFile, TempDir};

use crate::OutputLock;

/// What a named output path turns out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// A regular file, or nothing yet: written atomically at this path (symlinks resolved).
    Regular(PathBuf),
    /// A device, FIFO or socket: opened and written in place.
    Special(PathBuf),
}

impl Destination {
    /// Classifies `path`, following symlinks (a dangling one names the file it would create).
    pub fn of(path: &Path) -> Result<Self> {
        let Some(resolved) = follow_symlinks(path)? else {
            return match fs::metadata(path) {
                Ok(meta) if meta.is_dir() => Err(is_a_folder(path)),
                Ok(_) => Ok(Destination::Special(path.to_path_buf())),
                Err(_) => Ok(Destination::Regular(path.to_path_buf())),
            };
        };
        match fs::metadata(&resolved) {
            Ok(meta) if meta.is_dir() => Err(is_a_folder(path)),
            Ok(meta) if !meta.is_file() => Ok(Destination::Special(resolved)),
            _ => Ok(Destination::Regular(resolved)),
        }
    }
}

fn is_a_folder(path: &Path) -> anyhow::Error {
    crate::usage(format!(
        "{} is a folder; name a file to write",
        path.display()
    ))
}

/// Whether `path` names an open descriptor of this process (`/dev/stdout`, `/dev/fd/N`,
/// `/proc/self/fd/N`): what it reaches is written as the shell set it up (a pipe, or a
/// file opened by `>` or `>>`), never replaced by a new file.
fn is_descriptor(path: &Path) -> bool {
    ["/dev/stdout", "/dev/stderr", "/dev/stdin"]
        .iter()
        .any(|p| path == Path::new(p))
        || path.starts_with("/dev/fd")
        || path.starts_with("/proc/self/fd")
        || path.starts_with("/proc/thread-self/fd")
}

/// The path a chain of symlinks ends at (relative links taken from their own folder; a
/// dangling link names the file it would create), or `None` when the chain reaches an open
/// descriptor (`/dev/stdout` → `/proc/self/fd/1` → `pipe:[…]` or the shell's redirection
/// target).
pub fn follow_symlinks(path: &Path) -> Result<Option<PathBuf>> {
    let mut current = path.to_path_buf();
    // The kernel's own limit on links followed in one lookup.
    for _ in 0..40 {
        if is_descriptor(&current) {
            return Ok(None);
        }
        if !current.is_symlink() {
            return Ok(Some(current));
        }
        let target = fs::read_link(&current)
            .with_context(|| format!("cannot read the symlink {}", current.display()))?;
        current = parent_dir(&current).join(target);
    }
    Err(crate::usage(format!(
        "{}: too many levels of symlinks",
        path.display()
    )))
}

/// A file written under a temporary name beside `path`, renamed to `path` by [`commit`].
/// Dropped without a commit, the temporary file is removed and `path` is untouched. A `path`
/// that is a device, FIFO or socket (see [`Destination`]) is written directly instead.
///
/// [`commit`]: AtomicFile::commit
pub struct AtomicFile {
    path: PathBuf,
    writer: Writer,
}

enum Writer {
    Staged {
        temp: BufWriter<NamedTempFile>,
        /// Where the file lands: `path` with its symlinks followed.
        target: PathBuf,
        _lock: OutputLock,
    },
    Direct(BufWriter<File>),
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        Self::at(path, Destination::of(path)?)
    }

    /// Writes `path`, already classified as `destination` (see [`Destination::of`]).
    pub fn at(path: &Path, destination: Destination) -> Result<Self> {
        let writer = match destination {
            Destination::Special(special) => {
                // Appending: `/dev/stdout` redirected to a file (`>` or `>>`) opens that file
                // afresh, at offset 0; a device or FIFO is the same either way. (A regular
                // file is special only when named through a descriptor.)
                let file = fs::OpenOptions::new()
                    .append(true)
                    .open(&special)
                    .with_context(|| format!("cannot open {} for writing", path.display()))?;
                Writer::Direct(BufWriter::new(file))
            }
            Destination::Regular(regular) => {
                let lock = OutputLock::acquire(&regular)?;
                let temp = temp_file_beside(&regular)?;
                Writer::Staged {
                    temp: BufWriter::new(temp),
                    target: regular,
                    _lock: lock,
                }
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            writer,
        })
    }

    /// Flushes, syncs and renames the file into place (a special file: flushes).
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let context = || format!("writing {}", path.display());
        match self.writer {
            Writer::Direct(mut file) => file.flush().with_context(context),
            Writer::Staged {
                temp,
                target,
                _lock,
            } => {
                let temp = temp
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(context)?;
                temp.as_file().sync_all().with_context(context)?;
                temp.persist(&target)
                    .map_err(|e| e.error)
                    .with_context(|| {
                        format!(
                            "cannot move the finished file into place at {}",
                            path.display()
                        )
                    })?;
                Ok(())
            }
        }
    }
}

/// A private temporary file in `path`'s folder, named after it.
fn temp_file_beside(path: &Path) -> Result<NamedTempFile> {
    let dir = parent_dir(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let prefix = format!(".{}.", name.as_deref().unwrap_or("out"));
    // Temporary files are private (0600) by default; the output is an ordinary file,
    // readable as the user's umask allows.
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot create a file in {} (is the folder writable?)",
                dir.display()
            )
        })
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.writer {
            Writer::Staged { temp, .. } => temp.write(buf),
            Writer::Direct(file) => file.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Writer::Staged { temp, .. } => temp.flush(),
            Writer::Direct(file) => file.flush(),
        }
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
    /// A symlink to a folder is followed: the folder it points to is replaced.
    pub fn create(named: &Path, force: bool) -> Result<Self> {
        let resolved = follow_symlinks(named)?.unwrap_or_else(|| named.to_path_buf());
        let path = resolved.as_path();
        if path.exists() && !path.is_dir() {
            return Err(crate::usage(format!(
                "{} exists and is not a folder; choose another output path",
                named.display()
            )));
        }
        if path.exists() && !force && !is_empty_dir(path) {
            return Err(crate::usage(format!(
                "{} already exists; pass --force to replace it",
                named.display()
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

    /// An output path that is a symlink is followed: what it points to gets the output
    /// (atomically, as any regular file) and the link stays a link.
    #[test]
    fn symlinked_outputs_are_followed_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("old.txt"), "old").unwrap();
        let out_dir = dir.path().join("report");
        std::os::unix::fs::symlink("outside", &out_dir).unwrap();
        let staged = AtomicDir::create(&out_dir, true).unwrap();
        fs::write(staged.staging().join("report.html"), "new").unwrap();
        staged.commit().unwrap();
        assert!(out_dir.is_symlink());
        assert_eq!(
            fs::read_to_string(outside.join("report.html")).unwrap(),
            "new"
        );
        assert!(!outside.join("old.txt").exists());

        let target = outside.join("target.csv");
        fs::write(&target, "old").unwrap();
        let link = dir.path().join("out.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut file = AtomicFile::create(&link).unwrap();
        file.write_all(b"new").unwrap();
        file.commit().unwrap();
        assert!(link.is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");

        // A dangling link names the file it would create.
        let dangling = dir.path().join("later.csv");
        std::os::unix::fs::symlink("outside/created.csv", &dangling).unwrap();
        let mut file = AtomicFile::create(&dangling).unwrap();
        file.write_all(b"made").unwrap();
        file.commit().unwrap();
        assert!(dangling.is_symlink());
        assert_eq!(
            fs::read_to_string(outside.join("created.csv")).unwrap(),
            "made"
        );
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A FIFO gets the bytes through its reader and is still a FIFO after: no temporary
    /// file beside it, no rename over it.
    #[test]
    fn fifo_is_written_through() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        mkfifo(&fifo);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
        };
        let mut file = AtomicFile::create(&fifo).unwrap();
        file.write_all(b"path,label\n").unwrap();
        file.commit().unwrap();
        assert_eq!(reader.join().unwrap(), "path,label\n");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing beside it"
        );
    }

    /// A character device made with mknod (root only; CI runs as root) is written and
    /// stays a character device.
    #[test]
    fn character_device_stays_a_device() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let null = dir.path().join("null");
        // 1,3 is /dev/null's major and minor number.
        let made = std::process::Command::new("mknod")
            .args([null.as_os_str(), "c".as_ref(), "1".as_ref(), "3".as_ref()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            eprintln!("skipped: mknod needs root (CI runs as root)");
            return;
        }
        for _ in 0..2 {
            let mut file = AtomicFile::create(&null).unwrap();
            file.write_all(&[0u8; 4096]).unwrap();
            file.commit().unwrap();
            assert!(
                fs::symlink_metadata(&null)
                    .unwrap()
                    .file_type()
                    .is_char_device()
            );
        }
        // A folder output aimed at a device is refused, and the device stays.
        assert!(AtomicDir::create(&null, true).is_err());
        assert!(
            fs::symlink_metadata(&null)
                .unwrap()
                .file_type()
                .is_char_device()
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no lock or temp file"
        );
    }

    #[test]
    fn dev_paths_are_written_through_and_folders_refused() {
        assert_eq!(
            Destination::of(Path::new("/dev/null")).unwrap(),
            Destination::Special("/dev/null".into())
        );
        assert_eq!(
            Destination::of(Path::new("/dev/stdout")).unwrap(),
            Destination::Special("/dev/stdout".into())
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(Destination::of(dir.path()).is_err());
        // A regular file under /dev (tmpfs in /dev/shm) is a file like any other: replaced
        // atomically, and only with --force.
        if Path::new("/dev/shm").is_dir() {
            let shm = tempfile::tempdir_in("/dev/shm").unwrap();
            let file = shm.path().join("p.csv");
            fs::write(&file, "old").unwrap();
            assert_eq!(
                Destination::of(&file).unwrap(),
                Destination::Regular(file.clone())
            );
        }
        let new = dir.path().join("new.csv");
        assert_eq!(Destination::of(&new).unwrap(), Destination::Regular(new));
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
