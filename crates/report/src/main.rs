//! ortl-report: predictions (and training history) to metrics, plots and a report.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use ortl_cli::{AtomicDir, usage};
use ortl_manifest::Predictions;
use ortl_manifest::predictions::multilabel;
use ortl_report::compare::{self, AVERAGES, Compared, METRICS};
use ortl_report::evaluate::{BinaryEvaluation, binary_predictions, multiclass};
use ortl_report::html::{Metrics, Report, html, markdown};
use ortl_report::input::{self, Loaded};
use ortl_report::intervals::ProportionMethod;
use ortl_report::metrics::Metric;
use ortl_report::provenance::{Notes, Run};
use ortl_report::{gallery, plots};

/// Evaluates predictions from ortl-infer: the tutorial's confusion matrix,
/// sensitivity, specificity, accuracy, error rate, precision, F1, MCC and ROC
/// AUC, plus NPV, balanced accuracy, Cohen's kappa, PR AUC, Brier score, log
/// loss, sensitivity at fixed specificity and the Youden-optimal threshold, each
/// with a 95 % interval (Wilson or Clopper–Pearson for the proportions at the
/// threshold, stratified bootstrap for the rest); per-class metrics for any
/// number of classes. With --run, a provenance table (backbone, whether
/// pretrained, data, settings, versions) from the run's train.json.
///
/// Writes into the output folder (which appears only when complete):
/// metrics.json, metrics.csv (metric,value,ci_low,ci_high,threshold,interval),
/// roc / precision_recall / confusion_matrix / training_curves as PNG and SVG,
/// report.html (self-contained, opens offline) and report.md; prints a summary
/// table on stdout.
///
/// Multi-label predictions (y_/p_/t_<finding> columns, told apart by the header)
/// get, per finding over the images where its label is known: prevalence, ROC
/// AUC with DeLong's interval, and sensitivity, specificity, PPV, NPV and F1 at
/// the file's threshold t_<finding>; the macro and micro AUC with bootstrap
/// intervals over images (a finding without positives or negatives is NaN, named
/// and left out of the macro average); co_occurrence.csv; one ROC panel per
/// finding (roc_findings.png/svg). metrics.csv is then one row per finding plus
/// macro and micro rows (the columns: ortl_report::multilabel's documentation).
///
/// EXAMPLES:
///     ortl-report --predictions preds.csv --history run/history.csv -o report
///     ortl-infer --model run/best.onnx --manifest m.csv --split val \
///         | ortl-report --predictions - -o report
///     ortl-report --predictions nih-test.csv --run runs/nih -o nih-report
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// predictions.csv from ortl-infer (`-` for stdin), single- or multi-label; several
    /// files (the shards of one run, or the folds of a cross-validation pooled) are
    /// evaluated as one.
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
    /// image), capped at 24 each, and the 8 most confident correct ones. Single-label
    /// predictions only.
    #[arg(long, value_name = "DIR")]
    cams: Option<PathBuf>,
    /// Choose the decision threshold by Youden's J on these predictions (e.g. the
    /// validation split's) and score --predictions (e.g. the test split's) with it, instead
    /// of choosing and scoring on the same images (replaces --threshold). Two classes only;
    /// multi-label predictions carry each finding's threshold (ortl-infer --threshold-from).
    #[arg(long, value_name = "PREDICTIONS", conflicts_with = "threshold")]
    threshold_from: Option<PathBuf>,
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
    /// Decision threshold on the positive class's probability (default: the predictions'
    /// threshold column from ortl-infer, else 0.5). Single-label predictions only.
    #[arg(long)]
    threshold: Option<f64>,
    /// Interval of the proportions at the threshold (sensitivity, specificity, precision,
    /// NPV, accuracy): Wilson's score interval or the Clopper–Pearson exact one. Other
    /// metrics get bootstrap intervals.
    #[arg(long, value_enum, default_value_t = ProportionMethod::Wilson)]
    proportion_interval: ProportionMethod,
    /// Resolution of the PNG figures (the SVGs are 640×480 at 96 dpi; 240 dpi gives PNGs
    /// 1600 pixels wide).
    #[arg(long, default_value_t = 240, value_parser = clap::value_parser!(u32).range(48..=1200))]
    dpi: u32,
    /// Bootstrap resamples for the confidence intervals (0 disables them).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 12)]
    seed: u64,
}

