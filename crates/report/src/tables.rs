//! The report's CSV tables: tidy metric rows, the comparison across runs (wide: one row per
//! run; long: one row per run and metric, the run's facts repeated), its summary per
//! backbone over folds and the paired comparisons between backbones. Undefined values (NaN)
//! are empty cells rather than numbers; floats are written in shortest round-trip form.

use std::cmp::Ordering;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::compare::{Compared, RunSummary, compared};
use crate::crossval::{Aggregate, Paired};
use crate::delong::AucDifference;
use crate::evaluate::MetricRow;
use crate::metrics::Metric;

/// A value as a cell: NaN (undefined) is empty.
fn defined(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// A metric's value and 95 % interval as three cells.
#[derive(Serialize)]
struct Estimate {
    value: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
}

impl Estimate {
    fn of(row: &MetricRow) -> Self {
        Estimate {
            value: defined(row.value),
            ci_low: defined(row.ci_low),
            ci_high: defined(row.ci_high),
        }
    }

    /// A metric the run does not have.
    const MISSING: Estimate = Estimate {
        value: None,
        ci_low: None,
        ci_high: None,
    };
}

/// The interval method's machine name; empty when there is no interval.
fn interval(row: &MetricRow) -> Option<&'static str> {
    Some(row.interval.id()).filter(|id| !id.is_empty())
}

/// `metric,value,ci_low,ci_high,threshold,interval`: one row per metric.
pub fn metrics(rows: &[MetricRow], out: impl Write) -> csv::Result<()> {
    let mut table = with_header(
        out,
        [
            "metric",
            "value",
            "ci_low",
            "ci_high",
            "threshold",
            "interval",
        ],
    )?;
    for row in rows {
        table.serialize((
            row.metric,
            Estimate::of(row),
            row.threshold.and_then(defined),
            interval(row),
        ))?;
    }
    table.flush().map_err(Into::into)
}

/// A multi-label metrics.csv row's leading cells (see [`crate::multilabel`] for the schema).
#[derive(Serialize, Default)]
struct Scope<'a> {
    scope: &'a str,
    finding: Option<&'a str>,
    n: Option<usize>,
    positives: Option<usize>,
    prevalence: Option<f64>,
    threshold: Option<f64>,
    tp: Option<usize>,
    fp: Option<usize>,
    fn_: Option<usize>,
    tn: Option<usize>,
}

/// Multi-label metrics.csv: one row per finding, then the macro and micro averages, each
/// metric as value, interval bounds and interval method ([`crate::multilabel`] documents
/// the columns).
pub fn findings(e: &crate::multilabel::Evaluation, out: impl Write) -> csv::Result<()> {
    let metrics: Vec<Metric> = std::iter::once(Metric::RocAuc)
        .chain(crate::multilabel::AT_THRESHOLD)
        .collect();
    let header = [
        "scope",
        "finding",
        "n",
        "positives",
        "prevalence",
        "threshold",
        "tp",
        "fp",
        "fn",
        "tn",
    ]
    .map(String::from)
    .into_iter()
    .chain(metrics.iter().flat_map(|m| {
        ["", "_ci_low", "_ci_high", "_interval"].map(|suffix| format!("{}{suffix}", m.name()))
    }));
    let mut table = with_header(out, header)?;
    let cells = |row: Option<&MetricRow>| {
        row.map_or((Estimate::MISSING, None), |row| {
            (Estimate::of(row), interval(row))
        })
    };
    for f in &e.findings {
        let c = &f.confusion;
        let scope = Scope {
            scope: "finding",
            finding: Some(&f.finding),
            n: Some(f.n),
            positives: Some(f.positives),
            prevalence: defined(f.prevalence),
            threshold: Some(f.threshold),
            tp: Some(c.tp),
            fp: Some(c.fp),
            fn_: Some(c.fn_),
            tn: Some(c.tn),
        };
        let values: Vec<_> = metrics.iter().map(|&m| cells(Some(f.metric(m)))).collect();
        table.serialize((scope, values))?;
    }
    let averages = [
        (
            Scope {
                scope: "macro",
                n: Some(e.averaged.len()),
                ..Default::default()
            },
            &e.macro_auc,
        ),
        (
            Scope {
                scope: "micro",
                n: Some(e.labels),
                positives: Some(e.positive_labels),
                prevalence: defined(e.positive_labels as f64 / e.labels as f64),
                ..Default::default()
            },
            &e.micro_auc,
        ),
    ];
    for (scope, auc) in averages {
        let values: Vec<_> = metrics
            .iter()
            .map(|&m| cells((m == Metric::RocAuc).then_some(auc)))
            .collect();
        table.serialize((scope, values))?;
    }
    table.flush().map_err(Into::into)
}

