//! `ortl-report compare`: the tutorial's closing comparison of backbones (or any settings)
//! across run folders. Each run folder holds ortl-train's `train.json` and `history.csv`
//! and the run's `predictions.csv` from ortl-infer. Multi-label runs are compared on their
//! macro and micro ROC AUC and each finding's AUC ([`AVERAGES`], [`Compared::FindingAuc`]);
//! runs of both kinds are not compared with each other.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::evaluate::{MetricRow, binary_predictions, multiclass};
use crate::input::Loaded;
use crate::metrics::Metric;
use ortl_manifest::train_record::TrainSettings;
use ortl_manifest::{Task, TrainRecord};

/// The metrics compared, in table order.
pub const METRICS: [Metric; 6] = [
    Metric::Accuracy,
    Metric::Sensitivity,
    Metric::Specificity,
    Metric::F1,
    Metric::Mcc,
    Metric::RocAuc,
];

/// The metrics of multi-label runs before each finding's AUC, in table order.
pub const AVERAGES: [Metric; 2] = [Metric::MacroAuc, Metric::MicroAuc];

/// A metric compared across runs: one of the run's own, or one finding's ROC AUC in a
/// multi-label run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compared {
    Run(Metric),
    /// Named `roc_auc_<finding>` in files.
    FindingAuc(String),
}

impl From<Metric> for Compared {
    fn from(metric: Metric) -> Self {
        Compared::Run(metric)
    }
}

impl Compared {
    /// The name the comparison tables and `--sort-by` use.
    pub fn name(&self) -> String {
        match self {
            Compared::Run(metric) => metric.name().into(),
            Compared::FindingAuc(finding) => format!("{}_{finding}", Metric::RocAuc.name()),
        }
    }

    /// The compared metric [`Compared::name`] names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Metric::from_name(name).map(Compared::Run).or_else(|| {
            let finding = name
                .strip_prefix(Metric::RocAuc.name())?
                .strip_prefix('_')?;
            Some(Compared::FindingAuc(finding.into()))
        })
    }

    /// The name people read.
    pub fn label(&self) -> String {
        match self {
            Compared::Run(metric) => metric.label(),
            Compared::FindingAuc(finding) => format!("{} {finding}", Metric::RocAuc.label()),
        }
    }

    /// The values the metric can take.
    pub fn range(&self) -> (f64, f64) {
        match self {
            Compared::Run(metric) => metric.range(),
            Compared::FindingAuc(_) => Metric::RocAuc.range(),
        }
    }
}

/// Whether the runs are multi-label ones (compare refuses runs of both kinds: [`mixed_tasks`]).
pub fn multilabel(runs: &[RunSummary]) -> bool {
    runs.first().is_some_and(|r| r.task == Task::MultiLabel)
}

/// The metrics the runs' main table and chart show: [`METRICS`], or [`AVERAGES`] for
/// multi-label runs.
pub fn headline(runs: &[RunSummary]) -> &'static [Metric] {
    if multilabel(runs) {
        &AVERAGES
    } else {
        &METRICS
    }
}

/// The two metrics the comparison chart draws as bars.
pub fn charted(runs: &[RunSummary]) -> [Metric; 2] {
    if multilabel(runs) {
        AVERAGES
    } else {
        [Metric::Accuracy, Metric::RocAuc]
    }
}

/// Every metric the runs have, in table order: [`headline`]'s, then each finding's AUC (in
/// order of first appearance, for runs whose findings differ).
pub fn compared(runs: &[RunSummary]) -> Vec<Compared> {
    let mut all: Vec<Compared> = headline(runs).iter().map(|&m| m.into()).collect();
    for (metric, _) in runs.iter().flat_map(RunSummary::rows) {
        if !all.contains(&metric) {
            all.push(metric);
        }
    }
    all
}

/// The first two runs where one has single-label predictions and the other multi-label
/// ones, in words; None when all are of one kind.
pub fn mixed_tasks(runs: &[RunSummary]) -> Option<String> {
    let first = runs.first()?;
    let other = runs.iter().find(|r| r.task != first.task)?;
    Some(format!(
        "runs {} and {} cannot be compared: {} has {} predictions and {} {} ones; compare runs of one kind",
        first.run, other.run, first.run, first.task, other.run, other.task
    ))
}

/// What runs of one backbone must share to be repeats of each other: every setting in
/// train.json but those that repeats vary (the seed, the validation fold, and the random
/// initialisation the seed draws), with the tensors folder's path tidied (`./out/tensors`
/// is `out/tensors`). Early stopping may run fewer epochs than asked for: an outcome, not
/// a setting, so the epochs asked for are what must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Setup(BTreeMap<String, serde_json::Value>);