impl Common {
    /// The decision threshold, 0.5 unless given.
    fn threshold(&self) -> Result<f64> {
        let threshold = self.threshold.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(usage("--threshold must be between 0 and 1"));
        }
        Ok(threshold)
    }

    /// Refuses --positive and --threshold, and each of `others` given: multi-label
    /// predictions have a positive per finding and carry their own thresholds.
    fn single_label_only(&self, others: &[(&str, bool)]) -> Result<()> {
        let own = [
            ("--positive", self.positive.is_some()),
            ("--threshold", self.threshold.is_some()),
        ];
        let given = own.iter().chain(others).find(|(_, given)| *given);
        match given {
            Some((flag, _)) => Err(usage(format!(
                "{flag} applies to single-label predictions; multi-label ones are scored per finding at their t_<finding> thresholds (choose those with ortl-infer --threshold-from)"
            ))),
            None => Ok(()),
        }
    }
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Compares runs (backbones or settings) as the tutorial's last section: one
    /// row per run with accuracy, sensitivity, specificity, F1, MCC and ROC AUC
    /// (with 95 % CIs), parameters, epochs, training time and images/s; writes
    /// comparison.csv, comparison.html and a bar chart (PNG, SVG). Each RUN
    /// folder needs ortl-train's train.json and its predictions.csv from
    /// ortl-infer. Multi-label runs are compared on their macro and micro ROC AUC
    /// and each finding's AUC (roc_auc_<finding>); single- and multi-label runs
    /// are not compared with each other.
    ///
    /// EXAMPLE:
    ///     ortl-report compare runs/resnet50 runs/resnet26 -o comparison
    #[command(verbatim_doc_comment)]
    Compare {
        /// Run folders.
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        /// Output folder.
        #[arg(short, long)]
        output: PathBuf,
        /// Order the runs by this metric, best first (accuracy, sensitivity, specificity,
        /// f1, mcc or roc_auc; multi-label runs: macro_auc, micro_auc or
        /// roc_auc_<finding>; default: as given).
        #[arg(long, value_name = "METRIC")]
        sort_by: Option<String>,
        /// Pool runs of one backbone that differ in tensors, image size, classes or epochs
        /// (refused by default: their mean over runs is no repeat of one experiment).
        #[arg(long)]
        allow_mixed: bool,
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
            allow_mixed,
            common,
        }) => compare(&runs, &output, sort_by.as_deref(), allow_mixed, &common),
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
                args.threshold_from.as_deref(),
                &args.common,
            )
        }
    }
}

