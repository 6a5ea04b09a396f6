//! Pretrained files from a model hub that speaks Hugging Face's protocol, through the
//! `hf-hub` client, in the cache layout Python's `huggingface_hub` uses
//! (`models--ORG--NAME/{blobs,snapshots,refs}`): a file either tool fetched is found by the
//! other, by branch through `refs/` or by commit through `snapshots/COMMIT/` directly.
//!
//! - `HF_HUB_CACHE`, else `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//!   `~/.cache/huggingface/hub` is the cache; `HF_ENDPOINT` names a mirror;
//!   `HF_HUB_OFFLINE=1` forbids the network; `HF_TOKEN` (or the file `HF_TOKEN_PATH`, else
//!   `HF_HOME/token`, where `huggingface-cli login` writes it) opens gated repositories.
//! - A file in the cache is used without touching the network; a download shows a
//!   progress bar with size and rate, resumes from the partial file an interrupted one
//!   left (a partial file that cannot be resumed is dropped and the download restarted
//!   once), lands in the cache by rename, and is verified before use: first against the
//!   hash the hub declares (an LFS file's SHA-256, a small file's git blob id), a failure
//!   meaning a corrupt transfer, whose file is removed; then against the SHA-256 pinned in
//!   ortl's table, a failure meaning the upstream file changed, which is refused but kept.
//!
//! [`spec`] says what `--weights` and `--backbone` accept; [`resolve`] turns those into a
//! file on disk with its provenance.

pub mod cache;
pub mod spec;

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use ortl_manifest::train_record::{Weights, sha256_of_file};

pub use spec::{HubFile, WeightsSpec, resolve};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "{file} is not in the model cache ({cache}) and HF_HUB_OFFLINE is set; fetch it where there is network (ortl-weights fetch {fetch}) and copy the cache folder here, or use a local copy of the file instead (ortl-train --weights FILE)"
    )]
    Offline {
        file: Box<HubFile>,
        cache: PathBuf,
        fetch: String,
    },
    #[error(
        "cannot download {file} from {endpoint}: {cause}; without network, fetch it elsewhere (ortl-weights fetch {fetch}) and copy the model cache ({cache}) here, or use a local copy of the file instead (ortl-train --weights FILE)"
    )]
    Unreachable {
        file: Box<HubFile>,
        endpoint: String,
        cause: String,
        cache: PathBuf,
        fetch: String,
    },
    #[error("{endpoint}: {file} not found ({code}); check the repository, revision and file name")]
    NotFound {
        file: Box<HubFile>,
        endpoint: String,
        code: String,
    },
    #[error(
        "{endpoint}: {file} needs authorisation (HTTP {status}{code}): the repository is gated or private; accept its terms on the hub and set HF_TOKEN (or log in, which writes {token})"
    )]
    Unauthorised {
        file: Box<HubFile>,
        endpoint: String,
        status: u16,
        code: String,
        token: PathBuf,
    },
    #[error(
        "download of {file} was interrupted ({cause}); run the same command again to resume from the {partial} bytes already downloaded"
    )]
    Interrupted {
        file: Box<HubFile>,
        cause: String,
        partial: u64,
    },
    #[error(
        "cannot write {file} into the model cache {cache}: {cause}; make it writable or point HF_HOME (or HF_HUB_CACHE) elsewhere"
    )]
    CacheUnwritable {
        file: Box<HubFile>,
        cache: PathBuf,
        cause: String,
    },
    #[error("another process is downloading {file} into {cache}; run again when it has finished")]
    Busy { file: Box<HubFile>, cache: PathBuf },
    #[error(
        "{file}: the download is corrupt: {found}, but the hub declares {expected}; it was removed from the cache ({cache}), {again}"
    )]
    Corrupt {
        file: Box<HubFile>,
        found: String,
        expected: String,
        cache: PathBuf,
        again: &'static str,
    },
    #[error(
        "{file} at commit {commit}: {found} is not the {expected} ortl pinned: the upstream file changed since; the file stays in the cache ({path}); to use it anyway, name it with its commit (--weights hf:{}@{commit}:{}), or use a local copy (--weights FILE)",
        .file.repo,
        .file.file
    )]
    PinMismatch {
        file: Box<HubFile>,
        commit: String,
        found: String,
        expected: String,
        path: PathBuf,
    },
    #[error("{file}: {cause}")]
    Other { file: Box<HubFile>, cause: String },
}

