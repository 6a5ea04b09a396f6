//! ortl-report on multi-label predictions (issue #40): per-finding AUC against
//! scikit-learn, undefined findings, co-occurrence, the report's panels, and compare.

use std::fs;
use std::path::Path;

use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::{run, run_with_stdin};
use ortl_manifest::predictions::multilabel::{Predictions, Row, Writer};
use ortl_manifest::predictions::{EvaluatedModel, Format};
use ortl_manifest::{Split, TrainRecord};

use super::{BIN, predictions as single_label, write_train_record};

/// The table `scripts/record-sklearn-auc.py` builds: 64 images, 4 findings, unknown labels,
/// tied scores.
const TABLE: &str = include_str!("../data/multilabel-predictions.csv");

/// `scripts/record-sklearn-auc.py` with scikit-learn 1.9.1 and numpy 2.4.6 (2026-12-07):
/// per finding, `roc_auc_score` over its known rows and DeLong's interval from the script's
/// own O(n²) numpy implementation; Mass's upper bound (1.0783) is clipped to 1.
const REFERENCE: [(&str, f64, (f64, f64)); 4] = [
    (
        "Effusion",
        0.8888888888888888,
        (0.7885071686587118, 0.9892706091190661),
    ),
    ("Mass", 0.8798076923076923, (0.6813249493734264, 1.0)),
    (
        "Nodule",
        0.6766666666666666,
        (0.5048323946031774, 0.8485009387301559),
    ),
    (
        "Pneumothorax",
        0.7701612903225806,
        (0.6331326408450382, 0.9071899398001231),
    ),
];
/// The same script: the mean of the four, and `roc_auc_score` over all 213 known labels.
const MACRO: f64 = 0.803881134546457;
const MICRO: f64 = 0.7881408661025386;

/// One image of a predictions table: its path, truth per finding and probabilities.
type Image = (String, Vec<Option<bool>>, Vec<f32>);

/// Multi-label predictions as ortl-infer writes them (its writer), every image of `split`.
fn table(findings: &[String], thresholds: &[f64], images: &[Image], split: Split) -> String {
    let model = EvaluatedModel {
        path: "run/best.onnx".into(),
        epoch: Some(7),
    };
    let mut bytes = Vec::new();
    let mut writer = Writer::new(&mut bytes, Format::Csv, findings, thresholds, false, model);
    writer.header().unwrap();
    for (path, targets, probabilities) in images {
        writer
            .row(&Row {
                path,
                targets: Some(targets),
                probabilities,
                cam: None,
                split: Some(split),
            })
            .unwrap();
    }
    drop(writer);
    String::from_utf8(bytes).unwrap()
}

/// [`table`] at threshold 0.5 for every finding, written to `path`.
fn write_predictions(path: &Path, findings: &[&str], images: &[Image], split: Split) {
    let findings: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    let thresholds = vec![0.5; findings.len()];
    fs::write(path, table(&findings, &thresholds, images, split)).unwrap();
}

fn json(wd: &Workdir, file: &str) -> serde_json::Value {
    serde_json::from_str(&wd.read(file)).unwrap()
}

