//! ortl-report: predictions (and training history) to metrics, plots and a report.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use ortl_cli::{AtomicDir, usage};
use ortl_manifest::predictions::EvaluatedModel;
use ortl_manifest::{Predictions, TrainRecord};
use ortl_report::evaluate::{BinaryEvaluation, binary_predictions, multiclass};
use ortl_report::html::{Report, html, markdown};
use ortl_report::intervals::ProportionMethod;
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
/// EXAMPLES:
///     ortl-report --predictions preds.csv --history run/history.csv -o report
///     ortl-infer --model run/best.onnx --manifest m.csv --split val \
///         | ortl-report --predictions - -o report
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
    /// Choose the decision threshold by Youden's J on these predictions (e.g. the
    /// validation split's) and score --predictions (e.g. the test split's) with it, instead
    /// of choosing and scoring on the same images (replaces --threshold).
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
    /// Decision threshold on the positive class's probability.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
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

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Compares runs (backbones or settings) as the tutorial's last section: one
    /// row per run with accuracy, sensitivity, specificity, F1, MCC and ROC AUC
    /// (with 95 % CIs), parameters, epochs, training time and images/s; writes
    /// comparison.csv, comparison.html and a bar chart (PNG, SVG). Each RUN
    /// folder needs ortl-train's train.json and its predictions.csv from
    /// ortl-infer.
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
        /// f1, mcc or roc_auc; default: as given).
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
    output: &std::path::Path,
    sort_by: Option<&str>,
    allow_mixed: bool,
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
        .zip(ortl_report::compare::labels(runs))
        .map(|(run, label)| {
            ortl_report::compare::summarize(
                run,
                label,
                common.positive.as_deref(),
                common.threshold,
                common.bootstrap,
                common.proportion_interval,
                common.seed,
            )
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| usage(ortl_cli::one_line(&e)))?;
    if let Some(why) = ortl_report::compare::mixed(&summaries).filter(|_| !allow_mixed) {
        return Err(usage(format!(
            "{why}: compare runs of one setup, or pass --allow-mixed to pool them anyway"
        )));
    }
    let out = AtomicDir::create(output, common.force)?;
    let aggregates = ortl_report::crossval::aggregate(&summaries);
    let paired = ortl_report::crossval::paired(&summaries);
    let differences = ortl_report::compare::auc_differences(&summaries);
    if !differences.is_empty() {
        ortl_report::tables::write_csv(&out.staging().join("auc_differences.csv"), |csv| {
            ortl_report::tables::auc_differences(&differences, csv)
        })?;
    }
    let summaries = ortl_report::compare::write_tables(
        out.staging(),
        summaries,
        &aggregates,
        &paired,
        sort_by,
    )?;
    let canvas = plots::Canvas {
        dir: out.staging(),
        dpi: common.dpi,
    };
    let chart = plots::comparison(&canvas, &summaries)?;
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
    writeln!(
        stdout,
        "{:<run_w$} {:<backbone_w$} {:>9} {:>9} {:>9} {:>9}",
        "run", "backbone", "accuracy", "f1", "mcc", "roc_auc"
    )?;
    for r in &summaries {
        writeln!(
            stdout,
            "{:<run_w$} {:<backbone_w$} {:>9.4} {:>9.4} {:>9.4} {:>9.4}",
            r.run,
            r.backbone,
            r.value("accuracy"),
            r.value("f1"),
            r.value("mcc"),
            r.value("roc_auc")
        )?;
    }
    stdout.flush()?;
    eprintln!(
        "ortl-report: wrote {}",
        output.join("comparison.html").display()
    );
    Ok(())
}