impl Setup {
    pub fn of(settings: &TrainSettings) -> Self {
        let serde_json::Value::Object(map) =
            serde_json::to_value(settings).expect("settings serialise")
        else {
            unreachable!("settings serialise to an object")
        };
        let random = !settings.backbone_pretrained;
        let mut setup: BTreeMap<String, serde_json::Value> = map
            .into_iter()
            .filter(|(name, _)| match name.as_str() {
                "seed" | "val_fold" => false,
                "backbone_weights" | "backbone_provenance" => !random,
                _ => true,
            })
            .collect();
        setup.insert(
            "tensors".into(),
            ortl_manifest::paths::tidy(&settings.tensors).into(),
        );
        Setup(setup)
    }

    /// What differs from `other`, as `name (a vs b)` in train.json's names.
    fn differences(&self, other: &Setup) -> Vec<String> {
        let shown = |v: Option<&serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "none".into(),
        };
        self.0
            .keys()
            .chain(other.0.keys().filter(|k| !self.0.contains_key(*k)))
            .filter(|k| self.0.get(*k) != other.0.get(*k))
            .map(|k| {
                format!(
                    "{k} ({} vs {})",
                    shown(self.0.get(k)),
                    shown(other.0.get(k))
                )
            })
            .collect()
    }
}

/// One run's row of comparison.csv.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// The run's label, unique among the runs compared ([`labels`]).
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
    /// Single-label predictions (one class per image) or multi-label ones.
    pub task: Task,
    /// Each of [`METRICS`], or of [`AVERAGES`], with its interval.
    pub metrics: Vec<MetricRow>,
    /// Multi-label runs: each finding's ROC AUC, with DeLong's interval.
    pub finding_aucs: Vec<(String, MetricRow)>,
    /// The positive-class scores of a binary run, for AUC comparisons between runs.
    #[serde(skip)]
    pub scored: Option<crate::delong::Scored>,
    #[serde(skip)]
    pub setup: Setup,
}

impl RunSummary {
    /// A run's facts from its train.json, before its predictions are read.
    fn of(run: String, train: TrainRecord) -> Self {
        RunSummary {
            run,
            setup: Setup::of(&train.settings),
            backbone: train.settings.backbone,
            head: train.settings.head,
            fold: train.settings.val_fold,
            seed: train.settings.seed,
            parameters: train.settings.backbone_parameters as u64,
            epochs: train.summary.epochs_run as u64,
            train_seconds: train.summary.seconds,
            train_images_per_second: train.summary.images_per_second,
            images: 0,
            task: Task::SingleLabel,
            metrics: Vec::new(),
            finding_aucs: Vec::new(),
            scored: None,
        }
    }

    /// The row of `metric`, if the run has it.
    pub fn metric(&self, metric: &Compared) -> Option<&MetricRow> {
        match metric {
            Compared::Run(metric) => self.metrics.iter().find(|row| row.metric == *metric),
            Compared::FindingAuc(finding) => self
                .finding_aucs
                .iter()
                .find(|(name, _)| name == finding)
                .map(|(_, row)| row),
        }
    }

    /// The value of `metric`; NaN (undefined) when the run does not have it.
    pub fn value(&self, metric: &Compared) -> f64 {
        self.metric(metric).map_or(f64::NAN, |row| row.value)
    }

    /// Every metric the run has, in table order: its own, then each finding's AUC.
    pub fn rows(&self) -> impl Iterator<Item = (Compared, &MetricRow)> {
        let own = self.metrics.iter().map(|row| (row.metric.into(), row));
        let findings = self
            .finding_aucs
            .iter()
            .map(|(finding, row)| (Compared::FindingAuc(finding.clone()), row));
        own.chain(findings)
    }
}

/// Each run's label: its folder's name, with as many parent folders as tell it apart from
/// the others' (`a/run`, `b/run`), and `#2`, `#3`… after a folder given more than once.
pub fn labels(dirs: &[PathBuf]) -> Vec<String> {
    let parts: Vec<Vec<String>> = dirs
        .iter()
        .map(|dir| {
            let parts: Vec<String> = dir
                .components()
                .filter(|c| *c != Component::CurDir)
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.is_empty() {
                vec![dir.display().to_string()]
            } else {
                parts
            }
        })
        .collect();
    let mut depth = vec![1; dirs.len()];
    let tail = |i: usize, depth: &[usize]| {
        let p = &parts[i];
        p[p.len() - depth[i]..].join("/").replace("//", "/")
    };
    loop {
        let current: Vec<String> = (0..dirs.len()).map(|i| tail(i, &depth)).collect();
        let mut deepened = false;
        for i in 0..dirs.len() {
            let shared = current.iter().filter(|l| **l == current[i]).count() > 1;
            if shared && depth[i] < parts[i].len() {
                depth[i] += 1;
                deepened = true;
            }
        }
        if !deepened {
            break;
        }
    }
    (0..dirs.len())
        .map(|i| {
            let label = tail(i, &depth);
            match (0..i).filter(|&j| tail(j, &depth) == label).count() {
                0 => label,
                before => format!("{label} #{}", before + 1),
            }
        })
        .collect()
}