/// The committed table is ortl-infer's own form (its writer gives the same bytes), and the
/// report's AUCs equal scikit-learn's: each finding's, the macro and the micro average.
#[test]
fn auc_matches_scikit_learn_on_the_recorded_table() {
    let wd = Workdir::new();
    let read = Predictions::read(TABLE.as_bytes(), Path::new("table")).unwrap();
    let images: Vec<Image> = (0..read.targets.len())
        .map(|i| {
            let p = read.probabilities[i].iter().map(|&p| p as f32).collect();
            (read.paths[i].clone(), read.targets[i].clone(), p)
        })
        .collect();
    assert_eq!(read.models[0].path, "run/best.onnx");
    assert_eq!(
        table(&read.findings, &read.thresholds, &images, Split::Test),
        TABLE
    );

    fs::write(wd.join("p.csv"), TABLE).unwrap();
    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "p.csv", "-o", "r", "--bootstrap", "200"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("finding") && stdout.contains("macro") && stdout.contains("micro"),
        "{stdout}"
    );
    let metrics = json(&wd, "r/metrics.json");
    assert_eq!(metrics["task"], "multi-label");
    for (i, (finding, auc, (low, high))) in REFERENCE.iter().enumerate() {
        let f = &metrics["findings"][i];
        assert_eq!(f["finding"], *finding);
        let row = &f["metrics"][0];
        assert_eq!(row["metric"], "roc_auc");
        let got = row["value"].as_f64().unwrap();
        assert!((got - auc).abs() < 1e-12, "{finding}: {got} vs {auc}");
        assert_eq!(row["interval"], "delong");
        for (bound, expected) in [("ci_low", low), ("ci_high", high)] {
            let got = row[bound].as_f64().unwrap();
            assert!((got - expected).abs() < 1e-9, "{finding} {bound}: {got}");
        }
    }
    for (average, expected) in [("macro_auc", MACRO), ("micro_auc", MICRO)] {
        let got = metrics[average]["value"].as_f64().unwrap();
        assert!((got - expected).abs() < 1e-12, "{average}: {got}");
        assert_eq!(metrics[average]["interval"], "bootstrap");
        let (low, high) = (
            metrics[average]["ci_low"].as_f64().unwrap(),
            metrics[average]["ci_high"].as_f64().unwrap(),
        );
        assert!(low < got && got < high, "{average}: {low} {got} {high}");
    }
    assert_eq!(metrics["labels"], 213);
    // metrics.csv: one row per finding, then macro and micro, as the module documents.
    let csv = wd.read("r/metrics.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4 + 2, "{csv}");
    assert!(lines[0].starts_with("scope,finding,n,positives,prevalence,threshold,tp,fp,fn,tn,roc_auc,roc_auc_ci_low,roc_auc_ci_high,roc_auc_interval,sensitivity,"));
    assert!(lines[2].starts_with("finding,Mass,56,4,"), "{}", lines[2]);
    assert!(lines[5].starts_with("macro,,4,"), "{}", lines[5]);
    assert!(lines[6].starts_with("micro,,213,49,"), "{}", lines[6]);
    assert!(
        lines.iter().all(|l| l.split(',').count() == 10 + 6 * 4),
        "{csv}"
    );
}

/// A finding never positive gets NaN (null, empty cells, a dash), a warning naming it on
/// stderr and in the report, a panel that says why, and no place in the macro average.
#[test]
fn a_finding_without_positives_is_nan_named_and_left_out() {
    let wd = Workdir::new();
    let rows: Vec<Image> = (0..24)
        .map(|i| {
            let positive = i % 3 == 0;
            let score = if positive { 0.6 } else { 0.3 } + 0.01 * (i % 5) as f32;
            (
                format!("img{i:02}.png"),
                vec![
                    Some(positive),
                    Some(false),
                    (i % 4 != 0).then_some(i % 2 == 0),
                ],
                vec![score, 0.2 + 0.02 * (i % 7) as f32, 0.5],
            )
        })
        .collect();
    write_predictions(
        &wd.join("p.csv"),
        &["Effusion", "Hernia", "Mass"],
        &rows,
        Split::Test,
    );
    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "p.csv", "-o", "r", "--bootstrap", "50"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "warning: ROC AUC is undefined (NaN) for Hernia (no positives among 24 known): left out of the macro average"
        ),
        "{stderr}"
    );
    assert!(
        stdout.contains("Hernia") && stdout.contains("NaN"),
        "{stdout}"
    );
    let metrics = json(&wd, "r/metrics.json");
    assert_eq!(metrics["undefined"], serde_json::json!(["Hernia"]));
    assert_eq!(metrics["averaged"], serde_json::json!(["Effusion", "Mass"]));
    assert_eq!(
        metrics["findings"][1]["metrics"][0]["value"],
        serde_json::Value::Null
    );
    let effusion = metrics["findings"][0]["metrics"][0]["value"]
        .as_f64()
        .unwrap();
    let mass = metrics["findings"][2]["metrics"][0]["value"]
        .as_f64()
        .unwrap();
    let macro_auc = metrics["macro_auc"]["value"].as_f64().unwrap();
    assert!((macro_auc - (effusion + mass) / 2.0).abs() < 1e-12);
    let csv = wd.read("r/metrics.csv");
    let hernia = csv
        .lines()
        .find(|l| l.starts_with("finding,Hernia,"))
        .unwrap();
    assert!(
        hernia.starts_with("finding,Hernia,24,0,0.0,0.5,0,0,0,24,,,,,"),
        "{hernia}"
    );
    let html = wd.read("r/report.html");
    assert!(html.contains("Undefined, so not averaged: Hernia (no positives among 24 known)"));
    assert!(
        wd.read("r/roc_findings.svg")
            .contains("no positives among 24 known")
    );
    // Mass is unknown in a quarter of the images: 18 known.
    assert_eq!(metrics["findings"][2]["n"], 18);
}

