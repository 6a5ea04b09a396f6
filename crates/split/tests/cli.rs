//! ortl-split run as a user runs it: real binary, fresh folder, stdout/stderr/exit code.

use std::fs;

use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::run;
use ortl_manifest::{Manifest, Split};

const BIN: &str = env!("CARGO_BIN_EXE_ortl-split");

fn split(wd: &Workdir, args: &[&str]) -> (i32, String, String) {
    run(wd.command(BIN).args(args))
}

#[test]
fn stratified_counts_per_class_and_split() {
    let wd = Workdir::new();
    wd.dataset("data", 25);
    let (code, _, stderr) = split(
        &wd,
        &["data", "--val", "0.2", "--test", "0.2", "-o", "m.csv"],
    );
    assert_eq!(code, 0, "{stderr}");
    let m = Manifest::read(&wd.join("m.csv")).unwrap();
    assert_eq!(m.classes, ["normal", "tuberculosis"]);
    for label in 0..2 {
        let n = |s: Split| {
            m.rows
                .iter()
                .filter(|r| r.label == label && r.split == s)
                .count()
        };
        assert_eq!((n(Split::Train), n(Split::Val), n(Split::Test)), (15, 5, 5));
    }
    // Paths resolve from the manifest's folder and the counts table is on stderr.
    assert!(m.rows.iter().all(|r| m.resolve(r).is_file()));
    assert!(
        stderr.contains("tuberculosis") && stderr.contains("50 images in 2 classes"),
        "{stderr}"
    );
}

#[test]
fn same_seed_gives_a_byte_identical_manifest_and_stdout_works() {
    let wd = Workdir::new();
    wd.dataset("data", 12);
    let (_, first, _) = split(&wd, &["data", "--seed", "3", "-o", "-"]);
    let (_, second, _) = split(&wd, &["data", "--seed", "3", "--threads", "1"]);
    let (_, other, _) = split(&wd, &["data", "--seed", "4"]);
    assert_eq!(first, second);
    assert_ne!(first, other);
    assert!(first.starts_with("path,label,class,split\ndata/normal/normal-000.png,0,normal,"));
}

#[test]
fn folds_cover_every_image_exactly_once() {
    let wd = Workdir::new();
    wd.dataset("data", 11);
    let (code, stdout, stderr) = split(&wd, &["data", "--folds", "4"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 22);
    let mut paths: Vec<&str> = lines.iter().map(|l| l.split(',').next().unwrap()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 22, "each image once");
    let folds: Vec<u32> = lines
        .iter()
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    for k in 0..4 {
        let size = folds.iter().filter(|&&f| f == k).count();
        assert!((5..=6).contains(&size), "fold {k} has {size}");
    }
}

#[test]
fn broken_files_are_reported_and_left_out_or_fatal_with_strict() {
    let wd = Workdir::new();
    let data = wd.dataset("data", 6);
    ortl_fixtures::broken::write_broken(&data.join("tuberculosis")).unwrap();
    fs::write(data.join("normal/readme.txt"), "not counted").unwrap();
    let (code, stdout, stderr) = split(&wd, &["data"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 13, "12 good images + header");
    for name in [
        "truncated.png",
        "not-an-image.jpg",
        "empty.png",
        "jpeg-ls.dcm",
    ] {
        assert!(stderr.contains(name), "{name} not reported: {stderr}");
    }
    assert!(
        stderr.contains("JPEG-LS") && stderr.contains("gdcmconv --raw"),
        "an undecodable DICOM transfer syntax is named with the fix: {stderr}"
    );
    assert!(
        stderr.contains("4 unreadable left out, 1 other files skipped"),
        "{stderr}"
    );

    let (code, stdout, stderr) = split(&wd, &["data", "--strict", "-o", "m.csv"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("ortl-split: ") && stderr.contains("--strict"),
        "{stderr}"
    );
    assert!(!wd.join("m.csv").exists(), "no manifest on failure");

    // Header-only checking cannot see the truncated data, but still refuses the rest (the
    // DICOM transfer syntax is in the header).
    let (_, stdout, _) = split(&wd, &["data", "--verify", "header"]);
    assert_eq!(stdout.lines().count(), 14);
}

#[test]
fn layout_errors_exit_2_with_one_line() {
    let wd = Workdir::new();
    let data = wd.dataset("data", 2);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["missing"], "no such folder"),
        (
            vec!["data", "--val", "0.7", "--test", "0.3"],
            "keep their sum below 1",
        ),
        (vec!["data/normal"], "found 0 class folder(s)"),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = split(&wd, &args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    fs::create_dir(data.join("empty")).unwrap();
    let (code, _, stderr) = split(&wd, &["data"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("empty: class folder has no images"),
        "{stderr}"
    );
    fs::remove_dir(data.join("empty")).unwrap();
    fs::remove_dir_all(data.join("normal")).unwrap();
    let (code, _, stderr) = split(&wd, &["data"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("at least two"), "{stderr}");
}

#[test]
fn closed_pipe_is_quiet_and_full_disk_is_an_error() {
    let wd = Workdir::new();
    wd.dataset("data", 40);
    let mut child = wd
        .command(BIN)
        .arg("data")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before any row is written
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Broken pipe"));

    let full = fs::File::create("/dev/full").unwrap();
    let out = wd.command(BIN).arg("data").stdout(full).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
}
