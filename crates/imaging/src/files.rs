//! Which files are images: the extensions read by default, DICOM files without an extension
//! (as PACS exports name them: `IM000001`), and a recursive listing that skips hidden entries
//! and never follows a symlinked folder (no loops), shared by ortl-split (class folders) and
//! ortl-infer (folders of new images).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The image extensions read by default (case-insensitive).
pub const DEFAULT_EXTENSIONS: [&str; 10] = [
    "png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "dcm", "dicom",
];

pub fn default_extensions() -> Vec<String> {
    DEFAULT_EXTENSIONS.iter().map(|s| s.to_string()).collect()
}

pub fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// Whether a file without an extension is DICOM (by its first 132 bytes: see
/// [`crate::dicom::Layout`]).
pub fn is_bare_dicom(path: &Path) -> bool {
    let mut head = [0u8; 132];
    path.extension().is_none()
        && fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
        && crate::dicom::is_dicom(&head)
}

pub fn has_extension(path: &Path, extensions: &[String]) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(&e)))
}

/// Images found under a folder.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// Sorted paths.
    pub files: Vec<PathBuf>,
    /// Non-hidden files skipped for their extension.
    pub skipped: usize,
}

/// Lists image files under `dir`, recursively; errors carry the folder that failed.
pub fn list_images(
    dir: &Path,
    extensions: &[String],
) -> Result<Listing, (PathBuf, std::io::Error)> {
    let mut listing = Listing::default();
    walk(dir, extensions, &mut listing)?;
    listing.files.sort();
    Ok(listing)
}

fn walk(
    dir: &Path,
    extensions: &[String],
    listing: &mut Listing,
) -> Result<(), (PathBuf, std::io::Error)> {
    let io = |e| (dir.to_path_buf(), e);
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_hidden(&name) {
            continue;
        }
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            walk(&path, extensions, listing)?;
        } else if has_extension(&path, extensions) || is_bare_dicom(&path) {
            listing.files.push(path);
        } else {
            listing.skipped += 1;
        }
    }
    Ok(())
}

/// Immediate sub-folders of `dir` (not hidden, not symlinks), sorted by name.
pub fn subfolders(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && !is_hidden(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }

    #[test]
    fn lists_recursively_sorted_skipping_hidden_and_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("b/2.PNG"));
        touch(&d.join("b/sub/1.jpg"));
        touch(&d.join("b/.hidden.png"));
        touch(&d.join("b/notes.txt"));
        touch(&d.join(".git/y.png"));
        touch(&d.join("b/README"));
        let mut dicom = vec![0u8; 128];
        dicom.extend(b"DICM\x02\x00");
        fs::write(d.join("b/IM000001"), &dicom).unwrap();
        let listing = list_images(d, &default_extensions()).unwrap();
        assert_eq!(
            listing.files,
            vec![
                d.join("b/2.PNG"),
                d.join("b/IM000001"),
                d.join("b/sub/1.jpg")
            ]
        );
        assert_eq!(listing.skipped, 2);
        assert_eq!(subfolders(d).unwrap(), ["b"]);
    }
}