/// co_occurrence.csv: `finding_a,finding_b,both_positive,both_known,rate` for every ordered
/// pair of findings.
pub fn co_occurrence(c: &crate::multilabel::CoOccurrence, out: impl Write) -> csv::Result<()> {
    let mut table = with_header(
        out,
        [
            "finding_a",
            "finding_b",
            "both_positive",
            "both_known",
            "rate",
        ],
    )?;
    for (a, name_a) in c.findings.iter().enumerate() {
        for (b, name_b) in c.findings.iter().enumerate() {
            table.serialize((
                name_a,
                name_b,
                c.both_positive[a][b],
                c.both_known[a][b],
                defined(c.rate[a][b]),
            ))?;
        }
    }
    table.flush().map_err(Into::into)
}

/// The columns both comparison tables start with: what was trained and how fast.
const RUN_COLUMNS: [&str; 10] = [
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
];

/// A run's [`RUN_COLUMNS`].
#[derive(Serialize)]
struct RunFacts<'a> {
    run: &'a str,
    backbone: &'a str,
    head: &'a str,
    fold: Option<u32>,
    seed: u64,
    parameters: u64,
    epochs: u64,
    train_seconds: f64,
    train_images_per_second: f64,
    images: usize,
}

impl<'a> RunFacts<'a> {
    fn of(run: &'a RunSummary) -> Self {
        RunFacts {
            run: &run.run,
            backbone: &run.backbone,
            head: &run.head,
            fold: run.fold,
            seed: run.seed,
            parameters: run.parameters,
            epochs: run.epochs,
            train_seconds: run.train_seconds,
            train_images_per_second: run.train_images_per_second,
            images: run.images,
        }
    }
}

/// Wide: one row per run, in the given order, each of [`compared`] as `METRIC`,
/// `METRIC_ci_low`, `METRIC_ci_high` (empty where the run lacks the metric).
pub fn comparison_wide(runs: &[RunSummary], out: impl Write) -> csv::Result<()> {
    let metrics = compared(runs);
    let metric_columns = metrics.iter().flat_map(|m| {
        let name = m.name();
        ["", "_ci_low", "_ci_high"].map(|suffix| format!("{name}{suffix}"))
    });
    let header = RUN_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(metric_columns);
    let mut table = with_header(out, header)?;
    for run in runs {
        let estimates: Vec<Estimate> = metrics
            .iter()
            .map(|m| run.metric(m).map_or(Estimate::MISSING, Estimate::of))
            .collect();
        table.serialize((RunFacts::of(run), estimates))?;
    }
    table.flush().map_err(Into::into)
}

/// Tidy: one row per (run, metric), the run's facts repeated on each.
pub fn comparison_long(runs: &[RunSummary], out: impl Write) -> csv::Result<()> {
    let header = RUN_COLUMNS
        .into_iter()
        .chain(["metric", "value", "ci_low", "ci_high", "interval"]);
    let mut table = with_header(out, header)?;
    for run in runs {
        for (metric, row) in run.rows() {
            table.serialize((
                RunFacts::of(run),
                metric.name(),
                Estimate::of(row),
                interval(row),
            ))?;
        }
    }
    table.flush().map_err(Into::into)
}

/// Orders runs by `metric`, best first; runs without a defined value go last, and ties keep
/// their order.
pub fn sort_runs(runs: &mut [RunSummary], metric: &Compared) {
    let value = |run: &RunSummary| run.metric(metric).and_then(|row| defined(row.value));
    runs.sort_by(|a, b| match (value(a), value(b)) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
}

/// A by_backbone.csv row, fields in column order.
#[derive(Serialize)]
struct BackboneRow<'a> {
    backbone: &'a str,
    metric: String,
    runs: usize,
    runs_nan: usize,
    folds: usize,
    mean: Option<f64>,
    std: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
}

/// Per backbone and metric over its folds ([`crate::crossval::aggregate`]): runs, runs
/// where the metric is undefined (left out of the rest), folds, mean, sample standard
/// deviation, 95 % interval of the mean, min and max.
pub fn by_backbone(rows: &[Aggregate], out: impl Write) -> csv::Result<()> {
    let mut table = with_header(
        out,
        [
            "backbone", "metric", "runs", "runs_nan", "folds", "mean", "std", "ci_low", "ci_high",
            "min", "max",
        ],
    )?;
    for r in rows {
        table.serialize(BackboneRow {
            backbone: &r.backbone,
            metric: r.metric.name(),
            runs: r.runs,
            runs_nan: r.runs_nan,
            folds: r.folds,
            mean: defined(r.mean),
            std: defined(r.std),
            ci_low: defined(r.ci_low),
            ci_high: defined(r.ci_high),
            min: defined(r.min),
            max: defined(r.max),
        })?;
    }
    table.flush().map_err(Into::into)
}

