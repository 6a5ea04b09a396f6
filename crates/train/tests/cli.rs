//! ortl-train run as a user runs it, on a small generated tensors folder.

use std::fs;

use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::run;
use ortl_imaging::{AugmentSpec, DecodeLimits, Filter};
use ortl_manifest::Manifest;

const BIN: &str = env!("CARGO_BIN_EXE_ortl-train");

/// 12 images per class at 32×32, every 4th for validation, 2 augmented copies.
fn tensors(wd: &Workdir) {
    wd.dataset("data", 12);
    let mut text = String::from("path,label,class,split\n");
    for (label, class) in ["normal", "tuberculosis"].iter().enumerate() {
        for i in 0..12 {
            let split = if i % 4 == 0 { "val" } else { "train" };
            text += &format!("data/{class}/{class}-{i:03}.png,{label},{class},{split}\n");
        }
    }
    fs::write(wd.join("manifest.csv"), text).unwrap();
    let manifest = Manifest::read(&wd.join("manifest.csv")).unwrap();
    let job = ortl_augment::Job {
        height: 32,
        width: 32,
        filter: Filter::BilinearAntialias,
        spec: AugmentSpec {
            flip: ortl_imaging::Flip::Horizontal,
            ..AugmentSpec::default()
        },
        copies: 2,
        keep_original: false,
        seed: 1,
        shard_size: 64,
        limits: DecodeLimits::default(),
        strict: true,
    };
    let out = wd.join("tensors");
    fs::create_dir(&out).unwrap();
    ortl_augment::write_tensors(&manifest, "manifest.csv", &job, &out, &out, || {}).unwrap();
}

fn train(wd: &Workdir, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "tensors",
        "-o",
        "run",
        "--backbone",
        "resnet-mini",
        "--batch",
        "8",
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    run(wd.command(BIN).args(&args))
}

#[test]
fn writes_a_complete_run_and_checkpoints_the_best_epoch() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, stdout, stderr) = train(&wd, &["--epochs", "3", "--checkpoint", "monitor=val_loss"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "progress goes to stderr");
    assert!(stderr.contains("Epoch 3/3"), "{stderr}");
    for file in ["model.onnx", "best.onnx", "history.csv", "train.json"] {
        assert!(wd.join("run").join(file).is_file(), "{file}");
    }
    let history = wd.read("run/history.csv");
    let mut lines = history.lines();
    assert_eq!(
        lines.next(),
        Some("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds")
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    let best = rows.iter().min_by(|a, b| a[3].total_cmp(&b[3])).unwrap()[0] as u64;
    let json: serde_json::Value = serde_json::from_str(&wd.read("run/train.json")).unwrap();
    assert_eq!(
        json["summary"]["best_epoch"], best,
        "best.onnx is the epoch with the lowest val_loss"
    );
    assert_eq!(
        json["bn_mode"], "train",
        "built-in backbones train their BatchNorm"
    );
    assert_eq!(
        json["classes"],
        serde_json::json!(["normal", "tuberculosis"])
    );

    // A finished run is only replaced with --force.
    let (code, _, stderr) = train(&wd, &["--epochs", "1"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
}

#[test]
fn early_stopping_stops_when_the_monitor_stalls() {
    let wd = Workdir::new();
    tensors(&wd);
    // No epoch can improve the loss by 100, so patience 1 stops after the second epoch.
    let (code, _, stderr) = train(
        &wd,
        &[
            "--epochs",
            "6",
            "--early-stopping",
            "monitor=loss,patience=1,min_delta=100",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        wd.read("run/history.csv").lines().count(),
        1 + 2,
        "{stderr}"
    );
    assert!(stderr.contains("stopped early"), "{stderr}");
}

#[test]
fn a_diverging_run_stops_with_the_epoch_step_and_cause() {
    let wd = Workdir::new();
    tensors(&wd);
    let (code, _, stderr) = train(
        &wd,
        &["--epochs", "3", "--optimizer", "sgd", "--lr", "1e30"],
    );
    assert_eq!(code, 1, "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.contains("epoch") && last.contains("step") && last.contains("--lr"),
        "{last}"
    );
    assert!(
        !wd.join("run/model.onnx").exists(),
        "no final model from a diverged run"
    );
}

#[test]
fn bad_settings_are_usage_errors() {
    let wd = Workdir::new();
    tensors(&wd);
    for (args, expected) in [
        (vec!["--schedule", "exp:1"], "exp:BASE,RATE,OFFSET"),
        (vec!["--backbone", "vgg99"], "vgg99"),
        (vec!["--early-stopping", "monitor=f1"], "f1"),
    ] {
        let mut full = vec!["tensors", "-o", "run"];
        full.extend(args.iter());
        let (code, _, stderr) = run(wd.command(BIN).args(&full));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
