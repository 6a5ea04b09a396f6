//! The images to classify: files, folders (recursed; a sub-folder named like one of the
//! model's classes gives the true label), a manifest (optionally one split), or `-` for
//! newline-separated paths on stdin.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use ortl_imaging::files::{default_extensions, list_images};
use ortl_manifest::Split;
use ortl_manifest::multilabel::AnyManifest;

use crate::ModelInfo;

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The file to read.
    pub path: PathBuf,
    /// The path as written in the output.
    pub shown: String,
    /// True class index, when known (single-label models).
    pub label: Option<usize>,
    /// Per finding of a multi-label model, in its order: present, absent, unknown; None for
    /// images not from a manifest.
    pub targets: Option<Vec<Option<bool>>>,
    /// The manifest split it came from.
    pub split: Option<Split>,
}

/// Expands command-line inputs, in order.
pub fn from_args(args: &[PathBuf], info: &ModelInfo) -> anyhow::Result<Vec<Item>> {
    // A folder named like one finding says nothing of an image's other findings.
    let classes: &[String] = if info.is_multilabel() {
        &[]
    } else {
        &info.classes
    };
    let mut items = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                let line = line.trim_end_matches('\r');
                if !line.is_empty() {
                    items.push(file(Path::new(line), classes));
                }
            }
        } else if arg.is_dir() {
            let listing = list_images(arg, &default_extensions())
                .map_err(|(p, e)| anyhow::anyhow!("{}: cannot list: {e}", p.display()))?;
            items.extend(listing.files.iter().map(|f| file(f, classes)));
        } else if arg
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            return Err(ortl_cli::usage(format!(
                "{}: a CSV file is not an image; a manifest from ortl-split goes to --manifest",
                arg.display()
            )));
        } else {
            items.push(file(arg, classes));
        }
    }
    Ok(items)
}

/// An image whose parent folder, if named like a class, gives its label.
fn file(path: &Path, classes: &[String]) -> Item {
    let parent = path
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned());
    Item {
        path: path.to_path_buf(),
        shown: ortl_manifest::paths::tidy(path),
        label: parent.and_then(|p| classes.iter().position(|c| *c == p)),
        targets: None,
        split: None,
    }
}

/// The rows of a manifest (of one split if given), with their truth mapped onto the
/// model's classes or findings by name. `model` names the model file in errors: a
/// manifest of the other form (findings for a single-label model, or the reverse) is
/// refused.
pub fn from_manifest(
    path: &Path,
    split: Option<Split>,
    info: &ModelInfo,
    model: &Path,
) -> anyhow::Result<Vec<Item>> {
    let manifest = AnyManifest::read(path)?;
    if manifest.task() != info.task {
        anyhow::bail!(
            "{}: a {} manifest, but {} is a {} model; give {}",
            path.display(),
            manifest.task(),
            model.display(),
            info.task,
            if info.is_multilabel() {
                "a multi-label manifest (ortl-split --label-separator or --label-columns)"
            } else {
                "a manifest with one class per image (path,label,class,split)"
            }
        );
    }
    if let Some(unknown) = manifest
        .classes()
        .iter()
        .find(|c| !info.classes.contains(c))
    {
        let what = if info.is_multilabel() {
            "finding"
        } else {
            "class"
        };
        anyhow::bail!(
            "{}: {what} '{unknown}' is not one of the model's {} ({}); use the manifest the model was trained on",
            path.display(),
            info.noun(),
            ortl_cli::name_list(&info.classes)
        );
    }
    // Every row as an item: the file it resolves to, shown tidied, and its split.
    let item = |resolved: PathBuf, split: Split| Item {
        shown: ortl_manifest::paths::tidy(&resolved),
        path: resolved,
        label: None,
        targets: None,
        split: Some(split),
    };
    let rows: Vec<Item> = match &manifest {
        AnyManifest::Classes(m) => m
            .rows
            .iter()
            .map(|r| Item {
                label: info.classes.iter().position(|c| *c == r.class),
                ..item(m.resolve(r), r.split)
            })
            .collect(),
        AnyManifest::Findings(m) => {
            // The manifest's column of each of the model's findings; one it lacks is unknown.
            let columns: Vec<Option<usize>> = info
                .classes
                .iter()
                .map(|f| m.findings.iter().position(|g| g == f))
                .collect();
            m.rows
                .iter()
                .map(|r| Item {
                    targets: Some(
                        columns
                            .iter()
                            .map(|c| c.and_then(|c| r.targets[c]))
                            .collect(),
                    ),
                    ..item(m.resolve(r), r.split)
                })
                .collect()
        }
    };
    if let Some(wanted) = split
        && !rows.iter().any(|r| r.split == Some(wanted))
    {
        let mut present: Vec<String> = rows
            .iter()
            .flat_map(|r| r.split)
            .map(|s| s.to_string())
            .collect();
        present.sort();
        present.dedup();
        anyhow::bail!(
            "{}: no rows in split '{wanted}' (it has {}); pick one of those with --split",
            path.display(),
            present.join(", ")
        );
    }
    Ok(rows
        .into_iter()
        .filter(|r| split.is_none_or(|s| r.split == Some(s)))
        .collect())
}

/// `--shard I/N`: the I-th (from 1) of N contiguous, near-equal parts of the inputs, for
/// array jobs over very large image sets. Shard 1 alone writes the header, so the shards'
/// outputs concatenated in order equal the unsharded output byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The items of this shard, in input order.
    pub fn select<T>(self, mut items: Vec<T>) -> Vec<T> {
        let len = items.len();
        let (start, end) = (
            len * (self.index - 1) / self.count,
            len * self.index / self.count,
        );
        items.truncate(end);
        items.drain(..start);
        items
    }

    pub fn is_first(self) -> bool {
        self.index == 1
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("--shard '{text}': expected I/N with 1 ≤ I ≤ N, e.g. 2/8");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = index.trim().parse().map_err(|_| bad())?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

#[cfg(test)]
mod shard_tests {
    use super::Shard;

    #[test]
    fn shards_partition_the_inputs_in_order() {
        for len in [0, 1, 5, 7, 100] {
            for count in [1, 2, 3, 8] {
                let all: Vec<usize> = (0..len).collect();
                let joined: Vec<usize> = (1..=count)
                    .flat_map(|index| Shard { index, count }.select(all.clone()))
                    .collect();
                assert_eq!(joined, all, "{len} items in {count} shards");
            }
        }
        let sizes: Vec<usize> = (1..=3)
            .map(|index| Shard { index, count: 3 }.select(vec![0; 10]).len())
            .collect();
        assert_eq!(sizes, [3, 3, 4]);
    }

    #[test]
    fn parses_i_of_n() {
        assert_eq!("2/8".parse(), Ok(Shard { index: 2, count: 8 }));
        for bad in ["0/4", "5/4", "1", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains("I/N"), "{bad}");
        }
    }
}
