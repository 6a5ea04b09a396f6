//! The command line: its flags and their help text (the doc comments are `--help`), as clap
//! parses them; [`crate::settings`] checks and resolves them.

use std::path::PathBuf;

use clap::Parser;

use crate::intervals::ProportionMethod;

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
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// predictions.csv from ortl-infer (`-` for stdin), single- or multi-label; several
    /// files (the shards of one run, or the folds of a cross-validation pooled) are
    /// evaluated as one.
    #[arg(long, num_args = 1..)]
    pub predictions: Vec<PathBuf>,
    /// history.csv from ortl-train (training curves).
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// A run folder from ortl-train: its history.csv is used when --history is not given.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Heatmap folder from `ortl-infer --cam DIR` (the predictions must come from that
    /// run): adds a gallery of every false negative and false positive (or misclassified
    /// image), capped at 24 each, and the 8 most confident correct ones. Single-label
    /// predictions only.
    #[arg(long, value_name = "DIR")]
    pub cams: Option<PathBuf>,
    /// Choose the decision threshold by Youden's J on these predictions (e.g. the
    /// validation split's) and score --predictions (e.g. the test split's) with it, instead
    /// of choosing and scoring on the same images (replaces --threshold). Two classes only;
    /// multi-label predictions carry each finding's threshold (ortl-infer --threshold-from).
    #[arg(long, value_name = "PREDICTIONS", conflicts_with = "threshold")]
    pub threshold_from: Option<PathBuf>,
    /// Output folder.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

/// Settings shared by the report and `compare`.
#[derive(clap::Args, Debug)]
pub struct Common {
    /// Replace an existing output folder.
    #[arg(long)]
    pub force: bool,
    /// Positive class of binary metrics (default: the class with label 1, the tutorial's TB).
    #[arg(long)]
    pub positive: Option<String>,
    /// Decision threshold on the positive class's probability (default: the predictions'
    /// threshold column from ortl-infer, else 0.5). Single-label predictions only.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Interval of the proportions at the threshold (sensitivity, specificity, precision,
    /// NPV, accuracy): Wilson's score interval or the Clopper–Pearson exact one. Other
    /// metrics get bootstrap intervals.
    #[arg(long, value_enum, default_value_t = ProportionMethod::Wilson)]
    pub proportion_interval: ProportionMethod,
    /// Resolution of the PNG figures (the SVGs are 640×480 at 96 dpi; 240 dpi gives PNGs
    /// 1600 pixels wide).
    #[arg(long, default_value_t = 240, value_parser = clap::value_parser!(u32).range(48..=1200))]
    pub dpi: u32,
    /// Bootstrap resamples for the confidence intervals (0 disables them).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 12)]
    pub seed: u64,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
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
