//! ortl-augment run as a user runs it, on generated data.

use std::fs;

use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::run;
use ortl_imaging::{DecodeLimits, Filter, decode_rgb, resize};
use ortl_manifest::{Split, TensorSet};

const BIN: &str = env!("CARGO_BIN_EXE_ortl-augment");

/// A manifest over a generated data set: every 4th image of each class is validation.
fn manifest(wd: &Workdir, per_class: u32) {
    let data = wd.dataset("data", per_class);
    let mut text = String::from("path,label,class,split\n");
    for (label, class) in ["normal", "tuberculosis"].iter().enumerate() {
        for i in 0..per_class {
            let split = if i % 4 == 0 { "val" } else { "train" };
            text += &format!("data/{class}/{class}-{i:03}.png,{label},{class},{split}\n");
        }
    }
    assert!(data.is_dir());
    fs::write(wd.join("manifest.csv"), text).unwrap();
}

fn augment(wd: &Workdir, args: &[&str]) -> (i32, String, String) {
    run(wd.command(BIN).args(args))
}

#[test]
fn stores_variants_per_split_readable_through_the_contract() {
    let wd = Workdir::new();
    manifest(&wd, 8);
    let (code, stdout, stderr) = augment(
        &wd,
        &[
            "manifest.csv",
            "-o",
            "tensors",
            "--size",
            "24x32",
            "--copies",
            "3",
            "--preset",
            "tutorial",
            "--shard-size",
            "10",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "data goes to files, not stdout");
    let set = TensorSet::open(&wd.join("tensors")).unwrap();
    assert_eq!((set.meta.height, set.meta.width), (24, 32));
    assert_eq!(set.meta.classes, ["normal", "tuberculosis"]);
    // 12 training images × 3 variants + 4 validation images × 1.
    assert_eq!(set.rows.len(), 12 * 3 + 4);
    assert!(
        set.rows
            .iter()
            .filter(|r| r.split == Split::Val)
            .all(|r| r.variant == 0)
    );
    assert!(
        set.rows
            .iter()
            .filter(|r| r.split == Split::Train)
            .all(|r| (1..=3).contains(&r.variant))
    );
    assert_eq!(set.meta.shards.len(), 4, "40 images in shards of 10");
    assert_eq!(set.meta.augmentation, ortl_imaging::augment::tutorial());

    // A validation image is exactly the Keras-style bilinear resize of its source.
    let row = set.rows.iter().find(|r| r.split == Split::Val).unwrap();
    let source = decode_rgb(&set.source(row), DecodeLimits::default()).unwrap();
    let expected = resize(&source, 24, 32, Filter::Bilinear).to_u8();
    assert_eq!(pixels(&set, row), expected);

    // Augmented variants of one training image differ from each other.
    let first_train = set.rows.iter().find(|r| r.split == Split::Train).unwrap();
    let variants: Vec<Vec<u8>> = set
        .rows
        .iter()
        .filter(|r| r.path == first_train.path)
        .map(|r| pixels(&set, r))
        .collect();
    assert_eq!(variants.len(), 3);
    assert!(variants[0] != variants[1] && variants[1] != variants[2]);
}

fn pixels(set: &TensorSet, row: &ortl_manifest::TensorRow) -> Vec<u8> {
    let shard = set
        .meta
        .shards
        .iter()
        .find(|s| s.file == row.shard)
        .unwrap();
    let stored = set.load_shard(shard).unwrap();
    stored
        .slice(ndarray::s![row.index, .., .., ..])
        .iter()
        .copied()
        .collect()
}

#[test]
fn output_is_identical_at_one_and_two_threads_and_depends_on_seed() {
    let wd = Workdir::new();
    manifest(&wd, 6);
    let common = [
        "manifest.csv",
        "--size",
        "20",
        "--copies",
        "2",
        "--preset",
        "tutorial",
    ];
    let run_with = |out: &str, extra: &[&str]| {
        let args: Vec<&str> = common
            .iter()
            .copied()
            .chain(["-o", out])
            .chain(extra.iter().copied())
            .collect();
        let (code, _, stderr) = augment(&wd, &args);
        assert_eq!(code, 0, "{stderr}");
        fs::read(wd.join(out).join("shard-00000.npy")).unwrap()
    };
    let one = run_with("t1", &["--threads", "1"]);
    let two = run_with("t2", &["--threads", "2"]);
    let other_seed = run_with("t3", &["--seed", "13"]);
    assert_eq!(one, two);
    assert_ne!(one, other_seed);
    assert_eq!(wd.read("t1/tensors.csv"), wd.read("t2/tensors.csv"));
}

#[test]
fn existing_output_needs_force_and_survives_a_failed_run() {
    let wd = Workdir::new();
    manifest(&wd, 4);
    let args = [
        "manifest.csv",
        "-o",
        "tensors",
        "--size",
        "16",
        "--copies",
        "0",
    ];
    assert_eq!(augment(&wd, &args).0, 0);
    let before = wd.read("tensors/tensors.csv");

    let (code, _, stderr) = augment(&wd, &args);
    assert_eq!(code, 2);
    assert!(stderr.contains("--force"), "{stderr}");

    // A run that fails (--strict on a now-broken image) leaves the earlier output intact
    // and no staging folder behind.
    fs::write(wd.join("data/normal/normal-001.png"), "corrupted").unwrap();
    let strict: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--force", "--strict"])
        .collect();
    let (code, _, stderr) = augment(&wd, &strict);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("normal-001.png"), "{stderr}");
    assert_eq!(wd.read("tensors/tensors.csv"), before);
    let leftovers: Vec<_> = fs::read_dir(wd.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());

    // Without --strict the broken image is skipped, named and counted.
    let forced: Vec<&str> = args.iter().copied().chain(["--force"]).collect();
    let (code, _, stderr) = augment(&wd, &forced);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("skipped") && stderr.contains("normal-001.png"),
        "{stderr}"
    );
    assert_eq!(TensorSet::open(&wd.join("tensors")).unwrap().rows.len(), 7);
}

