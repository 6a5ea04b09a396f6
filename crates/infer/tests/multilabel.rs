//! ortl-infer with a multi-label model (a sigmoid per finding) on NIH-style synthetic
//! patients (`ortl_fixtures::multilabel`): the rows' truth, probabilities, thresholds and
//! decisions, thresholds chosen on validation predictions, heatmaps of a named finding, and
//! the usage errors of mixing single- and multi-label files (issue #40, part 4).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use ndarray::{Array2, ArrayD, Axis};
use ndarray_npy::ReadNpyExt;
use ortl_fixtures::Workdir;
use ortl_fixtures::multilabel;
use ortl_fixtures::workdir::run;
use ortl_manifest::multilabel::{AnyManifest, MultiLabelRow};
use ortl_manifest::predictions::multilabel::{Predictions, Row, Writer, as_written};
use ortl_manifest::predictions::{EvaluatedModel, Format};
use ortl_manifest::{Split, Task};
use ortl_metrics::ThresholdRule;
use ortl_models::classifier::keys;
use ortl_models::{ClassifierSpec, Head, ResNetConfig, classifier};
use ortl_runtime::Feed;

const BIN: &str = env!("CARGO_BIN_EXE_ortl-infer");
const FINDINGS: [&str; 3] = ["Cardiomegaly", "Effusion", "Nodule"];
const PATIENTS: u32 = 14;
const SEED: u64 = 2;
/// Large enough for a 2×2 feature map, so that heatmaps have a shape.
const SIZE: usize = 64;

/// An untrained classifier at SIZE×SIZE for `classes`, as ortl-train exports it.
fn save_model(wd: &Workdir, file: &str, task: Task, classes: &[&str]) {
    let backbone = ortl_models::resnet::resnet(&ResNetConfig::tiny(), 1);
    let spec = ClassifierSpec {
        task,
        classes: classes.iter().map(|c| c.to_string()).collect(),
        height: SIZE,
        width: SIZE,
        head: Head::Linear { dropout: 0.0 },
        seed: 1,
    };
    let (mut model, _) = classifier(&backbone, &spec);
    model
        .metadata
        .insert(keys::RESIZE.into(), "bilinear".into());
    ortl_onnx::io::save(&model, &wd.join(file)).unwrap();
}

/// NIH-style images under `nih/`, a multi-label model `ml.onnx` of their findings, and the
/// manifest `ml.csv`: odd patients in val, even ones in test, where each patient's first
/// image leaves Nodule unknown (not mentioned). Returns the manifest's rows.
fn setup() -> (Workdir, Vec<MultiLabelRow>) {
    let wd = Workdir::new();
    multilabel::write_nih_style(&wd.join("nih"), PATIENTS, SEED).unwrap();
    let mut rows = Vec::new();
    for patient in multilabel::truth(PATIENTS, SEED) {
        let split = if patient.patient_id % 2 == 1 {
            Split::Val
        } else {
            Split::Test
        };
        for image in &patient.images {
            let mut targets: Vec<Option<bool>> = multilabel::FINDINGS
                .iter()
                .map(|f| Some(patient.findings.contains(f)))
                .collect();
            if split == Split::Test && image.followup == 0 {
                targets[2] = None;
            }
            rows.push(MultiLabelRow {
                path: format!("nih/{}", image.nih_path),
                split,
                targets,
                group: Some(patient.patient_id.to_string()),
            });
        }
    }
    let findings: Vec<String> = multilabel::FINDINGS
        .iter()
        .map(|f| f.nih_name().to_string())
        .collect();
    assert_eq!(findings, FINDINGS);
    let file = fs::File::create(wd.join("ml.csv")).unwrap();
    ortl_manifest::multilabel::write(file, &findings, &rows).unwrap();
    // Thresholds chosen on val need positives and negatives of every finding there.
    for (i, finding) in FINDINGS.iter().enumerate() {
        let known: Vec<bool> = rows
            .iter()
            .filter(|r| r.split == Split::Val)
            .filter_map(|r| r.targets[i])
            .collect();
        assert!(known.contains(&true) && known.contains(&false), "{finding}");
    }
    save_model(&wd, "ml.onnx", Task::MultiLabel, &FINDINGS);
    (wd, rows)
}

fn infer(wd: &Workdir, args: &[&str]) -> (i32, String, String) {
    run(wd.command(BIN).arg("--model").arg("ml.onnx").args(args))
}

