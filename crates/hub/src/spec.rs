//! What `--weights` and `--backbone` name on a hub, and how a name becomes a verified file.

use std::path::PathBuf;

use ortl_manifest::train_record::Weights;
use ortl_models::pretrained::{self, Source};

use crate::{Hub, HubError, Pin};

/// A file in a hub repository, written `hf:ORG/REPO[@REVISION][:FILE]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubFile {
    pub repo: String,
    /// A branch, tag or commit; the hub's default branch when absent.
    pub revision: Option<String>,
    pub file: String,
}

impl HubFile {
    /// Parses `hf:ORG/REPO[@REVISION][:FILE]`; without `:FILE`, `default_file`.
    pub fn parse(text: &str, default_file: Option<&str>) -> Result<Self, String> {
        let form = "write it hf:ORG/REPO[@REVISION][:FILE]";
        let rest = text
            .strip_prefix("hf:")
            .ok_or_else(|| format!("'{text}' is not a hub name; {form}"))?;
        let (repo_revision, file) = match rest.split_once(':') {
            Some((head, file)) => (head, Some(file)),
            None => (rest, None),
        };
        let (repo, revision) = match repo_revision.split_once('@') {
            Some((repo, revision)) => (repo, Some(revision)),
            None => (repo_revision, None),
        };
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match repo.split_once('/') {
            Some((org, name)) if valid_part(org) && valid_part(name) => {}
            _ => return Err(format!("'{text}': the repository must be ORG/NAME; {form}")),
        }
        // A revision names a ref file in the cache: no empty part, no `..`.
        if revision.is_some_and(|r| r.is_empty() || r.split('/').any(|p| p.is_empty() || p == ".."))
        {
            return Err(format!(
                "'{text}': the revision after @ is empty or not a branch, tag or commit; {form}"
            ));
        }
        let file = match file.or(default_file) {
            Some(f) if !f.is_empty() && !f.split('/').any(|p| p.is_empty() || p == "..") => f,
            Some(_) => {
                return Err(format!(
                    "'{text}': the file name is empty or leaves the repository; {form}"
                ));
            }
            None => return Err(format!("'{text}' names no file; {form}")),
        };
        Ok(HubFile {
            repo: repo.into(),
            revision: revision.map(String::from),
            file: file.into(),
        })
    }

    /// The revision asked for: `main` when none was.
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or("main")
    }
}

impl std::fmt::Display for HubFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "hf:{}", self.repo)?;
        if let Some(revision) = &self.revision {
            write!(f, "@{revision}")?;
        }
        write!(f, ":{}", self.file)
    }
}

/// `--weights`: `imagenet` (ortl's table), a hub file or a local file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightsSpec {
    ImageNet,
    Hub(HubFile),
    File(PathBuf),
}

impl std::str::FromStr for WeightsSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("imagenet") {
            Ok(WeightsSpec::ImageNet)
        } else if text.starts_with("hf:") {
            HubFile::parse(text, Some("model.safetensors")).map(WeightsSpec::Hub)
        } else {
            Ok(WeightsSpec::File(text.into()))
        }
    }
}

/// What a table entry's file must be.
pub fn source_pin(source: &Source) -> Pin<'_> {
    Pin {
        sha256: source.sha256.as_deref(),
        size: source.size,
    }
}

/// Where a table entry's file is on the hub.
pub fn source_file(source: &Source) -> HubFile {
    HubFile {
        repo: source.repo.clone(),
        revision: source.revision.clone(),
        file: source.file.clone(),
    }
}

/// Weights on disk, ready to load, and what they are.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub path: PathBuf,
    pub weights: Weights,
    /// The table's entry, for `imagenet`: its rename map, normalisation and BatchNorm
    /// epsilon go with the file.
    pub source: Option<&'static Source>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The request cannot be met whatever the network does: a usage error.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// The weights `spec` names for the built-in `backbone`, downloaded or found in `hub`'s cache
/// and verified.
pub fn resolve(backbone: &str, spec: &WeightsSpec, hub: &Hub) -> Result<Resolved, ResolveError> {
    match spec {
        WeightsSpec::File(path) => Ok(Resolved {
            path: path.clone(),
            weights: Weights::File {
                file: path.display().to_string(),
                sha256: None,
            },
            source: None,
        }),
        WeightsSpec::ImageNet => {
            let source = pretrained::imagenet(backbone).ok_or_else(|| {
                ResolveError::Usage(format!(
                    "--weights imagenet: ortl knows no ImageNet weights for {backbone}; it knows them for {} (give another file as --weights hf:ORG/REPO[:FILE] or FILE.safetensors)",
                    pretrained::imagenet_backbones()
                ))
            })?;
            let fetched = hub.fetch(&source_file(source), source_pin(source), backbone)?;
            Ok(Resolved {
                path: fetched.path.clone(),
                weights: fetched.weights(),
                source: Some(source),
            })
        }
        WeightsSpec::Hub(file) => {
            let fetched = hub.fetch(file, Pin::default(), &file.to_string())?;
            Ok(Resolved {
                path: fetched.path.clone(),
                weights: fetched.weights(),
                source: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names_parse_with_and_without_revision_and_file() {
        let parse = |t| HubFile::parse(t, Some("model.safetensors"));
        assert_eq!(
            parse("hf:timm/resnet50.tv_in1k").unwrap(),
            HubFile {
                repo: "timm/resnet50.tv_in1k".into(),
                revision: None,
                file: "model.safetensors".into()
            }
        );
        let pinned = parse("hf:org/repo@0123abc:onnx/model.onnx").unwrap();
        assert_eq!(pinned.revision(), "0123abc");
        assert_eq!(pinned.file, "onnx/model.onnx");
        assert_eq!(pinned.to_string(), "hf:org/repo@0123abc:onnx/model.onnx");
        assert_eq!(parse("hf:org/repo").unwrap().revision(), "main");
        for bad in [
            "hf:repo",
            "hf:/repo",
            "hf:org/re po",
            "hf:org/repo@",
            "hf:org/repo@../x",
            "hf:org/repo:",
            "hf:org/repo:../x",
            "timm/resnet50",
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
        assert!(HubFile::parse("hf:org/repo", None).is_err());
    }

    #[test]
    fn weights_specs_tell_the_table_the_hub_and_files_apart() {
        assert_eq!("ImageNet".parse(), Ok(WeightsSpec::ImageNet));
        assert!(matches!("hf:a/b".parse(), Ok(WeightsSpec::Hub(_))));
        assert_eq!(
            "w/resnet50.safetensors".parse(),
            Ok(WeightsSpec::File("w/resnet50.safetensors".into()))
        );
    }
}
