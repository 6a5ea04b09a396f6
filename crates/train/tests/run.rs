//! ortl_train::run called as a library, on a small generated tensors folder: what the
//! console is told, what the run folder holds, and how a run ends.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use ortl_fixtures::Workdir;
use ortl_manifest::TrainRecord;
use ortl_manifest::train_record::{BnMode, EpochMetric, Loss};
use ortl_train::fit::StepRecord;
use ortl_train::{Args, Console, Outcome, Settings};

fn tensors(wd: &Workdir) {
    common::tensors_with(wd, ortl_imaging::AugmentSpec::default());
}

/// Settings for a resnet-mini run on `wd`'s tensors into `wd/run`, with `flags`.
fn settings(wd: &Workdir, flags: &[&str]) -> Settings {
    let (tensors, run) = (wd.join("tensors"), wd.join("run"));
    let mut command = vec![
        "ortl-train",
        tensors.to_str().unwrap(),
        "-o",
        run.to_str().unwrap(),
        "--backbone",
        "resnet-mini",
        "--batch",
        "8",
        "--threads",
        "1",
    ];
    command.extend_from_slice(flags);
    Settings::resolve(&Args::try_parse_from(command).unwrap()).unwrap()
}

fn trained(outcome: Outcome) -> TrainRecord {
    match outcome {
        Outcome::Trained(record) => *record,
        other => panic!("expected a trained run, got {other:?}"),
    }
}

#[test]
fn a_run_fills_its_folder_and_tells_the_console_every_line() {
    let wd = Workdir::new();
    tensors(&wd);
    let mut lines = Vec::new();
    let record = trained(ortl_train::run(settings(&wd, &["--epochs", "2"]), &mut lines).unwrap());
    assert_eq!(record.summary.epochs_run, 2);
    assert_eq!(
        TrainRecord::read(&wd.join("run/train.json")).unwrap(),
        record,
        "the outcome is what train.json holds"
    );
    for file in ["model.onnx", "best.onnx", "history.csv", "checkpoint"] {
        assert!(wd.join("run").join(file).exists(), "{file}");
    }
    let s = &record.settings;
    assert_eq!(
        (s.bn_mode, s.loss, s.checkpoint),
        (
            BnMode::Train,
            Loss::SoftmaxCrossEntropy,
            EpochMetric::ValAccuracy
        )
    );
    assert_eq!(record.environment.update_on.as_deref(), Some("host"));

    assert!(
        lines[0].starts_with("ortl-train: 42 stored images from ")
            && lines[0].ends_with("; loading the backbone resnet-mini …"),
        "{lines:#?}"
    );
    assert!(lines[1].starts_with("ortl-train: backbone resnet-mini ("));
    assert!(lines[2].starts_with("ortl-train: building the training step (backbone and head)"));
    assert!(
        lines[3].starts_with(
            "ortl-train: 18 training images (36 stored variants), 6 validation images, "
        ) && lines[3].ends_with(", epochs 1–2"),
        "{lines:#?}"
    );
    assert!(lines[4].starts_with("Epoch 1/2 - "));
    assert!(lines[5].starts_with("Epoch 2/2 - "));
    let best = record.summary.best_epoch.unwrap();
    assert!(
        lines[6].starts_with("ortl-train: 2 epochs in ")
            && lines[6].ends_with(&format!(
                "best epoch by val_accuracy {best} -> {}",
                wd.join("run/best.onnx").display()
            )),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 7, "{lines:#?}");
}

#[test]
fn exporting_the_step_graph_trains_nothing_and_leaves_the_run_folder_alone() {
    let wd = Workdir::new();
    tensors(&wd);
    let path = wd.join("step.onnx");
    let mut lines = Vec::new();
    let outcome = ortl_train::run(
        settings(&wd, &["--export-step-graph", path.to_str().unwrap()]),
        &mut lines,
    )
    .unwrap();
    let Outcome::StepGraphExported { nodes } = outcome else {
        panic!("expected an exported graph, got {outcome:?}");
    };
    let step = ortl_onnx::io::load(&path).unwrap();
    assert_eq!(step.graph.nodes.len(), nodes);
    assert!(!wd.join("run").exists());
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "ortl-train: wrote the step graph ({nodes} nodes) to {}",
            path.display()
        )
    );
}

/// Raises the stop flag as step `at` of the run ends, as Ctrl-C would.
struct StopAtStep {
    at: usize,
    steps: usize,
    stop: Arc<AtomicBool>,
    lines: Vec<String>,
}

impl Console for StopAtStep {
    fn line(&mut self, text: &str) {
        self.lines.push(text.into());
    }

    fn step(&mut self, _record: &StepRecord, _epochs: usize) {
        self.steps += 1;
        if self.steps == self.at {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    fn stop_flag(&mut self) -> anyhow::Result<Arc<AtomicBool>> {
        Ok(Arc::clone(&self.stop))
    }
}

#[test]
fn a_stopped_run_checkpoints_after_the_step_and_resumes_to_the_same_weights() {
    let wd = Workdir::new();
    tensors(&wd);
    let flags = ["--epochs", "2"];
    let straight = trained(ortl_train::run(settings(&wd, &flags), &mut Vec::new()).unwrap());
    let straight_model = std::fs::read(wd.join("run/model.onnx")).unwrap();
    std::fs::remove_dir_all(wd.join("run")).unwrap();

    let mut console = StopAtStep {
        at: 4,
        steps: 0,
        stop: Arc::default(),
        lines: Vec::new(),
    };
    let err = ortl_train::run(settings(&wd, &flags), &mut console).unwrap_err();
    assert!(
        err.chain().any(|e| e.is::<ortl_cli::Interrupted>()),
        "{err:#}"
    );
    assert!(
        err.to_string()
            .starts_with("interrupted in epoch 2 after step 1; the checkpoint is in "),
        "three steps an epoch: {err:#}"
    );
    assert!(!wd.join("run/model.onnx").exists());

    let mut lines = Vec::new();
    let resumed = trained(
        ortl_train::run(settings(&wd, &["--epochs", "2", "--resume"]), &mut lines).unwrap(),
    );
    assert!(lines.contains(&"ortl-train: resuming at epoch 2, step 1".to_string()));
    assert_eq!(resumed.summary.epochs_run, straight.summary.epochs_run);
    assert_eq!(
        std::fs::read(wd.join("run/model.onnx")).unwrap(),
        straight_model,
        "stopped + resumed = straight through, to the bit"
    );
}

#[test]
fn a_mistake_found_while_loading_is_a_usage_error_after_the_loading_line() {
    let wd = Workdir::new();
    tensors(&wd);
    let mut s = settings(&wd, &[]);
    s.backbone = "resnet5".into();
    let mut lines = Vec::new();
    let err = ortl_train::run(s, &mut lines).unwrap_err();
    assert!(err.chain().any(|e| e.is::<ortl_cli::UsageError>()));
    assert_eq!(
        err.to_string(),
        "--backbone 'resnet5' is not a built-in backbone; did you mean 'resnet50'?"
    );
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(!wd.join("run").exists(), "nothing is replaced");
}