/// What a file must be, when known ahead: ortl's table pins these.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pin<'a> {
    pub sha256: Option<&'a str>,
    pub size: Option<u64>,
}

/// A verified file in the cache and where it came from.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub file: HubFile,
    /// The commit the revision resolved to.
    pub commit: String,
    pub sha256: String,
    /// The hash was pinned (ortl's table or `@`-given) rather than recorded on first use.
    pub pinned: bool,
    pub size: u64,
    pub downloaded: bool,
}

impl Fetched {
    pub fn weights(&self) -> Weights {
        Weights::Hub {
            repo: self.file.repo.clone(),
            revision: self.commit.clone(),
            file: self.file.file.clone(),
            sha256: self.sha256.clone(),
            pinned: self.pinned,
        }
    }
}

/// The hub and its cache as the environment configures them.
pub struct Hub {
    cache: Cache,
    endpoint: String,
    offline: bool,
    token: Option<String>,
    /// Where a login token is read from, for messages.
    token_path: PathBuf,
    /// Who speaks on stderr: `ortl-train`, `ortl-weights`.
    program: String,
}

/// `HF_HUB_OFFLINE`'s true values, as huggingface_hub reads them.
fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

fn read_token(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

impl Hub {
    /// A hub at `endpoint` with its cache in `cache_dir` and the login token, if any, in
    /// the folder above it (as `HF_HOME/hub` and `HF_HOME/token` sit).
    pub fn new(program: &str, cache_dir: PathBuf, endpoint: &str, offline: bool) -> Self {
        let token_path = cache_dir
            .parent()
            .map_or_else(|| PathBuf::from("token"), |home| home.join("token"));
        Hub {
            endpoint: endpoint.trim_end_matches('/').into(),
            offline,
            token: read_token(&token_path),
            token_path,
            cache: Cache::new(cache_dir),
            program: program.into(),
        }
    }

    /// The hub and cache the `HF_*` variables name, as huggingface_hub reads them.
    pub fn from_env(program: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = var("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
                var("HOME")
                    .map_or_else(|| PathBuf::from("."), PathBuf::from)
                    .join(".cache")
            });
            cache.join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE").map_or_else(|| home.join("hub"), PathBuf::from);
        let token_path = var("HF_TOKEN_PATH").map_or_else(|| home.join("token"), PathBuf::from);
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| read_token(&token_path));
        Hub {
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| "https://huggingface.co".into())
                .trim_end_matches('/')
                .into(),
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
            token,
            token_path,
            cache: Cache::new(cache_dir),
            program: program.into(),
        }
    }

    pub fn cache_dir(&self) -> &Path {
        self.cache.path()
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn repo(file: &HubFile) -> Repo {
        Repo::with_revision(file.repo.clone(), RepoType::Model, file.revision().into())
    }

    /// The cached copy of `file`: by commit straight from its snapshot (huggingface_hub
    /// writes no ref for a commit), by branch or tag through `refs/`.
    fn cached(&self, file: &HubFile) -> Option<PathBuf> {
        if let Some(commit) = file.revision.as_deref().filter(|r| cache::is_commit(r)) {
            let path = cache::snapshot_path(self.cache_dir(), &file.repo, commit, &file.file);
            return path.exists().then_some(path);
        }
        self.cache.repo(Self::repo(file)).get(&file.file)
    }

    /// `file`, from the cache or downloaded into it, verified against the hub's declared
    /// hash and `pin`; `fetch` is how to name it to `ortl-weights fetch` in messages.
    pub fn fetch(&self, file: &HubFile, pin: Pin, fetch: &str) -> Result<Fetched, HubError> {
        let (path, downloaded) = match self.cached(file) {
            Some(path) => (path, false),
            None if self.offline => {
                return Err(HubError::Offline {
                    file: Box::new(file.clone()),
                    cache: self.cache_dir().into(),
                    fetch: fetch.into(),
                });
            }
            None => match self.download(file, fetch) {
                // Another process (a parallel `make compare`, a job on a shared cache) holds
                // the download: wait for its file rather than fetch it twice.
                Err(HubError::Busy { .. }) => match self.wait_for(file) {
                    Some(path) => (path, false),
                    None => (self.download(file, fetch)?, true),
                },
                other => (other?, true),
            },
        };
        self.verify(file, path, pin, downloaded)
    }

    /// The file another process is downloading, once it is in the cache; `None` when that
    /// download ended without it (interrupted: this process takes over and resumes).
    fn wait_for(&self, file: &HubFile) -> Option<PathBuf> {
        eprintln!(
            "{}: another process is downloading {file} into {}; waiting for it",
            self.program,
            self.cache_dir().display()
        );
        let lock_held = || cache::download_locked(self.cache_dir(), &file.repo);
        while lock_held() {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        self.cached(file)
    }

    fn download(&self, file: &HubFile, fetch: &str) -> Result<PathBuf, HubError> {
        let api = self.api().map_err(|e| HubError::Other {
            file: Box::new(file.clone()),
            cause: e.to_string(),
        })?;
        eprintln!(
            "{}: downloading {file} from {} into {}",
            self.program,
            self.endpoint,
            self.cache_dir().display()
        );
        let get = || {
            api.repo(Self::repo(file))
                .download_with_progress(&file.file, Bar::new(&file.file))
        };
        match get() {
            // A partial file that cannot be resumed (larger than the file, or all of it
            // with the rename missed, which the hub answers with 416): dropped, and the
            // download starts over once.
            Err(ApiError::InvalidResume) => {}
            Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::Status(416, _)) => {}
            other => return other.map_err(|e| self.download_error(file, e, fetch)),
        }
        let dropped = cache::drop_partials(self.cache_dir(), &file.repo);
        eprintln!(
            "{}: dropped {dropped} partial download(s) that could not be resumed; starting over",
            self.program
        );
        get().map_err(|e| self.download_error(file, e, fetch))
    }

    fn api(&self) -> Result<Api, ApiError> {
        ApiBuilder::from_cache(self.cache.clone())
            .with_endpoint(self.endpoint.clone())
            .with_token(self.token.clone())
            .with_progress(false)
            .with_user_agent("ortl", env!("CARGO_PKG_VERSION"))
            .build()
    }

    fn download_error(&self, file: &HubFile, error: ApiError, fetch: &str) -> HubError {
        let partial = cache::partial_bytes(self.cache_dir(), file);
        let file = Box::new(file.clone());
        let unreachable = |cause: String| HubError::Unreachable {
            file: file.clone(),
            endpoint: self.endpoint.clone(),
            cause,
            cache: self.cache_dir().into(),
            fetch: fetch.into(),
        };
        match error {
            ApiError::RequestError(boxed) => match *boxed {
                ureq::Error::Status(status, response) => {
                    let code = response.header("X-Error-Code").map(String::from);
                    match (status, code.as_deref()) {
                        // The hub answers 401 for a repository that does not exist when no
                        // token is sent: not found, as huggingface_hub reads it.
                        (404, _)
                        | (
                            401 | 403,
                            Some("RepoNotFound" | "EntryNotFound" | "RevisionNotFound"),
                        ) => HubError::NotFound {
                            code: format!(
                                "HTTP {status}, {}",
                                code.as_deref().unwrap_or("no such file")
                            ),
                            file,
                            endpoint: self.endpoint.clone(),
                        },
                        (401 | 403, code) => HubError::Unauthorised {
                            file,
                            endpoint: self.endpoint.clone(),
                            status,
                            code: code.map_or(String::new(), |c| format!(", {c}")),
                            token: self.token_path.clone(),
                        },
                        (status, _) => unreachable(format!("HTTP {status}")),
                    }
                }
                ureq::Error::Transport(transport) => {
                    unreachable(transport.to_string().replace('\n', " "))
                }
            },
            ApiError::IoError(cause) if is_connection(&cause) => HubError::Interrupted {
                partial,
                file,
                cause: cause.to_string(),
            },
            ApiError::IoError(cause) => HubError::CacheUnwritable {
                file,
                cache: self.cache_dir().into(),
                cause: cause.to_string(),
            },
            ApiError::LockAcquisition(_) => HubError::Busy {
                file,
                cache: self.cache_dir().into(),
            },
            other => HubError::Other {
                file,
                cause: other.to_string(),
            },
        }
    }

    fn verify(
        &self,
        file: &HubFile,
        path: PathBuf,
        pin: Pin,
        downloaded: bool,
    ) -> Result<Fetched, HubError> {
        let other = |cause: std::io::Error| HubError::Other {
            file: Box::new(file.clone()),
            cause: format!("{}: {cause}", path.display()),
        };
        let blob = std::fs::canonicalize(&path).map_err(other)?;
        let size = std::fs::metadata(&blob).map_err(other)?.len();
        let sha256 = sha256_of_file(&blob).map_err(other)?;
        let commit = cache::commit_of(self.cache_dir(), file, &path).unwrap_or_default();
        // What the hub declared when the file came: the blob is named by it.
        let declared = blob.file_name().map(|n| n.to_string_lossy().into_owned());
        let corrupt = match declared.as_deref() {
            Some(lfs) if is_sha256(lfs) && !lfs.eq_ignore_ascii_case(&sha256) => {
                Some((format!("sha256 {sha256}"), format!("sha256 {lfs}")))
            }
            Some(git) if cache::is_commit(git) => {
                let blob_id = git_blob_id(&blob).map_err(other)?;
                (!git.eq_ignore_ascii_case(&blob_id))
                    .then(|| (format!("git blob {blob_id}"), format!("git blob {git}")))
            }
            _ => None,
        };
        if let Some((found, expected)) = corrupt {
            // Both names of the bad file go: the blob and the snapshot's link to it.
            let _ = std::fs::remove_file(&blob);
            let _ = std::fs::remove_file(&path);
            return Err(HubError::Corrupt {
                file: Box::new(file.clone()),
                found,
                expected,
                cache: self.cache_dir().into(),
                again: if self.offline {
                    "fetch it again where there is network"
                } else {
                    "run again to download it afresh"
                },
            });
        }
        let pin_mismatch = match (pin.sha256, pin.size) {
            (Some(pinned), _) if !pinned.eq_ignore_ascii_case(&sha256) => {
                Some((format!("sha256 {sha256}"), format!("sha256 {pinned}")))
            }
            (_, Some(pinned)) if pinned != size => Some((
                format!("a file of {size} bytes"),
                format!("size of {pinned} bytes"),
            )),
            _ => None,
        };
        if let Some((found, expected)) = pin_mismatch {
            return Err(HubError::PinMismatch {
                file: Box::new(file.clone()),
                commit: commit.clone(),
                found,
                expected,
                path,
            });
        }
        Ok(Fetched {
            path,
            file: file.clone(),
            commit,
            pinned: pin.sha256.is_some(),
            sha256,
            size,
            downloaded,
        })
    }
}

