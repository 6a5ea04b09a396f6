//! The images to classify: files, folders (recursed; a sub-folder named like one of the
//! model's classes gives the true label), a manifest (optionally one split), or `-` for
//! newline-separated paths on stdin.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use ortl_imaging::files::{default_extensions, list_images};
use ortl_manifest::{Manifest, Split};

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The file to read.
    pub path: PathBuf,
    /// The path as written in the output.
    pub shown: String,
    /// True class index, when known.
    pub label: Option<usize>,
}

/// Expands command-line inputs, in order.
pub fn from_args(args: &[PathBuf], classes: &[String]) -> anyhow::Result<Vec<Item>> {
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
        shown: path.to_string_lossy().into_owned(),
        label: parent.and_then(|p| classes.iter().position(|c| *c == p)),
    }
}

/// The rows of a manifest (of one split if given), with their labels mapped onto the
/// model's classes by name.
pub fn from_manifest(
    path: &Path,
    split: Option<Split>,
    classes: &[String],
) -> anyhow::Result<Vec<Item>> {
    let manifest = Manifest::read(path)?;
    for class in &manifest.classes {
        if !classes.contains(class) {
            anyhow::bail!(
                "{}: class '{class}' is not one of the model's classes ({}); use the manifest the model was trained on",
                path.display(),
                classes.join(", ")
            );
        }
    }
    Ok(manifest
        .rows
        .iter()
        .filter(|r| split.is_none_or(|s| r.split == s))
        .map(|r| {
            let resolved = manifest.resolve(r);
            Item {
                shown: resolved.to_string_lossy().into_owned(),
                path: resolved,
                label: classes.iter().position(|c| *c == r.class),
            }
        })
        .collect())
}