/// co_occurrence.csv and the HTML table count, for each pair of findings, the images where
/// both are positive among those where both are known (worked by hand).
#[test]
fn co_occurrence_counts_pairs_where_both_are_known() {
    let wd = Workdir::new();
    let (y, n, u) = (Some(true), Some(false), None);
    let rows: Vec<Image> = [
        ("a.png", vec![y, y, u], vec![0.9, 0.8, 0.1]),
        ("b.png", vec![y, n, y], vec![0.7, 0.3, 0.6]),
        ("c.png", vec![n, y, y], vec![0.2, 0.9, 0.8]),
        ("d.png", vec![y, u, y], vec![0.6, 0.4, 0.7]),
        ("e.png", vec![n, n, n], vec![0.1, 0.2, 0.3]),
    ]
    .map(|(path, truth, p)| (path.to_string(), truth, p))
    .to_vec();
    write_predictions(&wd.join("p.csv"), &["A", "B", "C"], &rows, Split::Val);
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "p.csv", "-o", "r", "--bootstrap", "0"]));
    assert_eq!(code, 0, "{stderr}");
    let written = wd.read("r/co_occurrence.csv");
    // A positive in 3 of 5; B known in 4 (2 positive); C known in 4 (3 positive).
    let expected = "finding_a,finding_b,both_positive,both_known,rate\n\
        A,A,3,5,0.6\nA,B,1,4,0.25\nA,C,2,4,0.5\n\
        B,A,1,4,0.25\nB,B,2,4,0.5\nB,C,1,3,0.3333333333333333\n\
        C,A,2,4,0.5\nC,B,1,3,0.3333333333333333\nC,C,3,4,0.75\n";
    assert_eq!(written, expected);
    let html = wd.read("r/report.html");
    assert!(html.contains("Label prevalence and co-occurrence"));
    assert!(html.contains("33.3 %<small>1/3</small>"), "{html}");
    assert!(
        html.contains(r#"<td class="same">60.0 %<small>3/5</small></td>"#),
        "the diagonal is the prevalence: {html}"
    );
    let md = wd.read("r/report.md");
    assert!(
        md.contains("| A | 60.0 % (3/5) | 25.0 % (1/4) | 50.0 % (2/4) |"),
        "{md}"
    );
    // Without bootstrap resamples the averages have no interval, and say so.
    let metrics = json(&wd, "r/metrics.json");
    assert_eq!(metrics["macro_auc"]["ci_low"], serde_json::Value::Null);
    assert_eq!(metrics["macro_auc"]["interval"], "none");
}

