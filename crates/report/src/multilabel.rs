//! Multi-label predictions (a sigmoid per finding, `ortl_manifest::predictions::multilabel`):
//! per finding, its prevalence, ROC AUC with DeLong's interval, and sensitivity,
//! specificity, PPV, NPV and F1 at the file's threshold (present at p ≥ `t_<finding>`); the
//! macro- and micro-averaged AUC with bootstrap intervals over images; and how often
//! findings occur together. A finding's metrics count only the images where its label is
//! known (an empty `y_` cell is unknown, never negative).
//!
//! `metrics.csv` has one row per finding, then a `macro` and a `micro` row:
//!
//! | columns | finding rows | `macro` | `micro` |
//! |---|---|---|---|
//! | `scope` | `finding` | `macro` | `micro` |
//! | `finding` | its name | empty | empty |
//! | `n` | images with the finding known | findings averaged | known (image, finding) labels |
//! | `positives`, `prevalence` | of those, positive; positives / n | empty | as for a finding, over the labels |
//! | `threshold`, `tp`, `fp`, `fn`, `tn` | `t_<finding>`; the confusion at p ≥ t | empty | empty |
//! | `roc_auc` | DeLong interval | bootstrap over images | bootstrap over images |
//! | `sensitivity`, `specificity`, `precision` (PPV), `npv` | at t; Wilson or Clopper–Pearson | empty | empty |
//! | `f1` | at t; stratified bootstrap | empty | empty |
//!
//! Each metric `M` has the columns `M`, `M_ci_low`, `M_ci_high` and `M_interval` (`delong`,
//! `wilson`, `clopper-pearson`, `bootstrap`; empty without an interval). Undefined values (a
//! finding without positives or without negatives has no AUC) are empty cells, and `null` in
//! metrics.json. The macro average is the mean AUC over the findings that have both; the
//! others are listed, not averaged. `co_occurrence.csv`: `finding_a,finding_b,both_positive,
//! both_known,rate` for every ordered pair (symmetric; a = b gives the finding's positives,
//! known labels and prevalence).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::evaluate::{MetricRow, percentile_interval, proportion_intervals, stratified_bootstrap};
use crate::html::{Metrics, Report, html, markdown};
use crate::intervals::{Interval, ProportionMethod};
use crate::metrics::{Confusion, Metric, roc_auc, threshold_metrics};
use crate::provenance::{Notes, Run};
use crate::{plots, tables};
use ortl_manifest::predictions::multilabel::Predictions;

/// The metrics reported per finding at its threshold, in table order.
pub const AT_THRESHOLD: [Metric; 5] = [
    Metric::Sensitivity,
    Metric::Specificity,
    Metric::Precision,
    Metric::Npv,
    Metric::F1,
];

/// How intervals are computed.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Bootstrap resamples (F1, and the averages over images); 0: none.
    pub bootstrap: usize,
    pub seed: u64,
    /// The proportions' interval.
    pub proportion: ProportionMethod,
}

/// One finding over the images where its label is known.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub finding: String,
    /// Images with this finding's label known.
    pub n: usize,
    pub positives: usize,
    /// positives / n.
    pub prevalence: f64,
    /// The file's `t_<finding>`: present at p ≥ threshold.
    pub threshold: f64,
    pub confusion: Confusion,
    /// `roc_auc`, then [`AT_THRESHOLD`].
    pub metrics: Vec<MetricRow>,
}

impl Finding {
    /// The row of `metric` (`roc_auc` or one of [`AT_THRESHOLD`]).
    pub fn metric(&self, metric: Metric) -> &MetricRow {
        self.metrics
            .iter()
            .find(|row| row.metric == metric)
            .expect("every finding has every metric")
    }

    /// Why the AUC is undefined, for people; None when it is defined.
    pub fn undefined(&self) -> Option<String> {
        match (self.n, self.positives) {
            (0, _) => Some("no known labels".into()),
            (n, 0) => Some(format!("no positives among {n} known")),
            (n, p) if p == n => Some(format!("no negatives among {n} known")),
            _ => None,
        }
    }
}

