//! Test setup shared by ortl-train's integration tests.

use std::fs;

use ortl_fixtures::Workdir;
use ortl_imaging::{AugmentSpec, Filter};
use ortl_manifest::multilabel::AnyManifest;

/// A tensors folder in `wd/tensors`: 12 images per class at 32×32, every 4th for
/// validation, 2 copies augmented by `spec`.
pub fn tensors_with(wd: &Workdir, spec: AugmentSpec) {
    wd.dataset("data", 12);
    let mut text = String::from("path,label,class,split\n");
    for (label, class) in ["normal", "tuberculosis"].iter().enumerate() {
        for i in 0..12 {
            let split = if i % 4 == 0 { "val" } else { "train" };
            text += &format!("data/{class}/{class}-{i:03}.png,{label},{class},{split}\n");
        }
    }
    fs::write(wd.join("manifest.csv"), text).unwrap();
    let manifest = AnyManifest::read(&wd.join("manifest.csv")).unwrap();
    let job = ortl_augment::Job {
        height: 32,
        width: 32,
        filter: Filter::BilinearAntialias,
        spec,
        copies: 2,
        keep_original: false,
        seed: 1,
        shard_size: 64,
        decoding: ortl_imaging::DecodeOptions {
            window: ortl_imaging::Window::MinMax,
            ..Default::default()
        },
        strict: true,
    };
    let out = wd.join("tensors");
    fs::create_dir(&out).unwrap();
    ortl_augment::write_tensors(&manifest, "manifest.csv", &job, &out, &out, || {}).unwrap();
}

/// A multi-label tensors folder in `wd/tensors` from NIH-style fixture patients at 32×32:
/// every 4th patient for validation, the first finding unknown on every 3rd image, one
/// copy each.
#[allow(dead_code)] // Not every test binary that shares this module trains multi-label.
pub fn multilabel_tensors(wd: &Workdir, patients: u32) -> Vec<String> {
    use ortl_fixtures::multilabel;
    use ortl_manifest::Split;
    use ortl_manifest::multilabel::MultiLabelRow;
    multilabel::write_nih_style(&wd.join("nih"), patients, 7).unwrap();
    let findings: Vec<String> = multilabel::FINDINGS
        .iter()
        .map(|f| f.nih_name().to_string())
        .collect();
    let mut rows = Vec::new();
    for patient in multilabel::truth(patients, 7) {
        for image in &patient.images {
            let mut targets: Vec<Option<bool>> = multilabel::FINDINGS
                .iter()
                .map(|f| Some(patient.findings.contains(f)))
                .collect();
            if rows.len() % 3 == 0 {
                targets[0] = None;
            }
            rows.push(MultiLabelRow {
                path: format!("nih/{}", image.nih_path),
                split: if patient.patient_id % 4 == 0 {
                    Split::Val
                } else {
                    Split::Train
                },
                targets,
                group: Some(patient.patient_id.to_string()),
            });
        }
    }
    let file = fs::File::create(wd.join("manifest.csv")).unwrap();
    ortl_manifest::multilabel::write(file, &findings, &rows).unwrap();
    let manifest = AnyManifest::read(&wd.join("manifest.csv")).unwrap();
    let job = ortl_augment::Job {
        height: 32,
        width: 32,
        filter: Filter::BilinearAntialias,
        spec: AugmentSpec::default(),
        copies: 0,
        keep_original: false,
        seed: 1,
        shard_size: 64,
        decoding: Default::default(),
        strict: true,
    };
    let out = wd.join("tensors");
    fs::create_dir(&out).unwrap();
    ortl_augment::write_tensors(&manifest, "manifest.csv", &job, &out, &out, || {}).unwrap();
    findings
}