/// The first two runs of one backbone that are not repeats of each other (other tensors,
/// image size, classes or epochs), in words; None when every backbone's runs can be pooled.
pub fn mixed(runs: &[RunSummary]) -> Option<String> {
    runs.iter().enumerate().find_map(|(i, a)| {
        runs[i + 1..]
            .iter()
            .filter(|b| b.backbone == a.backbone)
            .find_map(|b| {
                let differences = a.setup.differences(&b.setup);
                (!differences.is_empty()).then(|| {
                    format!(
                        "runs {} and {} both train {} but differ in {}, so they are not repeats of one backbone",
                        a.run,
                        b.run,
                        a.backbone,
                        differences.join(", ")
                    )
                })
            })
    })
}

/// One run's summary, labelled `label`.
pub fn summarize(
    dir: &Path,
    label: String,
    positive: Option<&str>,
    threshold: f64,
    bootstrap: usize,
    proportion: crate::intervals::ProportionMethod,
    seed: u64,
) -> Result<RunSummary> {
    let predictions_path = dir.join("predictions.csv");
    let preds = crate::input::read(&[predictions_path]).with_context(|| {
        format!("{}: each run folder needs its predictions.csv (ortl-infer --model RUN/best.onnx --manifest M --split val -o RUN/predictions.csv)", dir.display())
    })?;
    let train = TrainRecord::read(&dir.join("train.json")).with_context(|| {
        format!(
            "{}: each run folder needs ortl-train's train.json beside its predictions.csv",
            dir.display()
        )
    })?;
    let preds = match preds {
        Loaded::Classes(preds) => preds,
        Loaded::Findings(preds) => {
            let e = crate::multilabel::evaluate(
                &preds,
                crate::multilabel::Settings {
                    bootstrap,
                    seed,
                    proportion,
                },
            );
            let finding_aucs = e
                .findings
                .iter()
                .map(|f| (f.finding.clone(), f.metric(Metric::RocAuc).clone()))
                .collect();
            return Ok(RunSummary {
                images: preds.targets.len(),
                task: Task::MultiLabel,
                metrics: vec![e.macro_auc, e.micro_auc],
                finding_aucs,
                scored: None,
                ..RunSummary::of(label, train)
            });
        }
    };
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
        let row = MetricRow::point;
        vec![
            row(Metric::Accuracy, m.accuracy),
            row(Metric::Sensitivity, f64::NAN),
            row(Metric::Specificity, f64::NAN),
            row(Metric::F1, m.macro_f1),
            row(Metric::Mcc, m.mcc),
            row(Metric::RocAuc, m.macro_auc),
        ]
    };
    Ok(RunSummary {
        images: preds.labels.len(),
        metrics,
        scored,
        ..RunSummary::of(label, train)
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
    sort_by: Option<&Compared>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(dirs: &[&str]) -> Vec<String> {
        labels(&dirs.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    #[test]
    fn labels_are_folder_names_lengthened_until_unique() {
        assert_eq!(labelled(&["runs/a", "runs/b"]), ["a", "b"]);
        assert_eq!(labelled(&["x/run", "y/run", "z"]), ["x/run", "y/run", "z"]);
        assert_eq!(
            labelled(&["p/b/run", "q/b/run", "run"]),
            ["p/b/run", "q/b/run", "run"]
        );
        assert_eq!(labelled(&["a", "./a", "a"]), ["a", "a #2", "a #3"]);
    }

    #[test]
    fn runs_of_one_backbone_must_share_their_setup() {
        let run = |name: &str, backbone: &str, setup: Setup| RunSummary {
            run: name.into(),
            backbone: backbone.into(),
            head: "linear".into(),
            fold: None,
            seed: 1,
            parameters: 1,
            epochs: 1,
            train_seconds: 1.0,
            train_images_per_second: 1.0,
            images: 1,
            task: Task::SingleLabel,
            metrics: Vec::new(),
            finding_aucs: Vec::new(),
            scored: None,
            setup,
        };
        let settings = ortl_manifest::samples::train_record().settings;
        let base = Setup::of(&settings);
        let other = Setup::of(&TrainSettings {
            image_height: 224,
            optimizer: ortl_manifest::train_record::Optimizer::Sgd,
            ..settings.clone()
        });
        // Repeats differ in their seed and fold, and a relative path may be spelt two ways.
        let repeat = Setup::of(&TrainSettings {
            seed: settings.seed + 1,
            val_fold: Some(3),
            tensors: std::path::Path::new(".").join(&settings.tensors),
            ..settings.clone()
        });
        assert_eq!(base, repeat);
        // Another backbone on another setup is a comparison, not a repeat.
        assert_eq!(
            mixed(&[run("a", "r1", base.clone()), run("b", "r2", other.clone())]),
            None
        );
        assert_eq!(
            mixed(&[
                run("a", "r1", base.clone()),
                run("b", "r2", base.clone()),
                run("c", "r1", other)
            ])
            .as_deref(),
            Some(
                "runs a and c both train r1 but differ in image_height (100 vs 224), optimizer (adam vs sgd), so they are not repeats of one backbone"
            )
        );
    }
}