/// Everything computed for multi-label predictions.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    /// Mean ROC AUC over [`Evaluation::averaged`], with a bootstrap interval over images.
    pub macro_auc: MetricRow,
    /// The findings with positives and negatives known: those macro_auc averages.
    pub averaged: Vec<String>,
    /// The findings whose AUC is undefined (no positives or no negatives known).
    pub undefined: Vec<String>,
    /// ROC AUC of every known (image, finding) label pooled, with a bootstrap interval over
    /// images.
    pub micro_auc: MetricRow,
    /// Known (image, finding) labels, and of them positive.
    pub labels: usize,
    pub positive_labels: usize,
    pub co_occurrence: CoOccurrence,
}

impl Evaluation {
    /// The findings without an AUC, each with why, as one list for people.
    pub fn why_undefined(&self) -> String {
        self.findings
            .iter()
            .filter_map(|f| f.undefined().map(|why| format!("{} ({why})", f.finding)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every finding's metrics, the averages and the co-occurrence table.
pub fn evaluate(preds: &Predictions, settings: Settings) -> Evaluation {
    let findings: Vec<Finding> = preds
        .findings
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (labels, scores) = preds.finding(i);
            finding(name, &labels, &scores, preds.thresholds[i], settings)
        })
        .collect();
    let (averaged, undefined): (Vec<usize>, Vec<usize>) =
        (0..findings.len()).partition(|&i| findings[i].undefined().is_none());
    let (scores, labels): (Vec<f64>, Vec<bool>) = (0..findings.len())
        .flat_map(|f| known(preds, f).map(|(p, y, _)| (p, y)))
        .unzip();
    let mean = |values: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = values.fold((0.0, 0), |(s, n), v| (s + v, n + 1));
        if n == 0 { f64::NAN } else { sum / n as f64 }
    };
    let macro_value = mean(
        &mut averaged
            .iter()
            .map(|&i| findings[i].metric(Metric::RocAuc).value),
    );
    let (macro_ci, micro_ci) = average_intervals(preds, &averaged, settings);
    let row = |metric: Metric, value: f64, ci: (f64, f64)| {
        MetricRow::new(metric, value, ci, None, Interval::Bootstrap)
    };
    let name = |i: &usize| findings[*i].finding.clone();
    Evaluation {
        macro_auc: row(Metric::MacroAuc, macro_value, macro_ci),
        micro_auc: row(Metric::MicroAuc, roc_auc(&labels, &scores), micro_ci),
        averaged: averaged.iter().map(name).collect(),
        undefined: undefined.iter().map(name).collect(),
        positive_labels: labels.iter().filter(|&&y| y).count(),
        labels: labels.len(),
        co_occurrence: co_occurrence(&preds.findings, &preds.targets),
        findings,
    }
}

/// One finding's AUC (DeLong's interval) and its metrics at `threshold`: the proportions
/// with `settings.proportion`'s interval, F1 with a stratified bootstrap.
fn finding(
    name: &str,
    labels: &[bool],
    scores: &[f64],
    threshold: f64,
    settings: Settings,
) -> Finding {
    let confusion = Confusion::at(labels, scores, threshold);
    let mut metrics = vec![MetricRow::new(
        Metric::RocAuc,
        roc_auc(labels, scores),
        crate::delong::auc_interval(labels, scores),
        None,
        Interval::DeLong,
    )];
    let at_threshold = threshold_metrics(&confusion);
    let f1 = |c: &Confusion| {
        threshold_metrics(c)
            .into_iter()
            .find(|(metric, _)| *metric == Metric::F1)
            .map_or(f64::NAN, |(_, v)| v)
    };
    let [(f1_low, f1_high)] = stratified_bootstrap(
        labels,
        scores,
        (settings.bootstrap, settings.seed),
        1,
        |l, s| vec![f1(&Confusion::at(l, s, threshold))],
    )[..] else {
        unreachable!("one metric, one interval")
    };
    for metric in AT_THRESHOLD {
        let value = at_threshold
            .iter()
            .find(|(m, _)| *m == metric)
            .map_or(f64::NAN, |(_, v)| *v);
        let ci = if metric == Metric::F1 {
            (f1_low, f1_high)
        } else {
            (f64::NAN, f64::NAN)
        };
        metrics.push(MetricRow::new(
            metric,
            value,
            ci,
            Some(threshold),
            Interval::Bootstrap,
        ));
    }
    proportion_intervals(&mut metrics, &confusion, settings.proportion);
    let positives = labels.iter().filter(|&&y| y).count();
    Finding {
        finding: name.into(),
        n: labels.len(),
        positives,
        prevalence: positives as f64 / labels.len() as f64,
        threshold,
        confusion,
        metrics,
    }
}

/// A finding's known labels as (probability, label, image).
fn known(preds: &Predictions, finding: usize) -> impl Iterator<Item = (f64, bool, usize)> + '_ {
    (0..preds.targets.len()).filter_map(move |image| {
        preds.targets[image][finding].map(|y| (preds.probabilities[image][finding], y, image))
    })
}

