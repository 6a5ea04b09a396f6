//! Mutation fuzzing of the manifest and tensor-set readers (see `ortl_fixtures::fuzz`):
//! hostile CSV, JSON and .npy bytes give `Err`, never a panic or an allocation beyond
//! the input.

use std::path::{Path, PathBuf};

use ndarray::Array4;
use ortl_fixtures::fuzz;
use ortl_manifest::{Manifest, TensorSet};
use proptest::prelude::*;

const MANIFEST: &str = "\u{feff}path,label,class,split,note\r\n\"a,1.png\",0,normal,train,x\r\nb.png,1,tb,val,\r\nsub/c.png,1,tb,3,y\r\nd.png,0,normal,test,\r\n";

/// A valid tensors folder (meta.json, tensors.csv, one shard written by the library's
/// own writer); returns the folder and each file's path and bytes, the fuzz seeds.
fn tensor_seed() -> (tempfile::TempDir, Vec<(PathBuf, Vec<u8>)>) {
    let dir = tempfile::tempdir().unwrap();
    let images = Array4::<u8>::from_shape_fn((2, 3, 3, 3), |(n, y, x, c)| (n + y + x + c) as u8);
    ortl_manifest::tensors::write_shard(&dir.path().join("shard-00000.npy"), &images).unwrap();
    std::fs::write(
        dir.path().join("tensors.csv"),
        "shard,index,label,class,split,path,variant\nshard-00000.npy,0,0,normal,train,a.png,0\nshard-00000.npy,1,1,tb,val,b.png,0\n",
    )
    .unwrap();
    let meta = serde_json::json!({
        "format": "ortl-tensors/1", "height": 3, "width": 3, "channels": 3,
        "classes": ["normal", "tb"], "seed": 1, "copies": 1, "keep_original": false, "filter": "bilinear",
        "augmentation": ortl_imaging::augment::AugmentSpec::default(),
        "shards": [{"file": "shard-00000.npy", "images": 2}],
        "manifest": "m.csv", "ortl_version": "0.1.0"
    });
    std::fs::write(dir.path().join("meta.json"), meta.to_string()).unwrap();
    let files = ["meta.json", "tensors.csv", "shard-00000.npy"]
        .iter()
        .map(|f| {
            let path = dir.path().join(f);
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    (dir, files)
}

fn open_and_load(dir: &Path) {
    if let Ok(set) = TensorSet::open(dir) {
        for shard in &set.meta.shards {
            let _ = set.load_shard(shard);
        }
    }
}

#[test]
fn the_seeds_are_valid() {
    let m =
        Manifest::from_reader(MANIFEST.as_bytes(), Path::new("m.csv"), PathBuf::from(".")).unwrap();
    assert_eq!(m.rows.len(), 4);
    let (dir, _) = tensor_seed();
    let set = TensorSet::open(dir.path()).unwrap();
    assert_eq!(
        set.load_shard(&set.meta.shards[0]).unwrap().shape(),
        [2, 3, 3, 3]
    );
}

/// A shard whose header declares a huge shape is refused without allocating it.
#[test]
fn a_shard_header_declaring_terabytes_is_refused_cheaply() {
    let (dir, files) = tensor_seed();
    let (path, bytes) = &files[2];
    let text = String::from_utf8_lossy(bytes).into_owned();
    let hostile = text.replacen("(2, 3, 3, 3)", "(99999999999, 3, 3, 3)", 1);
    assert_ne!(hostile, text, "the seed header names its shape");
    std::fs::write(path, hostile.as_bytes()).unwrap();
    let set = TensorSet::open(dir.path()).unwrap();
    let err = set.load_shard(&set.meta.shards[0]).unwrap_err().to_string();
    assert!(err.contains("shard-00000.npy"), "{err}");
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn the_manifest_reader_never_panics(mutations in fuzz::mutations()) {
        let bytes = fuzz::mutate(MANIFEST.as_bytes(), &mutations);
        let _ = Manifest::from_reader(bytes.as_slice(), Path::new("m.csv"), PathBuf::from("."));
    }

    #[test]
    fn the_tensor_set_reader_never_panics(file in 0usize..3, mutations in fuzz::mutations()) {
        let (dir, files) = tensor_seed();
        let (path, seed) = &files[file];
        std::fs::write(path, fuzz::mutate(seed, &mutations)).unwrap();
        open_and_load(dir.path());
    }
}
