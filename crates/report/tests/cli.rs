//! ortl-report run as a user runs it, on generated predictions.

use std::fs;

use ortl_fixtures::Workdir;
use ortl_fixtures::workdir::{run, run_with_stdin};
use ortl_manifest::TrainRecord;

mod multilabel;

const BIN: &str = env!("CARGO_BIN_EXE_ortl-report");

/// Writes `run`/train.json as ortl-train does: the sample record, edited.
fn write_train_record(wd: &Workdir, run: &str, edit: impl FnOnce(&mut TrainRecord)) {
    let mut record = ortl_manifest::samples::train_record();
    edit(&mut record);
    fs::write(wd.join(&format!("{run}/train.json")), record.to_json()).unwrap();
}

/// 30 images, two classes (the second named hostilely), scores that mostly separate them.
fn predictions(classes: [&str; 2]) -> String {
    let mut text = format!(
        "path,label,class,predicted,predicted_class,p_{},p_{}\n",
        classes[0], classes[1]
    );
    for i in 0..30 {
        let label = i % 2;
        let p1 = if label == 1 {
            0.55 + (i % 7) as f64 * 0.06
        } else {
            0.05 + (i % 9) as f64 * 0.07
        };
        let predicted = usize::from(p1 >= 0.5);
        text += &format!(
            "img{i}.png,{label},{},{predicted},{},{:.4},{:.4}\n",
            classes[label],
            classes[predicted],
            1.0 - p1,
            p1
        );
    }
    text
}

