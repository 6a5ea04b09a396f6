//! The work of ortl-report's commands, from resolved [`Settings`]: the report of one set of
//! predictions (single- or multi-label) and the comparison of runs. Each writes its output
//! folder whole (it appears only when complete), then its summary table to `out` (stdout for
//! the binary), and says what it wrote ([`Done`]) for the closing lines on stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ortl_cli::{AtomicDir, usage};
use ortl_manifest::Predictions;
use ortl_manifest::predictions::multilabel;

use crate::compare::{self, AVERAGES, Compared, RunSummary};
use crate::evaluate::{BinaryEvaluation, MetricRow, binary_predictions, multiclass};
use crate::html::{Metrics, Report, html, markdown};
use crate::input::{self, Loaded};
use crate::metrics::Metric;
use crate::provenance::{Notes, Run};
use crate::settings::{CompareSettings, ReportSettings, Settings};
use crate::{crossval, gallery, plots, tables};

/// What a command wrote, for people.
#[derive(Clone, Debug, PartialEq)]
pub struct Done {
    /// The model whose predictions a report evaluated (None for a comparison).
    pub evaluated: Option<String>,
    /// The page to open: report.html or comparison.html in the output folder.
    pub page: PathBuf,
}

/// Runs the command `settings` describe, writing its summary table to `out`.
pub fn run(settings: &Settings, out: impl Write) -> Result<Done> {
    match settings {
        Settings::Report(report) => self::report(report, out),
        Settings::Compare(comparison) => compare(comparison, out),
    }
}

