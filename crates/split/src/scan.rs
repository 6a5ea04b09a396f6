//! Listing a class-folder data set. Class names are the sorted names of DATA_DIR's
//! sub-folders and a class's label is its position in that order, as in Keras. Files are
//! found recursively inside each class folder; symlinked folders are not followed (no loops).

use std::path::{Path, PathBuf};

use ortl_imaging::files::{list_images, subfolders};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{}: no such folder (DATA_DIR must hold one sub-folder per class)", .0.display())]
    Missing(PathBuf),
    #[error("{}: not a folder (DATA_DIR must hold one sub-folder per class; a manifest.csv goes to ortl-augment, a tensors folder to ortl-train)", .0.display())]
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
    let classes = subfolders(data_dir).map_err(|source| ScanError::Io {
        path: data_dir.into(),
        source,
    })?;
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
        let listing = list_images(&dir, extensions)
            .map_err(|(path, source)| ScanError::Io { path, source })?;
        if listing.files.is_empty() {
            return Err(ScanError::EmptyClass {
                dir,
                extensions: extensions.join(","),
            });
        }
        skipped += listing.skipped;
        files.push(listing.files);
    }
    Ok(Scan {
        classes,
        files,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn exts() -> Vec<String> {
        ortl_imaging::files::default_extensions()
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
