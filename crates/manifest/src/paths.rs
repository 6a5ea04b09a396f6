//! Paths in CSVs are stored relative to the CSV's own folder when they can be.

use std::path::{Path, PathBuf};

/// The folder a CSV's relative paths are relative to (`.` for stdin or a bare file name):
/// the folder of the file itself, after any symlinks to it, so that it reads the same by
/// every name.
pub fn base_dir(csv_path: &Path) -> PathBuf {
    // The same resolution the writers use (ortl-cli's outputs), so a CSV written through a
    // link reads back through the file. `/dev/stdout` and other descriptors are the
    // standard streams: as `-`.
    let csv_path = match ortl_cli::atomic::follow_symlinks(csv_path) {
        Ok(Some(real)) => real,
        Ok(None) => return PathBuf::from("."),
        Err(_) => csv_path.to_path_buf(),
    };
    match csv_path.parent() {
        Some(p) if !p.as_os_str().is_empty() && csv_path.as_os_str() != "-" => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Resolves a path read from a CSV in `base`.
pub fn resolve(base: &Path, stored: &str) -> PathBuf {
    let stored = Path::new(stored);
    if stored.is_absolute() {
        stored.to_path_buf()
    } else {
        base.join(stored)
    }
}

/// The text to store for `target` in a CSV living in `base`: relative when the two share a
/// top-level folder (so a project folder moves as a whole), else absolute.
pub fn relative_to(base: &Path, target: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).ok().map(|p| normalize(&p));
    let (Some(base), Some(target)) = (absolute(base), absolute(target)) else {
        return target.to_string_lossy().into_owned();
    };
    let stored = if base.components().nth(1) == target.components().nth(1) {
        pathdiff::diff_paths(&target, &base).unwrap_or(target)
    } else {
        target
    };
    stored.to_string_lossy().into_owned()
}

/// A path as ortl-infer prints it: as given (relative to the working directory, or
/// absolute), with `.` removed and `..` resolved lexically where a folder precedes it
/// (`out/../fixtures/x.png` is `fixtures/x.png`; a leading `../` stays).
pub fn tidy(path: &Path) -> String {
    use std::path::Component;
    let mut parts: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => parts.push(part),
            },
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return ".".into();
    }
    parts
        .iter()
        .collect::<PathBuf>()
        .to_string_lossy()
        .into_owned()
}

/// Removes `.` and resolves `..` lexically (no symlink resolution, no I/O).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_paths_are_tidied_lexically() {
        assert_eq!(tidy(Path::new("out/../fixtures/x.png")), "fixtures/x.png");
        assert_eq!(tidy(Path::new("./data/./a.png")), "data/a.png");
        assert_eq!(tidy(Path::new("../shared/a.png")), "../shared/a.png");
        assert_eq!(tidy(Path::new("a/b/../../../c.png")), "../c.png");
        assert_eq!(tidy(Path::new("/data/../x.png")), "/x.png");
        assert_eq!(tidy(Path::new("/../x.png")), "/x.png");
        assert_eq!(tidy(Path::new(".")), ".");
    }

    #[test]
    fn relative_paths_round_trip_through_the_base() {
        let base = Path::new("/data/out");
        let target = Path::new("/data/xray/normal/a.png");
        let stored = relative_to(base, target);
        assert_eq!(stored, "../xray/normal/a.png");
        assert_eq!(normalize(&resolve(base, &stored)), target);
        assert_eq!(resolve(base, "/abs/x.png"), Path::new("/abs/x.png"));
        assert_eq!(
            relative_to(Path::new("/a/./b"), Path::new("/a/b/../c.png")),
            "../c.png"
        );
        // Nothing in common but the root: absolute, not a chain of '..'.
        assert_eq!(
            relative_to(Path::new("/work/run"), Path::new("/tmp/x.png")),
            "/tmp/x.png"
        );
    }

    #[test]
    fn base_dir_of_stdin_and_bare_names_is_cwd() {
        assert_eq!(base_dir(Path::new("-")), Path::new("."));
        assert_eq!(base_dir(Path::new("m.csv")), Path::new("."));
        assert_eq!(base_dir(Path::new("out/m.csv")), Path::new("out"));
        assert_eq!(base_dir(Path::new("/dev/stdout")), Path::new("."));
    }

    #[test]
    fn base_dir_of_a_symlink_is_its_targets_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink("out/m.csv", &link).unwrap();
        assert_eq!(base_dir(&link), dir.path().join("out"));
    }
}