/// The HTML holds one ROC panel per finding (its title with the AUC), escapes finding
/// names, says what was evaluated with the run's record, warns on training images, and
/// draws the run's training curves; stdin works as a file does.
#[test]
fn the_report_has_a_roc_panel_per_finding_and_says_what_was_evaluated() {
    let wd = Workdir::new();
    let hostile = "<b>Mass</b>";
    let findings = ["Atelectasis", "Cardiomegaly", "Effusion", hostile, "Nodule"];
    let rows: Vec<Image> = (0..40)
        .map(|i| {
            let targets: Vec<Option<bool>> = (0..5).map(|f| Some((i + f) % 3 == 0)).collect();
            let p = targets
                .iter()
                .enumerate()
                .map(|(f, t)| {
                    let base = if t == &Some(true) { 0.55 } else { 0.3 };
                    base + 0.04 * ((i * 7 + f * 3) % 9) as f32
                })
                .collect();
            (format!("p{:02}/i{i:02}.png", i / 2), targets, p)
        })
        .collect();
    write_predictions(&wd.join("p.csv"), &findings, &rows, Split::Train);
    fs::create_dir(wd.join("run")).unwrap();
    write_train_record(&wd, "run", |r: &mut TrainRecord| {
        r.settings.classes = findings.map(String::from).to_vec();
        r.summary.best_epoch = Some(7);
    });
    fs::write(
        wd.join("run/history.csv"),
        "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n1,0.7,0.5,0.69,0.5,0.001,1.0\n2,0.4,0.8,0.5,0.75,0.001,1.0\n",
    )
    .unwrap();
    let (code, _, stderr) = run_with_stdin(
        wd.command(BIN).args([
            "--predictions",
            "-",
            "--run",
            "run",
            "-o",
            "r",
            "--bootstrap",
            "50",
        ]),
        wd.read("p.csv").as_bytes(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("evaluated run/best.onnx, epoch 7 (the best epoch by val_accuracy, of 5)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: 40 of the 40 scored images are training images"),
        "{stderr}"
    );
    let html = wd.read("r/report.html");
    assert!(
        !html.contains(hostile),
        "raw finding names reached the HTML"
    );
    assert!(html.contains("&lt;b&gt;Mass&lt;/b&gt;"));
    assert!(html.contains("Evaluated model") && html.contains("Training curves"));
    assert!(
        html.contains("<th>Images scored</th><td class=\"text\">40 (40 train)</td>"),
        "{html}"
    );
    let svg = wd.read("r/roc_findings.svg");
    let metrics = json(&wd, "r/metrics.json");
    for (i, finding) in findings.iter().enumerate() {
        let auc = metrics["findings"][i]["metrics"][0]["value"]
            .as_f64()
            .unwrap();
        let escaped = finding.replace('<', "&lt;").replace('>', "&gt;");
        assert!(
            svg.contains(&format!(">\n{escaped}\n</text>")),
            "{finding}'s panel"
        );
        // With its interval, or bare where there is none (a perfect AUC has no DeLong interval).
        let interval = metrics["findings"][i]["metrics"][0]["ci_low"].is_number();
        let shown = match interval {
            true => format!("AUC {auc:.3} ("),
            false => format!("AUC {auc:.3}\n"),
        };
        assert!(svg.contains(&shown), "{finding}'s AUC: {svg}");
    }
    assert_eq!(
        svg.matches("threshold 0.50").count(),
        findings.len(),
        "an operating point each"
    );
    assert!(
        html.contains(&svg[svg.find("<svg").unwrap()..][..200]),
        "the panels are in the HTML"
    );
    for figure in ["roc_findings", "training_curves"] {
        let png = fs::read(wd.join(&format!("r/{figure}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{figure}.png");
    }
    assert!(wd.read("r/report.md").contains("\\<b\\>Mass\\</b\\>"));
}

/// The flags that choose a positive class, a threshold or a gallery are refused with
/// multi-label predictions, the two kinds are not pooled, and a bad cell names its line.
#[test]
fn single_label_flags_and_mixed_kinds_are_refused() {
    let wd = Workdir::new();
    fs::write(wd.join("m.csv"), TABLE).unwrap();
    fs::write(wd.join("s.csv"), single_label(["normal", "tb"])).unwrap();
    for (flag, value) in [
        ("--threshold", "0.3"),
        ("--positive", "Mass"),
        ("--threshold-from", "m.csv"),
        ("--cams", "."),
    ] {
        let (code, _, stderr) =
            run(wd
                .command(BIN)
                .args(["--predictions", "m.csv", "-o", "r", flag, value]));
        assert_eq!(code, 2, "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!("{flag} applies to single-label predictions")),
            "{stderr}"
        );
    }
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "s.csv", "m.csv", "-o", "r"]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("m.csv: multi-label predictions, but s.csv holds single-label"),
        "{stderr}"
    );
    assert!(!wd.join("r").exists(), "nothing written");
    let bad = TABLE.replacen(
        "\npatient00/image00.png,0,",
        "\npatient00/image00.png,2,",
        1,
    );
    fs::write(wd.join("bad.csv"), bad).unwrap();
    let (code, _, stderr) = run(wd
        .command(BIN)
        .args(["--predictions", "bad.csv", "-o", "r"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bad.csv, line 2: y_Effusion is '2'; expected 1, 0 or nothing"),
        "{stderr}"
    );
}

/// compare ranks multi-label runs by macro and micro AUC with each finding's AUC beside
/// them, and refuses to mix them with single-label runs, naming both.
#[test]
fn compare_works_over_multilabel_runs_and_refuses_mixed_kinds() {
    let wd = Workdir::new();
    let tied = TABLE
        .lines()
        .enumerate()
        .map(|(i, line)| {
            // Run b scores every image alike for Nodule: its AUC is one half.
            let mut cells: Vec<&str> = line.split(',').collect();
            if i > 0 {
                cells[7] = "0.500000";
            }
            cells.join(",") + "\n"
        })
        .collect::<String>();
    for (run_dir, text, backbone) in [("a", TABLE.to_string(), "resnet50"), ("b", tied, "vgg19")] {
        fs::create_dir(wd.join(run_dir)).unwrap();
        fs::write(wd.join(&format!("{run_dir}/predictions.csv")), text).unwrap();
        write_train_record(&wd, run_dir, |r: &mut TrainRecord| {
            r.settings.backbone = backbone.into();
        });
    }
    let (code, stdout, stderr) = run(wd.command(BIN).args([
        "compare",
        "a",
        "b",
        "-o",
        "cmp",
        "--bootstrap",
        "50",
        "--sort-by",
        "roc_auc_Nodule",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .ends_with("macro_auc micro_auc"),
        "{stdout}"
    );
    assert!(
        stdout.find("a ").unwrap() < stdout.find("b ").unwrap(),
        "{stdout}"
    );
    let wide = wd.read("cmp/comparison.csv");
    let header: Vec<&str> = wide.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header[10..13],
        ["macro_auc", "macro_auc_ci_low", "macro_auc_ci_high"]
    );
    assert!(header.contains(&"roc_auc_Nodule"), "{wide}");
    let nodule = header.iter().position(|h| *h == "roc_auc_Nodule").unwrap();
    let b = wide.lines().find(|l| l.starts_with("b,")).unwrap();
    assert_eq!(b.split(',').nth(nodule), Some("0.5"), "{b}");
    let html = wd.read("cmp/comparison.html");
    assert!(html.contains("Macro ROC AUC (95 % CI)") && html.contains("ROC AUC per finding"));
    assert!(wd.read("cmp/comparison.svg").contains("macro_auc"));

    fs::create_dir(wd.join("s")).unwrap();
    fs::write(wd.join("s/predictions.csv"), single_label(["normal", "tb"])).unwrap();
    write_train_record(&wd, "s", |_| {});
    let (code, _, stderr) = run(wd.command(BIN).args(["compare", "a", "s", "-o", "mixed"]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "runs a and s cannot be compared: a has multi-label predictions and s single-label ones"
        ),
        "{stderr}"
    );
    assert!(!wd.join("mixed").exists());
}