/// A paired.csv row, fields in column order.
#[derive(Serialize)]
struct PairedRow<'a> {
    metric: String,
    a: &'a str,
    b: &'a str,
    folds: usize,
    mean_difference: Option<f64>,
    std: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    p_value: Option<f64>,
}

/// Backbone against backbone per metric on shared folds ([`crate::crossval::paired`]).
pub fn paired(rows: &[Paired], out: impl Write) -> csv::Result<()> {
    let mut table = with_header(
        out,
        [
            "metric",
            "a",
            "b",
            "folds",
            "mean_difference",
            "std",
            "ci_low",
            "ci_high",
            "p_value",
        ],
    )?;
    for r in rows {
        table.serialize(PairedRow {
            metric: r.metric.name(),
            a: &r.a,
            b: &r.b,
            folds: r.folds,
            mean_difference: defined(r.mean_difference),
            std: defined(r.std),
            ci_low: defined(r.ci_low),
            ci_high: defined(r.ci_high),
            p_value: defined(r.p_value),
        })?;
    }
    table.flush().map_err(Into::into)
}

#[derive(Serialize)]
struct AucDifferenceRow<'a> {
    a: &'a str,
    b: &'a str,
    paired: bool,
    auc_a: Option<f64>,
    auc_b: Option<f64>,
    difference: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    p_value: Option<f64>,
}

/// Run against run, DeLong's test of their ROC AUCs ([`crate::compare::auc_differences`]).
pub fn auc_differences(rows: &[AucDifference], out: impl Write) -> csv::Result<()> {
    let mut table = with_header(
        out,
        [
            "a",
            "b",
            "paired",
            "auc_a",
            "auc_b",
            "difference",
            "ci_low",
            "ci_high",
            "p_value",
        ],
    )?;
    for r in rows {
        table.serialize(AucDifferenceRow {
            a: &r.a,
            b: &r.b,
            paired: r.paired,
            auc_a: defined(r.auc_a),
            auc_b: defined(r.auc_b),
            difference: defined(r.difference),
            ci_low: defined(r.ci_low),
            ci_high: defined(r.ci_high),
            p_value: defined(r.p_value),
        })?;
    }
    table.flush().map_err(Into::into)
}

/// A CSV writer that starts with `header`. Named here rather than derived from the rows'
/// fields: serde cannot name nested or run-time columns, and an empty table keeps its header.
fn with_header<W: Write, C: AsRef<[u8]>>(
    out: W,
    header: impl IntoIterator<Item = C>,
) -> csv::Result<csv::Writer<W>> {
    let mut table = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    table.write_record(header)?;
    Ok(table)
}