fn compare(settings: &CompareSettings, mut out: impl Write) -> Result<Done> {
    let scoring = &settings.scoring;
    let summaries = settings
        .runs
        .iter()
        .zip(compare::labels(&settings.runs))
        .map(|(run, label)| {
            compare::summarize(
                run,
                label,
                scoring.positive.as_deref(),
                scoring.threshold_or_half(),
                scoring.bootstrap,
                scoring.proportion,
                scoring.seed,
            )
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| usage(ortl_cli::one_line(&e)))?;
    if let Some(why) = compare::mixed_tasks(&summaries) {
        return Err(usage(why));
    }
    let multilabel = compare::multilabel(&summaries);
    if multilabel {
        scoring.single_label_only(&[])?;
    }
    let compared = compare::compared(&summaries);
    if let Some(metric) = settings.sort_by.as_ref().filter(|m| !compared.contains(m)) {
        let names: Vec<String> = compared.iter().map(Compared::name).collect();
        return Err(usage(format!(
            "--sort-by '{}': these runs have {}",
            metric.name(),
            names.join(", ")
        )));
    }
    if let Some(why) = compare::mixed(&summaries).filter(|_| !settings.allow_mixed) {
        return Err(usage(format!(
            "{why}: compare runs of one setup, or pass --allow-mixed to pool them anyway"
        )));
    }
    let dir = AtomicDir::create(&settings.output, scoring.force)?;
    let aggregates = crossval::aggregate(&summaries);
    let paired = crossval::paired(&summaries);
    let differences = compare::auc_differences(&summaries);
    if !differences.is_empty() {
        tables::write_csv(&dir.staging().join("auc_differences.csv"), |csv| {
            tables::auc_differences(&differences, csv)
        })?;
    }
    let summaries = compare::write_tables(
        dir.staging(),
        summaries,
        &aggregates,
        &paired,
        settings.sort_by.as_ref(),
    )?;
    let canvas = plots::Canvas {
        dir: dir.staging(),
        dpi: scoring.dpi,
    };
    let chart = plots::comparison(&canvas, &summaries)?;
    // Runs that record a validation fold are a cross-validation: add the per-fold views.
    let cv = if summaries.iter().any(|r| r.fold.is_some()) {
        let metric = if multilabel {
            Metric::MacroAuc
        } else if aggregates
            .iter()
            .any(|a| a.metric == Metric::RocAuc.into() && a.mean.is_finite())
        {
            Metric::RocAuc
        } else {
            Metric::Accuracy
        };
        Some(crate::html::CrossValidation {
            aggregates: &aggregates,
            paired: &paired,
            chart_svg: plots::folds(&canvas, &summaries, &aggregates, metric)?,
            chart_metric: metric,
        })
    } else {
        None
    };
    std::fs::write(
        dir.staging().join("comparison.html"),
        crate::html::comparison(&summaries, &chart, cv.as_ref(), &differences),
    )?;
    dir.commit()?;
    comparison_summary(&summaries, multilabel, &mut out)?;
    out.flush()?;
    Ok(Done {
        evaluated: None,
        page: settings.output.join("comparison.html"),
    })
}

/// The comparison's table on stdout: each run's headline metrics.
fn comparison_summary(
    summaries: &[RunSummary],
    multilabel: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let width = |field: fn(&RunSummary) -> &str, header: &str| {
        summaries
            .iter()
            .map(|r| field(r).len())
            .max()
            .unwrap_or(0)
            .max(header.len())
    };
    let run_w = width(|r| &r.run, "run");
    let backbone_w = width(|r| &r.backbone, "backbone");
    let columns: &[Metric] = if multilabel {
        &AVERAGES
    } else {
        &[Metric::Accuracy, Metric::F1, Metric::Mcc, Metric::RocAuc]
    };
    write!(out, "{:<run_w$} {:<backbone_w$}", "run", "backbone")?;
    for column in columns {
        write!(out, " {:>9}", column.name())?;
    }
    writeln!(out)?;
    for r in summaries {
        write!(out, "{:<run_w$} {:<backbone_w$}", r.run, r.backbone)?;
        for &column in columns {
            write!(out, " {:>9.4}", r.value(&column.into()))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn report(settings: &ReportSettings, mut out: impl Write) -> Result<Done> {
    let scoring = &settings.scoring;
    let run = Run::read(settings.history.as_deref(), settings.run.as_deref())
        .map_err(|e| usage(e.to_string()))?;
    let source = settings
        .predictions
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let preds = match input::read(&settings.predictions).map_err(|e| usage(e.to_string()))? {
        Loaded::Classes(preds) => preds,
        Loaded::Findings(preds) => {
            scoring.single_label_only(&[
                ("--threshold-from", settings.threshold_from.is_some()),
                ("--cams", settings.cams.is_some()),
            ])?;
            return findings(&preds, settings, source, &run, out);
        }
    };
    let (threshold, threshold_source) = decision_threshold(settings, &preds)?;
    let cams = match &settings.cams {
        Some(dir) => Some(gallery::cams_dir(dir, &preds).map_err(usage)?),
        None => None,
    };
    let staged = AtomicDir::create(&settings.output, scoring.force)?;
    let dir = staged.staging().to_path_buf();
    let mut notes = Notes::default();
    if preds.unlabelled > 0 {
        notes.note(format!(
            "{} rows without a true label were left out.",
            preds.unlabelled
        ));
    }
    let (evaluated_model, provenance) = run.provenance(&preds.models);
    let training = preds.training_rows(run.val_fold());
    notes.scored_images(training, &preds.paths);
    let classes = &preds.classes;
    missing_classes(&preds, &source, &mut notes);

    let binary_eval: Option<(BinaryEvaluation, Vec<bool>, Vec<f64>)> = if classes.len() == 2 {
        Some(
            binary_predictions(
                &preds,
                scoring.positive.as_deref(),
                threshold,
                scoring.bootstrap,
                scoring.proportion,
                scoring.seed,
            )
            .map(|(mut eval, labels, scores)| {
                eval.threshold_source.clone_from(&threshold_source);
                (eval, labels, scores)
            })
            .map_err(usage)?,
        )
    } else {
        None
    };
    let multi = multiclass(classes, &preds.labels, &preds.probabilities);
    let gallery = cams.map(|cams| {
        let binary = binary_eval.as_ref().map(|(eval, _, _)| {
            let positive = classes.iter().position(|c| *c == eval.positive);
            (positive.expect("evaluated class"), threshold)
        });
        let rendered = gallery::render(&preds, &gallery::select(&preds, binary), &cams);
        const SHOWN: usize = 5;
        for missing in rendered.missing.iter().take(SHOWN) {
            notes.note(format!("Gallery: {missing}."));
        }
        if rendered.missing.len() > SHOWN {
            notes.note(format!(
                "Gallery: {} more images without a heatmap.",
                rendered.missing.len() - SHOWN
            ));
        }
        rendered
    });

    let canvas = plots::Canvas {
        dir: &dir,
        dpi: scoring.dpi,
    };
    let mut figures = Vec::new();
    // ROC and PR curves need both classes present.
    if let Some((eval, labels, scores)) = binary_eval
        .as_ref()
        .filter(|(e, _, _)| e.positives > 0 && e.positives < e.n)
    {
        figures.extend(plots::binary_figures(
            &canvas,
            labels,
            scores,
            eval,
            scoring.bootstrap.min(500),
            scoring.seed,
        )?);
    }
    figures.push((
        "Confusion matrix".into(),
        plots::confusion(&canvas, classes, &multi.confusion)?,
    ));
    figures.extend(run.curves(&canvas)?);

    let json = serde_json::json!({
        "predictions": settings.predictions, "classes": classes, "images": preds.labels.len(),
        "evaluated_models": preds.models,
        "training_images_scored": training,
        "bootstrap": scoring.bootstrap, "seed": scoring.seed,
        "binary": binary_eval.as_ref().map(|b| &b.0), "multiclass": multi,
    });
    std::fs::write(
        dir.join("metrics.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    let mut rows = binary_eval
        .as_ref()
        .map(|(eval, _, _)| eval.rows.clone())
        .unwrap_or_default();
    for (metric, value) in [
        (Metric::MulticlassAccuracy, multi.accuracy),
        (Metric::MulticlassMcc, multi.mcc),
        (Metric::MacroF1, multi.macro_f1),
        (Metric::WeightedF1, multi.weighted_f1),
        (Metric::MacroAuc, multi.macro_auc),
    ] {
        rows.push(MetricRow::point(metric, value));
    }
    tables::write_csv(&dir.join("metrics.csv"), |csv| tables::metrics(&rows, csv))?;
    let report = Report {
        provenance,
        title: "ortl evaluation report".into(),
        source,
        metrics: Metrics::Classes {
            binary: binary_eval.as_ref().map(|b| &b.0),
            multiclass: &multi,
        },
        figures,
        intervals: format!(
            "95 % intervals: {} for the proportions at the threshold (sensitivity, specificity, precision, NPV, accuracy, error rate); stratified bootstrap ({} resamples) for the rest.",
            scoring.proportion.interval().name(),
            scoring.bootstrap
        ),
        notes: notes.0,
        gallery,
    };
    std::fs::write(dir.join("report.html"), html(&report))?;
    std::fs::write(dir.join("report.md"), markdown(&report))?;
    staged
        .commit()
        .with_context(|| format!("writing {}", settings.output.display()))?;

    match &binary_eval {
        Some((eval, _, _)) => binary_summary(&eval.rows, &mut out)?,
        None => writeln!(
            out,
            "accuracy {:.4}  mcc {:.4}  macro_f1 {:.4}  macro_auc {:.4}",
            multi.accuracy, multi.mcc, multi.macro_f1, multi.macro_auc
        )?,
    }
    out.flush()?;
    Ok(Done {
        evaluated: Some(evaluated_model),
        page: settings.output.join("report.html"),
    })
}

/// The decision threshold of two-class predictions and where it came from, when not given:
/// Youden's J on `--threshold-from`'s predictions; else the one ortl-infer decided at (its
/// `--threshold` or `--threshold-from`), unless one is given here, so that the report scores
/// what the predicted column says; else 0.5.
fn decision_threshold(
    settings: &ReportSettings,
    preds: &Predictions,
) -> Result<(f64, Option<String>)> {
    let scoring = &settings.scoring;
    let Some(path) = &settings.threshold_from else {
        return Ok(match (scoring.threshold, preds.threshold) {
            (None, Some(decided)) => (
                decided,
                Some("is the one ortl-infer decided at (the predictions' threshold column)".into()),
            ),
            _ => (scoring.threshold_or_half(), None),
        });
    };
    let chosen_on = Predictions::from_path(path).map_err(|e| usage(e.to_string()))?;
    if chosen_on.classes != preds.classes || preds.classes.len() != 2 {
        return Err(usage(format!(
            "--threshold-from {}: needs the same two classes as --predictions ({} there, {} here)",
            path.display(),
            chosen_on.classes.join(", "),
            preds.classes.join(", ")
        )));
    }
    let (_, labels, scores) = binary_predictions(
        &chosen_on,
        scoring.positive.as_deref(),
        0.5,
        0,
        scoring.proportion,
        scoring.seed,
    )
    .map_err(usage)?;
    let youden = crate::metrics::youden_threshold(&labels, &scores);
    if youden.is_nan() {
        return Err(usage(format!(
            "--threshold-from {}: Youden's threshold needs both classes among the labels; choose it on predictions that hold both",
            path.display()
        )));
    }
    let source = format!(
        "was chosen by Youden's J on {} ({} images)",
        path.display(),
        labels.len()
    );
    Ok((youden, Some(source)))
}

/// Notes (and a warning when only one class is left) about classes without true examples.
fn missing_classes(preds: &Predictions, source: &str, notes: &mut Notes) {
    let classes = &preds.classes;
    let present: Vec<&String> = classes
        .iter()
        .enumerate()
        .filter(|(c, _)| preds.labels.contains(c))
        .map(|(_, class)| class)
        .collect();
    match present[..] {
        [only] if classes.len() > 1 => {
            eprintln!(
                "ortl-report: only class '{only}' is present in {source}'s labels: metrics that need both classes are NaN"
            );
            notes.note(format!(
                "Only class '{only}' is present in the labels: every metric that needs both classes (the other class's rate, F1 without positives, balanced accuracy, MCC, Cohen's kappa, ROC AUC, the Youden threshold and every metric at it, sensitivity at a specificity and specificity at a sensitivity, and their intervals) is undefined (NaN), and the figures that need both (ROC, precision–recall, calibration, score distributions) are left out."
            ));
        }
        _ => {
            for class in classes.iter().filter(|c| !present.contains(c)) {
                notes.note(format!(
                    "class '{class}' has no true examples: its recall and AUC are undefined."
                ));
            }
        }
    }
}

/// A binary report's table on stdout: each metric's name, value and interval.
fn binary_summary(rows: &[MetricRow], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{:<34} {:>8}  {:>17}", "metric", "value", "95% CI")?;
    for row in rows {
        let ci = if row.ci_low.is_nan() {
            "-".to_string()
        } else {
            format!("{:.3} - {:.3}", row.ci_low, row.ci_high)
        };
        writeln!(
            out,
            "{:<34} {:>8.4}  {:>17}",
            row.metric.name(),
            row.value,
            ci
        )?;
    }
    Ok(())
}

/// The report of multi-label predictions ([`crate::multilabel`]).
fn findings(
    preds: &multilabel::Predictions,
    settings: &ReportSettings,
    source: String,
    run: &Run,
    mut out: impl Write,
) -> Result<Done> {
    let scoring = &settings.scoring;
    let staged = AtomicDir::create(&settings.output, scoring.force)?;
    let inputs = crate::multilabel::Inputs {
        predictions: &settings.predictions,
        source,
        run,
        settings: crate::multilabel::Settings {
            bootstrap: scoring.bootstrap,
            seed: scoring.seed,
            proportion: scoring.proportion,
        },
        dpi: scoring.dpi,
    };
    let (evaluation, evaluated) = crate::multilabel::write(staged.staging(), preds, &inputs)?;
    staged
        .commit()
        .with_context(|| format!("writing {}", settings.output.display()))?;
    crate::multilabel::summary(&evaluation, &mut out)?;
    out.flush()?;
    Ok(Done {
        evaluated: Some(evaluated),
        page: settings.output.join("report.html"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intervals::ProportionMethod;
    use crate::settings::Scoring;
    use ortl_fixtures::Workdir;

    /// 30 images, labels alternating, positives scored 0.55–0.91 and negatives 0.05–0.61
    /// (as the process tests generate them), shifted by `shift`; with a `threshold` column
    /// when one is given. Returns the file and its (label, score) pairs.
    fn predictions(shift: f64, threshold: Option<f64>) -> (String, Vec<(bool, f64)>) {
        let column = if threshold.is_some() {
            ",threshold"
        } else {
            ""
        };
        let mut text =
            format!("path,label,class,predicted,predicted_class,p_normal,p_tb{column}\n");
        let mut truth = Vec::new();
        for i in 0..30 {
            let label = i % 2;
            let p1: f64 = shift
                + if label == 1 {
                    0.55 + (i % 7) as f64 * 0.06
                } else {
                    0.05 + (i % 9) as f64 * 0.07
                };
            let predicted = usize::from(p1 >= threshold.unwrap_or(0.5));
            let cell = threshold.map_or(String::new(), |t| format!(",{t}"));
            text += &format!(
                "img{i}.png,{label},{},{predicted},{},{:.4},{p1:.4}{cell}\n",
                ["normal", "tb"][label],
                ["normal", "tb"][predicted],
                1.0 - p1,
            );
            truth.push((label == 1, (p1 * 1e4).round() / 1e4));
        }
        (text, truth)
    }

    fn scoring(bootstrap: usize) -> Scoring {
        Scoring {
            force: false,
            positive: None,
            threshold: None,
            proportion: ProportionMethod::Wilson,
            dpi: 48,
            bootstrap,
            seed: 12,
        }
    }

    fn report(wd: &Workdir, predictions: &str, output: &str) -> ReportSettings {
        ReportSettings {
            predictions: vec![wd.join(predictions)],
            output: wd.join(output),
            history: None,
            run: None,
            cams: None,
            threshold_from: None,
            scoring: scoring(100),
        }
    }

    fn json(wd: &Workdir, path: &str) -> serde_json::Value {
        serde_json::from_str(&wd.read(path)).unwrap()
    }

    /// The row of `metric` among metrics.json's binary rows.
    fn row(metrics: &serde_json::Value, metric: Metric) -> &serde_json::Value {
        metrics["binary"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metric"] == metric.name())
            .unwrap_or_else(|| panic!("{} in {metrics}", metric.name()))
    }

    #[test]
    fn a_binary_report_scores_the_predictions_at_their_threshold_column() {
        let wd = Workdir::new();
        let (text, truth) = predictions(0.0, Some(0.6));
        std::fs::write(wd.join("p.csv"), text).unwrap();
        let mut summary = Vec::new();
        let done = run(
            &Settings::Report(report(&wd, "p.csv", "report")),
            &mut summary,
        )
        .unwrap();
        assert_eq!(done.page, wd.join("report/report.html"));
        assert!(done.evaluated.unwrap().starts_with("not recorded"));

        let metrics = json(&wd, "report/metrics.json");
        assert_eq!(metrics["images"], 30);
        assert_eq!(metrics["classes"], serde_json::json!(["normal", "tb"]));
        assert_eq!(
            (&metrics["bootstrap"], &metrics["seed"]),
            (&100.into(), &12.into())
        );
        let binary = &metrics["binary"];
        assert_eq!(binary["threshold"], 0.6);
        assert_eq!(
            binary["threshold_source"],
            "is the one ortl-infer decided at (the predictions' threshold column)"
        );
        // The confusion at p ≥ 0.6, counted here from the generated scores.
        let count = |label: bool, positive: bool| {
            truth
                .iter()
                .filter(|&&(l, p)| l == label && (p >= 0.6) == positive)
                .count()
        };
        let (tp, fp, fn_, tn) = (
            count(true, true),
            count(false, true),
            count(true, false),
            count(false, false),
        );
        assert_eq!(
            binary["confusion"],
            serde_json::json!({"tn": tn, "fp": fp, "fn": fn_, "tp": tp})
        );
        let accuracy = row(&metrics, Metric::Accuracy);
        assert_eq!(accuracy["value"], (tp + tn) as f64 / 30.0);
        assert_eq!(accuracy["threshold"], 0.6);
        assert_eq!(accuracy["interval"], "wilson");
        assert_eq!(
            row(&metrics, Metric::Sensitivity)["value"],
            tp as f64 / (tp + fn_) as f64
        );
        let (labels, scores): (Vec<bool>, Vec<f64>) = truth.iter().copied().unzip();
        let auc = row(&metrics, Metric::RocAuc);
        assert_eq!(auc["value"], crate::metrics::roc_auc(&labels, &scores));
        assert_eq!(auc["threshold"], serde_json::Value::Null);
        // Every binary metric, in report order, once.
        let names: Vec<&str> = binary["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["metric"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = Metric::ALL[..Metric::ALL
            .iter()
            .position(|m| *m == Metric::MulticlassAccuracy)
            .unwrap()]
            .iter()
            .map(|m| m.name())
            .collect();
        assert_eq!(names, expected);
        // The summary on the sink: a header, then one line per metric.
        let summary = String::from_utf8(summary).unwrap();
        assert_eq!(summary.lines().count(), 1 + names.len());
        assert!(summary.starts_with("metric "), "{summary}");
        assert!(wd.join("report/report.html").is_file());
    }

    #[test]
    fn threshold_from_scores_at_youdens_threshold_on_other_predictions() {
        let wd = Workdir::new();
        std::fs::write(wd.join("test.csv"), predictions(0.0, None).0).unwrap();
        let (validation, truth) = predictions(0.1, None);
        std::fs::write(wd.join("val.csv"), validation).unwrap();
        let settings = ReportSettings {
            threshold_from: Some(wd.join("val.csv")),
            ..report(&wd, "test.csv", "report")
        };
        run(&Settings::Report(settings), Vec::new()).unwrap();
        let (labels, scores): (Vec<bool>, Vec<f64>) = truth.into_iter().unzip();
        let youden = crate::metrics::youden_threshold(&labels, &scores);
        let metrics = json(&wd, "report/metrics.json");
        assert_eq!(metrics["binary"]["threshold"], youden);
        assert_eq!(row(&metrics, Metric::F1)["threshold"], youden);
        assert!(
            metrics["binary"]["threshold_source"]
                .as_str()
                .unwrap()
                .ends_with("val.csv (30 images)")
        );
    }

    #[test]
    fn a_multi_label_report_has_each_findings_auc_and_refuses_a_positive_class() {
        let wd = Workdir::new();
        std::fs::write(
            wd.join("p.csv"),
            include_str!("../tests/data/multilabel-predictions.csv"),
        )
        .unwrap();
        let mut summary = Vec::new();
        run(
            &Settings::Report(report(&wd, "p.csv", "report")),
            &mut summary,
        )
        .unwrap();
        let metrics = json(&wd, "report/metrics.json");
        assert_eq!(metrics["task"], "multi-label");
        let Loaded::Findings(preds) = input::read(&[wd.join("p.csv")]).unwrap() else {
            panic!("multi-label predictions")
        };
        let findings = metrics["findings"].as_array().unwrap();
        assert_eq!(findings.len(), preds.findings.len());
        for (i, finding) in findings.iter().enumerate() {
            assert_eq!(finding["finding"], preds.findings[i]);
            let (labels, scores) = preds.finding(i);
            let auc = &finding["metrics"][0];
            assert_eq!(auc["metric"], "roc_auc");
            assert_eq!(auc["value"], crate::metrics::roc_auc(&labels, &scores));
            assert_eq!(auc["interval"], "delong");
        }
        assert_eq!(metrics["macro_auc"]["metric"], "macro_auc");
        let summary = String::from_utf8(summary).unwrap();
        assert!(
            summary.contains("macro") && summary.contains("micro"),
            "{summary}"
        );

        let positive = ReportSettings {
            scoring: Scoring {
                positive: Some("Mass".into()),
                ..scoring(0)
            },
            ..report(&wd, "p.csv", "refused")
        };
        let err = run(&Settings::Report(positive), Vec::new()).unwrap_err();
        assert!(err.is::<ortl_cli::UsageError>());
        assert!(
            err.to_string()
                .starts_with("--positive applies to single-label")
        );
        assert!(!wd.join("refused").exists());
    }

    #[test]
    fn compare_ranks_runs_by_the_metric_asked_for() {
        let wd = Workdir::new();
        for (run, shift) in [("worse", -0.2), ("better", 0.0)] {
            std::fs::create_dir(wd.join(run)).unwrap();
            let record = ortl_manifest::samples::train_record();
            std::fs::write(wd.join(&format!("{run}/train.json")), record.to_json()).unwrap();
            let text = predictions(shift, None).0;
            std::fs::write(wd.join(&format!("{run}/predictions.csv")), text).unwrap();
        }
        let settings = CompareSettings {
            runs: vec![wd.join("worse"), wd.join("better")],
            output: wd.join("cmp"),
            sort_by: Some(Metric::Accuracy.into()),
            allow_mixed: false,
            scoring: scoring(50),
        };
        let mut summary = Vec::new();
        let done = run(&Settings::Compare(settings), &mut summary).unwrap();
        assert_eq!(
            done,
            Done {
                evaluated: None,
                page: wd.join("cmp/comparison.html")
            }
        );
        let summary = String::from_utf8(summary).unwrap();
        let order: Vec<&str> = summary
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(order, ["better", "worse"], "{summary}");
        let long = wd.read("cmp/comparison_long.csv");
        assert_eq!(long.lines().count(), 1 + 2 * compare::METRICS.len());
        assert!(
            long.lines().nth(1).unwrap().contains(",accuracy,"),
            "{long}"
        );
    }
}
