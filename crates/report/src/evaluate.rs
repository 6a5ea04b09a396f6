//! Point estimates with stratified bootstrap 95 % intervals: positives and negatives are
//! resampled separately (with replacement, seeded), every metric is recomputed on each
//! resample, and the interval is the 2.5th–97.5th percentile of the finite values.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::intervals::{Interval, ProportionMethod};
use crate::metrics::{
    Confusion, Metric, average_precision, brier, log_loss, roc_auc, sensitivity_at_specificity,
    specificity_at_sensitivity, threshold_metrics, youden_threshold,
};

/// One row of metrics.csv.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MetricRow {
    pub metric: Metric,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// The decision threshold the metric depends on (empty for threshold-free metrics).
    pub threshold: Option<f64>,
    /// How the interval was computed.
    pub interval: Interval,
}

impl MetricRow {
    /// A metric without an interval or a threshold (the multi-class summary, a table's filler).
    pub fn point(metric: Metric, value: f64) -> Self {
        Self::new(metric, value, (f64::NAN, f64::NAN), None, Interval::None)
    }

    /// A metric with its interval by `method`, or with none where the interval is NaN
    /// (undefined: too few images, a perfect AUC).
    pub fn new(
        metric: Metric,
        value: f64,
        (ci_low, ci_high): (f64, f64),
        threshold: Option<f64>,
        method: Interval,
    ) -> Self {
        Self {
            metric,
            value,
            ci_low,
            ci_high,
            threshold,
            interval: if ci_low.is_nan() {
                Interval::None
            } else {
                method
            },
        }
    }
}

/// Everything computed for a binary problem.
#[derive(Clone, Debug, Serialize)]
pub struct BinaryEvaluation {
    pub positive: String,
    pub negative: String,
    pub n: usize,
    pub positives: usize,
    pub threshold: f64,
    /// Where `threshold` was chosen, when not given (`--threshold-from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_source: Option<String>,
    /// NaN (null in JSON) without both classes.
    pub youden_threshold: f64,
    pub confusion: Confusion,
    /// None without both classes.
    pub confusion_at_youden: Option<Confusion>,
    pub rows: Vec<MetricRow>,
}

/// All metrics of one sample at `threshold` (and at its own Youden threshold).
fn all_metrics(labels: &[bool], scores: &[f64], threshold: f64) -> Vec<(Metric, f64, Option<f64>)> {
    let mut out = Vec::new();
    for (metric, value) in threshold_metrics(&Confusion::at(labels, scores, threshold)) {
        out.push((metric, value, Some(threshold)));
    }
    out.push((Metric::RocAuc, roc_auc(labels, scores), None));
    out.push((
        Metric::AveragePrecision,
        average_precision(labels, scores),
        None,
    ));
    out.push((Metric::Brier, brier(labels, scores), None));
    out.push((Metric::LogLoss, log_loss(labels, scores), None));
    for (level, sensitivity_at, specificity_at) in [
        (
            0.90,
            Metric::SensitivityAtSpecificity90,
            Metric::SpecificityAtSensitivity90,
        ),
        (
            0.95,
            Metric::SensitivityAtSpecificity95,
            Metric::SpecificityAtSensitivity95,
        ),
    ] {
        out.push((
            sensitivity_at,
            sensitivity_at_specificity(labels, scores, level),
            None,
        ));
        out.push((
            specificity_at,
            specificity_at_sensitivity(labels, scores, level),
            None,
        ));
    }
    let youden = youden_threshold(labels, scores);
    let at_youden = threshold_metrics(&Confusion::at(labels, scores, youden));
    for metric in Metric::ALL {
        if let Some(repeated) = metric.repeated_at_youden() {
            let (_, value) = at_youden
                .iter()
                .find(|(m, _)| *m == repeated)
                .expect("a threshold metric");
            // No Youden threshold (one class): nothing is measured at it.
            let value = if youden.is_nan() { f64::NAN } else { *value };
            out.push((metric, value, Some(youden)));
        }
    }
    out
}