#[test]
fn writes_every_output_and_escapes_user_text() {
    let wd = Workdir::new();
    let hostile = "<script>alert(1)</script>";
    fs::write(wd.join("p.csv"), predictions(["normal", hostile])).unwrap();
    fs::write(wd.join("history.csv"), "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n1,0.7,0.5,0.69,0.5,0.001,1.0\n2,0.4,0.8,0.5,0.75,0.001,1.0\n").unwrap();
    let (code, stdout, stderr) = run(wd.command(BIN).args([
        "--predictions",
        "p.csv",
        "--history",
        "history.csv",
        "-o",
        "report",
        "--bootstrap",
        "200",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("metric") && stdout.contains("roc_auc"),
        "{stdout}"
    );
    let html = wd.read("report/report.html");
    assert!(!html.contains(hostile), "raw user text reached the HTML");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for metric in [
        "sensitivity",
        "specificity",
        "accuracy",
        "error_rate",
        "precision",
        "npv",
        "f1",
        "mcc",
        "balanced_accuracy",
        "cohen_kappa",
        "roc_auc",
        "average_precision",
        "brier",
        "log_loss",
        "sensitivity_at_specificity_0.90",
    ] {
        assert!(
            html.contains(&format!("<td>{}</td>", ortl_report::metrics::label(metric))),
            "{metric} missing from report.html"
        );
    }
    for figure in [
        "roc",
        "precision_recall",
        "confusion_matrix",
        "training_curves",
    ] {
        let png = fs::read(wd.join(&format!("report/{figure}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{figure}.png is a PNG");
        let (w, h) = (
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            u32::from_be_bytes(png[20..24].try_into().unwrap()),
        );
        // 240 dpi by default: print resolution, 1600 pixels wide, the dpi in pHYs.
        assert_eq!((w, h), (1600, 1200), "{figure}.png size");
        let phys = png
            .windows(4)
            .position(|c| c == b"pHYs")
            .expect("pHYs chunk");
        let per_metre = u32::from_be_bytes(png[phys + 4..phys + 8].try_into().unwrap());
        assert_eq!(per_metre, 9449, "{figure}.png: 240 dpi");
        assert!(
            wd.read(&format!("report/{figure}.svg")).contains("<svg"),
            "{figure}.svg"
        );
    }
    let csv = wd.read("report/metrics.csv");
    assert!(
        csv.starts_with("metric,value,ci_low,ci_high,threshold,interval\n"),
        "{csv}"
    );
    // Both classes: every metric, every binary metric's interval and the Youden threshold
    // are numbers, and no note.
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let summary = cells[0].starts_with("multiclass_")
            || ["macro_f1", "weighted_f1", "macro_auc"].contains(&cells[0]);
        let numbers = if summary { &cells[1..2] } else { &cells[1..4] };
        assert!(numbers.iter().all(|c| c.parse::<f64>().is_ok()), "{line}");
        if cells[0].ends_with("_at_youden") {
            assert!(cells[4].parse::<f64>().is_ok(), "{line}");
        }
    }
    assert!(!stderr.contains("only class"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&wd.read("report/metrics.json")).unwrap();
    assert_eq!(
        json["binary"]["confusion"]["tp"].as_u64().unwrap()
            + json["binary"]["confusion"]["fn"].as_u64().unwrap(),
        15
    );
}

/// The metrics that need both classes, but the rate of the class that is missing.
const NEED_BOTH: [&str; 14] = [
    "balanced_accuracy",
    "mcc",
    "cohen_kappa",
    "roc_auc",
    "sensitivity_at_specificity_0.90",
    "specificity_at_sensitivity_0.90",
    "sensitivity_at_specificity_0.95",
    "specificity_at_sensitivity_0.95",
    "sensitivity_at_youden",
    "specificity_at_youden",
    "accuracy_at_youden",
    "f1_at_youden",
    "mcc_at_youden",
    "average_precision",
];

/// Predictions holding one class only: every metric that needs both is NaN in every output
/// (null in JSON, an empty cell in CSV, a dash in HTML and Markdown, NaN on stdout), with
/// one line on stderr; the metrics that one class defines keep their numbers.
#[test]
fn one_class_gives_nan_and_a_note_never_a_number() {
    let wd = Workdir::new();
    // (class present, its label, the rate left undefined, the rate still defined).
    for (present, label, missing_rate, defined_rate) in [
        ("normal", "0", "sensitivity", "specificity"),
        ("tb", "1", "specificity", "sensitivity"),
    ] {
        let one_class: String = predictions(["normal", "tb"])
            .lines()
            .enumerate()
            .filter(|(i, l)| *i == 0 || l.split(',').nth(1) == Some(label))
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        let (code, stdout, stderr) = run_with_stdin(
            wd.command(BIN)
                .args(["--predictions", "-", "-o", present, "--bootstrap", "100"]),
            one_class.as_bytes(),
        );
        assert_eq!(code, 0, "{stderr}");
        let why: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("only class"))
            .collect();
        assert_eq!(
            why,
            [format!(
                "ortl-report: only class '{present}' is present in -'s labels: metrics that need both classes are NaN"
            )],
            "{stderr}"
        );
        // Average precision is defined (1) with positives only, F1 only with positives.
        let undefined: Vec<&str> = NEED_BOTH
            .iter()
            .copied()
            .filter(|m| !(present == "tb" && *m == "average_precision"))
            .chain([missing_rate])
            .chain((present == "normal").then_some("f1"))
            .collect();

        let json: serde_json::Value =
            serde_json::from_str(&wd.read(&format!("{present}/metrics.json"))).unwrap();
        let binary = &json["binary"];
        assert!(
            binary["youden_threshold"].is_null() && binary["confusion_at_youden"].is_null(),
            "{binary}"
        );
        let rows = binary["rows"].as_array().unwrap();
        let json_row = |metric: &str| {
            rows.iter()
                .find(|r| r["metric"] == metric)
                .unwrap_or_else(|| panic!("{metric} missing: {binary}"))
        };
        let csv = wd.read(&format!("{present}/metrics.csv"));
        let csv_row = |metric: &str| -> Vec<String> {
            csv.lines()
                .find(|l| l.starts_with(&format!("{metric},")))
                .unwrap_or_else(|| panic!("{metric}: {csv}"))
                .split(',')
                .map(String::from)
                .collect()
        };
        let html = wd.read(&format!("{present}/report.html"));
        let md = wd.read(&format!("{present}/report.md"));
        for metric in &undefined {
            let row = json_row(metric);
            for field in ["value", "ci_low", "ci_high"] {
                assert!(
                    row[field].is_null(),
                    "{present}: {metric} {field} in JSON: {row}"
                );
            }
            let cells = csv_row(metric);
            assert_eq!(cells[1..4], ["", "", ""], "{present}: {metric} in CSV");
            if metric.ends_with("_at_youden") {
                assert!(row["threshold"].is_null() && cells[4].is_empty(), "{row}");
            }
            let name = ortl_report::metrics::label(metric);
            assert!(
                html.contains(&format!("<td>{name}</td><td>—</td><td>—</td>")),
                "{present}: {metric} in HTML"
            );
            assert!(
                md.contains(&format!("| {name} | — | — |")),
                "{present}: {metric} in Markdown"
            );
            let printed = stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(metric))
                .unwrap_or_else(|| panic!("{metric}: {stdout}"));
            assert_eq!(
                printed.split_whitespace().skip(1).collect::<Vec<_>>(),
                ["NaN", "-"],
                "{present}: {printed}"
            );
        }
        // What one class does define stays a number: its own rate.
        assert!(
            csv_row(defined_rate)[1].parse::<f64>().is_ok(),
            "{present}: {csv}"
        );
        assert!(json_row("accuracy")["value"].is_f64());
        // No curve is drawn from one class; the note says why and what is left out.
        assert!(!wd.join(&format!("{present}/roc.svg")).exists());
        assert!(!wd.join(&format!("{present}/precision_recall.svg")).exists());
        assert!(wd.join(&format!("{present}/confusion_matrix.svg")).exists());
        assert!(
            html.contains(&format!("Only class '{present}' is present")),
            "a visible note"
        );
        assert!(html.contains("are left out") && md.contains("are left out"));
        assert!(
            !html.contains("chosen and scored on these same images"),
            "no Youden threshold, no note on its optimism"
        );
        fs::write(wd.join(&format!("{present}.csv")), &one_class).unwrap();
    }
    // A threshold cannot be chosen on one class.
    let (code, _, stderr) = run(wd.command(BIN).args([
        "--predictions",
        "tb.csv",
        "--threshold-from",
        "normal.csv",
        "-o",
        "chosen",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--threshold-from normal.csv: Youden's threshold needs both classes"),
        "{stderr}"
    );
}

#[test]
fn bad_input_is_a_usage_error_naming_the_file() {
    let wd = Workdir::new();
    fs::write(wd.join("bad.csv"), "path,p_a,p_b\nx,0.1,0.9\n").unwrap();
    let (code, _, stderr) = run(wd
        .command(BIN)
        .args(["--predictions", "bad.csv", "-o", "r"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("bad.csv") && stderr.contains("label"),
        "{stderr}"
    );
    assert!(!wd.join("r").exists(), "nothing written");
}

#[test]
fn compare_builds_one_row_per_run() {
    let wd = Workdir::new();
    for (run, backbone) in [("a", "resnet50"), ("b", "resnet-mini")] {
        fs::create_dir(wd.join(run)).unwrap();
        fs::write(
            wd.join(&format!("{run}/predictions.csv")),
            predictions(["normal", "tb"]),
        )
        .unwrap();
        write_train_record(&wd, run, |r| {
            r.settings.backbone = backbone.into();
            r.settings.head = "linear".into();
            r.settings.backbone_parameters = 123;
            r.summary.epochs_run = 3;
            r.summary.seconds = 9.5;
            r.summary.images_per_second = 42.0;
        });
    }
    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(["compare", "a", "b", "-o", "cmp", "--bootstrap", "100"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("resnet-mini"), "{stdout}");
    // The same images scored identically by both runs: a paired DeLong difference of 0.
    let differences = wd.read("cmp/auc_differences.csv");
    let rows: Vec<&str> = differences.lines().collect();
    assert_eq!(
        rows[0],
        "a,b,paired,auc_a,auc_b,difference,ci_low,ci_high,p_value"
    );
    assert_eq!(rows.len(), 2, "{differences}");
    assert!(rows[1].starts_with("a,b,true,"), "{differences}");
    assert!(rows[1].contains(",0.0,0.0,0.0,1.0"), "{differences}");
    assert!(
        wd.read("cmp/comparison.html")
            .contains("ROC AUC differences (DeLong)")
    );
    let csv = wd.read("cmp/comparison.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("run,backbone,head,fold,seed,parameters,epochs,train_seconds,train_images_per_second,images,accuracy,accuracy_ci_low"));
    assert!(
        lines[1].starts_with("a,resnet50,linear,,12,123,3,9.5,42.0,30,"),
        "{}",
        lines[1]
    );
    assert!(
        wd.read("cmp/comparison.html")
            .contains("<td>resnet-mini</td>")
    );
    assert!(wd.join("cmp/comparison.png").is_file());
    let long = wd.read("cmp/comparison_long.csv");
    assert!(long.starts_with("run,backbone,head,fold,seed,parameters,epochs,train_seconds,train_images_per_second,images,metric,value,ci_low,ci_high,interval\n"), "{long}");
    assert_eq!(
        long.lines().count(),
        1 + 2 * 6,
        "tidy: a row per run and metric"
    );
    let grouped = wd.read("cmp/by_backbone.csv");
    assert!(
        grouped.starts_with(
            "backbone,metric,runs,runs_nan,folds,mean,std,ci_low,ci_high,min,max\nresnet50,accuracy,1,0,1,"
        ),
        "{grouped}"
    );

    // Ranked by a metric, best first whatever the order given: run b now gets its first six
    // images wrong.
    let worse: String = predictions(["normal", "tb"])
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            if (1..=6).contains(&i) {
                let flipped = ["normal", "tb"][1 - f[3].parse::<usize>().unwrap()];
                let predicted = usize::from(flipped == "tb");
                format!(
                    "{},{},{},{predicted},{flipped},{},{}\n",
                    f[0], f[1], f[2], f[6], f[5]
                )
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    fs::write(wd.join("b/predictions.csv"), worse).unwrap();
    let (code, stdout, stderr) = run(wd.command(BIN).args([
        "compare",
        "b",
        "a",
        "-o",
        "cmp",
        "--force",
        "--bootstrap",
        "0",
        "--sort-by",
        "mcc",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let at = |backbone: &str| stdout.find(backbone).unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        at("resnet50") < at("resnet-mini"),
        "a (better MCC) first: {stdout}"
    );
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["compare", "a", "b", "-o", "cmp3", "--sort-by", "speed"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--sort-by 'speed' is not one of accuracy"),
        "{stderr}"
    );

    // A run without predictions is a usage error naming the folder and the fix.
    fs::create_dir(wd.join("c")).unwrap();
    let (code, _, stderr) = run(wd.command(BIN).args(["compare", "a", "c", "-o", "cmp2"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("predictions.csv") && stderr.contains("ortl-infer"),
        "{stderr}"
    );
}

#[test]
fn cam_gallery_lists_exactly_the_misclassified_images() {
    let wd = Workdir::new();
    let hostile = "<script>alert(1)</script>";
    // predictions() plus a cam_path column; every image and overlay exists.
    let mut text = String::new();
    let mut misclassified = Vec::new();
    let mut true_positives = 0;
    fs::create_dir(wd.join("cams")).unwrap();
    for (i, line) in predictions(["normal", hostile]).lines().enumerate() {
        if i == 0 {
            text += &format!("{line},cam_path,cam_true_path\n");
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let (label, p1): (usize, f64) = (fields[1].parse().unwrap(), fields[6].parse().unwrap());
        match (label == 1, p1 >= 0.5) {
            (true, true) => true_positives += 1,
            (false, false) => {}
            _ => misclassified.push(fields[0].to_string()),
        }
        let image = image::RgbImage::from_pixel(40, 30, image::Rgb([i as u8, 90, 90]));
        image.save(wd.join(fields[0])).unwrap();
        let cam = format!("cams/{}", fields[0]);
        image.save(wd.join(&cam)).unwrap();
        // A misclassified image also has the map of its true class.
        let true_cam = if label == usize::from(p1 >= 0.5) {
            String::new()
        } else {
            let true_cam = format!("cams/{}", fields[0].replace(".png", ".true.png"));
            image.save(wd.join(&true_cam)).unwrap();
            format!("elsewhere/{true_cam}")
        };
        text += &format!("{line},elsewhere/{cam},{true_cam}\n");
    }
    assert!(!misclassified.is_empty() && true_positives > 8);
    fs::write(wd.join("p.csv"), text).unwrap();
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "p.csv", "--cams", "cams", "-o", "r"]));
    assert_eq!(code, 0, "{stderr}");
    let html = fs::read_to_string(wd.join("r/report.html")).unwrap();
    let shown = |kind: &str| -> Vec<String> {
        let marker = format!("data-kind=\"{kind}\" data-path=\"");
        html.split(&marker)
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect()
    };
    let mut errors = [shown("false_negative"), shown("false_positive")].concat();
    errors.sort();
    misclassified.sort();
    assert_eq!(errors, misclassified);
    assert_eq!(shown("true_positive").len(), 8, "the 8 most confident");
    assert_eq!(
        html.matches("src=\"data:image/jpeg;base64,").count(),
        3 * misclassified.len() + 2 * 8,
        "image and overlay embedded for each entry, and the true class's for each error"
    );
    assert_eq!(
        html.matches("alt=\"heatmap of the true class\"").count(),
        misclassified.len()
    );
    assert!(!html.contains(hostile) && html.contains("&lt;script&gt;"));
    // Tiles in a grid at least 320 pixels wide, labelled in text: file, true class,
    // predicted class and its probability.
    assert!(
        html.contains("grid-template-columns:repeat(auto-fill,minmax(320px,1fr))")
            && html.contains("<div class=\"gallery\"><figure class=\"cam\""),
        "gallery grid"
    );
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
    for tile in html.split("data-kind=\"false_negative\"").skip(1) {
        let tile = &tile[..tile.find("</figure>").unwrap()];
        let path = tile
            .split("data-path=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for label in [
            format!("<dt>file</dt><dd class=\"file\">{path}</dd>"),
            format!("<dt>true class</dt><dd class=\"truth\">{escaped}</dd>"),
            "<dt>predicted</dt><dd class=\"predicted\">normal</dd>".to_string(),
            "<dt>probability</dt><dd class=\"probability\">0.".to_string(),
        ] {
            assert!(tile.contains(&label), "{label} in {tile}");
        }
    }
    let md = fs::read_to_string(wd.join("r/report.md")).unwrap();
    assert!(md.contains(&format!("- `{}`", misclassified[0])), "{md}");

    // --cams needs the folder and predictions made with --cam.
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "p.csv", "--cams", "nope", "-o", "r2"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--cams nope: no such folder"), "{stderr}");
    fs::write(wd.join("plain.csv"), predictions(["normal", "tb"])).unwrap();
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "plain.csv", "--cams", "cams", "-o", "r2"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("no cam_path column"), "{stderr}");
    assert!(!wd.join("r2").exists());
}

#[test]
fn a_second_run_on_the_same_output_is_refused_while_the_first_writes() {
    let wd = Workdir::new();
    fs::write(wd.join("p.csv"), predictions(["normal", "tb"])).unwrap();
    // Another run holds the output (as a concurrent ortl-report would).
    let held = ortl_cli::OutputLock::acquire(&wd.join("r")).unwrap();
    let (code, _, stderr) = run(wd.command(BIN).args(["--predictions", "p.csv", "-o", "r"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("r is being written by another ortl run"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!wd.join("r").exists());
    drop(held);
    let (code, _, stderr) = run(wd.command(BIN).args(["--predictions", "p.csv", "-o", "r"]));
    assert_eq!(code, 0, "{stderr}");
    let left: Vec<String> = fs::read_dir(wd.join("."))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "no lock or staging files left: {left:?}");
}

#[test]
fn an_unwritable_output_is_one_line_and_leaves_nothing() {
    let wd = Workdir::new();
    fs::write(wd.join("p.csv"), predictions(["normal", "tb"])).unwrap();
    // Nothing can be created under /proc, not even by root (CI runs as root, so a chmod
    // would not stop it).
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "p.csv", "-o", "/proc/ortl-report-test"]));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/proc") && stderr.contains("writable"),
        "{stderr}"
    );
}

#[test]
fn several_predictions_files_are_evaluated_as_one() {
    let wd = Workdir::new();
    let whole = predictions(["normal", "tb"]);
    let lines: Vec<&str> = whole.lines().collect();
    // The header once, as ortl-infer --shard writes it, then the rest split in two.
    fs::write(wd.join("all.csv"), &whole).unwrap();
    fs::write(wd.join("a.csv"), lines[..12].join("\n") + "\n").unwrap();
    fs::write(
        wd.join("b.csv"),
        format!("{}\n{}\n", lines[0], lines[12..].join("\n")),
    )
    .unwrap();
    let args = |files: &[&str], out: &str| {
        let mut a = vec!["--predictions"];
        a.extend_from_slice(files);
        a.extend_from_slice(&["-o", out, "--bootstrap", "100"]);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let (code, _, stderr) = run(wd.command(BIN).args(args(&["all.csv"], "one")));
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(wd.command(BIN).args(args(&["a.csv", "b.csv"], "two")));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(wd.read("one/metrics.csv"), wd.read("two/metrics.csv"));

    fs::write(wd.join("c.csv"), predictions(["normal", "covid"])).unwrap();
    let (code, _, stderr) = run(wd.command(BIN).args(args(&["a.csv", "c.csv"], "three")));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("c.csv") && stderr.contains("differ"),
        "{stderr}"
    );
}

/// compare reads each run's train.json through the shared type: a missing one, or one from
/// another format version, is one line naming the file, and nothing is written.
#[test]
fn compare_names_a_missing_or_foreign_train_record() {
    let wd = Workdir::new();
    for run in ["a", "b"] {
        fs::create_dir(wd.join(run)).unwrap();
        fs::write(
            wd.join(&format!("{run}/predictions.csv")),
            predictions(["normal", "tb"]),
        )
        .unwrap();
    }
    write_train_record(&wd, "a", |_| {});
    let compare = |wd: &Workdir| run(wd.command(BIN).args(["compare", "a", "b", "-o", "cmp"]));
    let (code, _, stderr) = compare(&wd);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("b: each run folder needs ortl-train's train.json")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    write_train_record(&wd, "b", |r| r.format = 99);
    let (code, _, stderr) = compare(&wd);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("train.json format 99"), "{stderr}");
    assert!(!wd.join("cmp").exists(), "nothing written");
}

#[test]
fn compare_aggregates_folds_and_seeds_and_pairs_backbones() {
    let wd = Workdir::new();
    let mut runs = Vec::new();
    // Two backbones × 3 folds × 2 seeds; "good" separates the classes, "weak" less so.
    for (backbone, flip_every) in [("good", 0), ("weak", 4)] {
        for fold in 0..3 {
            for seed in [1, 2] {
                let run = format!("{backbone}-f{fold}-s{seed}");
                fs::create_dir(wd.join(&run)).unwrap();
                let mut text =
                    String::from("path,label,class,predicted,predicted_class,p_normal,p_tb\n");
                for i in 0..20 {
                    let label = i % 2;
                    let mut p1 =
                        if label == 1 { 0.7 } else { 0.3 } + 0.005 * (i + fold + seed) as f64;
                    if flip_every > 0 && (i + fold) % (flip_every + fold) == 0 {
                        p1 = 1.0 - p1;
                    }
                    let predicted = usize::from(p1 >= 0.5);
                    text += &format!(
                        "img{i}.png,{label},x,{predicted},x,{:.4},{p1:.4}\n",
                        1.0 - p1
                    );
                }
                fs::write(wd.join(&format!("{run}/predictions.csv")), text).unwrap();
                write_train_record(&wd, &run, |r| {
                    r.settings.backbone = backbone.into();
                    r.settings.head = "linear".into();
                    r.settings.val_fold = Some(fold);
                    r.settings.seed = u64::from(seed);
                });
                runs.push(run);
            }
        }
    }
    let mut args = vec!["compare".to_string()];
    args.extend(runs.iter().cloned());
    args.extend(["-o", "cv", "--bootstrap", "0"].map(String::from));
    let (code, _, stderr) = run(wd.command(BIN).args(&args));
    assert_eq!(code, 0, "{stderr}");
    let grouped = wd.read("cv/by_backbone.csv");
    let row = |backbone: &str, metric: &str| -> Vec<String> {
        grouped
            .lines()
            .find(|l| l.starts_with(&format!("{backbone},{metric},")))
            .unwrap_or_else(|| panic!("{grouped}"))
            .split(',')
            .map(String::from)
            .collect()
    };
    let good = row("good", "accuracy");
    assert_eq!(good[2..5], ["6", "0", "3"], "6 runs in 3 folds");
    assert_eq!(good[5], "1.0", "{good:?}");
    let weak = row("weak", "accuracy");
    let (mean, low, high): (f64, f64, f64) = (
        weak[5].parse().unwrap(),
        weak[7].parse().unwrap(),
        weak[8].parse().unwrap(),
    );
    assert!(mean < 1.0 && low < mean && mean < high, "{weak:?}");
    let paired = wd.read("cv/paired.csv");
    assert!(
        paired.starts_with("metric,a,b,folds,mean_difference,std,ci_low,ci_high,p_value\n"),
        "{paired}"
    );
    let accuracy: Vec<&str> = paired
        .lines()
        .find(|l| l.starts_with("accuracy,good,weak,3,"))
        .unwrap_or_else(|| panic!("{paired}"))
        .split(',')
        .collect();
    let difference: f64 = accuracy[4].parse().unwrap();
    assert!((difference - (1.0 - mean)).abs() < 1e-9, "{accuracy:?}");
    let long = wd.read("cv/comparison_long.csv");
    assert_eq!(
        long.lines().count(),
        1 + 12 * 6,
        "tidy: every run and metric"
    );
    assert!(wd.join("cv/folds.png").is_file() && wd.join("cv/folds.svg").is_file());
    let html = wd.read("cv/comparison.html");
    assert!(html.contains("Over folds") && html.contains("Paired comparisons"));
}

/// Runs of one backbone on other tensors or for other epochs are no repeats: compare
/// refuses to pool them unless told to; every run keeps a label of its own, and a metric
/// undefined in one run is counted, not dropped.
#[test]
fn compare_refuses_mixed_runs_labels_each_run_and_counts_nan() {
    let wd = Workdir::new();
    // Two folders named "run"; the second trained on other tensors for longer, and calls
    // every image normal (MCC undefined).
    for (dir, tensors, epochs) in [("x/run", "t100", 3), ("y/run", "t224", 30)] {
        fs::create_dir_all(wd.join(dir)).unwrap();
        let text = if dir == "x/run" {
            predictions(["normal", "tb"])
        } else {
            predictions(["normal", "tb"])
                .lines()
                .enumerate()
                .map(|(i, line)| {
                    let f: Vec<&str> = line.split(',').collect();
                    if i == 0 {
                        format!("{line}\n")
                    } else {
                        format!("{},{},{},0,normal,0.6,0.4\n", f[0], f[1], f[2])
                    }
                })
                .collect()
        };
        fs::write(wd.join(&format!("{dir}/predictions.csv")), text).unwrap();
        write_train_record(&wd, dir, |r| {
            r.settings.backbone = "resnet-mini".into();
            r.settings.tensors = tensors.into();
            r.settings.epochs = epochs;
        });
    }
    let compare = |extra: &[&str]| {
        run(wd
            .command(BIN)
            .args(["compare", "x/run", "y/run", "--bootstrap", "0"])
            .args(extra))
    };
    let (code, _, stderr) = compare(&["-o", "refused"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for part in [
        "runs x/run and y/run both train resnet-mini",
        "tensors (t100 vs t224)",
        "epochs (3 vs 30)",
        "--allow-mixed",
    ] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
    assert!(!wd.join("refused").exists(), "nothing written");

    let (code, stdout, stderr) = compare(&["-o", "mixed", "--allow-mixed"]);
    assert_eq!(code, 0, "{stderr}");
    let runs: Vec<String> = wd
        .read("mixed/comparison.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(runs, ["x/run", "y/run"]);
    assert!(
        stdout.contains("x/run") && stdout.contains("y/run"),
        "{stdout}"
    );
    let html = wd.read("mixed/comparison.html");
    assert!(html.contains("<td>x/run</td>") && html.contains("<td>y/run</td>"));
    let chart = wd.read("mixed/comparison.svg");
    for bar in ["x/run (resnet-mini)", "y/run (resnet-mini)"] {
        assert!(chart.contains(bar), "{bar} in the bar chart");
    }
    let grouped = wd.read("mixed/by_backbone.csv");
    let row = |metric: &str| -> Vec<String> {
        grouped
            .lines()
            .find(|l| l.starts_with(&format!("resnet-mini,{metric},")))
            .unwrap_or_else(|| panic!("{grouped}"))
            .split(',')
            .map(String::from)
            .collect()
    };
    assert_eq!(row("accuracy")[2..5], ["2", "0", "2"], "{grouped}");
    // y's MCC is undefined: counted, and the mean is x's alone over one run.
    let mcc = row("mcc");
    assert_eq!(mcc[2..5], ["2", "1", "1"], "{grouped}");
}

/// Proportions get Wilson (or Clopper–Pearson) intervals, never a collapsed bootstrap at
/// 20/20; the threshold can be chosen on other predictions; a run's train.json fills the
/// provenance table; people read metric names, CSV keeps machine names.
#[test]
fn proportions_thresholds_from_validation_and_provenance() {
    let wd = Workdir::new();
    // 20 negatives all below 0.5, 20 positives spread around it: specificity 20/20.
    let mut text = String::from("path,label,class,predicted,predicted_class,p_normal,p_tb\n");
    for i in 0..40 {
        let label = usize::from(i >= 20);
        let p = if label == 0 {
            0.02 * i as f64
        } else {
            0.3 + 0.025 * (i - 20) as f64
        };
        let class = ["normal", "tb"][label];
        text += &format!("i{i}.png,{label},{class},0,normal,{:.4},{p:.4}\n", 1.0 - p);
    }
    fs::write(wd.join("test.csv"), &text).unwrap();
    fs::create_dir(wd.join("run")).unwrap();
    write_train_record(&wd, "run", |r| {
        r.settings.image_height = 224;
        r.settings.image_width = 224;
        r.settings.seed = 7;
        r.settings.backbone_weights = ortl_manifest::train_record::Weights::Random { seed: 7 };
        r.settings.backbone_provenance = r.settings.backbone_weights.to_string();
        r.summary.epochs_run = 3;
        r.summary.best_epoch = Some(2);
    });
    fs::write(
        wd.join("run/history.csv"),
        "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n1,0.7,0.5,0.69,0.5,0.001,1.0\n",
    )
    .unwrap();
    let (code, _, stderr) = run(wd.command(BIN).args([
        "--predictions",
        "test.csv",
        "--run",
        "run",
        "-o",
        "wilson",
        "--bootstrap",
        "100",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let csv = wd.read("wilson/metrics.csv");
    let row = |name: &str| -> Vec<String> {
        csv.lines()
            .find(|l| l.starts_with(&format!("{name},")))
            .unwrap_or_else(|| panic!("{name}: {csv}"))
            .split(',')
            .map(String::from)
            .collect()
    };
    // statsmodels proportion_confint(20, 20, method='wilson'): (0.8388748419, 1.0).
    let specificity = row("specificity");
    assert_eq!(specificity[1], "1.0");
    assert!(
        (specificity[2].parse::<f64>().unwrap() - 0.838_874_841_9).abs() < 1e-6,
        "{specificity:?}"
    );
    assert_eq!(specificity[5], "wilson");
    assert_eq!(row("roc_auc")[5], "bootstrap");
    let html = wd.read("wilson/report.html");
    for text in [
        "Model and training",
        "resnet50 (23508032 parameters)",
        "not pretrained",
        "224×224",
        // Settings in their flag spelling, from the typed record.
        "schedule exp:1e-5,0.99,100",
        "early stopping monitor=loss,patience=10",
        // Where and how it ran.
        "on cpu (2 threads), blocked convolutions, optimizer update on the host",
        "Specificity",
        "Matthews correlation (MCC)",
        "chosen and scored on these same images",
    ] {
        assert!(html.contains(text), "{text}");
    }

    // Clopper–Pearson: statsmodels method='beta' gives (0.8315665290, 1.0).
    let (code, _, stderr) = run(wd.command(BIN).args([
        "--predictions",
        "test.csv",
        "-o",
        "exact",
        "--proportion-interval",
        "clopper-pearson",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let csv = wd.read("exact/metrics.csv");
    let line = csv.lines().find(|l| l.starts_with("specificity,")).unwrap();
    assert!(
        line.contains(",0.83156") && line.ends_with("clopper-pearson"),
        "{line}"
    );

    // Validation predictions whose positives score 0.1 higher: Youden's J picks 0.40 there
    // (the lowest positive), not the 0.35 it picks on the test predictions themselves.
    let mut shifted = String::from("path,label,class,predicted,predicted_class,p_normal,p_tb\n");
    for i in 0..40 {
        let label = usize::from(i >= 20);
        let p = if label == 0 {
            0.02 * i as f64
        } else {
            0.4 + 0.025 * (i - 20) as f64
        };
        let class = ["normal", "tb"][label];
        shifted += &format!("v{i}.png,{label},{class},0,normal,{:.4},{p:.4}\n", 1.0 - p);
    }
    fs::write(wd.join("val.csv"), shifted).unwrap();
    let (code, _, stderr) = run(wd.command(BIN).args([
        "--predictions",
        "test.csv",
        "--threshold-from",
        "val.csv",
        "-o",
        "chosen",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&wd.read("chosen/metrics.json")).unwrap();
    assert!(
        json["binary"]["threshold_source"]
            .as_str()
            .unwrap()
            .contains("val.csv (40 images)")
    );
    let chosen = json["binary"]["threshold"].as_f64().unwrap();
    assert!((chosen - 0.4).abs() < 1e-6, "{chosen}");
    let own: serde_json::Value = serde_json::from_str(&wd.read("wilson/metrics.json")).unwrap();
    assert!((own["binary"]["youden_threshold"].as_f64().unwrap() - 0.35).abs() < 1e-6);
    let (code, _, stderr) = run(wd.command(BIN).args([
        "--predictions",
        "test.csv",
        "--threshold-from",
        "val.csv",
        "--threshold",
        "0.3",
        "-o",
        "both",
    ]));
    assert_eq!(code, 2, "{stderr}");
    // Predictions that carry ortl-infer's threshold (its `threshold` column) are scored at
    // it, unless --threshold says otherwise.
    let mut decided = String::new();
    for (i, line) in wd.read("val.csv").lines().enumerate() {
        decided += &match i {
            0 => format!("{line},threshold\n"),
            _ => format!("{line},0.400000\n"),
        };
    }
    fs::write(wd.join("decided.csv"), decided).unwrap();
    for (extra, threshold, source) in [(None, 0.4, true), (Some("0.7"), 0.7, false)] {
        let mut args = vec!["--predictions", "decided.csv", "-o", "decided", "--force"];
        if let Some(t) = extra {
            args.extend(["--threshold", t]);
        }
        let (code, _, stderr) = run(wd.command(BIN).args(&args));
        assert_eq!(code, 0, "{stderr}");
        let json: serde_json::Value =
            serde_json::from_str(&wd.read("decided/metrics.json")).unwrap();
        assert!((json["binary"]["threshold"].as_f64().unwrap() - threshold).abs() < 1e-9);
        assert_eq!(
            json["binary"]["threshold_source"]
                .as_str()
                .is_some_and(|s| s.contains("ortl-infer decided at")),
            source,
            "{json}"
        );
    }
}

/// The README's sample summary is what ortl-report prints: the same header and the same
/// metric rows in the same order and layout (the numbers are the fixture run's).
#[test]
fn the_readme_sample_summary_matches_the_printed_format() {
    let readme =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("## A sample report")
        .expect("README has a sample report");
    let block = readme[start..]
        .split("```")
        .nth(1)
        .expect("a code block")
        .trim();
    let sample: Vec<&str> = block.lines().collect();
    let wd = Workdir::new();
    fs::write(wd.join("p.csv"), predictions(["normal", "tuberculosis"])).unwrap();
    let (code, stdout, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "p.csv", "-o", "r", "--bootstrap", "50"]));
    assert_eq!(code, 0, "{stderr}");
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(sample[0], printed[0], "header");
    let name = |line: &str| line.split_whitespace().next().unwrap_or("").to_string();
    let names: Vec<String> = printed.iter().map(|l| name(l)).collect();
    let mut at = 0;
    for line in &sample[1..] {
        let found = names[at..]
            .iter()
            .position(|n| *n == name(line))
            .unwrap_or_else(|| panic!("README row '{line}' is not printed (in this order)"));
        at += found + 1;
        let printed_line = printed[at - 1];
        // Same columns: name, value, interval, at the same positions.
        let columns = |l: &str| {
            l.match_indices(char::is_whitespace)
                .filter(|(i, _)| l[..*i].ends_with(|c: char| !c.is_whitespace()))
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            columns(line),
            columns(printed_line),
            "layout of '{line}' vs '{printed_line}'"
        );
    }
}

/// The report says which model file and epoch it evaluated (and which epoch that is in the
/// run), and warns on stderr and in the HTML when it scores training images.
#[test]
fn the_report_names_the_evaluated_model_and_warns_on_training_images() {
    let wd = Workdir::new();
    let plain = predictions(["normal", "tb"]);
    let mut lines = plain.lines();
    let mut text = format!("{},split,model,model_epoch\n", lines.next().unwrap());
    for (i, line) in lines.enumerate() {
        let split = if i < 3 { "train" } else { "val" };
        text += &format!("{line},{split},run/best.onnx,4\n");
    }
    fs::write(wd.join("p.csv"), text).unwrap();
    let report = |args: &[&str]| run(wd.command(BIN).args(args).args(["--bootstrap", "50"]));
    fs::create_dir(wd.join("run")).unwrap();
    write_train_record(&wd, "run", |_| {});
    fs::write(
        wd.join("run/history.csv"),
        "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n1,0.7,0.5,0.69,0.5,0.001,1.0\n",
    )
    .unwrap();
    let (code, _, stderr) = report(&["--predictions", "p.csv", "--run", "run", "-o", "report"]);
    assert_eq!(code, 0, "{stderr}");
    let said = "run/best.onnx, epoch 4 (the best epoch by val_accuracy, of 5)";
    assert!(stderr.contains(&format!("evaluated {said}")), "{stderr}");
    assert!(
        stderr.contains("warning: 3 of the 30 scored images are training images"),
        "{stderr}"
    );
    let html = wd.read("report/report.html");
    assert!(
        html.contains("Evaluated model") && html.contains(said),
        "{html}"
    );
    assert!(html.contains("3 of the 30 scored images are training images"));
    assert!(html.contains("best by val_accuracy: 4"));
    // One best epoch everywhere: the curves mark the checkpoint metric's, not another.
    let curves = wd.read("report/training_curves.svg");
    assert!(
        curves.contains("best epoch 4 (by val_accuracy; best.onnx)"),
        "{curves}"
    );
    let json: serde_json::Value = serde_json::from_str(&wd.read("report/metrics.json")).unwrap();
    assert_eq!(json["training_images_scored"], 3);
    assert_eq!(json["evaluated_models"][0]["path"], "run/best.onnx");
    assert_eq!(json["evaluated_models"][0]["epoch"], 4);

    // Predictions from before the model column say so rather than guess.
    fs::write(wd.join("old.csv"), predictions(["normal", "tb"])).unwrap();
    let (code, _, stderr) =
        run(wd
            .command(BIN)
            .args(["--predictions", "old.csv", "-o", "old", "--bootstrap", "50"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("evaluated not recorded"), "{stderr}");
    assert!(!stderr.contains("training images"), "{stderr}");

    // A model from another folder than --run's gets no role from that run's record.
    let other = wd.read("p.csv").replace("run/best.onnx", "other/best.onnx");
    fs::create_dir(wd.join("other")).unwrap();
    fs::write(wd.join("other.csv"), other).unwrap();
    let (code, _, stderr) = report(&[
        "--predictions",
        "other.csv",
        "--run",
        "run",
        "-o",
        "other-report",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("evaluated other/best.onnx, epoch 4\n"),
        "{stderr}"
    );

    // The same images pooled twice weigh double: said, not hidden.
    let (code, _, stderr) = report(&["--predictions", "old.csv", "old.csv", "-o", "twice"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: 30 rows repeat an image already scored"),
        "{stderr}"
    );
}