/// A CSV output by column name.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn parse(text: &str) -> Self {
        let mut csv = csv::Reader::from_reader(text.as_bytes());
        let header = csv.headers().unwrap().iter().map(String::from).collect();
        let rows = csv
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        Self { header, rows }
    }

    fn get(&self, row: usize, column: &str) -> &str {
        let at = self.header.iter().position(|h| h == column).unwrap();
        &self.rows[row][at]
    }

    /// The findings whose `p_` is at or above their `t_`, as written.
    fn at_threshold(&self, row: usize) -> String {
        let number = |column: String| self.get(row, &column).parse::<f64>().unwrap();
        FINDINGS
            .iter()
            .filter(|f| number(format!("p_{f}")) >= number(format!("t_{f}")))
            .copied()
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// Each manifest image as the training tensors store it (`[1, SIZE, SIZE, 3]`), by file name:
/// what ortl-augment made of it with the model's size and filter.
fn stored_images(wd: &Workdir) -> HashMap<String, ArrayD<u8>> {
    let manifest = AnyManifest::read(&wd.join("ml.csv")).unwrap();
    let job = ortl_augment::Job {
        height: SIZE,
        width: SIZE,
        filter: ortl_imaging::Filter::Bilinear,
        spec: Default::default(),
        copies: 0,
        keep_original: false,
        seed: 1,
        shard_size: 256,
        decoding: Default::default(),
        strict: true,
    };
    fs::create_dir(wd.join("t")).unwrap();
    ortl_augment::write_tensors(
        &manifest,
        "ml.csv",
        &job,
        &wd.join("t"),
        &wd.join("t"),
        || {},
    )
    .unwrap();
    let set = ortl_manifest::TensorSet::open(&wd.join("t")).unwrap();
    let shard = set.load_shard(&set.meta.shards[0]).unwrap();
    assert_eq!(set.meta.shards.len(), 1);
    set.rows
        .iter()
        .map(|r| {
            let pixels = shard.index_axis(Axis(0), r.index).insert_axis(Axis(0));
            (file_name(&r.path), pixels.to_owned().into_dyn())
        })
        .collect()
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn rows_hold_the_truth_the_models_sigmoids_and_the_findings_at_threshold() {
    let (wd, rows) = setup();
    let (code, stdout, stderr) = infer(&wd, &["--manifest", "ml.csv", "--split", "val"]);
    assert_eq!(code, 0, "{stderr}");
    let table = Table::parse(&stdout);
    assert_eq!(
        table.header.join(","),
        "path,y_Cardiomegaly,y_Effusion,y_Nodule,p_Cardiomegaly,p_Effusion,p_Nodule,\
         t_Cardiomegaly,t_Effusion,t_Nodule,predicted,split,model,model_epoch"
    );
    let val: Vec<&MultiLabelRow> = rows.iter().filter(|r| r.split == Split::Val).collect();
    assert_eq!(table.rows.len(), val.len());

    // p_ is the model's sigmoid on the stored tensor of the same image.
    let stored = stored_images(&wd);
    let model = ortl_onnx::io::load(&wd.join("ml.onnx")).unwrap();
    for (i, truth) in val.iter().enumerate() {
        assert_eq!(table.get(i, "path"), truth.path);
        let pixels = stored[&file_name(&truth.path)].clone();
        let expected = ortl_runtime::testing::run(&model, vec![("image", Feed::U8(pixels))])
            .remove("probabilities")
            .unwrap();
        for (f, finding) in FINDINGS.iter().enumerate() {
            let y = match truth.targets[f] {
                Some(true) => "1",
                Some(false) => "0",
                None => "",
            };
            assert_eq!(table.get(i, &format!("y_{finding}")), y, "row {i}");
            let p: f32 = table.get(i, &format!("p_{finding}")).parse().unwrap();
            assert!(
                (p - expected[[0, f]]).abs() < 1e-6,
                "row {i} {finding}: {p} vs {}",
                expected[[0, f]]
            );
            assert_eq!(table.get(i, &format!("t_{finding}")), "0.500000");
        }
        assert_eq!(table.get(i, "predicted"), table.at_threshold(i), "row {i}");
        assert_eq!(table.get(i, "split"), "val");
        assert_eq!(table.get(i, "model"), "ml.onnx");
        assert_eq!(table.get(i, "model_epoch"), "");
    }
    // What ortl-report will read.
    let read = Predictions::read(stdout.as_bytes(), Path::new("stdout")).unwrap();
    assert_eq!(read.findings, FINDINGS);
    assert_eq!(read.thresholds, [0.5; 3]);

    // JSON lines: unknown truth is null (the test split's first images leave Nodule out).
    let (code, stdout, stderr) = infer(
        &wd,
        &[
            "--manifest",
            "ml.csv",
            "--split",
            "test",
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let test: Vec<&MultiLabelRow> = rows.iter().filter(|r| r.split == Split::Test).collect();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), test.len());
    for (line, truth) in lines.iter().zip(&test) {
        assert_eq!(line["path"], truth.path.as_str());
        let nodule = &line["y_Nodule"];
        match truth.targets[2] {
            None => assert!(nodule.is_null(), "{line}"),
            Some(y) => assert_eq!(*nodule, serde_json::json!(u8::from(y))),
        }
        assert!(line["p_Effusion"].is_f64() && line["predicted"].is_string());
        assert_eq!(line["t_Effusion"], 0.5);
        assert_eq!(line["split"], "test");
    }

    // Files given directly: no truth, no split.
    let (code, stdout, stderr) = infer(&wd, &["nih/images_001"]);
    assert_eq!(code, 0, "{stderr}");
    let table = Table::parse(&stdout);
    assert!(!table.rows.is_empty());
    for row in 0..table.rows.len() {
        for column in ["y_Cardiomegaly", "y_Effusion", "y_Nodule", "split"] {
            assert_eq!(table.get(row, column), "", "{column}");
        }
    }
    let (_, headless, _) = infer(&wd, &["nih/images_001", "--no-header"]);
    assert_eq!(headless, stdout.split_once('\n').unwrap().1);

    // Shards and -o as for single-label rows; a full disk is a runtime failure.
    let args = ["--manifest", "ml.csv", "--batch", "3"];
    let (_, whole, _) = infer(&wd, &args);
    let mut joined = String::new();
    for shard in ["1/2", "2/2"] {
        let (code, part, stderr) = infer(&wd, &[&args[..], &["--shard", shard]].concat());
        assert_eq!(code, 0, "{stderr}");
        joined += &part;
    }
    assert_eq!(joined, whole);
    let (code, stdout, stderr) = infer(&wd, &[&args[..], &["-o", "all.csv"]].concat());
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    assert_eq!(wd.read("all.csv"), whole);
    let (code, _, stderr) = infer(&wd, &[&args[..], &["-o", "/dev/full"]].concat());
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// `--threshold-from VAL --threshold-rule R` sets each finding's t_ to what the rule
/// chooses on VAL's known labels, says so per finding on stderr, and decides at it; a
/// two-class model's class 1 threshold is chosen alike.
#[test]
fn thresholds_chosen_on_validation_predictions_are_the_rules_on_that_file() {
    let (wd, _) = setup();
    let (code, _, stderr) = infer(
        &wd,
        &["--manifest", "ml.csv", "--split", "val", "-o", "val.csv"],
    );
    assert_eq!(code, 0, "{stderr}");
    let val = Predictions::read(
        fs::File::open(wd.join("val.csv")).unwrap(),
        Path::new("val.csv"),
    )
    .unwrap();
    for rule in ["youden", "sensitivity=0.9", "specificity=0.6"] {
        let parsed: ThresholdRule = rule.parse().unwrap();
        let expected: Vec<f64> = (0..FINDINGS.len())
            .map(|f| {
                let (labels, scores) = val.finding(f);
                parsed.choose(&labels, &scores)
            })
            .collect();
        assert!(
            expected.iter().all(|t| (0.0..=1.0).contains(t)),
            "{rule}: {expected:?}"
        );
        let (code, stdout, stderr) = infer(
            &wd,
            &[
                "--manifest",
                "ml.csv",
                "--split",
                "test",
                "--threshold-from",
                "val.csv",
                "--threshold-rule",
                rule,
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        let read = Predictions::read(stdout.as_bytes(), Path::new("stdout")).unwrap();
        assert_eq!(read.thresholds, expected, "{rule}");
        for (finding, t) in FINDINGS.iter().zip(&expected) {
            let said = format!("ortl-infer: threshold {t} for {finding} ({rule} on val.csv: ");
            assert!(stderr.contains(&said), "{said}\n{stderr}");
        }
        assert!(!stderr.contains("warning"), "{stderr}");
        let table = Table::parse(&stdout);
        for row in 0..table.rows.len() {
            assert_eq!(table.get(row, "predicted"), table.at_threshold(row));
        }
        let decisions: std::collections::BTreeSet<&str> = (0..table.rows.len())
            .map(|row| table.get(row, "predicted"))
            .collect();
        assert!(decisions.len() > 1, "{rule}: {decisions:?}");
    }
    // The rates printed are those at the threshold on val.csv.
    let (_, _, stderr) = infer(
        &wd,
        &["--manifest", "ml.csv", "--threshold-from", "val.csv"],
    );
    let (labels, scores) = val.finding(1);
    let t = ThresholdRule::Youden.choose(&labels, &scores);
    let at = ortl_metrics::Confusion::at(&labels, &scores, t);
    let rates = format!(
        "sensitivity {:.3}, specificity {:.3}; {} positive, {} negative)",
        at.sensitivity(),
        at.specificity(),
        at.tp + at.fn_,
        at.tn + at.fp
    );
    let line = stderr.lines().find(|l| l.contains("for Effusion")).unwrap();
    assert!(line.ends_with(&rates), "{line}\n{rates}");
    // That run scored every split, val among them: the labelled images the thresholds were
    // chosen on.
    let val_images = val.paths.len();
    let warned = format!(
        "warning: {} scored here are among those val.csv chose the thresholds on",
        ortl_cli::count(val_images, "image", "images")
    );
    assert!(stderr.contains(&warned), "{warned}\n{stderr}");

    // A two-class model: class 1's threshold, the predicted column at it.
    wd.dataset("data", 5);
    save_model(
        &wd,
        "sl.onnx",
        Task::SingleLabel,
        &["normal", "tuberculosis"],
    );
    let sl = |args: &[&str]| run(wd.command(BIN).args(["--model", "sl.onnx"]).args(args));
    let (code, _, stderr) = sl(&["data", "-o", "sl-val.csv"]);
    assert_eq!(code, 0, "{stderr}");
    let chosen_on = ortl_manifest::Predictions::from_path(&wd.join("sl-val.csv")).unwrap();
    let labels: Vec<bool> = chosen_on.labels.iter().map(|&l| l == 1).collect();
    let scores: Vec<f64> = chosen_on.probabilities.iter().map(|p| p[1]).collect();
    let t = ThresholdRule::Youden.choose(&labels, &scores);
    let (code, stdout, stderr) = sl(&["data", "--threshold-from", "sl-val.csv"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "threshold {t} for tuberculosis (youden on sl-val.csv: "
        )),
        "{stderr}"
    );
    let table = Table::parse(&stdout);
    for row in 0..table.rows.len() {
        let p: f64 = table.get(row, "p_tuberculosis").parse().unwrap();
        let predicted = if p >= t { "1" } else { "0" };
        assert_eq!(table.get(row, "predicted"), predicted, "p {p}, t {t}");
    }
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--model", "sl.onnx", "data", "--threshold-from", "val.csv"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "val.csv: multi-label predictions, but sl.onnx is a single-label model; choose thresholds on its own predictions"
        ),
        "{stderr}"
    );
}

/// A finding without positives (or negatives) in the file has no threshold by any rule:
/// it keeps 0.5, and stderr says which.
#[test]
fn a_finding_without_positives_keeps_one_half_with_a_warning() {
    let (wd, _) = setup();
    let findings: Vec<String> = FINDINGS.iter().map(|f| f.to_string()).collect();
    let model = EvaluatedModel {
        path: "ml.onnx".into(),
        epoch: None,
    };
    let file = fs::File::create(wd.join("few.csv")).unwrap();
    let mut writer = Writer::new(file, Format::Csv, &findings, &[0.5; 3], false, model);
    writer.header().unwrap();
    for (path, targets, p) in [
        (
            "a.png",
            [Some(true), Some(true), Some(false)],
            [0.8, 0.7, 0.2],
        ),
        (
            "b.png",
            [Some(false), Some(false), Some(false)],
            [0.3, 0.4, 0.6],
        ),
        ("c.png", [Some(true), None, Some(false)], [0.6, 0.9, 0.5]),
    ] {
        writer
            .row(&Row {
                path,
                targets: Some(&targets),
                probabilities: &p,
                cam: None,
                split: Some(Split::Val),
            })
            .unwrap();
    }
    drop(writer);
    let (code, stdout, stderr) = infer(
        &wd,
        &[
            "--manifest",
            "ml.csv",
            "--split",
            "test",
            "--threshold-from",
            "few.csv",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "ortl-infer: warning: threshold 0.5 for Nodule: youden needs positive and negative images of it in few.csv (sensitivity n/a, specificity"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("ortl-infer: threshold 0.6 for Cardiomegaly (youden on few.csv: sensitivity 1.000, specificity 1.000; 2 positive, 1 negative)"),
        "{stderr}"
    );
    let read = Predictions::read(stdout.as_bytes(), Path::new("stdout")).unwrap();
    assert_eq!(read.thresholds, [0.6, 0.7, 0.5]);
}

/// Each usage error is one line naming the file(s) and what to do, before any image is read.
#[test]
fn mismatched_forms_and_flags_without_meaning_are_usage_errors() {
    let (wd, _) = setup();
    save_model(
        &wd,
        "sl.onnx",
        Task::SingleLabel,
        &["normal", "tuberculosis"],
    );
    fs::write(
        wd.join("sl.csv"),
        "path,label,class,split\nnih/images_001/00000001_000.png,0,normal,val\n",
    )
    .unwrap();
    fs::write(
        wd.join("sl-preds.csv"),
        "path,label,class,predicted,predicted_class,p_normal,p_tuberculosis\nx.png,0,normal,0,normal,0.6,0.4\n",
    )
    .unwrap();
    fs::write(
        wd.join("other.csv"),
        "path,y_Mass,p_Mass,t_Mass,predicted\nx.png,1,0.7,0.5,Mass\n",
    )
    .unwrap();
    fs::write(
        wd.join("pneumonia.csv"),
        "path,split,y_Pneumonia\nnih/images_001/00000001_000.png,val,1\n",
    )
    .unwrap();
    let cases: [(&str, &[&str], &str); 9] = [
        (
            "ml.onnx",
            &["--manifest", "sl.csv"],
            "sl.csv: a single-label manifest, but ml.onnx is a multi-label model; give a multi-label manifest (ortl-split --label-separator or --label-columns)",
        ),
        (
            "sl.onnx",
            &["--manifest", "ml.csv"],
            "ml.csv: a multi-label manifest, but sl.onnx is a single-label model; give a manifest with one class per image",
        ),
        (
            "ml.onnx",
            &["--manifest", "pneumonia.csv"],
            "pneumonia.csv: finding 'Pneumonia' is not one of the model's findings (Cardiomegaly, Effusion, Nodule)",
        ),
        (
            "ml.onnx",
            &["--manifest", "ml.csv", "--threshold-from", "sl-preds.csv"],
            "sl-preds.csv: single-label predictions, but ml.onnx is a multi-label model; choose thresholds on its own predictions of validation images (ortl-infer --model ml.onnx --manifest MANIFEST --split val -o val.csv)",
        ),
        (
            "ml.onnx",
            &["--manifest", "ml.csv", "--threshold-from", "other.csv"],
            "other.csv: findings (Mass) differ from ml.onnx's (Cardiomegaly, Effusion, Nodule)",
        ),
        (
            "ml.onnx",
            &["--manifest", "ml.csv", "--top-k", "2"],
            "--top-k ranks classes of a single-label model",
        ),
        (
            "ml.onnx",
            &[
                "--manifest",
                "ml.csv",
                "--cam",
                "cams",
                "--cam-class",
                "true",
            ],
            "--cam-class true needs a single-label model; name one of the findings (Cardiomegaly, Effusion, Nodule)",
        ),
        (
            "ml.onnx",
            &[
                "--manifest",
                "ml.csv",
                "--cam",
                "cams",
                "--cam-class",
                "Pneumonia",
            ],
            "--cam-class 'Pneumonia' is not one of the model's findings (Cardiomegaly, Effusion, Nodule), predicted",
        ),
        (
            "ml.onnx",
            &["--manifest", "ml.csv", "--threshold", "1.5"],
            "'1.5' is not a probability in [0, 1]",
        ),
    ];
    for (model, args, message) in cases {
        let (code, stdout, stderr) = run(wd.command(BIN).args(["--model", model]).args(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        if !message.starts_with('\'') {
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        }
    }
    assert!(
        !wd.join("cams").exists(),
        "nothing written on a usage error"
    );
    let (code, _, stderr) = infer(&wd, &["--manifest", "ml.csv", "--threshold-rule", "youden"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--threshold-from"), "{stderr}");
}

/// `--cam-class NAME` draws that finding's Grad-CAM (the same map as one computed here from
/// the model's feature map and the finding's score), and cam_class says so; without it,
/// each image gets the map of its most probable finding.
#[test]
fn cam_class_draws_the_named_findings_map_and_the_column_says_which() {
    let (wd, _) = setup();
    let cams = |dir: &str, class: Option<&str>| -> Table {
        let mut args = vec!["--manifest", "ml.csv", "--split", "val", "--cam", dir];
        args.extend(class.iter().flat_map(|c| ["--cam-class", *c]));
        let (code, stdout, stderr) = infer(&wd, &args);
        assert_eq!(code, 0, "{stderr}");
        let table = Table::parse(&stdout);
        assert_eq!(
            table.header[10..],
            [
                "predicted",
                "cam_path",
                "cam_class",
                "split",
                "model",
                "model_epoch"
            ]
        );
        table
    };
    let npy = |path: &str| {
        Array2::<f32>::read_npy(fs::File::open(wd.join(&path.replace(".png", ".npy"))).unwrap())
            .unwrap()
    };
    let named: Vec<Table> = FINDINGS
        .iter()
        .map(|f| cams(&format!("cams-{f}"), Some(f)))
        .collect();
    for (f, table) in FINDINGS.iter().zip(&named) {
        for row in 0..table.rows.len() {
            assert_eq!(table.get(row, "cam_class"), *f);
            assert!(wd.join(table.get(row, "cam_path")).is_file());
        }
    }

    // Every image's map of every finding, computed here: the classifier's feature map,
    // then the CAM graph weighted by the finding's score.
    let stored = stored_images(&wd);
    let rows = named[0].rows.len();
    let views: Vec<_> = (0..rows)
        .map(|row| stored[&file_name(named[0].get(row, "path"))].view())
        .collect();
    let pixels = ndarray::concatenate(Axis(0), &views).unwrap();
    let model = ortl_onnx::io::load(&wd.join("ml.onnx")).unwrap();
    let target = ortl_explain::locate(&model, None).unwrap();
    let exposed = ortl_explain::expose_features(&model, &target);
    let features = ortl_runtime::testing::run(&exposed, vec![("image", Feed::U8(pixels))])
        .remove(&target.features)
        .unwrap();
    let graph = ortl_explain::cam_model(&model, &target, ortl_explain::Method::GradCam).unwrap();
    let (h, w) = target.spatial();
    assert!(h * w > 1, "a feature map with a shape");
    let mut maps = Vec::new();
    for (f, table) in named.iter().enumerate() {
        let weights = ortl_explain::one_hot(&vec![f; rows], FINDINGS.len()).into_dyn();
        let computed = ortl_runtime::testing::run(
            &graph,
            vec![
                (target.features.as_str(), Feed::F32(features.clone())),
                (ortl_explain::cam::CLASS_WEIGHTS, Feed::F32(weights)),
            ],
        )
        .remove(ortl_explain::cam::CAM)
        .unwrap();
        for row in 0..rows {
            let map: Vec<f32> = computed.index_axis(Axis(0), row).iter().copied().collect();
            let expected = ortl_draw::overlay::upsample(&map, h, w, SIZE as u32, SIZE as u32);
            let drawn = npy(table.get(row, "cam_path"));
            let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
            for (got, want) in drawn.iter().zip(&expected) {
                assert!(
                    (got - want).abs() <= 1e-4 * scale,
                    "{} row {row}: {got} vs {want}",
                    FINDINGS[f]
                );
            }
            maps.push((row, f, drawn));
        }
    }
    assert!(
        maps.iter().any(|(_, _, m)| m.iter().any(|&v| v > 0.0)),
        "some maps are not empty"
    );
    assert!(
        maps.iter().any(|(row, f, m)| maps
            .iter()
            .any(|(other, g, n)| row == other && f != g && m != n)),
        "findings' maps differ"
    );

    // Without --cam-class: the most probable finding's map, named in cam_class.
    let table = cams("cams-top", None);
    for row in 0..table.rows.len() {
        let p = |f: &&str| as_written(table.get(row, &format!("p_{f}")).parse().unwrap());
        let top = FINDINGS
            .iter()
            .max_by(|a, b| p(a).total_cmp(&p(b)))
            .unwrap();
        assert_eq!(table.get(row, "cam_class"), *top, "row {row}");
        let f = FINDINGS.iter().position(|f| f == top).unwrap();
        assert_eq!(
            npy(table.get(row, "cam_path")),
            npy(named[f].get(row, "cam_path")),
            "row {row}"
        );
    }
}