/// Proportions at the given threshold, as (metric, successes, trials) of a confusion.
fn proportions(c: &Confusion) -> [(Metric, usize, usize); 6] {
    let n = c.tp + c.tn + c.fp + c.fn_;
    [
        (Metric::Sensitivity, c.tp, c.tp + c.fn_),
        (Metric::Specificity, c.tn, c.tn + c.fp),
        (Metric::Precision, c.tp, c.tp + c.fp),
        (Metric::Npv, c.tn, c.tn + c.fn_),
        (Metric::Accuracy, c.tp + c.tn, n),
        (Metric::ErrorRate, c.fp + c.fn_, n),
    ]
}

/// Sets the interval of each proportion at the threshold among `rows` (sensitivity,
/// specificity, precision, NPV, accuracy, error rate) to `method`'s from its counts in `c`.
pub(crate) fn proportion_intervals(
    rows: &mut [MetricRow],
    c: &Confusion,
    method: ProportionMethod,
) {
    for (metric, k, n) in proportions(c) {
        if let Some(row) = rows.iter_mut().find(|r| r.metric == metric) {
            (row.ci_low, row.ci_high) = method.bounds(k, n);
            row.interval = if n == 0 {
                Interval::None
            } else {
                method.interval()
            };
        }
    }
}

/// The 95 % percentile interval of each of the `count` values `metrics` gives, over
/// `resamples` stratified bootstrap resamples: positives and negatives resampled apart (with
/// replacement, seeded), each metric's finite values kept (NaN bounds when none is).
pub(crate) fn stratified_bootstrap(
    labels: &[bool],
    scores: &[f64],
    (resamples, seed): (usize, u64),
    count: usize,
    metrics: impl Fn(&[bool], &[f64]) -> Vec<f64>,
) -> Vec<(f64, f64)> {
    let positives: Vec<usize> = (0..labels.len()).filter(|&i| labels[i]).collect();
    let negatives: Vec<usize> = (0..labels.len()).filter(|&i| !labels[i]).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); count];
    // Thousands of resamples of a large test set take a while: a bar on a terminal.
    let progress = ortl_cli::progress::bar(resamples as u64, "bootstrap");
    for _ in 0..resamples {
        progress.inc(1);
        let pick = |group: &[usize], rng: &mut ChaCha8Rng| -> Vec<usize> {
            (0..group.len())
                .map(|_| group[rng.random_range(0..group.len())])
                .collect()
        };
        let mut idx = pick(&positives, &mut rng);
        idx.extend(pick(&negatives, &mut rng));
        let l: Vec<bool> = idx.iter().map(|&i| labels[i]).collect();
        let s: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
        for (k, value) in metrics(&l, &s).into_iter().enumerate() {
            if value.is_finite() {
                samples[k].push(value);
            }
        }
    }
    progress.finish_and_clear();
    samples
        .iter_mut()
        .map(|values| percentile_interval(values))
        .collect()
}

/// Every metric with its 95 % interval: the proportions at `threshold` by `proportion`
/// (Wilson or Clopper–Pearson), everything else (AUC, F1, MCC, metrics at a threshold chosen
/// on the data) by a stratified bootstrap of `bootstrap` resamples.
pub fn binary(
    labels: &[bool],
    scores: &[f64],
    threshold: f64,
    bootstrap: usize,
    proportion: ProportionMethod,
    seed: u64,
    names: (&str, &str),
) -> BinaryEvaluation {
    let point = all_metrics(labels, scores, threshold);
    let intervals = stratified_bootstrap(labels, scores, (bootstrap, seed), point.len(), |l, s| {
        all_metrics(l, s, threshold)
            .into_iter()
            .map(|(_, value, _)| value)
            .collect()
    });
    let mut rows = point
        .into_iter()
        .zip(intervals)
        .map(|((metric, value, threshold), ci)| {
            MetricRow::new(metric, value, ci, threshold, Interval::Bootstrap)
        })
        .collect::<Vec<_>>();
    let confusion = Confusion::at(labels, scores, threshold);
    proportion_intervals(&mut rows, &confusion, proportion);
    let positives = labels.iter().filter(|&&l| l).count();
    let youden = youden_threshold(labels, scores);
    BinaryEvaluation {
        positive: names.0.into(),
        negative: names.1.into(),
        n: labels.len(),
        positives,
        threshold,
        threshold_source: None,
        youden_threshold: youden,
        confusion,
        confusion_at_youden: (!youden.is_nan()).then(|| Confusion::at(labels, scores, youden)),
        rows,
    }
}

