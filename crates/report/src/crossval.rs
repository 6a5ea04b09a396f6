//! Cross-validation over runs: each backbone's metric over folds (mean, standard deviation
//! and a Student-t 95 % interval of the mean) and paired comparisons of backbones on the
//! folds they share. Runs that repeat a fold with other seeds are averaged within the fold
//! first, so the folds are the independent units; runs without a fold (a plain split) are
//! each their own unit.

use std::collections::BTreeMap;

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::compare::{Compared, RunSummary, compared};

/// One backbone's metric over its units (folds, or runs without folds).
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub backbone: String,
    pub metric: Compared,
    pub runs: usize,
    /// Runs whose value is undefined (NaN): counted here, left out of the mean.
    pub runs_nan: usize,
    /// Independent units: folds (seed-averaged), or runs when no fold is recorded.
    pub folds: usize,
    pub mean: f64,
    /// Sample standard deviation over units (NaN for one).
    pub std: f64,
    /// 95 % Student-t interval of the mean over units, clipped to the metric's range (NaN
    /// for one unit).
    pub ci_low: f64,
    pub ci_high: f64,
    pub min: f64,
    pub max: f64,
}

/// Backbone `a` against `b` on one metric, over the folds both were run on.
#[derive(Clone, Debug, PartialEq)]
pub struct Paired {
    pub metric: Compared,
    pub a: String,
    pub b: String,
    pub folds: usize,
    /// Mean of a − b over the shared folds.
    pub mean_difference: f64,
    pub std: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Two-sided paired t-test of a zero mean difference.
    pub p_value: f64,
}

/// One backbone's runs of one metric.
struct Units {
    backbone: String,
    /// Unit key → the defined values of the metric in that unit.
    values: BTreeMap<String, Vec<f64>>,
    runs: usize,
    runs_nan: usize,
}