/// What was trained and how, from a run's train.json, as (what, value) rows for the
/// report's provenance table.
fn provenance(train: &TrainRecord) -> Vec<(String, String)> {
    let (s, env, summary) = (&train.settings, &train.environment, &train.summary);
    let optional = |value: Option<String>| value.unwrap_or_else(|| "none".into());
    vec![
        (
            "Backbone".into(),
            format!("{} ({} parameters)", s.backbone, s.backbone_parameters),
        ),
        ("Weights".into(), s.backbone_provenance.clone()),
        (
            "Input normalisation".into(),
            format!("{} ({})", s.normalization, s.normalization_reason),
        ),
        ("Head".into(), s.head.clone()),
        (
            "What trained".into(),
            format!(
                "frozen: {}; backbone BatchNorm: {}; fine-tune phases: {}",
                s.freeze,
                s.bn_mode,
                optional(
                    s.fine_tune
                        .map(|(a, b)| format!("{a} head-only, then {b} all"))
                )
            ),
        ),
        (
            "Image size".into(),
            format!("{}×{}", s.image_height, s.image_width),
        ),
        ("Classes".into(), s.classes.join(", ")),
        ("Training data".into(), s.tensors.display().to_string()),
        (
            "Optimizer".into(),
            format!(
                "{}, learning rate {}, schedule {}, batch {}, weight decay {}",
                s.optimizer, s.lr, s.schedule, s.batch, s.weight_decay
            ),
        ),
        (
            "Loss".into(),
            format!(
                "{}, class weights {}, label smoothing {}",
                s.loss, s.class_weights, s.label_smoothing
            ),
        ),
        (
            "Epochs".into(),
            format!(
                "{} run of {} (best by {}: {}; early stopping {})",
                summary.epochs_run,
                s.epochs,
                s.checkpoint,
                summary
                    .best_epoch
                    .map_or_else(|| "none".into(), |b| b.to_string()),
                s.early_stopping
            ),
        ),
        ("Seed".into(), s.seed.to_string()),
        (
            "Trained".into(),
            format!(
                "{} on {} ({}), {} convolutions, optimizer update {}, {:.1} s, {:.1} images/s",
                env.trained_at,
                env.device,
                env.threads
                    .map_or_else(|| "all cores".into(), |n| format!("{n} threads")),
                env.conv_layout,
                match env.update_on.as_deref() {
                    Some("host") => "on the host",
                    // Records from before --update-on updated in the graph.
                    Some("graph") | None => "in the step graph",
                    Some(other) => other,
                },
                summary.seconds,
                summary.images_per_second
            ),
        ),
        (
            "Software".into(),
            format!(
                "ortl {} (commit {}), ONNX Runtime {}",
                env.ortl_version,
                env.git_commit.as_deref().unwrap_or("unknown"),
                env.onnxruntime
            ),
        ),
    ]
}

/// What the predictions evaluated, for people: each model file and its epoch, and which
/// epoch that is in the run (the best by its checkpoint metric, or the last).
fn evaluated(models: &[EvaluatedModel], train: Option<(&TrainRecord, &std::path::Path)>) -> String {
    if models.is_empty() {
        return "not recorded (predictions written before ortl-infer recorded the model)".into();
    }
    // The run's record speaks for a model only when the model file is in that run's folder.
    let same_folder = |model: &str, run: &std::path::Path| {
        let folder = std::path::Path::new(model).parent();
        let real = |p: &std::path::Path| std::fs::canonicalize(p).ok();
        folder.and_then(real).is_some_and(|f| Some(f) == real(run))
    };
    let described = |model: &EvaluatedModel| {
        let train = train
            .filter(|(_, run)| same_folder(&model.path, run))
            .map(|(record, _)| record);
        let role = match (model.epoch, train) {
            (Some(epoch), Some(train)) if train.summary.best_epoch == Some(epoch) => format!(
                " (the best epoch by {}, of {})",
                train.settings.checkpoint, train.summary.epochs_run
            ),
            (Some(epoch), Some(train)) if train.summary.epochs_run == epoch => {
                format!(" (the last of {} epochs)", train.summary.epochs_run)
            }
            _ => String::new(),
        };
        format!("{model}{role}")
    };
    models.iter().map(described).collect::<Vec<_>>().join("; ")
}