/// Writes one of this module's tables to `path`, naming the file on failure.
pub fn write_csv(
    path: &Path,
    table: impl FnOnce(std::io::BufWriter<std::fs::File>) -> csv::Result<()>,
) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    table(std::io::BufWriter::new(file)).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::METRICS;

    #[test]
    fn auc_differences_write_undefined_values_as_empty_cells() {
        let row = AucDifference {
            a: "run a".into(),
            b: "b".into(),
            paired: false,
            auc_a: 0.75,
            auc_b: 0.5,
            difference: 0.25,
            ci_low: 0.1,
            ci_high: 0.4,
            p_value: f64::NAN,
        };
        let mut out = Vec::new();
        auc_differences(&[row], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b,paired,auc_a,auc_b,difference,ci_low,ci_high,p_value\n\
             run a,b,false,0.75,0.5,0.25,0.1,0.4,\n"
        );
    }

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
            task: ortl_manifest::Task::SingleLabel,
            metrics: METRICS
                .into_iter()
                .map(|metric| MetricRow {
                    metric,
                    value: if metric == Metric::Accuracy {
                        accuracy
                    } else {
                        f64::NAN
                    },
                    ci_low: accuracy - 0.1,
                    ci_high: accuracy + 0.1,
                    threshold: None,
                    interval: Default::default(),
                })
                .collect(),
            finding_aucs: Vec::new(),
            scored: None,
            setup: Default::default(),
        }
    }

    fn text(table: impl FnOnce(&mut Vec<u8>) -> csv::Result<()>) -> String {
        let mut out = Vec::new();
        table(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn wide_comparison_has_each_metric_with_its_interval_in_run_order() {
        let mut runs = [
            summary("a", "resnet50", 0.8),
            summary("b", "vgg19", 0.9),
            summary("c", "resnet50", 0.7),
            summary("d", "vgg19", f64::NAN),
            summary("e", "vgg19", 0.8),
        ];
        runs[1].metrics.retain(|m| m.metric != Metric::RocAuc);
        sort_runs(&mut runs, &Metric::Accuracy.into());
        let order: Vec<&str> = runs.iter().map(|r| r.run.as_str()).collect();
        assert_eq!(
            order,
            ["b", "a", "e", "c", "d"],
            "best first, ties stable, NaN last"
        );
        let table = text(|out| comparison_wide(&runs, out));
        let header: Vec<&str> = table.lines().next().unwrap().split(',').collect();
        assert_eq!(header.len(), RUN_COLUMNS.len() + 3 * METRICS.len());
        assert_eq!(header[..RUN_COLUMNS.len()], RUN_COLUMNS);
        assert_eq!(
            header[10..13],
            ["accuracy", "accuracy_ci_low", "accuracy_ci_high"]
        );
        assert_eq!(header.last(), Some(&"roc_auc_ci_high"));
        let first = table.lines().nth(1).unwrap();
        // NaN metrics and a run without a fold are empty cells; a metric the run lacks
        // (b's roc_auc) is three empty cells.
        assert!(
            first.starts_with("b,vgg19,linear,,1,10,2,7.5,5.0,40,0.9,0.8,1.0,,0.8,1.0,"),
            "{first}"
        );
        assert!(first.ends_with(",,,"), "{first}");
        assert!(
            table.lines().all(|l| l.split(',').count() == header.len()),
            "{table}"
        );
    }

    #[test]
    fn long_comparison_repeats_the_run_facts_on_each_metric() {
        let runs = [summary("a", "resnet50", 0.8)];
        let table = text(|out| comparison_long(&runs, out));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "run,backbone,head,fold,seed,parameters,epochs,train_seconds,\
             train_images_per_second,images,metric,value,ci_low,ci_high,interval"
        );
        assert_eq!(lines.len(), 1 + METRICS.len());
        assert_eq!(
            lines[1],
            "a,resnet50,linear,,1,10,2,7.5,5.0,40,accuracy,0.8,0.7000000000000001,0.9,"
        );
    }

    #[test]
    fn backbone_summary_blanks_undefined_values() {
        let runs = [
            summary("a", "resnet50", 0.8),
            summary("b", "vgg19", 0.9),
            summary("c", "resnet50", 0.6),
        ];
        let table = text(|out| by_backbone(&crate::crossval::aggregate(&runs), out));
        let mut lines = table.lines();
        assert_eq!(
            lines.next(),
            Some("backbone,metric,runs,runs_nan,folds,mean,std,ci_low,ci_high,min,max")
        );
        let row = |backbone: &str, metric: &str| -> Vec<String> {
            table
                .lines()
                .find(|l| l.starts_with(&format!("{backbone},{metric},")))
                .unwrap()
                .split(',')
                .map(String::from)
                .collect()
        };
        let resnet = row("resnet50", "accuracy");
        assert_eq!(resnet[2..5], ["2", "0", "2"]);
        assert!((resnet[5].parse::<f64>().unwrap() - 0.7).abs() < 1e-12);
        // Sample standard deviation of 0.8 and 0.6.
        assert!((resnet[6].parse::<f64>().unwrap() - 0.02f64.sqrt()).abs() < 1e-9);
        assert_eq!(
            row("vgg19", "accuracy")[6],
            "",
            "one vgg19 run: no deviation"
        );
        // A metric that is NaN everywhere is counted as such and has no folds to average.
        assert_eq!(
            row("resnet50", "f1")[2..],
            ["2", "2", "0", "", "", "", "", "", ""]
        );
    }

    #[test]
    fn empty_tables_keep_their_header() {
        assert_eq!(
            text(|out| paired(&[], out)),
            "metric,a,b,folds,mean_difference,std,ci_low,ci_high,p_value\n"
        );
    }

    #[test]
    fn metric_rows_keep_thresholds_and_blank_undefined_values() {
        let rows = [
            MetricRow {
                metric: Metric::F1,
                value: 0.5,
                ci_low: 0.4,
                ci_high: 0.6,
                threshold: Some(0.5),
                interval: crate::intervals::Interval::Bootstrap,
            },
            MetricRow {
                metric: Metric::Mcc,
                value: f64::NAN,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
                threshold: None,
                interval: Default::default(),
            },
        ];
        assert_eq!(
            text(|out| metrics(&rows, out)),
            "metric,value,ci_low,ci_high,threshold,interval\nf1,0.5,0.4,0.6,0.5,bootstrap\nmcc,,,,,\n"
        );
    }
}
