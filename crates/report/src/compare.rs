//! `ortl-report compare`: the tutorial's closing comparison of backbones (or any settings)
//! across run folders. Each run folder holds ortl-train's `train.json` and `history.csv`
//! and the run's `predictions.csv` from ortl-infer.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::evaluate::{MetricRow, binary_predictions, multiclass};
use ortl_manifest::{Predictions, TrainRecord};

/// The metrics compared, in table order.
pub const METRICS: [&str; 6] = [
    "accuracy",
    "sensitivity",
    "specificity",
    "f1",
    "mcc",
    "roc_auc",
];

/// A metric's name for people (tables and figures; CSV and JSON keep the machine name).
pub fn label(metric: &str) -> &str {
    match metric {
        "accuracy" => "Accuracy",
        "sensitivity" => "Sensitivity",
        "specificity" => "Specificity",
        "f1" => "F1",
        "mcc" => "MCC",
        "roc_auc" => "ROC AUC",
        other => other,
    }
}

/// One run's row of comparison.csv.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub run: String,
    pub backbone: String,
    pub head: String,
    /// The validation fold (`ortl-train --val-fold`), when the run is one of a k-fold set.
    pub fold: Option<u32>,
    pub seed: u64,
    pub parameters: u64,
    pub epochs: u64,
    pub train_seconds: f64,
    pub train_images_per_second: f64,
    pub images: usize,
    /// (metric, value, ci_low, ci_high) for each of [`METRICS`].
    pub metrics: Vec<MetricRow>,
    /// The positive-class scores of a binary run, for AUC comparisons between runs.
    #[serde(skip)]
    pub scored: Option<crate::delong::Scored>,
}

impl RunSummary {
    /// The row of `metric`, if the run has it.
    pub fn metric(&self, metric: &str) -> Option<&MetricRow> {
        self.metrics.iter().find(|row| row.metric == metric)
    }

    /// The value of `metric`; NaN (undefined) when the run does not have it.
    pub fn value(&self, metric: &str) -> f64 {
        self.metric(metric).map_or(f64::NAN, |row| row.value)
    }
}

pub fn summarize(
    dir: &Path,
    positive: Option<&str>,
    threshold: f64,
    bootstrap: usize,
    proportion: crate::intervals::ProportionMethod,
    seed: u64,
) -> Result<RunSummary> {
    let predictions_path = dir.join("predictions.csv");
    let preds = Predictions::from_path(&predictions_path).with_context(|| {
        format!("{}: each run folder needs its predictions.csv (ortl-infer --model RUN/model.onnx … > RUN/predictions.csv)", dir.display())
    })?;
    let train = TrainRecord::read(&dir.join("train.json")).with_context(|| {
        format!(
            "{}: each run folder needs ortl-train's train.json beside its predictions.csv",
            dir.display()
        )
    })?;
    let mut scored = None;
    let metrics = if preds.classes.len() == 2 {
        let (eval, labels, scores) =
            binary_predictions(&preds, positive, threshold, bootstrap, proportion, seed)
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        scored = Some(crate::delong::Scored {
            paths: preds.paths.clone(),
            labels,
            scores,
        });
        METRICS
            .iter()
            .map(|m| {
                eval.rows
                    .iter()
                    .find(|r| r.metric == *m)
                    .cloned()
                    .expect("computed")
            })
            .collect()
    } else {
        let m = multiclass(&preds.classes, &preds.labels, &preds.probabilities);
        let row = |metric: &str, value: f64| MetricRow {
            metric: metric.into(),
            value,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            threshold: None,
            interval: Default::default(),
        };
        vec![
            row("accuracy", m.accuracy),
            row("sensitivity", f64::NAN),
            row("specificity", f64::NAN),
            row("f1", m.macro_f1),
            row("mcc", m.mcc),
            row("roc_auc", m.macro_auc),
        ]
    };
    Ok(RunSummary {
        run: dir.display().to_string(),
        backbone: train.settings.backbone,
        head: train.settings.head,
        fold: train.settings.val_fold,
        seed: train.settings.seed,
        parameters: train.settings.backbone_parameters as u64,
        epochs: train.summary.epochs_run as u64,
        train_seconds: train.summary.seconds,
        train_images_per_second: train.summary.images_per_second,
        images: preds.labels.len(),
        metrics,
        scored,
    })
}

/// ROC AUC of every binary run against every later one (DeLong; paired when both scored
/// the same images).
pub fn auc_differences(runs: &[RunSummary]) -> Vec<crate::delong::AucDifference> {
    let mut out = Vec::new();
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            if let (Some(sa), Some(sb)) = (&a.scored, &b.scored)
                && let Some(d) = crate::delong::difference(&a.run, sa, &b.run, sb)
            {
                out.push(d);
            }
        }
    }
    out
}

/// comparison.csv (one row per run, each metric with its interval), comparison_long.csv
/// (tidy: one row per run and metric), by_backbone.csv (per backbone and metric over its
/// folds: mean, standard deviation, 95 % interval, minimum and maximum) and paired.csv
/// (backbone against backbone on shared folds; both from [`crate::crossval`]) into `dir`.
/// Returns the runs in table order: sorted by `sort_by` (best first), else as given.
pub fn write_tables(
    dir: &Path,
    mut runs: Vec<RunSummary>,
    aggregates: &[crate::crossval::Aggregate],
    paired: &[crate::crossval::Paired],
    sort_by: Option<&str>,
) -> Result<Vec<RunSummary>> {
    use crate::tables::{self, write_csv};
    if let Some(metric) = sort_by {
        tables::sort_runs(&mut runs, metric);
    }
    write_csv(&dir.join("comparison.csv"), |out| {
        tables::comparison_wide(&runs, out)
    })?;
    write_csv(&dir.join("comparison_long.csv"), |out| {
        tables::comparison_long(&runs, out)
    })?;
    write_csv(&dir.join("by_backbone.csv"), |out| {
        tables::by_backbone(aggregates, out)
    })?;
    write_csv(&dir.join("paired.csv"), |out| tables::paired(paired, out))?;
    Ok(runs)
}
