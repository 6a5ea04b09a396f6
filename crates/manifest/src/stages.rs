//! What to say when a stage is handed another stage's file: which stage makes what it
//! reads, so that a misplaced argument gets the command that fixes it.

use std::path::Path;

use crate::tensors::META_FILE;

/// What a path looks like, judged by what the stages write.
fn looks_like(path: &Path) -> Option<&'static str> {
    if path.join(META_FILE).is_file() {
        Some("a tensors folder from ortl-augment (ortl-train reads it)")
    } else if path.join("train.json").is_file() || path.join("model.onnx").is_file() {
        Some("a run folder from ortl-train (ortl-infer reads its model.onnx or best.onnx)")
    } else if path.is_dir() {
        Some("a folder (ortl-split reads a folder with one sub-folder per class)")
    } else if path.extension().is_some_and(|e| e == "csv") {
        Some("a CSV file (a manifest from ortl-split goes to ortl-augment)")
    } else if path.extension().is_some_and(|e| e == "onnx") {
        Some("an ONNX model (ortl-infer --model reads it)")
    } else {
        None
    }
}

fn described(path: &Path) -> String {
    match looks_like(path) {
        Some(kind) => format!("this is {kind}; "),
        None => String::new(),
    }
}

/// The message for a manifest reader (ortl-augment, ortl-infer --manifest) given `path`.
pub fn expected_manifest(path: &Path) -> String {
    format!(
        "{}expected the manifest.csv that ortl-split writes (ortl-split DATA_DIR -o manifest.csv)",
        described(path)
    )
}

/// The message for ortl-train given `path` instead of a tensors folder.
pub fn expected_tensors(path: &Path) -> String {
    format!(
        "{}expected the tensors folder that ortl-augment writes (ortl-augment manifest.csv -o tensors)",
        described(path)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_stage_that_makes_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let classes = dir.path().join("xray");
        std::fs::create_dir_all(classes.join("normal")).unwrap();
        let message = expected_manifest(&classes);
        assert!(message.contains("ortl-split reads a folder"), "{message}");
        assert!(
            message.contains("ortl-split DATA_DIR -o manifest.csv"),
            "{message}"
        );

        let manifest = dir.path().join("manifest.csv");
        std::fs::write(&manifest, "path,label,class,split\n").unwrap();
        let message = expected_tensors(&manifest);
        assert!(message.contains("goes to ortl-augment"), "{message}");
        assert!(
            message.contains("ortl-augment manifest.csv -o tensors"),
            "{message}"
        );

        let tensors = dir.path().join("tensors");
        std::fs::create_dir(&tensors).unwrap();
        std::fs::write(tensors.join(META_FILE), "{}").unwrap();
        assert!(expected_manifest(&tensors).contains("ortl-train reads it"));
    }
}
