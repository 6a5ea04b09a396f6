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
