//! Binary classification metrics from labels (true = positive) and scores (probability of
//! the positive class). Zero denominators give NaN, never a misleading number.
//!
//! AUC is the Mann–Whitney statistic: the probability that a random positive outscores a
//! random negative, ties counting one half (exact, no curve interpolation). Average
//! precision is the step-wise sum Σ (Rₖ − Rₖ₋₁)·Pₖ over distinct thresholds, as
//! scikit-learn's `average_precision_score`.

use serde::Serialize;

pub mod metric;
pub use metric::{Metric, label};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Confusion {
    pub tn: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
    pub tp: usize,
}

impl Confusion {
    pub fn at(labels: &[bool], scores: &[f64], threshold: f64) -> Self {
        let mut c = Confusion::default();
        for (&y, &s) in labels.iter().zip(scores) {
            match (y, s >= threshold) {
                (true, true) => c.tp += 1,
                (true, false) => c.fn_ += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }

    fn n(&self) -> f64 {
        (self.tn + self.fp + self.fn_ + self.tp) as f64
    }

    /// True positive rate; NaN without positives.
    pub fn sensitivity(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// True negative rate; NaN without negatives.
    pub fn specificity(&self) -> f64 {
        ratio(self.tn, self.tn + self.fp)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Every threshold metric of a confusion matrix, in report order.
pub fn threshold_metrics(c: &Confusion) -> Vec<(Metric, f64)> {
    let (sensitivity, specificity) = (c.sensitivity(), c.specificity());
    let precision = ratio(c.tp, c.tp + c.fp);
    let npv = ratio(c.tn, c.tn + c.fn_);
    let accuracy = ratio(c.tp + c.tn, c.tp + c.tn + c.fp + c.fn_);
    let f1 = if precision.is_nan() || sensitivity.is_nan() || precision + sensitivity == 0.0 {
        // 0 when there were positives and none was found; without positives F1 (a mean
        // with recall) is undefined, however many false alarms.
        if c.tp == 0 && c.fn_ > 0 {
            0.0
        } else {
            f64::NAN
        }
    } else {
        2.0 * precision * sensitivity / (precision + sensitivity)
    };
    let (tp, tn, fp, fn_) = (c.tp as f64, c.tn as f64, c.fp as f64, c.fn_ as f64);
    let denom = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
    let mcc = if denom == 0.0 {
        f64::NAN
    } else {
        (tp * tn - fp * fn_) / denom
    };
    let n = c.n();
    let expected = ((tp + fp) * (tp + fn_) + (tn + fn_) * (tn + fp)) / (n * n);
    // With one true class the chance agreement equals the accuracy, so kappa would be 0
    // whatever the predictions: undefined.
    let kappa = if n == 0.0 || expected == 1.0 || tp + fn_ == 0.0 || tn + fp == 0.0 {
        f64::NAN
    } else {
        (accuracy - expected) / (1.0 - expected)
    };
    vec![
        (Metric::Sensitivity, sensitivity),
        (Metric::Specificity, specificity),
        (Metric::Accuracy, accuracy),
        (Metric::ErrorRate, 1.0 - accuracy),
        (Metric::Precision, precision),
        (Metric::Npv, npv),
        (Metric::F1, f1),
        (Metric::Mcc, mcc),
        (Metric::BalancedAccuracy, (sensitivity + specificity) / 2.0),
        (Metric::CohenKappa, kappa),
    ]
}

/// Mann–Whitney AUC with ties counted one half; NaN without both classes.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> f64 {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = labels.iter().filter(|&&y| y).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    // Sum of positive ranks, ties sharing their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let average_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += average_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// ROC points (false positive rate, true positive rate, threshold), from (0,0) to (1,1).
pub fn roc_curve(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64, f64)> {
    // One sort, then counts accumulated down the scores: O(n log n), as the bootstrap
    // recomputes it for every resample.
    let mut scored: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut points = vec![(0.0, 0.0, f64::INFINITY)];
    for (k, &(score, positive)) in scored.iter().enumerate() {
        if positive {
            tp += 1;
        } else {
            fp += 1;
        }
        if scored.get(k + 1).is_none_or(|next| next.0 != score) {
            points.push((ratio(fp, negatives), ratio(tp, positives), score));
        }
    }
    points
}

/// The ROC curve's pointwise 95 % band: (false positive rate, low, high true positive
/// rate) on a grid of 101 rates, from `resamples` stratified bootstrap resamples (positives
/// and negatives resampled apart, seeded); empty when either class is missing or
/// `resamples` is 0. Each resample's curve is built by one sort, so a band over thousands
/// of images costs seconds, not minutes.
pub fn roc_band(
    labels: &[bool],
    scores: &[f64],
    resamples: usize,
    seed: u64,
) -> Vec<(f64, f64, f64)> {
    use rand::{Rng, SeedableRng};
    let positives: Vec<f64> = labels
        .iter()
        .zip(scores)
        .filter(|p| *p.0)
        .map(|p| *p.1)
        .collect();
    let negatives: Vec<f64> = labels
        .iter()
        .zip(scores)
        .filter(|p| !*p.0)
        .map(|p| *p.1)
        .collect();
    if positives.is_empty() || negatives.is_empty() || resamples == 0 {
        return Vec::new();
    }
    const GRID: usize = 101;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut tprs: Vec<Vec<f64>> = (0..GRID).map(|_| Vec::with_capacity(resamples)).collect();
    for _ in 0..resamples {
        let mut draw = |group: &[f64]| -> Vec<f64> {
            (0..group.len())
                .map(|_| group[rng.random_range(0..group.len())])
                .collect()
        };
        let (pos, neg) = (draw(&positives), draw(&negatives));
        let labels: Vec<bool> = pos
            .iter()
            .map(|_| true)
            .chain(neg.iter().map(|_| false))
            .collect();
        let scores: Vec<f64> = pos.iter().chain(&neg).copied().collect();
        let curve: Vec<(f64, f64)> = roc_curve(&labels, &scores)
            .into_iter()
            .map(|(x, y, _)| (x, y))
            .collect();
        // Highest true positive rate reached at or below each grid rate.
        let mut at = 0;
        for (g, slot) in tprs.iter_mut().enumerate() {
            let x = g as f64 / (GRID - 1) as f64;
            while at + 1 < curve.len() && curve[at + 1].0 <= x + 1e-12 {
                at += 1;
            }
            slot.push(curve[at].1);
        }
    }
    tprs.into_iter()
        .enumerate()
        .map(|(g, mut values)| {
            values.sort_by(f64::total_cmp);
            let pick = |q: f64| {
                values[((q * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)]
            };
            (g as f64 / (GRID - 1) as f64, pick(0.025), pick(0.975))
        })
        .collect()
}

/// Precision–recall points (recall, precision, threshold) at every distinct score, highest
/// threshold first. One sort, then counts accumulated down the scores (as [`roc_curve`]):
/// O(n log n), since the bootstrap recomputes it (through average precision) per resample.
pub fn pr_curve(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64, f64)> {
    let mut scored: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = labels.iter().filter(|&&l| l).count();
    let (mut tp, mut predicted) = (0usize, 0usize);
    let mut points = Vec::new();
    for (k, &(score, positive)) in scored.iter().enumerate() {
        predicted += 1;
        tp += usize::from(positive);
        if scored.get(k + 1).is_none_or(|next| next.0 != score) {
            points.push((ratio(tp, positives), ratio(tp, predicted), score));
        }
    }
    points
}

pub fn average_precision(labels: &[bool], scores: &[f64]) -> f64 {
    if !labels.iter().any(|&y| y) {
        return f64::NAN;
    }
    let mut previous_recall = 0.0;
    let mut ap = 0.0;
    for (recall, precision, _) in pr_curve(labels, scores) {
        ap += (recall - previous_recall) * precision;
        previous_recall = recall;
    }
    ap
}

pub fn brier(labels: &[bool], scores: &[f64]) -> f64 {
    let n = labels.len() as f64;
    labels
        .iter()
        .zip(scores)
        .map(|(&y, &s)| (s - f64::from(u8::from(y))).powi(2))
        .sum::<f64>()
        / n
}

/// Binary log loss with probabilities clipped to [1e-15, 1 − 1e-15] (scikit-learn's).
pub fn log_loss(labels: &[bool], scores: &[f64]) -> f64 {
    let n = labels.len() as f64;
    labels
        .iter()
        .zip(scores)
        .map(|(&y, &s)| {
            let p = s.clamp(1e-15, 1.0 - 1e-15);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum::<f64>()
        / n
}

/// The threshold maximising sensitivity + specificity − 1 (Youden's J); NaN without both
/// classes, where J is undefined.
pub fn youden_threshold(labels: &[bool], scores: &[f64]) -> f64 {
    if !both_classes(labels) {
        return f64::NAN;
    }
    roc_curve(labels, scores)
        .into_iter()
        .skip(1)
        .max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))
        .map_or(0.5, |(_, _, t)| t)
}

/// Whether both classes are present: the ROC curve's rates need both.
fn both_classes(labels: &[bool]) -> bool {
    labels.contains(&true) && labels.contains(&false)
}

/// Highest sensitivity with specificity ≥ `min_specificity`; NaN without both classes (the
/// curve's (0, 0) corner would otherwise read as sensitivity 0).
pub fn sensitivity_at_specificity(labels: &[bool], scores: &[f64], min_specificity: f64) -> f64 {
    if !both_classes(labels) {
        return f64::NAN;
    }
    roc_curve(labels, scores)
        .into_iter()
        .filter(|(fpr, _, _)| 1.0 - fpr >= min_specificity)
        .map(|(_, tpr, _)| tpr)
        .fold(f64::NAN, f64::max)
}

/// Highest specificity with sensitivity ≥ `min_sensitivity`; NaN without both classes.
pub fn specificity_at_sensitivity(labels: &[bool], scores: &[f64], min_sensitivity: f64) -> f64 {
    if !both_classes(labels) {
        return f64::NAN;
    }
    roc_curve(labels, scores)
        .into_iter()
        .filter(|(_, tpr, _)| *tpr >= min_sensitivity)
        .map(|(fpr, _, _)| 1.0 - fpr)
        .fold(f64::NAN, f64::max)
}

/// How a decision threshold is chosen from labelled (validation) scores: `youden`
/// (maximum sensitivity + specificity − 1), `sensitivity=S` (the highest threshold that
/// keeps sensitivity ≥ S, so specificity is as high as that allows), `specificity=S` (the
/// lowest threshold that keeps specificity ≥ S), or a fixed number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdRule {
    Youden,
    Sensitivity(f64),
    Specificity(f64),
    Fixed(f64),
}

impl std::fmt::Display for ThresholdRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThresholdRule::Youden => f.write_str("youden"),
            ThresholdRule::Sensitivity(s) => write!(f, "sensitivity={s}"),
            ThresholdRule::Specificity(s) => write!(f, "specificity={s}"),
            ThresholdRule::Fixed(t) => write!(f, "{t}"),
        }
    }
}

impl std::str::FromStr for ThresholdRule {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let fraction = |value: &str| {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| format!("'{text}': {value} is not a number in [0, 1]"))
        };
        match text.split_once('=') {
            None if text == "youden" => Ok(ThresholdRule::Youden),
            None => fraction(text).map(ThresholdRule::Fixed).map_err(|_| {
                format!(
                    "'{text}': use youden, sensitivity=S, specificity=S or a threshold in [0, 1]"
                )
            }),
            Some(("sensitivity", value)) => fraction(value).map(ThresholdRule::Sensitivity),
            Some(("specificity", value)) => fraction(value).map(ThresholdRule::Specificity),
            Some((other, _)) => Err(format!(
                "'{text}': unknown rule '{other}'; use youden, sensitivity=S, specificity=S or a threshold in [0, 1]"
            )),
        }
    }
}

