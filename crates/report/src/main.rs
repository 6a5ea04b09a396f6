//! ortl-report: predictions (and training history) to metrics, plots and a report.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use ortl_cli::{AtomicDir, usage};
use ortl_report::evaluate::{BinaryEvaluation, binary_predictions, multiclass};
use ortl_report::html::{Report, html, markdown};
use ortl_report::input::{Predictions, read_history};
use ortl_report::{gallery, plots};

/// Evaluates predictions from ortl-infer: the tutorial's confusion matrix, sensitivity,
/// specificity, accuracy, error rate, precision, F1, MCC and ROC AUC, plus NPV, balanced
/// accuracy, Cohen's kappa, PR AUC, Brier score, log loss, sensitivity at fixed
/// specificity and the Youden-optimal threshold, each with a stratified bootstrap 95 %
/// interval; per-class metrics for any number of classes.
///
/// Writes into the output folder (which appears only when complete): metrics.json,
/// metrics.csv (metric,value,ci_low,ci_high,threshold), roc / precision_recall /
/// confusion_matrix / training_curves as PNG and SVG, report.html (self-contained, opens
/// offline) and report.md; prints a summary table on stdout.
///
/// EXAMPLES:
///     ortl-report --predictions preds.csv --history run/history.csv -o report
///     ortl-infer --model run/model.onnx --manifest m.csv --split val | ortl-report --predictions - -o report
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// predictions.csv from ortl-infer (`-` for stdin); several files (the shards of one
    /// run, or the folds of a cross-validation pooled) are evaluated as one.
    #[arg(long, num_args = 1..)]
    predictions: Vec<PathBuf>,
    /// history.csv from ortl-train (training curves).
    #[arg(long)]
    history: Option<PathBuf>,
    /// A run folder from ortl-train: its history.csv is used when --history is not given.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Heatmap folder from `ortl-infer --cam DIR` (the predictions must come from that
    /// run): adds a gallery of every false negative and false positive (or misclassified
    /// image), capped at 24 each, and the 8 most confident correct ones.
    #[arg(long, value_name = "DIR")]
    cams: Option<PathBuf>,
    /// Output folder.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// Settings shared by the report and `compare`.
