//! The report's tables as polars data frames: tidy metric rows, the comparison across runs
//! (a join of run facts with their metrics) and its summary per backbone (grouped over
//! runs that repeat a backbone, e.g. with other seeds). Undefined values (NaN) are nulls,
//! so they are empty cells in CSV rather than numbers.

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::compare::{METRICS, RunSummary};
use crate::crossval::{Aggregate, Paired};
use crate::evaluate::MetricRow;

fn defined(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// `metric,value,ci_low,ci_high,threshold`: one row per metric.
pub fn metrics(rows: &[MetricRow]) -> PolarsResult<DataFrame> {
    df!(
        "metric" => rows.iter().map(|r| r.metric.as_str()).collect::<Vec<_>>(),
        "value" => rows.iter().map(|r| defined(r.value)).collect::<Vec<_>>(),
        "ci_low" => rows.iter().map(|r| defined(r.ci_low)).collect::<Vec<_>>(),
        "ci_high" => rows.iter().map(|r| defined(r.ci_high)).collect::<Vec<_>>(),
        "threshold" => rows.iter().map(|r| r.threshold).collect::<Vec<_>>(),
        "interval" => rows
            .iter()
            .map(|r| Some(r.interval.id()).filter(|n| !n.is_empty()))
            .collect::<Vec<_>>(),
    )
}

/// One row per run: what was trained and how fast.
fn runs(summaries: &[RunSummary]) -> PolarsResult<DataFrame> {
    df!(
        "run" => summaries.iter().map(|r| r.run.as_str()).collect::<Vec<_>>(),
        "backbone" => summaries.iter().map(|r| r.backbone.as_str()).collect::<Vec<_>>(),
        "head" => summaries.iter().map(|r| r.head.as_str()).collect::<Vec<_>>(),
        "fold" => summaries.iter().map(|r| r.fold).collect::<Vec<_>>(),
        "seed" => summaries.iter().map(|r| r.seed).collect::<Vec<_>>(),
        "parameters" => summaries.iter().map(|r| r.parameters).collect::<Vec<_>>(),
        "epochs" => summaries.iter().map(|r| r.epochs).collect::<Vec<_>>(),
        "train_seconds" => summaries.iter().map(|r| r.train_seconds).collect::<Vec<_>>(),
        "train_images_per_second" => summaries.iter().map(|r| r.train_images_per_second).collect::<Vec<_>>(),
        "images" => summaries.iter().map(|r| r.images as u64).collect::<Vec<_>>(),
    )
}

/// Tidy: one row per (run, metric), with the run's facts joined on.
pub fn comparison_long(summaries: &[RunSummary]) -> PolarsResult<DataFrame> {
    let mut run = Vec::new();
    let mut rows = Vec::new();
    for s in summaries {
        for m in &s.metrics {
            run.push(s.run.as_str());
            rows.push(m.clone());
        }
    }
    let mut long = metrics(&rows)?;
    long.with_column(Column::new("run".into(), run))?;
    runs(summaries)?.join(
        &long.drop("threshold")?,
        ["run"],
        ["run"],
        JoinArgs::new(JoinType::Inner),
        None,
    )
}

/// Wide: one row per run, each metric with its interval as three columns, in the order
/// of [`METRICS`]; sorted by `sort_by` (a metric, best first) when given.
pub fn comparison_wide(summaries: &[RunSummary], sort_by: Option<&str>) -> Result<DataFrame> {
    let long = comparison_long(summaries)?;
    let mut wide = runs(summaries)?;
    for metric in METRICS {
        let mask = long.column("metric")?.str()?.equal(metric);
        let mut one = long
            .filter(&mask)?
            .select(["run", "value", "ci_low", "ci_high"])?;
        one.set_column_names(&[
            "run".to_string(),
            metric.to_string(),
            format!("{metric}_ci_low"),
            format!("{metric}_ci_high"),
        ])?;
        wide = wide.join(&one, ["run"], ["run"], JoinArgs::new(JoinType::Left), None)?;
    }
    if let Some(metric) = sort_by {
        if !METRICS.contains(&metric) {
            anyhow::bail!(
                "--sort-by '{metric}' is not one of the compared metrics ({})",
                METRICS.join(", ")
            );
        }
        wide = wide.sort(
            [metric],
            SortMultipleOptions::default()
                .with_order_descending(true)
                .with_nulls_last(true)
                .with_maintain_order(true),
        )?;
    }
    Ok(wide)
}

/// Per backbone and metric over its folds ([`crate::crossval::aggregate`]): runs, folds,
/// mean, sample standard deviation, 95 % interval of the mean, min and max.
pub fn by_backbone(rows: &[Aggregate]) -> PolarsResult<DataFrame> {
    df!(
        "backbone" => rows.iter().map(|r| r.backbone.as_str()).collect::<Vec<_>>(),
        "metric" => rows.iter().map(|r| r.metric.as_str()).collect::<Vec<_>>(),
        "runs" => rows.iter().map(|r| r.runs as u64).collect::<Vec<_>>(),
        "folds" => rows.iter().map(|r| r.folds as u64).collect::<Vec<_>>(),
        "mean" => rows.iter().map(|r| defined(r.mean)).collect::<Vec<_>>(),
        "std" => rows.iter().map(|r| defined(r.std)).collect::<Vec<_>>(),
        "ci_low" => rows.iter().map(|r| defined(r.ci_low)).collect::<Vec<_>>(),
        "ci_high" => rows.iter().map(|r| defined(r.ci_high)).collect::<Vec<_>>(),
        "min" => rows.iter().map(|r| defined(r.min)).collect::<Vec<_>>(),
        "max" => rows.iter().map(|r| defined(r.max)).collect::<Vec<_>>(),
    )
}

/// Backbone against backbone per metric on shared folds ([`crate::crossval::paired`]).
pub fn paired(rows: &[Paired]) -> PolarsResult<DataFrame> {
    df!(
        "metric" => rows.iter().map(|r| r.metric.as_str()).collect::<Vec<_>>(),
        "a" => rows.iter().map(|r| r.a.as_str()).collect::<Vec<_>>(),
        "b" => rows.iter().map(|r| r.b.as_str()).collect::<Vec<_>>(),
        "folds" => rows.iter().map(|r| r.folds as u64).collect::<Vec<_>>(),
        "mean_difference" => rows.iter().map(|r| defined(r.mean_difference)).collect::<Vec<_>>(),
        "std" => rows.iter().map(|r| defined(r.std)).collect::<Vec<_>>(),
        "ci_low" => rows.iter().map(|r| defined(r.ci_low)).collect::<Vec<_>>(),
        "ci_high" => rows.iter().map(|r| defined(r.ci_high)).collect::<Vec<_>>(),
        "p_value" => rows.iter().map(|r| defined(r.p_value)).collect::<Vec<_>>(),
    )
}

/// Writes `frame` as CSV (nulls as empty cells, floats in full precision).
pub fn write_csv(frame: &mut DataFrame, path: &Path) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let written = CsvWriter::new(std::io::BufWriter::new(file)).finish(frame);
    anyhow::Context::with_context(written, || format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(run: &str, backbone: &str, accuracy: f64) -> RunSummary {
        RunSummary {
            run: run.into(),
            backbone: backbone.into(),
            head: "linear".into(),
            fold: None,
            seed: 1,
            parameters: 10,
            epochs: 2,
            train_seconds: 7.5,
            train_images_per_second: 5.0,
            images: 40,
            metrics: METRICS
                .iter()
                .map(|m| MetricRow {
                    metric: m.to_string(),
                    value: if *m == "accuracy" { accuracy } else { f64::NAN },
                    ci_low: accuracy - 0.1,
                    ci_high: accuracy + 0.1,
                    threshold: None,
                    interval: Default::default(),
                })
                .collect(),
            scored: None,
        }
    }

    fn csv(frame: &mut DataFrame) -> String {
        let mut out = Vec::new();
        CsvWriter::new(&mut out).finish(frame).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn wide_comparison_joins_each_metric_and_sorts_best_first() {
        let runs = [
            summary("a", "resnet50", 0.8),
            summary("b", "vgg19", 0.9),
            summary("c", "resnet50", 0.7),
        ];
        let mut wide = comparison_wide(&runs, Some("accuracy")).unwrap();
        assert_eq!(wide.height(), 3);
        let names: Vec<&str> = wide.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(
            &names[..11],
            [
                "run",
                "backbone",
                "head",
                "fold",
                "seed",
                "parameters",
                "epochs",
                "train_seconds",
                "train_images_per_second",
                "images",
                "accuracy"
            ]
        );
        assert_eq!(names.len(), 10 + 3 * METRICS.len());
        let text = csv(&mut wide);
        let order: Vec<&str> = text.lines().skip(1).map(|l| &l[..1]).collect();
        assert_eq!(order, ["b", "a", "c"]);
        // NaN metrics and a run without a fold are empty cells.
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("b,vgg19,linear,,1,10,2,7.5,5.0,40,0.9,"),
            "{text}"
        );
        assert!(comparison_wide(&runs, Some("speed")).is_err());
    }

    #[test]
    fn backbone_summary_groups_repeated_runs() {
        let runs = [
            summary("a", "resnet50", 0.8),
            summary("b", "vgg19", 0.9),
            summary("c", "resnet50", 0.6),
        ];
        let table = by_backbone(&crate::crossval::aggregate(&runs)).unwrap();
        let accuracy = table
            .filter(
                &table
                    .column("metric")
                    .unwrap()
                    .str()
                    .unwrap()
                    .equal("accuracy"),
            )
            .unwrap();
        let col = |name: &str| accuracy.column(name).unwrap().clone();
        assert_eq!(col("backbone").str().unwrap().get(0), Some("resnet50"));
        assert_eq!(col("runs").u64().unwrap().get(0), Some(2));
        let mean = col("mean").f64().unwrap().get(0).unwrap();
        let std = col("std").f64().unwrap().get(0).unwrap();
        assert!((mean - 0.7).abs() < 1e-12);
        // Sample standard deviation of 0.8 and 0.6.
        assert!((std - 0.02f64.sqrt()).abs() < 1e-9, "{std}");
        assert_eq!(
            col("std").f64().unwrap().get(1),
            None,
            "one vgg19 run: no deviation"
        );
        // A metric that is NaN everywhere has no folds to average.
        let f1 = table
            .filter(&table.column("metric").unwrap().str().unwrap().equal("f1"))
            .unwrap();
        assert_eq!(f1.column("folds").unwrap().u64().unwrap().get(0), Some(0));
        assert_eq!(f1.column("mean").unwrap().f64().unwrap().get(0), None);
    }

    #[test]
    fn metric_rows_keep_thresholds_and_blank_undefined_values() {
        let rows = [
            MetricRow {
                metric: "f1".into(),
                value: 0.5,
                ci_low: 0.4,
                ci_high: 0.6,
                threshold: Some(0.5),
                interval: Default::default(),
            },
            MetricRow {
                metric: "mcc".into(),
                value: f64::NAN,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
                threshold: None,
                interval: Default::default(),
            },
        ];
        let text = csv(&mut metrics(&rows).unwrap());
        assert_eq!(
            text,
            "metric,value,ci_low,ci_high,threshold,interval\nf1,0.5,0.4,0.6,0.5,\nmcc,,,,,\n"
        );
    }
}