impl ThresholdRule {
    /// The threshold (predict positive at score ≥ threshold) this rule picks on `labels`
    /// and `scores`; NaN when the rule needs both classes and they are not both present.
    pub fn choose(self, labels: &[bool], scores: &[f64]) -> f64 {
        match self {
            ThresholdRule::Fixed(t) => t,
            _ if !both_classes(labels) => f64::NAN,
            ThresholdRule::Youden => youden_threshold(labels, scores),
            // The curve runs from the highest threshold down: the first point reaching the
            // target sensitivity has the fewest false positives among those that do.
            ThresholdRule::Sensitivity(target) => roc_curve(labels, scores)
                .into_iter()
                .skip(1)
                .find(|(_, tpr, _)| *tpr >= target)
                .map_or(f64::NAN, |(_, _, t)| t),
            ThresholdRule::Specificity(target) => roc_curve(labels, scores)
                .into_iter()
                .skip(1)
                .take_while(|(fpr, _, _)| 1.0 - fpr >= target)
                .last()
                .map_or(f64::INFINITY, |(_, _, t)| t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_rules_parse_display_and_pick_the_documented_point() {
        for text in ["youden", "sensitivity=0.9", "specificity=0.95", "0.3"] {
            assert_eq!(text.parse::<ThresholdRule>().unwrap().to_string(), text);
        }
        for bad in ["sensitivity=1.5", "recall=0.9", "high"] {
            assert!(bad.parse::<ThresholdRule>().is_err(), "{bad}");
        }
        // Positives score 0.9, 0.8, 0.4; negatives 0.7, 0.3, 0.2, 0.1.
        let labels = [true, true, false, true, false, false, false];
        let scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.1];
        let pick = |rule: &str| {
            rule.parse::<ThresholdRule>()
                .unwrap()
                .choose(&labels, &scores)
        };
        // Sensitivity 2/3 first holds at 0.8 (specificity 1); all positives need 0.4.
        assert_eq!(pick("sensitivity=0.6"), 0.8);
        assert_eq!(pick("sensitivity=1"), 0.4);
        // Specificity 1 holds down to 0.8; 0.75 allows one of four negatives (0.7): down to 0.4.
        assert_eq!(pick("specificity=1"), 0.8);
        assert_eq!(pick("specificity=0.75"), 0.4);
        // J: 0.8 → 2/3 + 1 − 1 = 0.667; 0.4 → 1 + 0.75 − 1 = 0.75.
        assert_eq!(pick("youden"), 0.4);
        assert_eq!(pick("0.5"), 0.5);
        assert!(
            ThresholdRule::Youden
                .choose(&[true, true], &[0.2, 0.3])
                .is_nan()
        );
    }

    /// The swept curve equals the definition (a confusion matrix at every distinct score,
    /// predicting positive at score ≥ threshold), ties and all.
    #[test]
    fn pr_curve_equals_the_confusion_matrix_at_every_distinct_score() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let labels: Vec<bool> = (0..300).map(|_| rng.random_bool(0.3)).collect();
        // Two decimals: many ties, as thresholded or rounded model outputs have.
        let scores: Vec<f64> = labels
            .iter()
            .map(|&y| {
                ((rng.random::<f64>() * 0.7 + if y { 0.3 } else { 0.0 }) * 100.0).round() / 100.0
            })
            .collect();
        let mut thresholds = scores.clone();
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        let expected: Vec<(f64, f64, f64)> = thresholds
            .iter()
            .map(|&t| {
                let c = Confusion::at(&labels, &scores, t);
                (ratio(c.tp, c.tp + c.fn_), ratio(c.tp, c.tp + c.fp), t)
            })
            .collect();
        let curve = pr_curve(&labels, &scores);
        assert!(thresholds.len() < 100, "the data has ties");
        assert_eq!(curve.len(), expected.len());
        for (got, want) in curve.iter().zip(&expected) {
            assert!(
                (got.0 - want.0).abs() < 1e-12 && (got.1 - want.1).abs() < 1e-12 && got.2 == want.2,
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn the_roc_band_holds_the_curve_and_narrows_with_more_images() {
        let make = |n: usize| -> (Vec<bool>, Vec<f64>) {
            let labels: Vec<bool> = (0..n).map(|i| i % 2 == 1).collect();
            let scores = (0..n)
                .map(|i| {
                    if i % 2 == 1 {
                        0.3 + 0.6 * ((i * 37 % n) as f64 / n as f64)
                    } else {
                        0.7 * ((i * 53 % n) as f64 / n as f64)
                    }
                })
                .collect();
            (labels, scores)
        };
        let width = |n: usize| {
            let (labels, scores) = make(n);
            let band = roc_band(&labels, &scores, 200, 1);
            assert_eq!(band.len(), 101);
            assert!(
                band.iter()
                    .all(|&(_, lo, hi)| (0.0..=1.0).contains(&lo) && lo <= hi && hi <= 1.0)
            );
            // The curve itself lies inside its band at every grid rate.
            let curve = roc_curve(&labels, &scores);
            for &(x, lo, hi) in &band {
                let tpr = curve
                    .iter()
                    .filter(|p| p.0 <= x + 1e-12)
                    .map(|p| p.1)
                    .fold(0.0, f64::max);
                assert!(
                    lo - 1e-9 <= tpr && tpr <= hi + 1e-9,
                    "n {n} fpr {x}: {tpr} outside [{lo}, {hi}]"
                );
            }
            band.iter().map(|b| b.2 - b.1).sum::<f64>() / band.len() as f64
        };
        assert!(width(400) < 0.6 * width(40));
        assert!(
            roc_band(&[true, true], &[0.1, 0.2], 50, 1).is_empty(),
            "one class: no band"
        );
    }

    fn get(metrics: &[(Metric, f64)], metric: Metric) -> f64 {
        metrics.iter().find(|(m, _)| *m == metric).unwrap().1
    }

    #[test]
    fn hand_worked_confusion_matrix() {
        // TP 40, FN 10, FP 5, TN 45 (worked by hand):
        // sens 0.8, spec 0.9, acc 0.85, prec 40/45, npv 45/55, F1 = 80/95,
        // MCC = (1800 − 50)/√(45·50·50·55) = 1750/2487.468…, kappa = (0.85 − 0.5)/0.5 = 0.7.
        let c = Confusion {
            tp: 40,
            fn_: 10,
            fp: 5,
            tn: 45,
        };
        let m = threshold_metrics(&c);
        assert!((get(&m, Metric::Sensitivity) - 0.8).abs() < 1e-12);
        assert!((get(&m, Metric::Specificity) - 0.9).abs() < 1e-12);
        assert!((get(&m, Metric::Accuracy) - 0.85).abs() < 1e-12);
        assert!((get(&m, Metric::ErrorRate) - 0.15).abs() < 1e-12);
        assert!((get(&m, Metric::Precision) - 40.0 / 45.0).abs() < 1e-12);
        assert!((get(&m, Metric::Npv) - 45.0 / 55.0).abs() < 1e-12);
        assert!((get(&m, Metric::F1) - 80.0 / 95.0).abs() < 1e-12);
        assert!(
            (get(&m, Metric::Mcc) - 1750.0 / (45.0f64 * 50.0 * 50.0 * 55.0).sqrt()).abs() < 1e-12
        );
        assert!((get(&m, Metric::CohenKappa) - 0.7).abs() < 1e-12);
        assert!((get(&m, Metric::BalancedAccuracy) - 0.85).abs() < 1e-12);
    }

    #[test]
    fn degenerate_cases_are_nan_not_numbers() {
        let only_negatives = Confusion {
            tn: 10,
            ..Default::default()
        };
        let m = threshold_metrics(&only_negatives);
        assert!(get(&m, Metric::Sensitivity).is_nan());
        assert!(get(&m, Metric::Mcc).is_nan());
        assert!(get(&m, Metric::F1).is_nan());
        let false_alarms = Confusion {
            tn: 10,
            fp: 3,
            ..Default::default()
        };
        assert!(get(&threshold_metrics(&false_alarms), Metric::F1).is_nan());
        let all_missed = Confusion {
            tn: 10,
            fn_: 3,
            ..Default::default()
        };
        assert_eq!(get(&threshold_metrics(&all_missed), Metric::F1), 0.0);
        assert!(roc_auc(&[false, false], &[0.1, 0.9]).is_nan());
        // One class: no Youden threshold, no rate at a level of the other's.
        for labels in [[false, false], [true, true]] {
            assert!(youden_threshold(&labels, &[0.1, 0.9]).is_nan());
            assert!(sensitivity_at_specificity(&labels, &[0.1, 0.9], 0.9).is_nan());
            assert!(specificity_at_sensitivity(&labels, &[0.1, 0.9], 0.9).is_nan());
        }
        // Kappa of one true class would be 0 however good the predictions.
        let mostly_right = Confusion {
            tn: 9,
            fp: 1,
            ..Default::default()
        };
        assert!(get(&threshold_metrics(&mostly_right), Metric::CohenKappa).is_nan());
        // All predictions equal: AUC is exactly one half.
        assert_eq!(roc_auc(&[true, false, true, false], &[0.5; 4]), 0.5);
    }

    #[test]
    fn auc_with_ties_matches_mann_whitney() {
        // scikit-learn: roc_auc_score([0,0,1,1,1], [0.1,0.4,0.4,0.8,0.9]) = 0.91666…
        // (pairs: 6 wins + one tie of 6 → (5 + 0.5)/6).
        let labels = [false, false, true, true, true];
        let scores = [0.1, 0.4, 0.4, 0.8, 0.9];
        assert!((roc_auc(&labels, &scores) - 5.5 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn average_precision_brier_and_log_loss() {
        // scikit-learn average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.8333…
        let labels = [false, false, true, true];
        let scores = [0.1, 0.4, 0.35, 0.8];
        assert!((average_precision(&labels, &scores) - 0.8333333333333333).abs() < 1e-12);
        assert!((brier(&labels, &scores) - (0.01 + 0.16 + 0.4225 + 0.04) / 4.0).abs() < 1e-12);
        let expected = -((0.9f64).ln() + (0.6f64).ln() + (0.35f64).ln() + (0.8f64).ln()) / 4.0;
        assert!((log_loss(&labels, &scores) - expected).abs() < 1e-12);
        assert_eq!(youden_threshold(&labels, &scores), 0.35);
        assert_eq!(sensitivity_at_specificity(&labels, &scores, 0.9), 0.5);
        assert_eq!(specificity_at_sensitivity(&labels, &scores, 1.0), 0.5);
    }
}
