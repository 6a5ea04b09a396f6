//! Confidence intervals for proportions (sensitivity, specificity, precision, NPV, accuracy
//! at a fixed threshold), where the bootstrap fails: at 0/n or n/n every resample gives the
//! same value and the "interval" collapses to a point. Wilson's score interval (the default;
//! Brown, Cai & DasGupta 2001) or the Clopper–Pearson "exact" interval (STARD reports often
//! ask for it), both at 95 %.

use serde::Serialize;
use statrs::distribution::{Beta, ContinuousCDF};

/// How a metric's interval was computed (the `interval` column of metrics.csv).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interval {
    /// No interval.
    #[default]
    None,
    /// Stratified bootstrap percentiles.
    Bootstrap,
    Wilson,
    ClopperPearson,
    /// DeLong's variance of an AUC, normal approximation.
    #[serde(rename = "delong")]
    DeLong,
    /// Student's t over folds or seeds.
    T,
}

impl Interval {
    /// The method's machine name, as in metrics.csv and metrics.json.
    pub fn id(self) -> &'static str {
        match self {
            Interval::None => "",
            Interval::Bootstrap => "bootstrap",
            Interval::Wilson => "wilson",
            Interval::ClopperPearson => "clopper-pearson",
            Interval::DeLong => "delong",
            Interval::T => "t",
        }
    }

    /// The method's name for people (HTML and Markdown tables).
    pub fn name(self) -> &'static str {
        match self {
            Interval::None => "",
            Interval::Bootstrap => "bootstrap",
            Interval::Wilson => "Wilson",
            Interval::ClopperPearson => "Clopper–Pearson",
            Interval::DeLong => "DeLong",
            Interval::T => "t",
        }
    }
}

/// The interval for proportions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProportionMethod {
    /// Wilson's score interval.
    #[default]
    Wilson,
    /// The Clopper–Pearson exact (conservative) interval.
    ClopperPearson,
}

/// z for a two-sided 95 % interval.
const Z: f64 = 1.959_963_984_540_054;

impl ProportionMethod {
    pub fn interval(self) -> Interval {
        match self {
            ProportionMethod::Wilson => Interval::Wilson,
            ProportionMethod::ClopperPearson => Interval::ClopperPearson,
        }
    }

    /// The 95 % interval of `k` successes in `n` trials (NaN for n = 0).
    pub fn bounds(self, k: usize, n: usize) -> (f64, f64) {
        if n == 0 || k > n {
            return (f64::NAN, f64::NAN);
        }
        let (k, n) = (k as f64, n as f64);
        match self {
            ProportionMethod::Wilson => {
                let p = k / n;
                let z2 = Z * Z;
                let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
                let half = Z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
                ((centre - half).max(0.0), (centre + half).min(1.0))
            }
            ProportionMethod::ClopperPearson => {
                let quantile = |a: f64, b: f64, q: f64| {
                    Beta::new(a, b).map_or(f64::NAN, |beta| beta.inverse_cdf(q))
                };
                let low = if k == 0.0 {
                    0.0
                } else {
                    quantile(k, n - k + 1.0, 0.025)
                };
                let high = if k == n {
                    1.0
                } else {
                    quantile(k + 1.0, n - k, 0.975)
                };
                (low, high)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// statsmodels 0.14 `proportion_confint(k, n, alpha=0.05, method='wilson' | 'beta')`,
    /// computed once (2026-12-01) and stored.
    /// (successes, trials, Wilson, Clopper–Pearson).
    type Case = (usize, usize, (f64, f64), (f64, f64));

    const REFERENCE: &[Case] = &[
        (20, 20, (0.8388748419, 1.0), (0.8315665290, 1.0)),
        (0, 20, (0.0, 0.1611251581), (0.0, 0.1684334710)),
        (
            7,
            10,
            (0.3967781475, 0.8922087326),
            (0.3475471499, 0.9332604888),
        ),
        (
            38,
            40,
            (0.8349612263, 0.9861793326),
            (0.8308031360, 0.9938863534),
        ),
        (
            1,
            3,
            (0.0614919447, 0.7923403992),
            (0.0084037587, 0.9057006759),
        ),
        (
            150,
            200,
            (0.6856590169, 0.8049183199),
            (0.6840371667, 0.8083928304),
        ),
    ];

    #[test]
    fn intervals_match_statsmodels() {
        for &(k, n, wilson, exact) in REFERENCE {
            for (method, expected) in [
                (ProportionMethod::Wilson, wilson),
                (ProportionMethod::ClopperPearson, exact),
            ] {
                let (low, high) = method.bounds(k, n);
                assert!(
                    (low - expected.0).abs() < 1e-8 && (high - expected.1).abs() < 1e-8,
                    "{method:?} {k}/{n}: ({low}, {high}) vs {expected:?}"
                );
            }
        }
        assert!(ProportionMethod::Wilson.bounds(0, 0).0.is_nan());
    }
}