/// Known labels sorted by score, each with the image it belongs to: a bootstrap resample's
/// AUC is then one pass that counts each label as often as its image was drawn, where
/// resorting every resample would cost a sort of every label (NIH's test split pools some
/// 350,000).
struct Ranked(Vec<(f64, bool, usize)>);

impl Ranked {
    fn new(mut labels: Vec<(f64, bool, usize)>) -> Self {
        labels.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ranked(labels)
    }

    /// Mann–Whitney AUC (ties one half) with each label counted `draws[image]` times; NaN
    /// without both classes drawn.
    fn auc(&self, draws: &[u32]) -> f64 {
        let (mut wins, mut negatives_below, mut positives) = (0.0, 0.0, 0.0);
        let mut i = 0;
        while i < self.0.len() {
            let (mut pos, mut neg) = (0.0, 0.0);
            let mut j = i;
            while j < self.0.len() && self.0[j].0 == self.0[i].0 {
                let (_, y, image) = self.0[j];
                let w = f64::from(draws[image]);
                if y {
                    pos += w
                } else {
                    neg += w
                }
                j += 1;
            }
            wins += pos * (negatives_below + 0.5 * neg);
            negatives_below += neg;
            positives += pos;
            i = j;
        }
        if positives == 0.0 || negatives_below == 0.0 {
            f64::NAN
        } else {
            wins / (positives * negatives_below)
        }
    }
}

