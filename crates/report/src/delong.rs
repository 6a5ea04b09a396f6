//! DeLong's variance of ROC AUC (DeLong, DeLong & Clarke-Pearson 1988): one AUC's
//! interval (each finding of a multi-label report), and differences between runs: for runs
//! scored on the same images the two AUCs are correlated and the paired form subtracts their
//! covariance; runs on different images are compared as independent. Placements are
//! computed by sorting, so each costs O(n log n).

use statrs::distribution::{ContinuousCDF, Normal};

/// One run's positive-class scores on its images.
#[derive(Clone, Debug, Default)]
pub struct Scored {
    pub paths: Vec<String>,
    pub labels: Vec<bool>,
    pub scores: Vec<f64>,
}

/// A row of auc_differences.csv: run a's AUC minus run b's.
#[derive(Clone, Debug)]
pub struct AucDifference {
    pub a: String,
    pub b: String,
    /// Whether both runs scored the same images (the paired test).
    pub paired: bool,
    pub auc_a: f64,
    pub auc_b: f64,
    pub difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
}

/// Mann–Whitney placements in image order: for each positive, the share of negatives it
/// outranks (ties half); for each negative, the share of positives that outrank it.
fn placements(labels: &[bool], scores: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let sorted = |positive: bool| {
        let mut v: Vec<f64> = labels
            .iter()
            .zip(scores)
            .filter(|(l, _)| **l == positive)
            .map(|(_, s)| *s)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (positives, negatives) = (sorted(true), sorted(false));
    // (# strictly below, # equal) of `x` in a sorted list.
    let below_equal = |list: &[f64], x: f64| {
        let below = list.partition_point(|&v| v < x);
        (below, list.partition_point(|&v| v <= x) - below)
    };
    let (mut v10, mut v01) = (Vec::new(), Vec::new());
    for (&positive, &x) in labels.iter().zip(scores) {
        if positive {
            let (below, equal) = below_equal(&negatives, x);
            v10.push((below as f64 + 0.5 * equal as f64) / negatives.len() as f64);
        } else {
            let (below, equal) = below_equal(&positives, x);
            let above = positives.len() - below - equal;
            v01.push((above as f64 + 0.5 * equal as f64) / positives.len() as f64);
        }
    }
    (v10, v01)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample covariance (divisor n − 1).
fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (a.len() as f64 - 1.0)
}

/// The variance of an AUC from its placements (DeLong's S10/m + S01/n).
fn auc_variance(v10: &[f64], v01: &[f64]) -> f64 {
    covariance(v10, v10) / v10.len() as f64 + covariance(v01, v01) / v01.len() as f64
}

/// z of a two-sided 95 % normal interval.
fn z95() -> f64 {
    Normal::standard().inverse_cdf(0.975)
}

/// One AUC's 95 % interval from DeLong's variance (normal approximation, clipped to
/// [0, 1]); NaN without two images of each class, where the variance is undefined, and
/// when the classes separate perfectly (AUC 0 or 1): DeLong's variance is then 0, and a
/// zero-width interval would claim a certainty a few dozen images cannot give.
pub fn auc_interval(labels: &[bool], scores: &[f64]) -> (f64, f64) {
    let positives = labels.iter().filter(|&&l| l).count();
    if positives < 2 || labels.len() - positives < 2 {
        return (f64::NAN, f64::NAN);
    }
    let (v10, v01) = placements(labels, scores);
    let variance = auc_variance(&v10, &v01).max(0.0);
    if variance == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let (auc, half) = (mean(&v10), z95() * variance.sqrt());
    ((auc - half).max(0.0), (auc + half).min(1.0))
}

/// Placements with the images ordered by path, so a paired covariance pairs the same
/// images; `None` when the run has fewer than two images of a class.
fn ordered(run: &Scored) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut order: Vec<usize> = (0..run.labels.len()).collect();
    order.sort_by(|&i, &j| run.paths[i].cmp(&run.paths[j]));
    let labels: Vec<bool> = order.iter().map(|&i| run.labels[i]).collect();
    let scores: Vec<f64> = order.iter().map(|&i| run.scores[i]).collect();
    let positives = labels.iter().filter(|&&l| l).count();
    if positives < 2 || labels.len() - positives < 2 {
        return None;
    }
    Some(placements(&labels, &scores))
}

/// The images of a run as (path, label), sorted: two runs scored the same images when
/// these are equal.
fn images(run: &Scored) -> Vec<(&str, bool)> {
    let mut key: Vec<(&str, bool)> = run
        .paths
        .iter()
        .map(String::as_str)
        .zip(run.labels.iter().copied())
        .collect();
    key.sort_unstable();
    key
}

