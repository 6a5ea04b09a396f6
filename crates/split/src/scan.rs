//! Listing a class-folder data set. Class names are the sorted names of DATA_DIR's
//! sub-folders and a class's label is its position in that order, as in Keras. Files are
//! found recursively inside each class folder; symlinked folders are not followed (no loops).

use std::fs;
use std::path::{Path, PathBuf};

/// The image extensions read by default (case-insensitive).
pub const DEFAULT_EXTENSIONS: [&str; 8] =
    ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"];

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{}: no such folder (DATA_DIR must hold one sub-folder per class)", .0.display())]
    Missing(PathBuf),
    #[error("{}: not a folder (DATA_DIR must hold one sub-folder per class)", .0.display())]
    NotADir(PathBuf),
    #[error("{}: cannot list: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: found {} class folder(s) ({}); a classifier needs at least two, one sub-folder per class",
        dir.display(), found.len(), if found.is_empty() { "none".to_string() } else { found.join(", ") }
    )]
    TooFewClasses { dir: PathBuf, found: Vec<String> },
    #[error("{}: class folder has no images with extensions {extensions}; add images or remove the folder", dir.display())]
    EmptyClass { dir: PathBuf, extensions: String },
}

impl ScanError {
    /// Layout problems the user fixes in the data or the command: exit code 2.
    pub fn is_usage(&self) -> bool {
        !matches!(self, ScanError::Io { .. })
    }
}

/// A data set's classes and candidate image files.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Class names, sorted; the index is the label.
    pub classes: Vec<String>,
    /// Files per class, sorted by path.
    pub files: Vec<Vec<PathBuf>>,
    /// Files skipped for their extension (hidden files are not counted).
    pub skipped: usize,
}

pub fn scan(data_dir: &Path, extensions: &[String]) -> Result<Scan, ScanError> {
    if !data_dir.exists() {
        return Err(ScanError::Missing(data_dir.into()));
    }
    if !data_dir.is_dir() {
        return Err(ScanError::NotADir(data_dir.into()));
    }
    let mut classes: Vec<String> = entries(data_dir)?
        .into_iter()
        .filter(|(_, name, is_dir)| *is_dir && !is_hidden(name))
        .map(|(_, name, _)| name)
        .collect();
    classes.sort();
    if classes.len() < 2 {
        return Err(ScanError::TooFewClasses {
            dir: data_dir.into(),
            found: classes,
        });
    }
    let mut files = Vec::with_capacity(classes.len());
    let mut skipped = 0;
    for class in &classes {
        let dir = data_dir.join(class);
        let mut found = Vec::new();
        walk(&dir, extensions, &mut found, &mut skipped)?;
        if found.is_empty() {
            return Err(ScanError::EmptyClass {
                dir,
                extensions: extensions.join(","),
            });
        }
        found.sort();
        files.push(found);
    }
    Ok(Scan {
        classes,
        files,
        skipped,
    })
}

fn walk(
    dir: &Path,
    extensions: &[String],
    found: &mut Vec<PathBuf>,
    skipped: &mut usize,
) -> Result<(), ScanError> {
    for (path, name, is_dir) in entries(dir)? {
        if is_hidden(&name) {
            continue;
        }
        if is_dir {
            walk(&path, extensions, found, skipped)?;
        } else if has_extension(&name, extensions) {
            found.push(path);
        } else {
            *skipped += 1;
        }
    }
    Ok(())
}

/// (path, file name, is a real folder) for each entry; a symlink counts as a folder only if
/// it is not a link, so linked folders are never walked.
fn entries(dir: &Path) -> Result<Vec<(PathBuf, String, bool)>, ScanError> {
    let io = |source| ScanError::Io {
        path: dir.into(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((entry.path(), name, kind.is_dir()));
    }
    Ok(out)
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

fn has_extension(name: &str, extensions: &[String]) -> bool {
    Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exts() -> Vec<String> {
        DEFAULT_EXTENSIONS.iter().map(|s| s.to_string()).collect()
    }

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }

    #[test]
    fn classes_are_sorted_files_recursive_hidden_and_foreign_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("b/2.PNG"));
        touch(&d.join("b/sub/1.jpg"));
        touch(&d.join("b/.hidden.png"));
        touch(&d.join("b/notes.txt"));
        touch(&d.join("a/x.png"));
        touch(&d.join(".git/y.png"));
        touch(&d.join("loose.png"));
        let s = scan(d, &exts()).unwrap();
        assert_eq!(s.classes, ["a", "b"]);
        assert_eq!(s.files[1], vec![d.join("b/2.PNG"), d.join("b/sub/1.jpg")]);
        assert_eq!(s.skipped, 1);
    }

    #[test]
    fn layout_errors_are_usage_errors_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let err = scan(&d.join("nope"), &exts()).unwrap_err();
        assert!(err.is_usage() && err.to_string().contains("no such folder"));
        touch(&d.join("only/x.png"));
        let err = scan(d, &exts()).unwrap_err();
        assert!(
            err.is_usage() && err.to_string().contains("found 1 class folder(s) (only)"),
            "{err}"
        );
        fs::create_dir(d.join("empty")).unwrap();
        let err = scan(d, &exts()).unwrap_err();
        assert!(
            err.is_usage()
                && err
                    .to_string()
                    .contains("empty: class folder has no images"),
            "{err}"
        );
    }
}