/// 95 % intervals of the macro AUC (over the `averaged` findings) and the micro AUC from
/// `settings.bootstrap` resamples of the images (with replacement, seeded). A resample where
/// an averaged finding lost its positives or negatives has no macro value and is left out.
fn average_intervals(
    preds: &Predictions,
    averaged: &[usize],
    settings: Settings,
) -> ((f64, f64), (f64, f64)) {
    let images = preds.targets.len();
    let per_finding: Vec<Ranked> = averaged
        .iter()
        .map(|&f| Ranked::new(known(preds, f).collect()))
        .collect();
    let all = Ranked::new(
        (0..preds.findings.len())
            .flat_map(|f| known(preds, f))
            .collect(),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let (mut macro_samples, mut micro_samples) = (Vec::new(), Vec::new());
    let progress = ortl_cli::progress::bar(settings.bootstrap as u64, "bootstrap over images");
    let mut draws = vec![0u32; images];
    for _ in 0..settings.bootstrap {
        progress.inc(1);
        draws.fill(0);
        for _ in 0..images {
            draws[rng.random_range(0..images)] += 1;
        }
        let aucs: Vec<f64> = per_finding.iter().map(|r| r.auc(&draws)).collect();
        if !aucs.is_empty() && aucs.iter().all(|a| a.is_finite()) {
            macro_samples.push(aucs.iter().sum::<f64>() / aucs.len() as f64);
        }
        let micro = all.auc(&draws);
        if micro.is_finite() {
            micro_samples.push(micro);
        }
    }
    progress.finish_and_clear();
    (
        percentile_interval(&mut macro_samples),
        percentile_interval(&mut micro_samples),
    )
}

/// How often findings occur together, over the images where both labels are known.
#[derive(Clone, Debug, Serialize)]
pub struct CoOccurrence {
    pub findings: Vec<String>,
    /// `[a][b]`: images where a and b are both positive (`[a][a]`: a's positives).
    pub both_positive: Vec<Vec<usize>>,
    /// `[a][b]`: images where a's and b's labels are both known (`[a][a]`: a's known).
    pub both_known: Vec<Vec<usize>>,
    /// both_positive / both_known; the diagonal is each finding's prevalence (NaN, null in
    /// JSON, where none is known).
    pub rate: Vec<Vec<f64>>,
}

pub fn co_occurrence(findings: &[String], targets: &[Vec<Option<bool>>]) -> CoOccurrence {
    let k = findings.len();
    let mut both_positive = vec![vec![0; k]; k];
    let mut both_known = vec![vec![0; k]; k];
    for row in targets {
        for (a, ya) in row.iter().enumerate() {
            for (b, yb) in row.iter().enumerate() {
                if let (Some(ya), Some(yb)) = (ya, yb) {
                    both_known[a][b] += 1;
                    both_positive[a][b] += usize::from(*ya && *yb);
                }
            }
        }
    }
    let rate = both_positive
        .iter()
        .zip(&both_known)
        .map(|(p, n)| {
            p.iter()
                .zip(n)
                .map(|(&p, &n)| {
                    if n == 0 {
                        f64::NAN
                    } else {
                        p as f64 / n as f64
                    }
                })
                .collect()
        })
        .collect();
    CoOccurrence {
        findings: findings.to_vec(),
        both_positive,
        both_known,
        rate,
    }
}

/// The summary printed on stdout: each finding's known labels, prevalence and AUC with its
/// interval, then the averages.
pub fn summary(e: &Evaluation, mut out: impl Write) -> std::io::Result<()> {
    let width = e
        .findings
        .iter()
        .map(|f| f.finding.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let ci = |row: &MetricRow| {
        if row.ci_low.is_nan() {
            "-".to_string()
        } else {
            format!("{:.3} - {:.3}", row.ci_low, row.ci_high)
        }
    };
    writeln!(
        out,
        "{:<width$} {:>7} {:>10} {:>8}  {:>13}",
        "finding",
        "known",
        "prevalence",
        Metric::RocAuc.name(),
        "95% CI"
    )?;
    for f in &e.findings {
        let auc = f.metric(Metric::RocAuc);
        writeln!(
            out,
            "{:<width$} {:>7} {:>10.4} {:>8.4}  {:>13}",
            f.finding,
            f.n,
            f.prevalence,
            auc.value,
            ci(auc)
        )?;
    }
    writeln!(
        out,
        "{:<width$} {:>7} {:>10} {:>8.4}  {:>13}",
        "macro",
        e.averaged.len(),
        "",
        e.macro_auc.value,
        ci(&e.macro_auc)
    )?;
    writeln!(
        out,
        "{:<width$} {:>7} {:>10.4} {:>8.4}  {:>13}",
        "micro",
        e.labels,
        e.positive_labels as f64 / e.labels as f64,
        e.micro_auc.value,
        ci(&e.micro_auc)
    )
}

/// What a multi-label report is written from besides the predictions.
pub struct Inputs<'a> {
    /// The predictions files as given, and as one line for people.
    pub predictions: &'a [PathBuf],
    pub source: String,
    pub run: &'a Run<'a>,
    pub settings: Settings,
    /// The PNG figures' resolution.
    pub dpi: u32,
}

/// Evaluates `preds` and writes the report into `dir`: metrics.json, metrics.csv,
/// co_occurrence.csv, the ROC panels (roc_findings.png/svg), the run's training curves,
/// report.html and report.md. Returns the evaluation and what was evaluated, for people.
pub fn write(dir: &Path, preds: &Predictions, inputs: &Inputs) -> Result<(Evaluation, String)> {
    let Settings {
        bootstrap,
        seed,
        proportion,
    } = inputs.settings;
    let mut notes = Notes::default();
    if preds.unlabelled > 0 {
        notes.note(format!(
            "{} without any known label left out.",
            ortl_cli::count(preds.unlabelled, "row", "rows")
        ));
    }
    let (evaluated, mut provenance) = inputs.run.provenance(&preds.models);
    provenance.insert(
        1,
        (
            "Images scored".into(),
            crate::provenance::splits(&preds.splits),
        ),
    );
    let training = preds.training_rows(inputs.run.val_fold());
    notes.scored_images(training, &preds.paths);
    let evaluation = evaluate(preds, inputs.settings);
    if !evaluation.undefined.is_empty() {
        notes.warn(format!(
            "ROC AUC is undefined (NaN) for {}: left out of the macro average",
            evaluation.why_undefined()
        ));
    }
    let separated: Vec<String> = evaluation
        .findings
        .iter()
        .filter(|f| {
            let auc = f.metric(Metric::RocAuc);
            f.undefined().is_none() && (auc.value == 0.0 || auc.value == 1.0)
        })
        .map(|f| {
            format!(
                "{} ({} positive, {} negative)",
                f.finding,
                f.positives,
                f.n - f.positives
            )
        })
        .collect();
    if !separated.is_empty() {
        notes.note(format!(
            "ROC AUC separates the classes perfectly for {}: DeLong's variance is 0 there, so no interval is given (a zero-width one would claim a certainty these images cannot give; a bootstrap's would be zero-width too).",
            separated.join(", ")
        ));
    }
    let canvas = plots::Canvas {
        dir,
        dpi: inputs.dpi,
    };
    let roc = plots::roc_panels(&canvas, preds, &evaluation)?;
    let figures: Vec<(String, String)> = inputs.run.curves(&canvas)?.into_iter().collect();

    let mut json = serde_json::to_value(&evaluation)?;
    for (key, value) in [
        ("task", serde_json::json!("multi-label")),
        ("predictions", serde_json::json!(inputs.predictions)),
        ("images", serde_json::json!(preds.targets.len())),
        ("unlabelled", serde_json::json!(preds.unlabelled)),
        ("evaluated_models", serde_json::json!(preds.models)),
        ("training_images_scored", serde_json::json!(training)),
        ("bootstrap", serde_json::json!(bootstrap)),
        ("seed", serde_json::json!(seed)),
    ] {
        json[key] = value;
    }
    std::fs::write(
        dir.join("metrics.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    tables::write_csv(&dir.join("metrics.csv"), |out| {
        tables::findings(&evaluation, out)
    })?;
    tables::write_csv(&dir.join("co_occurrence.csv"), |out| {
        tables::co_occurrence(&evaluation.co_occurrence, out)
    })?;
    let report = Report {
        title: "ortl evaluation report (multi-label)".into(),
        source: inputs.source.clone(),
        provenance,
        metrics: Metrics::Findings {
            evaluation: &evaluation,
            roc,
        },
        figures,
        intervals: format!(
            "95 % intervals: DeLong for each finding's ROC AUC; {} for the proportions at the threshold (sensitivity, specificity, PPV, NPV); stratified bootstrap ({bootstrap} resamples) for F1; bootstrap over images ({bootstrap} resamples) for the macro and micro AUC.",
            proportion.interval().name()
        ),
        notes: notes.0,
        gallery: None,
    };
    std::fs::write(dir.join("report.html"), html(&report))?;
    std::fs::write(dir.join("report.md"), markdown(&report))?;
    Ok((evaluation, evaluated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resample_auc_counts_each_label_as_often_as_its_image_was_drawn() {
        // Ties across classes (0.4) and within one (0.8).
        let scores = [0.1, 0.4, 0.4, 0.8, 0.8, 0.3, 0.9];
        let labels = [false, false, true, true, true, false, true];
        let ranked = Ranked::new(
            scores
                .iter()
                .zip(labels)
                .enumerate()
                .map(|(i, (&s, y))| (s, y, i))
                .collect(),
        );
        assert_eq!(ranked.auc(&[1; 7]), roc_auc(&labels, &scores));
        let draws = [2, 0, 1, 3, 0, 1, 1];
        let (l, s): (Vec<bool>, Vec<f64>) = (0..7)
            .flat_map(|i| std::iter::repeat_n((labels[i], scores[i]), draws[i] as usize))
            .unzip();
        assert!((ranked.auc(&draws) - roc_auc(&l, &s)).abs() < 1e-12);
        assert!(
            ranked.auc(&[1, 1, 0, 0, 0, 1, 0]).is_nan(),
            "no positive drawn"
        );
    }

    /// Four images, three findings, some labels unknown: the counts worked by hand.
    #[test]
    fn co_occurrence_counts_pairs_where_both_are_known() {
        let findings: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        let (y, n, u) = (Some(true), Some(false), None);
        let targets = vec![vec![y, y, u], vec![y, n, y], vec![n, y, y], vec![y, u, y]];
        let c = co_occurrence(&findings, &targets);
        // A: positive in 3 of 4; B known in 3 (2 positive); C known in 3 (3 positive).
        assert_eq!(c.both_known, [[4, 3, 3], [3, 3, 2], [3, 2, 3]]);
        assert_eq!(c.both_positive, [[3, 1, 2], [1, 2, 1], [2, 1, 3]]);
        assert_eq!(c.rate[0][0], 0.75);
        assert_eq!(c.rate[0][2], 2.0 / 3.0);
        assert_eq!(c.rate[1][2], 0.5);
        let none = co_occurrence(&findings[..1], &[vec![u]]);
        assert!(none.rate[0][0].is_nan());
    }

    fn predictions(targets: Vec<Vec<Option<bool>>>, probabilities: Vec<Vec<f64>>) -> Predictions {
        let k = targets[0].len();
        let n = targets.len();
        Predictions {
            findings: (0..k).map(|i| format!("F{i}")).collect(),
            targets,
            probabilities,
            thresholds: vec![0.5; k],
            unlabelled: 0,
            paths: (0..n).map(|i| format!("{i}.png")).collect(),
            cams: vec![None; n],
            splits: vec![None; n],
            models: Vec::new(),
        }
    }

    /// A finding never positive (or never negative) has no AUC: it is named, left out of
    /// the macro average, and still counted in the micro one; nothing panics.
    #[test]
    fn findings_without_both_classes_are_nan_and_left_out_of_the_macro_average() {
        let (y, n) = (Some(true), Some(false));
        let targets: Vec<Vec<Option<bool>>> = (0..20)
            .map(|i| vec![Some(i % 2 == 0), n, if i < 5 { None } else { y }])
            .collect();
        let probabilities: Vec<Vec<f64>> = (0..20)
            .map(|i| {
                vec![
                    if i % 2 == 0 { 0.7 } else { 0.2 } + 0.01 * i as f64,
                    0.3,
                    0.6,
                ]
            })
            .collect();
        let preds = predictions(targets, probabilities);
        let e = evaluate(
            &preds,
            Settings {
                bootstrap: 50,
                seed: 1,
                proportion: ProportionMethod::Wilson,
            },
        );
        assert_eq!(e.averaged, ["F0"]);
        assert_eq!(e.undefined, ["F1", "F2"]);
        assert_eq!(
            e.findings[1].undefined().unwrap(),
            "no positives among 20 known"
        );
        assert_eq!(
            e.findings[2].undefined().unwrap(),
            "no negatives among 15 known"
        );
        assert!(e.findings[1].metric(Metric::RocAuc).value.is_nan());
        assert_eq!(
            e.findings[1].metric(Metric::RocAuc).interval,
            Interval::None
        );
        assert_eq!(e.macro_auc.value, 1.0);
        assert_eq!(e.labels, 20 + 20 + 15);
        assert!(e.micro_auc.value.is_finite());
        assert_eq!(e.micro_auc.interval, Interval::Bootstrap);
        // Specificity of a finding without positives is still defined; sensitivity is not.
        assert_eq!(e.findings[1].metric(Metric::Specificity).value, 1.0);
        assert!(e.findings[1].metric(Metric::Sensitivity).value.is_nan());
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json["findings"][1]["metrics"][0]["value"],
            serde_json::Value::Null
        );
    }
}