#[derive(clap::Args, Debug)]
struct Common {
    /// Replace an existing output folder.
    #[arg(long)]
    force: bool,
    /// Positive class of binary metrics (default: the class with label 1, the tutorial's TB).
    #[arg(long)]
    positive: Option<String>,
    /// Decision threshold on the positive class's probability.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Bootstrap resamples for the confidence intervals (0 disables them).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 12)]
    seed: u64,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Compares runs (backbones or settings) as the tutorial's last section: one row per
    /// run with accuracy, sensitivity, specificity, F1, MCC and ROC AUC (with 95 % CIs),
    /// parameters, epochs, training time and images/s; writes comparison.csv,
    /// comparison.html and a bar chart (PNG, SVG). Each RUN folder needs ortl-train's
    /// train.json and its predictions.csv from ortl-infer.
    ///
    /// EXAMPLE:
    ///     ortl-report compare runs/resnet50 runs/resnet26 -o comparison
    Compare {
        /// Run folders.
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        /// Output folder.
        #[arg(short, long)]
        output: PathBuf,
        /// Order the runs by this metric, best first (accuracy, sensitivity, specificity,
        /// f1, mcc or roc_auc; default: as given).
        #[arg(long, value_name = "METRIC")]
        sort_by: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

fn main() -> std::process::ExitCode {
    ortl_cli::main_with("ortl-report", run)
}

fn run(args: Args) -> Result<()> {
    match args.command {
        Some(Command::Compare {
            runs,
            output,
            sort_by,
            common,
        }) => compare(&runs, &output, sort_by.as_deref(), &common),
        None => {
            let (false, Some(output)) = (args.predictions.is_empty(), &args.output) else {
                return Err(usage(
                    "--predictions and -o/--output are required (or use the compare subcommand)",
                ));
            };
            report(
                &args.predictions,
                output,
                args.history.as_deref(),
                args.run.as_deref(),
                args.cams.as_deref(),
                &args.common,
            )
        }
    }
}

fn compare(
    runs: &[PathBuf],
    output: &std::path::Path,
    sort_by: Option<&str>,
    common: &Common,
) -> Result<()> {
    if !(0.0..=1.0).contains(&common.threshold) {
        return Err(usage("--threshold must be between 0 and 1"));
    }
    if let Some(metric) = sort_by.filter(|m| !ortl_report::compare::METRICS.contains(m)) {
        return Err(usage(format!(
            "--sort-by '{metric}' is not one of {}",
            ortl_report::compare::METRICS.join(", ")
        )));
    }
    let summaries = runs
        .iter()
        .map(|run| {
            ortl_report::compare::summarize(
                run,
                common.positive.as_deref(),
                common.threshold,
                common.bootstrap,
                common.seed,
            )
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| usage(format!("{e:#}")))?;
    let out = AtomicDir::create(output, common.force)?;
    let aggregates = ortl_report::crossval::aggregate(&summaries);
    let paired = ortl_report::crossval::paired(&summaries);
    let summaries = ortl_report::compare::write_tables(
        out.staging(),
        summaries,
        &aggregates,
        &paired,
        sort_by,
    )?;
    let chart = plots::comparison(out.staging(), &summaries)?;
    // Runs that record a validation fold are a cross-validation: add the per-fold views.
    let cv = if summaries.iter().any(|r| r.fold.is_some()) {
        let metric = if aggregates
            .iter()
            .any(|a| a.metric == "roc_auc" && a.mean.is_finite())
        {
            "roc_auc"
        } else {
            "accuracy"
        };
        Some(ortl_report::html::CrossValidation {
            aggregates: &aggregates,
            paired: &paired,
            chart_svg: plots::folds(out.staging(), &summaries, &aggregates, metric)?,
            chart_metric: metric,
        })
    } else {
        None
    };
    std::fs::write(
        out.staging().join("comparison.html"),
        ortl_report::html::comparison(&summaries, &chart, cv.as_ref()),
    )?;
    out.commit()?;
    let mut stdout = std::io::stdout().lock();
    let run_w = summaries
        .iter()
        .map(|r| r.run.len())
        .max()
        .unwrap_or(0)
        .max(3);
    let backbone_w = summaries
        .iter()
        .map(|r| r.backbone.len())
        .max()
        .unwrap_or(0)
        .max(8);
    writeln!(
        stdout,
        "{:<run_w$} {:<backbone_w$} {:>9} {:>9} {:>9} {:>9}",
        "run", "backbone", "accuracy", "f1", "mcc", "roc_auc"
    )?;
    for r in &summaries {
        let v = |m: &str| {
            r.metrics
                .iter()
                .find(|x| x.metric == m)
                .map_or(f64::NAN, |x| x.value)
        };
        writeln!(
            stdout,
            "{:<run_w$} {:<backbone_w$} {:>9.4} {:>9.4} {:>9.4} {:>9.4}",
            r.run,
            r.backbone,
            v("accuracy"),
            v("f1"),
            v("mcc"),
            v("roc_auc")
        )?;
    }
    stdout.flush()?;
    eprintln!(
        "ortl-report: wrote {}",
        output.join("comparison.html").display()
    );
    Ok(())
}

/// "resnet50, randomly initialised (seed 42), not pretrained", from a run's train.json.
fn model_provenance(run_dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(run_dir.join("train.json")).ok()?;
    let train: serde_json::Value = serde_json::from_str(&text).ok()?;
    let backbone = train["backbone"].as_str()?;
    let weights = train["backbone_provenance"].as_str()?;
    Some(format!("backbone {backbone}, {weights}"))
}

fn report(
    predictions: &[PathBuf],
    output: &std::path::Path,
    history: Option<&std::path::Path>,
    run_dir: Option<&std::path::Path>,
    cams: Option<&std::path::Path>,
    common: &Common,
) -> Result<()> {
    if !(0.0..=1.0).contains(&common.threshold) {
        return Err(usage("--threshold must be between 0 and 1"));
    }
    let preds = Predictions::from_paths(predictions).map_err(|e| usage(format!("{e:#}")))?;
    let history_path = history
        .map(std::path::Path::to_path_buf)
        .or_else(|| run_dir.map(|r| r.join("history.csv")));
    let history = match &history_path {
        Some(path) => Some(read_history(path).map_err(|e| usage(format!("{e:#}")))?),
        None => None,
    };
    let cams = match cams {
        Some(dir) => Some(gallery::cams_dir(dir, &preds).map_err(usage)?),
        None => None,
    };
    let out = AtomicDir::create(output, common.force)?;
    let dir = out.staging().to_path_buf();
    let mut notes = Vec::new();
    if preds.unlabelled > 0 {
        notes.push(format!(
            "{} rows without a true label were left out.",
            preds.unlabelled
        ));
    }
    let classes = &preds.classes;
    let present: Vec<bool> = (0..classes.len())
        .map(|c| preds.labels.contains(&c))
        .collect();
    for (class, _) in classes.iter().zip(&present).filter(|(_, p)| !**p) {
        notes.push(format!(
            "class '{class}' has no true examples: its recall and AUC are undefined."
        ));
    }

    let binary_eval: Option<(BinaryEvaluation, Vec<bool>, Vec<f64>)> = if classes.len() == 2 {
        Some(
            binary_predictions(
                &preds,
                common.positive.as_deref(),
                common.threshold,
                common.bootstrap,
                common.seed,
            )
            .map_err(usage)?,
        )
    } else {
        None
    };
    let multi = multiclass(classes, &preds.labels, &preds.probabilities);
    let gallery = cams.map(|cams| {
        let binary = binary_eval.as_ref().map(|(eval, _, _)| {
            let positive = classes.iter().position(|c| *c == eval.positive);
            (positive.expect("evaluated class"), common.threshold)
        });
        let rendered = gallery::render(&preds, &gallery::select(&preds, binary), &cams);
        const SHOWN: usize = 5;
        for missing in rendered.missing.iter().take(SHOWN) {
            notes.push(format!("Gallery: {missing}."));
        }
        if rendered.missing.len() > SHOWN {
            notes.push(format!(
                "Gallery: {} more images without a heatmap.",
                rendered.missing.len() - SHOWN
            ));
        }
        rendered
    });

    let mut figures = Vec::new();
    // ROC and PR curves need both classes present.
    if let Some((eval, labels, scores)) = binary_eval
        .as_ref()
        .filter(|(e, _, _)| e.positives > 0 && e.positives < e.n)
    {
        figures.extend(plots::binary_figures(&dir, labels, scores, eval)?);
    }
    figures.push((
        "Confusion matrix".into(),
        plots::confusion(&dir, classes, &multi.confusion)?,
    ));
    if let Some(history) = history.as_ref().filter(|h| !h.is_empty()) {
        figures.push((
            "Training curves".into(),
            plots::training_curves(&dir, history)?,
        ));
    }

    let json = serde_json::json!({
        "predictions": predictions, "classes": classes, "images": preds.labels.len(),
        "bootstrap": common.bootstrap, "seed": common.seed,
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
    for (name, value) in [
        ("multiclass_accuracy", multi.accuracy),
        ("multiclass_mcc", multi.mcc),
        ("macro_f1", multi.macro_f1),
        ("weighted_f1", multi.weighted_f1),
        ("macro_auc", multi.macro_auc),
    ] {
        rows.push(ortl_report::evaluate::MetricRow {
            metric: name.into(),
            value,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            threshold: None,
        });
    }
    ortl_report::tables::write_csv(
        &mut ortl_report::tables::metrics(&rows)?,
        &dir.join("metrics.csv"),
    )?;
    let report = Report {
        model: run_dir.and_then(model_provenance),
        title: "ortl evaluation report".into(),
        source: predictions
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        binary: binary_eval.as_ref().map(|b| &b.0),
        multiclass: &multi,
        figures,
        bootstrap: common.bootstrap,
        notes,
        gallery,
    };
    std::fs::write(dir.join("report.html"), html(&report))?;
    std::fs::write(dir.join("report.md"), markdown(&report))?;
    out.commit()
        .with_context(|| format!("writing {}", output.display()))?;

    let mut stdout = std::io::stdout().lock();
    match &binary_eval {
        Some((eval, _, _)) => {
            writeln!(stdout, "{:<34} {:>8}  {:>17}", "metric", "value", "95% CI")?;
            for row in &eval.rows {
                let ci = if row.ci_low.is_nan() {
                    "-".to_string()
                } else {
                    format!("{:.3} - {:.3}", row.ci_low, row.ci_high)
                };
                writeln!(stdout, "{:<34} {:>8.4}  {:>17}", row.metric, row.value, ci)?;
            }
        }
        None => {
            writeln!(
                stdout,
                "accuracy {:.4}  mcc {:.4}  macro_f1 {:.4}  macro_auc {:.4}",
                multi.accuracy, multi.mcc, multi.macro_f1, multi.macro_auc
            )?;
        }
    }
    stdout.flush()?;
    eprintln!(
        "ortl-report: wrote {}",
        output.join("report.html").display()
    );
    Ok(())
}