/// Per backbone, in order of appearance.
fn units(runs: &[RunSummary], metric: &Compared) -> Vec<Units> {
    let mut out: Vec<Units> = Vec::new();
    for run in runs {
        let value = run.value(metric);
        let index = match out.iter().position(|u| u.backbone == run.backbone) {
            Some(i) => i,
            None => {
                out.push(Units {
                    backbone: run.backbone.clone(),
                    values: BTreeMap::new(),
                    runs: 0,
                    runs_nan: 0,
                });
                out.len() - 1
            }
        };
        let unit = match run.fold {
            Some(fold) => format!("fold {fold}"),
            None => format!("run {}", run.run),
        };
        let entry = &mut out[index];
        entry.runs += 1;
        if value.is_nan() {
            entry.runs_nan += 1;
        } else {
            entry.values.entry(unit).or_default().push(value);
        }
    }
    out
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Mean, sample standard deviation and the 95 % t interval of the mean.
fn describe(values: &[f64]) -> (f64, f64, f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    let m = mean(values);
    if n < 2 {
        return (m, f64::NAN, f64::NAN, f64::NAN);
    }
    let sd = (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .expect("degrees of freedom ≥ 1")
        .inverse_cdf(0.975);
    let half = t * sd / (n as f64).sqrt();
    (m, sd, m - half, m + half)
}

/// Per backbone (in order of appearance), the value of `metric` in each of its units (a
/// fold's runs averaged over seeds), in unit order: what [`aggregate`] summarises.
pub fn unit_values(runs: &[RunSummary], metric: &Compared) -> Vec<(String, Vec<f64>)> {
    units(runs, metric)
        .into_iter()
        .map(|u| (u.backbone, u.values.values().map(|v| mean(v)).collect()))
        .collect()
}

/// `value` within [floor, ceiling]; NaN (undefined) stays NaN.
fn clip(value: f64, floor: f64, ceiling: f64) -> f64 {
    if value.is_nan() {
        value
    } else {
        value.clamp(floor, ceiling)
    }
}

/// Every backbone's every metric ([`compared`]), backbones in order of appearance; each
/// interval is clipped to the metric's range (a t interval over three folds can otherwise
/// reach past 1).
pub fn aggregate(runs: &[RunSummary]) -> Vec<Aggregate> {
    let mut rows = Vec::new();
    let per_metric: Vec<_> = compared(runs)
        .into_iter()
        .map(|m| {
            let units = units(runs, &m);
            (m, units)
        })
        .collect();
    let backbones: Vec<String> = per_metric[0].1.iter().map(|u| u.backbone.clone()).collect();
    for backbone in &backbones {
        for (metric, by_backbone) in &per_metric {
            let units = by_backbone
                .iter()
                .find(|u| u.backbone == *backbone)
                .expect("every metric sees every backbone");
            let values: Vec<f64> = units.values.values().map(|v| mean(v)).collect();
            let (m, sd, lo, hi) = describe(&values);
            let (floor, ceiling) = metric.range();
            rows.push(Aggregate {
                backbone: backbone.clone(),
                metric: metric.clone(),
                runs: units.runs,
                runs_nan: units.runs_nan,
                folds: values.len(),
                mean: m,
                std: sd,
                ci_low: clip(lo, floor, ceiling),
                ci_high: clip(hi, floor, ceiling),
                min: values.iter().copied().fold(f64::NAN, f64::min),
                max: values.iter().copied().fold(f64::NAN, f64::max),
            });
        }
    }
    rows
}

/// Every pair of backbones on every metric, over the folds both have (runs without a fold
/// cannot be paired and are left out).
pub fn paired(runs: &[RunSummary]) -> Vec<Paired> {
    let mut rows = Vec::new();
    for metric in compared(runs) {
        let by_backbone = units(runs, &metric);
        for (i, a) in by_backbone.iter().enumerate() {
            for b in &by_backbone[i + 1..] {
                let differences: Vec<f64> = a
                    .values
                    .iter()
                    .filter(|(unit, _)| unit.starts_with("fold "))
                    .filter_map(|(unit, va)| b.values.get(unit).map(|vb| mean(va) - mean(vb)))
                    .collect();
                if differences.is_empty() {
                    continue;
                }
                let (m, sd, lo, hi) = describe(&differences);
                // A difference of two values in [a, b] lies in [a − b, b − a].
                let (floor, ceiling) = metric.range();
                let span = ceiling - floor;
                let (lo, hi) = (clip(lo, -span, span), clip(hi, -span, span));
                let n = differences.len();
                let p_value = if n < 2 || sd.is_nan() {
                    f64::NAN
                } else if sd == 0.0 {
                    if m == 0.0 { 1.0 } else { 0.0 }
                } else {
                    let t = m / (sd / (n as f64).sqrt());
                    let dist = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("n ≥ 2");
                    2.0 * (1.0 - dist.cdf(t.abs()))
                };
                rows.push(Paired {
                    metric: metric.clone(),
                    a: a.backbone.clone(),
                    b: b.backbone.clone(),
                    folds: n,
                    mean_difference: m,
                    std: sd,
                    ci_low: lo,
                    ci_high: hi,
                    p_value,
                });
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::METRICS;
    use crate::evaluate::MetricRow;
    use crate::metrics::Metric;

    fn run(backbone: &str, fold: Option<u32>, seed: u64, accuracy: f64) -> RunSummary {
        RunSummary {
            run: format!("{backbone}-{fold:?}-{seed}"),
            backbone: backbone.into(),
            head: "linear".into(),
            fold,
            seed,
            parameters: 100,
            epochs: 3,
            train_seconds: 1.5,
            train_images_per_second: 20.0,
            images: 10,
            task: ortl_manifest::Task::SingleLabel,
            metrics: METRICS
                .into_iter()
                .map(|metric| {
                    let value = if metric == Metric::Accuracy {
                        accuracy
                    } else {
                        f64::NAN
                    };
                    MetricRow::point(metric, value)
                })
                .collect(),
            finding_aucs: Vec::new(),
            scored: None,
            setup: Default::default(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn seeds_are_averaged_within_a_fold_and_the_interval_is_students() {
        // Fold means 0.8, 0.9, 0.7 (fold 0 from two seeds).
        let runs = vec![
            run("a", Some(0), 1, 0.75),
            run("a", Some(0), 2, 0.85),
            run("a", Some(1), 1, 0.9),
            run("a", Some(2), 1, 0.7),
        ];
        let rows = aggregate(&runs);
        let acc = rows
            .iter()
            .find(|r| r.metric == Metric::Accuracy.into())
            .unwrap();
        assert_eq!((acc.runs, acc.folds), (4, 3));
        assert!(close(acc.mean, 0.8) && close(acc.std, 0.1), "{acc:?}");
        // t(0.975, 2) = 0.95·√(2 / (1 − 0.95²)) = 4.302652729911275 (closed form for 2 df).
        let half = 4.302652729911275 * 0.1 / 3f64.sqrt();
        assert!(
            // 0.8 + 0.248 lies past 1: the interval is clipped to the metric's range.
            close(acc.ci_low, 0.8 - half) && close(acc.ci_high, 1.0),
            "{acc:?}"
        );
        assert!(close(acc.min, 0.7) && close(acc.max, 0.9));
        // A metric that is undefined everywhere has no units.
        let mcc = rows
            .iter()
            .find(|r| r.metric == Metric::Mcc.into())
            .unwrap();
        assert_eq!((mcc.runs, mcc.runs_nan, mcc.folds), (4, 4, 0));
        assert!(mcc.mean.is_nan() && mcc.ci_low.is_nan() && mcc.ci_high.is_nan());
    }

    #[test]
    fn backbones_are_paired_on_shared_folds_only() {
        let runs = vec![
            run("a", Some(0), 1, 0.80),
            run("a", Some(1), 1, 0.90),
            run("a", Some(2), 1, 0.85),
            run("b", Some(0), 1, 0.70),
            run("b", Some(1), 1, 0.85),
            run("b", Some(2), 1, 0.70),
            run("b", Some(3), 1, 0.10),
            run("c", None, 1, 0.5),
        ];
        let rows = paired(&runs);
        let ab = rows
            .iter()
            .find(|r| r.metric == Metric::Accuracy.into() && r.a == "a" && r.b == "b")
            .unwrap();
        // Differences 0.10, 0.05, 0.15: mean 0.1, sd 0.05, t = 0.1 / (0.05 / √3) = √12;
        // with 2 df, p = 1 − t / √(t² + 2) = 1 − √(12/14) = 0.07417990022744858.
        assert_eq!(ab.folds, 3);
        assert!(
            close(ab.mean_difference, 0.1) && close(ab.std, 0.05),
            "{ab:?}"
        );
        assert!((ab.p_value - 0.07417990022744858).abs() < 1e-9, "{ab:?}");
        assert!(
            !rows.iter().any(|r| r.a == "c" || r.b == "c"),
            "a run without folds cannot be paired"
        );
    }
}