/// Whether an I/O error during a transfer is the connection's (resumable), not the disk's.
fn is_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionReset | ConnectionAborted | UnexpectedEof | TimedOut | BrokenPipe | Interrupted
    )
}

/// git's id of a blob: SHA-1 of `blob {len}\0` and the bytes (the hub's ETag of a file
/// stored in git rather than LFS).
fn git_blob_id(path: &Path) -> std::io::Result<String> {
    use sha1::Digest;
    let bytes = std::fs::read(path)?;
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(&bytes);
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// 64 hex digits: what the hub's LFS etag (a SHA-256) is.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The download's progress bar: size, bytes so far, rate and time left, on stderr when it
/// is a terminal.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new(name: &str) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(name.to_string());
        Bar(bar)
    }
}

impl hf_hub::api::Progress for Bar {
    fn init(&mut self, size: usize, _filename: &str) {
        self.0.set_length(size as u64);
    }

    fn update(&mut self, size: usize) {
        self.0.inc(size as u64);
    }

    fn finish(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_reads_the_values_huggingface_hub_reads() {
        for yes in ["1", "true", "YES", " on "] {
            assert!(truthy(yes), "{yes}");
        }
        for no in ["0", "false", "off", ""] {
            assert!(!truthy(no), "{no}");
        }
    }

    #[test]
    fn sha256_names_are_64_hex_digits() {
        assert!(is_sha256(&"a".repeat(64)));
        assert!(!is_sha256(&"a".repeat(40)));
        assert!(!is_sha256(&"g".repeat(64)));
    }
}