/// A binary evaluation of two-class predictions: the positive class by name (default: label
/// 1, the tutorial's TB), its probability renormalised over both (sigmoid heads need not
/// sum to one). Returns the evaluation with the labels and scores it used.
pub fn binary_predictions(
    preds: &ortl_manifest::Predictions,
    positive: Option<&str>,
    threshold: f64,
    bootstrap: usize,
    proportion: ProportionMethod,
    seed: u64,
) -> Result<(BinaryEvaluation, Vec<bool>, Vec<f64>), String> {
    let classes = &preds.classes;
    let positive = match positive {
        Some(name) => classes
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("--positive '{name}' is not one of {}", classes.join(", ")))?,
        None => 1,
    };
    let labels: Vec<bool> = preds.labels.iter().map(|&l| l == positive).collect();
    let scores: Vec<f64> = preds
        .probabilities
        .iter()
        .map(|p| p[positive] / (p[0] + p[1]).max(1e-12))
        .collect();
    let eval = binary(
        &labels,
        &scores,
        threshold,
        bootstrap,
        proportion,
        seed,
        (&classes[positive], &classes[1 - positive]),
    );
    Ok((eval, labels, scores))
}

/// The 2.5th and 97.5th percentiles (linear interpolation); NaN for no values.
pub(crate) fn percentile_interval(values: &mut [f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (values.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
    };
    (at(0.025), at(0.975))
}

/// Multi-class summary: C×C confusion (rows true, columns predicted), per-class
/// one-vs-rest metrics, macro and support-weighted averages, multi-class MCC (Gorodkin's
/// R_K) and macro one-vs-rest AUC.
#[derive(Clone, Debug, Serialize)]
pub struct MulticlassEvaluation {
    pub classes: Vec<String>,
    pub confusion: Vec<Vec<usize>>,
    pub accuracy: f64,
    pub mcc: f64,
    pub macro_auc: f64,
    pub per_class: Vec<(String, f64, f64, f64, f64, usize)>,
    pub macro_f1: f64,
    pub weighted_f1: f64,
}

pub fn multiclass(
    classes: &[String],
    labels: &[usize],
    probabilities: &[Vec<f64>],
) -> MulticlassEvaluation {
    let k = classes.len();
    let predicted: Vec<usize> = probabilities
        .iter()
        .map(|p| {
            p.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i)
        })
        .collect();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&t, &p) in labels.iter().zip(&predicted) {
        confusion[t][p] += 1;
    }
    let n = labels.len() as f64;
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let t_k: Vec<f64> = (0..k)
        .map(|i| confusion[i].iter().sum::<usize>() as f64)
        .collect();
    let p_k: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| confusion[i][j]).sum::<usize>() as f64)
        .collect();
    let c = correct as f64;
    let cov_tp = c * n - t_k.iter().zip(&p_k).map(|(t, p)| t * p).sum::<f64>();
    let denom = ((n * n - p_k.iter().map(|p| p * p).sum::<f64>())
        * (n * n - t_k.iter().map(|t| t * t).sum::<f64>()))
    .sqrt();
    let mcc = if denom == 0.0 {
        f64::NAN
    } else {
        cov_tp / denom
    };
    let mut per_class = Vec::new();
    let mut aucs = Vec::new();
    for (ci, class) in classes.iter().enumerate() {
        let is = |i: usize| labels[i] == ci;
        let tp = (0..labels.len())
            .filter(|&i| is(i) && predicted[i] == ci)
            .count();
        let fp = (0..labels.len())
            .filter(|&i| !is(i) && predicted[i] == ci)
            .count();
        let fn_ = (0..labels.len())
            .filter(|&i| is(i) && predicted[i] != ci)
            .count();
        let tn = labels.len() - tp - fp - fn_;
        let m = threshold_metrics(&Confusion { tp, fp, fn_, tn });
        let get = |metric: Metric| {
            m.iter()
                .find(|(n, _)| *n == metric)
                .map_or(f64::NAN, |x| x.1)
        };
        let bin: Vec<bool> = labels.iter().map(|&l| l == ci).collect();
        let scores: Vec<f64> = probabilities.iter().map(|p| p[ci]).collect();
        let auc = roc_auc(&bin, &scores);
        aucs.push(auc);
        per_class.push((
            class.clone(),
            get(Metric::Precision),
            get(Metric::Sensitivity),
            get(Metric::F1),
            auc,
            tp + fn_,
        ));
    }
    let finite_mean = |values: Vec<f64>| {
        let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let macro_f1 = finite_mean(per_class.iter().map(|r| r.3).collect());
    let weighted_f1 = per_class
        .iter()
        .map(|r| {
            if r.3.is_finite() {
                r.3 * r.5 as f64
            } else {
                0.0
            }
        })
        .sum::<f64>()
        / n;
    MulticlassEvaluation {
        classes: classes.to_vec(),
        confusion,
        accuracy: c / n,
        mcc,
        macro_auc: finite_mean(aucs),
        per_class,
        macro_f1,
        weighted_f1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<bool>, Vec<f64>) {
        let labels: Vec<bool> = (0..60).map(|i| i % 3 == 0).collect();
        let scores: Vec<f64> = (0..60)
            .map(|i| {
                if i % 3 == 0 {
                    0.4 + (i % 7) as f64 * 0.08
                } else {
                    0.1 + (i % 5) as f64 * 0.1
                }
            })
            .collect();
        (labels, scores)
    }

    #[test]
    fn bootstrap_intervals_contain_the_estimate_and_are_reproducible() {
        let (labels, scores) = sample();
        let a = binary(
            &labels,
            &scores,
            0.5,
            300,
            ProportionMethod::Wilson,
            7,
            ("tb", "normal"),
        );
        let b = binary(
            &labels,
            &scores,
            0.5,
            300,
            ProportionMethod::Wilson,
            7,
            ("tb", "normal"),
        );
        assert_eq!(a.rows, b.rows);
        for row in &a.rows {
            if row.value.is_finite() && row.ci_low.is_finite() {
                assert!(
                    row.ci_low <= row.value + 1e-9 && row.value <= row.ci_high + 1e-9,
                    "{row:?}"
                );
            }
        }
        let c = binary(
            &labels,
            &scores,
            0.5,
            300,
            ProportionMethod::Wilson,
            8,
            ("tb", "normal"),
        );
        assert_ne!(a.rows, c.rows, "another seed, other intervals");
    }

    #[test]
    fn multiclass_averages_and_mcc() {
        // 3 classes, 6 samples; predictions: two errors.
        let classes: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let labels = [0, 0, 1, 1, 2, 2];
        let p = |c: usize| {
            let mut v = vec![0.1; 3];
            v[c] = 0.8;
            v
        };
        let probs = vec![p(0), p(1), p(1), p(1), p(2), p(0)];
        let m = multiclass(&classes, &labels, &probs);
        assert_eq!(
            m.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]
        );
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // F1 per class: a 0.5, b 0.8, c 2/3 → macro 0.6556.
        assert!((m.macro_f1 - (0.5 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // Gorodkin R_K by hand: c=4, s=6, t=(2,2,2), p=(2,3,1), Σt·p = 12:
        // (4·6 − 12)/√((36 − 14)(36 − 12)).
        assert!((m.mcc - 12.0 / (22.0f64 * 24.0).sqrt()).abs() < 1e-12);
    }
}