/// Run `a`'s AUC minus run `b`'s with a 95 % interval and a two-sided p-value; `None` when
/// either run lacks two images of each class.
pub fn difference(a_name: &str, a: &Scored, b_name: &str, b: &Scored) -> Option<AucDifference> {
    let (a10, a01) = ordered(a)?;
    let (b10, b01) = ordered(b)?;
    let same_images = !a.paths.iter().all(String::is_empty) && images(a) == images(b);
    let (auc_a, auc_b) = (mean(&a10), mean(&b10));
    let var = if same_images {
        auc_variance(&a10, &a01) + auc_variance(&b10, &b01)
            - 2.0
                * (covariance(&a10, &b10) / a10.len() as f64
                    + covariance(&a01, &b01) / a01.len() as f64)
    } else {
        auc_variance(&a10, &a01) + auc_variance(&b10, &b01)
    };
    let difference = auc_a - auc_b;
    let normal = Normal::standard();
    let z = z95();
    let se = var.max(0.0).sqrt();
    let p_value = if se == 0.0 {
        if difference == 0.0 { 1.0 } else { 0.0 }
    } else {
        2.0 * (1.0 - normal.cdf((difference / se).abs()))
    };
    Some(AucDifference {
        a: a_name.into(),
        b: b_name.into(),
        paired: same_images,
        auc_a,
        auc_b,
        difference,
        ci_low: difference - z * se,
        ci_high: difference + z * se,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 30 images, a third positive; the two runs' scores as the reference script wrote them.
    fn runs() -> (Scored, Scored) {
        let labels: Vec<bool> = (0..30).map(|i| i % 3 == 0).collect();
        let paths: Vec<String> = (0..30).map(|i| format!("img{i:02}.png")).collect();
        let a = (0..30)
            .map(|i| f64::from((i * 7) % 11) / 10.0 + if i % 3 == 0 { 0.4 } else { 0.0 })
            .collect();
        let b = (0..30)
            .map(|i| f64::from((i * 5) % 13) / 12.0 + if i % 3 == 0 { 0.2 } else { 0.0 })
            .collect();
        (
            Scored {
                paths: paths.clone(),
                labels: labels.clone(),
                scores: a,
            },
            Scored {
                paths,
                labels,
                scores: b,
            },
        )
    }

    /// An independent O(n²) numpy implementation of DeLong's test (placements from the
    /// pairwise kernel, covariances with np.cov), computed once (2026-12-01) and stored.
    #[test]
    fn paired_and_unpaired_differences_match_the_reference() {
        let (a, b) = runs();
        let d = difference("a", &a, "b", &b).unwrap();
        assert!(d.paired);
        for (got, expected) in [
            (d.auc_a, 0.835),
            (d.auc_b, 0.595),
            (d.difference, 0.24),
            (d.ci_low, 0.030_790_819_910),
            (d.ci_high, 0.449_209_180_090),
            (d.p_value, 0.024_549_039_945),
        ] {
            assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        }
        // The same scores under other image names: compared as independent runs.
        let mut other = b.clone();
        other.paths = (0..30).map(|i| format!("other{i:02}.png")).collect();
        let d = difference("a", &a, "b", &other).unwrap();
        assert!(!d.paired);
        for (got, expected) in [
            (d.ci_low, -0.025_840_268_485),
            (d.ci_high, 0.505_840_268_485),
            (d.p_value, 0.076_818_623_916),
        ] {
            assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        }
    }

    /// One AUC's interval against the same numpy implementation (run a's scores, computed
    /// 2026-12-07: placements from the pairwise kernel, np.var with ddof=1); clipped to
    /// [0, 1]; NaN without two images of each class, and for a perfect AUC (variance 0).
    #[test]
    fn one_auc_interval_matches_the_reference_and_needs_two_of_each_class() {
        let (a, _) = runs();
        let (low, high) = auc_interval(&a.labels, &a.scores);
        assert!((low - 0.685_243_386_986).abs() < 1e-9, "{low}");
        assert!((high - 0.984_756_613_014).abs() < 1e-9, "{high}");
        let separated = [0.1, 0.2, 0.3, 0.8, 0.9];
        let labels = [false, false, false, true, true];
        let (low, high) = auc_interval(&labels, &separated);
        assert!(
            low.is_nan() && high.is_nan(),
            "perfect separation: {low}–{high}"
        );
        let one_positive = [false, false, false, false, true];
        assert!(auc_interval(&one_positive, &separated).0.is_nan());
    }

    #[test]
    fn a_run_against_itself_differs_by_nothing_and_one_class_gives_none() {
        let (a, _) = runs();
        let d = difference("a", &a, "a", &a).unwrap();
        assert_eq!((d.difference, d.p_value), (0.0, 1.0));
        let mut one_class = a.clone();
        one_class.labels = vec![true; 30];
        assert!(difference("a", &a, "x", &one_class).is_none());
    }
}