fn report(
    predictions: &[PathBuf],
    output: &std::path::Path,
    history: Option<&std::path::Path>,
    run_dir: Option<&std::path::Path>,
    cams: Option<&std::path::Path>,
    threshold_from: Option<&std::path::Path>,
    common: &Common,
) -> Result<()> {
    if !(0.0..=1.0).contains(&common.threshold) {
        return Err(usage("--threshold must be between 0 and 1"));
    }
    let preds = Predictions::from_paths(predictions).map_err(|e| usage(e.to_string()))?;
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
            let source = format!("{} ({} images)", path.display(), labels.len());
            (youden, Some(source))
        }
        None => (common.threshold, None),
    };
    let history_path = history
        .map(std::path::Path::to_path_buf)
        .or_else(|| run_dir.map(|r| r.join("history.csv")));
    let history = match &history_path {
        Some(path) => Some(ortl_manifest::history::read(path).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    // A run folder's record; an interrupted run has none yet (its history still plots).
    let train_record = match run_dir.map(|r| r.join("train.json")) {
        Some(path) if path.exists() => {
            Some(TrainRecord::read(&path).map_err(|e| usage(e.to_string()))?)
        }
        _ => None,
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
    // A warning goes to stderr and into the report.
    let mut warn = |warning: String| {
        eprintln!("ortl-report: warning: {warning}");
        notes.push(format!("Warning: {warning}."));
    };
    let evaluated_model = evaluated(&preds.models, train_record.as_ref().zip(run_dir));
    let training = preds.training_rows(train_record.as_ref().and_then(|t| t.settings.val_fold));
    if training > 0 {
        warn(format!(
            "{training} of the {} scored images are training images (by the predictions' split column): the model has seen them, so these metrics are optimistic; classify a held-out split (ortl-infer --manifest M --split val or test)",
            preds.labels.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let repeated = preds
        .paths
        .iter()
        .filter(|p| !p.is_empty() && !seen.insert(p.as_str()))
        .count();
    if repeated > 0 {
        warn(format!(
            "{repeated} rows repeat an image already scored (the same path twice, e.g. pooled files that overlap): those images weigh double in every metric"
        ));
    }
    let classes = &preds.classes;
    let source = predictions
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
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
            notes.push(format!(
                "Only class '{only}' is present in the labels: every metric that needs both classes (the other class's rate, F1 without positives, balanced accuracy, MCC, Cohen's kappa, ROC AUC, the Youden threshold and every metric at it, sensitivity at a specificity and specificity at a sensitivity, and their intervals) is undefined (NaN), and the figures that need both (ROC, precision–recall, calibration, score distributions) are left out."
            ));
        }
        _ => {
            for class in classes.iter().filter(|c| !present.contains(c)) {
                notes.push(format!(
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
    if let Some(history) = history.as_ref().filter(|h| !h.is_empty()) {
        figures.push((
            "Training curves".into(),
            plots::training_curves(
                &canvas,
                history,
                train_record.as_ref().and_then(|t| {
                    t.summary.best_epoch.map(|epoch| plots::BestEpoch {
                        epoch,
                        metric: &t.settings.checkpoint,
                    })
                }),
            )?,
        ));
    }

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
            interval: Default::default(),
        });
    }
    ortl_report::tables::write_csv(&dir.join("metrics.csv"), |out| {
        ortl_report::tables::metrics(&rows, out)
    })?;
    let report = Report {
        provenance: std::iter::once(("Evaluated model".to_string(), evaluated_model.clone()))
            .chain(train_record.as_ref().map(provenance).unwrap_or_default())
            .collect(),
        title: "ortl evaluation report".into(),
        source,
        binary: binary_eval.as_ref().map(|b| &b.0),
        multiclass: &multi,
        figures,
        intervals: format!(
            "95 % intervals: {} for the proportions at the threshold (sensitivity, specificity, precision, NPV, accuracy, error rate); stratified bootstrap ({} resamples) for the rest.",
            common.proportion_interval.interval().name(),
            common.bootstrap
        ),
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
    eprintln!("ortl-report: evaluated {evaluated_model}");
    eprintln!(
        "ortl-report: wrote {}",
        output.join("report.html").display()
    );
    Ok(())
}