fn compare(
    runs: &[PathBuf],
    output: &Path,
    sort_by: Option<&str>,
    allow_mixed: bool,
    common: &Common,
) -> Result<()> {
    let threshold = common.threshold()?;
    let sortable = |m: &Compared| match m {
        Compared::Run(metric) => METRICS.contains(metric) || AVERAGES.contains(metric),
        Compared::FindingAuc(_) => true,
    };
    let sort_by = match sort_by {
        Some(name) => Some(Compared::from_name(name).filter(sortable).ok_or_else(|| {
            let names = |metrics: &[Metric]| {
                metrics
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            usage(format!(
                "--sort-by '{name}' is not one of {}, {} or {}",
                names(&METRICS),
                names(&AVERAGES),
                Compared::FindingAuc("<finding>".into()).name()
            ))
        })?),
        None => None,
    };
    // A run given twice (`a` and `./a`) would count as its own repeat.
    let mut seen = std::collections::BTreeMap::new();
    for run in runs {
        let real = std::fs::canonicalize(run).unwrap_or_else(|_| run.clone());
        if let Some(first) = seen.insert(real, run) {
            return Err(usage(format!(
                "{} and {} are the same run folder; give each run once",
                first.display(),
                run.display()
            )));
        }
    }
    let summaries = runs
        .iter()
        .zip(compare::labels(runs))
        .map(|(run, label)| {
            compare::summarize(
                run,
                label,
                common.positive.as_deref(),
                threshold,
                common.bootstrap,
                common.proportion_interval,
                common.seed,
            )
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| usage(ortl_cli::one_line(&e)))?;
    if let Some(why) = compare::mixed_tasks(&summaries) {
        return Err(usage(why));
    }
    let multilabel = compare::multilabel(&summaries);
    if multilabel {
        common.single_label_only(&[])?;
    }
    let compared = compare::compared(&summaries);
    if let Some(metric) = sort_by.as_ref().filter(|m| !compared.contains(m)) {
        let names: Vec<String> = compared.iter().map(Compared::name).collect();
        return Err(usage(format!(
            "--sort-by '{}': these runs have {}",
            metric.name(),
            names.join(", ")
        )));
    }
    if let Some(why) = compare::mixed(&summaries).filter(|_| !allow_mixed) {
        return Err(usage(format!(
            "{why}: compare runs of one setup, or pass --allow-mixed to pool them anyway"
        )));
    }
    let out = AtomicDir::create(output, common.force)?;
    let aggregates = ortl_report::crossval::aggregate(&summaries);
    let paired = ortl_report::crossval::paired(&summaries);
    let differences = compare::auc_differences(&summaries);
    if !differences.is_empty() {
        ortl_report::tables::write_csv(&out.staging().join("auc_differences.csv"), |csv| {
            ortl_report::tables::auc_differences(&differences, csv)
        })?;
    }
    let summaries = compare::write_tables(
        out.staging(),
        summaries,
        &aggregates,
        &paired,
        sort_by.as_ref(),
    )?;
    let canvas = plots::Canvas {
        dir: out.staging(),
        dpi: common.dpi,
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
        Some(ortl_report::html::CrossValidation {
            aggregates: &aggregates,
            paired: &paired,
            chart_svg: plots::folds(&canvas, &summaries, &aggregates, metric)?,
            chart_metric: metric,
        })
    } else {
        None
    };
    std::fs::write(
        out.staging().join("comparison.html"),
        ortl_report::html::comparison(&summaries, &chart, cv.as_ref(), &differences),
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
    let columns: &[Metric] = if multilabel {
        &AVERAGES
    } else {
        &[Metric::Accuracy, Metric::F1, Metric::Mcc, Metric::RocAuc]
    };
    write!(stdout, "{:<run_w$} {:<backbone_w$}", "run", "backbone")?;
    for column in columns {
        write!(stdout, " {:>9}", column.name())?;
    }
    writeln!(stdout)?;
    for r in &summaries {
        write!(stdout, "{:<run_w$} {:<backbone_w$}", r.run, r.backbone)?;
        for &column in columns {
            write!(stdout, " {:>9.4}", r.value(&column.into()))?;
        }
        writeln!(stdout)?;
    }
    stdout.flush()?;
    eprintln!(
        "ortl-report: wrote {}",
        output.join("comparison.html").display()
    );
    Ok(())
}

fn report(
    predictions: &[PathBuf],
    output: &Path,
    history: Option<&Path>,
    run_dir: Option<&Path>,
    cams: Option<&Path>,
    threshold_from: Option<&Path>,
    common: &Common,
) -> Result<()> {
    let threshold = common.threshold()?;
    let run = Run::read(history, run_dir).map_err(|e| usage(e.to_string()))?;
    let source = predictions
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let preds = match input::read(predictions).map_err(|e| usage(e.to_string()))? {
        Loaded::Classes(preds) => preds,
        Loaded::Findings(preds) => {
            common.single_label_only(&[
                ("--threshold-from", threshold_from.is_some()),
                ("--cams", cams.is_some()),
            ])?;
            return findings(&preds, predictions, source, output, &run, common);
        }
    };
    let (threshold, threshold_source) = match threshold_from {
        Some(path) => {
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
                common.positive.as_deref(),
                0.5,
                0,
                common.proportion_interval,
                common.seed,
            )
            .map_err(usage)?;
            let youden = ortl_report::metrics::youden_threshold(&labels, &scores);
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
            (youden, Some(source))
        }
        // The threshold ortl-infer decided at (--threshold or --threshold-from there), unless
        // one is given here: the report scores what the predicted column says.
        None => match (common.threshold, preds.threshold) {
            (None, Some(decided)) => (
                decided,
                Some("is the one ortl-infer decided at (the predictions' threshold column)".into()),
            ),
            _ => (threshold, None),
        },
    };
    let cams = match cams {
        Some(dir) => Some(gallery::cams_dir(dir, &preds).map_err(usage)?),
        None => None,
    };
    let out = AtomicDir::create(output, common.force)?;
    let dir = out.staging().to_path_buf();
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

    let binary_eval: Option<(BinaryEvaluation, Vec<bool>, Vec<f64>)> = if classes.len() == 2 {
        Some(
            binary_predictions(
                &preds,
                common.positive.as_deref(),
                threshold,
                common.bootstrap,
                common.proportion_interval,
                common.seed,
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
        dpi: common.dpi,
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
            common.bootstrap.min(500),
            common.seed,
        )?);
    }
    figures.push((
        "Confusion matrix".into(),
        plots::confusion(&canvas, classes, &multi.confusion)?,
    ));
    figures.extend(run.curves(&canvas)?);

    let json = serde_json::json!({
        "predictions": predictions, "classes": classes, "images": preds.labels.len(),
        "evaluated_models": preds.models,
        "training_images_scored": training,
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
    for (metric, value) in [
        (Metric::MulticlassAccuracy, multi.accuracy),
        (Metric::MulticlassMcc, multi.mcc),
        (Metric::MacroF1, multi.macro_f1),
        (Metric::WeightedF1, multi.weighted_f1),
        (Metric::MacroAuc, multi.macro_auc),
    ] {
        rows.push(ortl_report::evaluate::MetricRow {
            metric,
            value,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            threshold: None,
            interval: Default::default(),
        });
    }
    ortl_report::tables::write_csv(&dir.join("metrics.csv"), |out| {
        ortl_report::tables::metrics(&rows, out)
    })?;
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
            common.proportion_interval.interval().name(),
            common.bootstrap
        ),
        notes: notes.0,
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
                writeln!(
                    stdout,
                    "{:<34} {:>8.4}  {:>17}",
                    row.metric.name(),
                    row.value,
                    ci
                )?;
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
    done(&evaluated_model, output);
    Ok(())
}

/// The report's last words on stderr: what it evaluated and where the report is.
fn done(evaluated: &str, output: &Path) {
    eprintln!("ortl-report: evaluated {evaluated}");
    eprintln!(
        "ortl-report: wrote {}",
        output.join("report.html").display()
    );
}

/// The report of multi-label predictions ([`ortl_report::multilabel`]).
fn findings(
    preds: &multilabel::Predictions,
    predictions: &[PathBuf],
    source: String,
    output: &Path,
    run: &Run,
    common: &Common,
) -> Result<()> {
    let out = AtomicDir::create(output, common.force)?;
    let inputs = ortl_report::multilabel::Inputs {
        predictions,
        source,
        run,
        settings: ortl_report::multilabel::Settings {
            bootstrap: common.bootstrap,
            seed: common.seed,
            proportion: common.proportion_interval,
        },
        dpi: common.dpi,
    };
    let (evaluation, evaluated) = ortl_report::multilabel::write(out.staging(), preds, &inputs)?;
    out.commit()
        .with_context(|| format!("writing {}", output.display()))?;
    let mut stdout = std::io::stdout().lock();
    ortl_report::multilabel::summary(&evaluation, &mut stdout)?;
    stdout.flush()?;
    done(&evaluated, output);
    Ok(())
}