#[test]
fn bad_manifest_and_arguments_are_usage_errors() {
    let wd = Workdir::new();
    fs::write(wd.join("bad.csv"), "path,label,split\nx.png,0,train\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["bad.csv", "-o", "t"], "missing column 'class'"),
        (vec!["none.csv", "-o", "t"], "none.csv"),
        (vec!["bad.csv", "-o", "t", "--zoom", "1.5"], "zoom"),
        (vec!["bad.csv", "-o", "t", "--size", "0x3"], "HxW"),
    ];
    for (args, expected) in cases {
        let (code, _, stderr) = augment(&wd, &args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn reads_the_manifest_from_stdin() {
    let wd = Workdir::new();
    manifest(&wd, 3);
    let stdin = fs::File::open(wd.join("manifest.csv")).unwrap();
    let (code, _, stderr) = run(wd
        .command(BIN)
        .args(["-", "-o", "t", "--size", "8", "--copies", "0"])
        .stdin(stdin));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(TensorSet::open(&wd.join("t")).unwrap().rows.len(), 6);
}

/// The same radiographs as PNG and as DICOM in every fixture form (MONOCHROME1/2, 8/12/16
/// bits, rescaled, uncompressed and RLE) give the same tensors: the file's own window,
/// rescale and inversion are applied, and what was applied is recorded per row and by kind.
#[test]
fn dicom_sources_store_the_same_tensors_as_their_pngs_and_record_what_was_applied() {
    let wd = Workdir::new();
    wd.dataset("data", 4);
    // The seed Workdir::dataset draws the PNGs with, so that both hold the same images.
    ortl_fixtures::dicom::write_dataset(&wd.join("dicom"), 4, 2026).unwrap();
    for (name, folder, ext) in [("png.csv", "data", "png"), ("dcm.csv", "dicom", "dcm")] {
        let mut text = String::from("path,label,class,split\n");
        for (label, class) in ["normal", "tuberculosis"].iter().enumerate() {
            for i in 0..4 {
                text += &format!("{folder}/{class}/{class}-{i:03}.{ext},{label},{class},train\n");
            }
        }
        fs::write(wd.join(name), text).unwrap();
    }
    let mut stored = Vec::new();
    for (manifest, out) in [("png.csv", "tp"), ("dcm.csv", "td")] {
        let (code, _, stderr) = augment(
            &wd,
            &[manifest, "-o", out, "--size", "40x40", "--copies", "0"],
        );
        assert_eq!(code, 0, "{stderr}");
        let set = TensorSet::open(&wd.join(out)).unwrap();
        stored.push((set.load_shard(&set.meta.shards[0]).unwrap(), set, stderr));
    }
    let (png, dcm) = (&stored[0], &stored[1]);
    // Resized only: augmentation draws from the source path, which differs.
    assert_eq!(png.0, dcm.0, "DICOM tensors equal the PNG tensors");
    assert!(png.1.rows.iter().all(|r| r.intensity.is_empty()));
    assert!(png.1.meta.intensity.is_empty());
    let kinds = &dcm.1.meta.intensity;
    assert_eq!(kinds.values().sum::<usize>(), 8, "{kinds:?}");
    let inverted: usize = kinds
        .iter()
        .filter(|(k, _)| k.contains("MONOCHROME1") && k.ends_with("inverted"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(inverted, 4, "forms 1 and 3, two images each: {kinds:?}");
    let first = &dcm.1.rows[0];
    assert!(
        first.intensity.contains("rescale slope 1 intercept -1024")
            && first.intensity.contains("from the file"),
        "{}",
        first.intensity
    );
    assert!(
        dcm.2.contains("source images: DICOM MONOCHROME1"),
        "the kinds are summarised on stderr: {}",
        dcm.2
    );
    assert_eq!(dcm.1.meta.window, ortl_imaging::Window::Auto);
}

#[test]
fn a_window_is_recorded_and_a_bad_one_is_a_usage_error() {
    let wd = Workdir::new();
    manifest(&wd, 4);
    let (code, _, stderr) = augment(
        &wd,
        &[
            "manifest.csv",
            "-o",
            "t",
            "--size",
            "16x16",
            "--window",
            "min-max",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let set = TensorSet::open(&wd.join("t")).unwrap();
    assert_eq!(set.meta.window, ortl_imaging::Window::MinMax);
    assert!(
        set.rows[0]
            .intensity
            .contains("8-bit, window min-max (values "),
        "{:?}",
        set.rows[0]
    );
    let (code, _, stderr) = augment(
        &wd,
        &[
            "manifest.csv",
            "-o",
            "u",
            "--size",
            "16x16",
            "--window",
            "bright",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("CENTER,WIDTH"), "{stderr}");
}
