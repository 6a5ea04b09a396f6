//! Predictions of either kind, told apart by their header
//! ([`multilabel::is_multilabel`]): one class per image (`label`, `p_<class>`) or findings
//! per image (`y_<finding>`, `p_<finding>`, `t_<finding>`). Stdin is read whole first: its
//! header chooses the reader, and it cannot be read twice.

use std::io::Read;
use std::path::{Path, PathBuf};

use ortl_manifest::predictions::multilabel;
use ortl_manifest::{FormatError, Predictions};

/// Predictions files read and pooled as one.
pub enum Loaded {
    Classes(Predictions),
    Findings(multilabel::Predictions),
}

/// Whether CSV text starts with a multi-label predictions header.
fn is_multilabel(text: impl Read) -> bool {
    csv::Reader::from_reader(text)
        .headers()
        .is_ok_and(multilabel::is_multilabel)
}

/// Reads every file (`-`: stdin) and pools them; all must be of one kind.
pub fn read(paths: &[PathBuf]) -> Result<Loaded, FormatError> {
    let mut classes = Vec::new();
    let mut findings = Vec::new();
    for path in paths {
        let stdin = (path.as_os_str() == "-")
            .then(|| {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .map(|_| bytes)
                    .map_err(|source| FormatError::Io {
                        file: "<stdin>".into(),
                        source,
                    })
            })
            .transpose()?;
        let name = if stdin.is_some() {
            Path::new("<stdin>")
        } else {
            path
        };
        // A folder or an unreadable file goes to the single-label reader, which names it.
        let multi = match &stdin {
            Some(bytes) => is_multilabel(bytes.as_slice()),
            None => std::fs::File::open(path).is_ok_and(is_multilabel),
        };
        if multi {
            let preds = match &stdin {
                Some(bytes) => multilabel::Predictions::read(bytes.as_slice(), name)?,
                None => {
                    let file = std::fs::File::open(path).map_err(|source| FormatError::Io {
                        file: path.clone(),
                        source,
                    })?;
                    multilabel::Predictions::read(file, path)?
                }
            };
            findings.push((name.to_path_buf(), preds));
        } else {
            let preds = match &stdin {
                Some(bytes) => Predictions::read(bytes.as_slice(), name)?,
                None => Predictions::from_path(path)?,
            };
            classes.push((name.to_path_buf(), preds));
        }
        if let (Some((single, _)), Some((first_multi, _))) = (classes.first(), findings.first()) {
            let (this, other, kind) = if multi {
                ("multi-label", single, "single-label (label, p_<class>)")
            } else {
                (
                    "single-label",
                    first_multi,
                    "multi-label (y_<finding>, p_<finding>, t_<finding>)",
                )
            };
            return Err(FormatError::Invalid {
                file: name.into(),
                message: format!(
                    "{this} predictions, but {} holds {kind} ones; report each kind on its own",
                    other.display()
                ),
            });
        }
    }
    if findings.is_empty() {
        Predictions::pool(classes).map(Loaded::Classes)
    } else {
        multilabel::Predictions::pool(findings).map(Loaded::Findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_chooses_the_reader_and_kinds_are_not_pooled() {
        let dir = ortl_fixtures::Workdir::new();
        let single = dir.join("single.csv");
        std::fs::write(&single, "path,label,p_a,p_b\nx.png,1,0.2,0.8\n").unwrap();
        let multi = dir.join("multi.csv");
        std::fs::write(&multi, "path,y_A,p_A,t_A\nx.png,1,0.8,0.5\n").unwrap();
        assert!(matches!(
            read(std::slice::from_ref(&single)),
            Ok(Loaded::Classes(_))
        ));
        let Ok(Loaded::Findings(p)) = read(&[multi.clone(), multi.clone()]) else {
            panic!("multi-label predictions");
        };
        assert_eq!(p.targets.len(), 2, "pooled");
        let message = read(&[single, multi]).err().unwrap().to_string();
        assert!(
            message.contains("multi.csv: multi-label predictions, but")
                && message.contains("single.csv holds single-label"),
            "{message}"
        );
    }
}
