//! Pretrained files from a model hub that speaks Hugging Face's protocol, through the
//! `hf-hub` client and its cache layout (shared with Python's `huggingface_hub`, so a file
//! either tool fetched is found by the other):
//!
//! - `HF_HOME` (default `~/.cache/huggingface`) or `HF_HUB_CACHE` place the cache;
//!   `HF_ENDPOINT` names a mirror; `HF_HUB_OFFLINE=1` forbids the network;
//!   `HF_TOKEN` (or `$HF_HOME/token`) opens gated and private repositories.
//! - A file in the cache is used without touching the network; a download shows a
//!   progress bar with size and rate, resumes from the partial file an interrupted one
//!   left, lands in the cache by rename, and is verified before use: against the SHA-256
//!   pinned in ortl's table (or given), else against the hash the hub itself declares
//!   for large (LFS) files. A file that fails is removed from the cache.
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
        "{file} is not in the model cache ({cache}) and HF_HUB_OFFLINE is set; fetch it where there is network (ortl-weights fetch {fetch}) and copy the cache folder here, or give the file itself as --weights FILE"
    )]
    Offline {
        file: Box<HubFile>,
        cache: PathBuf,
        fetch: String,
    },
    #[error(
        "cannot download {file} from {endpoint}: {cause}; without network, fetch it elsewhere (ortl-weights fetch {fetch}) and copy the model cache ({cache}) here, or give the file itself as --weights FILE"
    )]
    Unreachable {
        file: Box<HubFile>,
        endpoint: String,
        cause: String,
        cache: PathBuf,
        fetch: String,
    },
    #[error(
        "{endpoint}: {file} not found (HTTP 404, {code}); check the repository, revision and file name"
    )]
    NotFound {
        file: Box<HubFile>,
        endpoint: String,
        code: String,
    },
    #[error(
        "{endpoint}: {file} needs authorisation (HTTP {status}): the repository is gated or private; accept its terms on the hub and set HF_TOKEN (or log in, which writes {token})"
    )]
    Unauthorised {
        file: Box<HubFile>,
        endpoint: String,
        status: u16,
        token: PathBuf,
    },
    #[error(
        "download of {file} was interrupted ({cause}); run the same command again to resume from the {partial} bytes already in the cache"
    )]
    Interrupted {
        file: Box<HubFile>,
        cause: String,
        partial: u64,
    },
    #[error(
        "{file}: {found} is not the expected {expected} ({why}); the file was removed from the cache ({cache}) — run again to download it afresh, and if it fails again the upstream file changed: pin a revision with @COMMIT"
    )]
    HashMismatch {
        file: Box<HubFile>,
        found: String,
        expected: String,
        why: &'static str,
        cache: PathBuf,
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

impl Hub {
    /// A hub at `endpoint` with its cache in `cache_dir` (the `hub` folder of `HF_HOME`).
    pub fn new(program: &str, cache_dir: PathBuf, endpoint: &str, offline: bool) -> Self {
        let cache = Cache::new(cache_dir);
        Hub {
            endpoint: endpoint.trim_end_matches('/').into(),
            offline,
            token: cache.token(),
            cache,
            program: program.into(),
        }
    }

    /// The hub and cache the `HF_*` variables name.
    pub fn from_env(program: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let cache = match var("HF_HUB_CACHE") {
            Some(dir) => Cache::new(dir.into()),
            None => Cache::from_env(),
        };
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| cache.token());
        Hub {
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| "https://huggingface.co".into())
                .trim_end_matches('/')
                .into(),
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
            token,
            cache,
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

    /// `file`, from the cache or downloaded into it, verified against `pin` or else the
    /// hub's own hash of it; `fetch` is how to name it to `ortl-weights fetch` in messages.
    pub fn fetch(&self, file: &HubFile, pin: Pin, fetch: &str) -> Result<Fetched, HubError> {
        let cached = self.cache.repo(Self::repo(file)).get(&file.file);
        let (path, downloaded) = match cached {
            Some(path) => (path, false),
            None if self.offline => {
                return Err(HubError::Offline {
                    file: Box::new(file.clone()),
                    cache: self.cache_dir().into(),
                    fetch: fetch.into(),
                });
            }
            None => (self.download(file, fetch)?, true),
        };
        self.verify(file, path, pin, downloaded)
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
        let bar = Bar::new(&file.file);
        api.repo(Self::repo(file))
            .download_with_progress(&file.file, bar)
            .map_err(|e| self.download_error(file, e, fetch))
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
        match error {
            ApiError::RequestError(boxed) => match *boxed {
                ureq::Error::Status(status @ (401 | 403), _) => HubError::Unauthorised {
                    file,
                    endpoint: self.endpoint.clone(),
                    status,
                    token: self.cache.token_path(),
                },
                ureq::Error::Status(404, response) => HubError::NotFound {
                    code: response
                        .header("X-Error-Code")
                        .unwrap_or("no such file")
                        .to_string(),
                    file,
                    endpoint: self.endpoint.clone(),
                },
                ureq::Error::Status(status, _) => HubError::Unreachable {
                    file,
                    endpoint: self.endpoint.clone(),
                    cause: format!("HTTP {status}"),
                    cache: self.cache_dir().into(),
                    fetch: fetch.into(),
                },
                ureq::Error::Transport(transport) => HubError::Unreachable {
                    file,
                    endpoint: self.endpoint.clone(),
                    cause: transport.to_string().replace('\n', " "),
                    cache: self.cache_dir().into(),
                    fetch: fetch.into(),
                },
            },
            ApiError::IoError(cause) => HubError::Interrupted {
                partial,
                file,
                cause: cause.to_string(),
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
        let declared = blob
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| is_sha256(n));
        let expected = match (pin.sha256, &declared) {
            (Some(pin), _) => Some((pin.to_ascii_lowercase(), "pinned by ortl")),
            (None, Some(lfs)) => Some((lfs.clone(), "declared by the hub")),
            (None, None) => None,
        };
        let wrong_size = pin.size.filter(|&pinned| pinned != size);
        let mismatch = match (expected, wrong_size) {
            (Some((expected, why)), _) if expected != sha256 => Some((
                format!("sha256 {sha256}"),
                format!("sha256 {expected}"),
                why,
            )),
            (_, Some(pinned)) => Some((
                format!("size {size} bytes"),
                format!("{pinned} bytes"),
                "pinned by ortl",
            )),
            _ => None,
        };
        if let Some((found, expected, why)) = mismatch {
            // Both names of the bad file go: the blob and the snapshot's link to it.
            let _ = std::fs::remove_file(&blob);
            let _ = std::fs::remove_file(&path);
            return Err(HubError::HashMismatch {
                file: Box::new(file.clone()),
                found,
                expected,
                why,
                cache: self.cache_dir().into(),
            });
        }
        let commit = cache::commit_of(self.cache_dir(), file, &path).unwrap_or_default();
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

/// 64 lower-case hex digits: what the hub's LFS etag is.
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
