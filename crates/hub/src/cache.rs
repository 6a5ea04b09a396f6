//! Reading the model cache's layout (huggingface_hub's, which hf-hub writes):
//! `models--ORG--NAME/{refs/REVISION, blobs/ETAG, snapshots/COMMIT/FILE → ../../blobs/ETAG}`,
//! with `blobs/ETAG.part` holding an interrupted download.

use std::path::{Path, PathBuf};

use crate::HubFile;

/// Whether `text` is a full commit id (40 hex digits): also a git blob id's form.
pub fn is_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where `file` of `repo` at `commit` is in the cache.
pub fn snapshot_path(cache: &Path, repo: &str, commit: &str, file: &str) -> PathBuf {
    repo_folder(cache, repo)
        .join("snapshots")
        .join(commit)
        .join(file)
}

/// Whether a download into `repo`'s blobs holds its lock (hf-hub's `blobs/ETAG.lock`,
/// an exclusive flock while it runs; the file itself stays after).
pub fn download_locked(cache: &Path, repo: &str) -> bool {
    blobs_with_extension(cache, repo, "lock").any(|lock| {
        std::fs::File::open(lock).is_ok_and(|f| match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        })
    })
}

/// Removes `repo`'s partial downloads; returns how many there were.
pub fn drop_partials(cache: &Path, repo: &str) -> usize {
    blobs_with_extension(cache, repo, "part")
        .filter(|part| std::fs::remove_file(part).is_ok())
        .count()
}

/// `repo`'s files in `blobs/` named `*.extension` (hf-hub's `.part` and `.lock`).
fn blobs_with_extension<'a>(
    cache: &Path,
    repo: &str,
    extension: &'a str,
) -> impl Iterator<Item = PathBuf> + 'a {
    std::fs::read_dir(repo_folder(cache, repo).join("blobs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(move |path| path.extension().is_some_and(|x| x == extension))
}

/// One file in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedFile {
    pub repo: String,
    pub commit: String,
    pub file: String,
    pub path: PathBuf,
    pub size: u64,
    /// The file's SHA-256: the blob's name when it is one (the hub's hash of an LFS
    /// file), else computed (a small file, or a cache copied with its links resolved).
    pub sha256: String,
}

fn repo_folder(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// The commit whose snapshot `path` (a file of `file.repo`) is in.
pub fn commit_of(cache: &Path, file: &HubFile, path: &Path) -> Option<String> {
    let snapshots = repo_folder(cache, &file.repo).join("snapshots");
    let relative = path.strip_prefix(&snapshots).ok()?;
    Some(
        relative
            .components()
            .next()?
            .as_os_str()
            .to_string_lossy()
            .into_owned(),
    )
}

/// Bytes already downloaded for `file`'s repository by an interrupted transfer: the largest
/// partial blob (a download resumes from it).
pub fn partial_bytes(cache: &Path, file: &HubFile) -> u64 {
    blobs_with_extension(cache, &file.repo, "part")
        .filter_map(|part| std::fs::metadata(part).ok().map(|m| m.len()))
        .max()
        .unwrap_or(0)
}

/// Every model file in the cache, by repository, commit and name.
pub fn list(cache: &Path) -> std::io::Result<Vec<CachedFile>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(cache) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let folder = entry.file_name().to_string_lossy().into_owned();
        let Some(repo) = folder.strip_prefix("models--") else {
            continue;
        };
        let repo = repo.replacen("--", "/", 1);
        let snapshots = entry.path().join("snapshots");
        let Ok(commits) = std::fs::read_dir(&snapshots) else {
            continue;
        };
        for commit in commits {
            let commit = commit?;
            let root = commit.path();
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                for item in std::fs::read_dir(&dir)? {
                    let path = item?.path();
                    if path.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    // A dangling link (its blob removed) is not a cached file.
                    let Ok(blob) = std::fs::canonicalize(&path) else {
                        continue;
                    };
                    let name = blob.file_name().map(|n| n.to_string_lossy().into_owned());
                    let sha256 = match name.filter(|n| crate::is_sha256(n)) {
                        Some(lfs) => lfs.to_ascii_lowercase(),
                        None => ortl_manifest::train_record::sha256_of_file(&blob)?,
                    };
                    found.push(CachedFile {
                        repo: repo.clone(),
                        commit: commit.file_name().to_string_lossy().into_owned(),
                        file: path
                            .strip_prefix(&root)
                            .expect("under the snapshot")
                            .to_string_lossy()
                            .into_owned(),
                        size: std::fs::metadata(&blob)?.len(),
                        sha256,
                        path,
                    });
                }
            }
        }
    }
    found.sort_by(|a, b| (&a.repo, &a.file, &a.commit).cmp(&(&b.repo, &b.file, &b.commit)));
    Ok(found)
}
