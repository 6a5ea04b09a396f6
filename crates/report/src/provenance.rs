//! What a report says before its metrics, for either kind of predictions: which model file
//! and epoch were evaluated and on which splits, how the run trained (its train.json), its
//! training curves, and warnings about the images scored (training images, images scored
//! twice).

use std::path::Path;

use anyhow::Result;
use ortl_manifest::history::Epoch;
use ortl_manifest::predictions::EvaluatedModel;
use ortl_manifest::{FormatError, Split, TrainRecord};

use crate::plots;

/// A run as far as the report was given it: the history (`--history`, else the run
/// folder's history.csv) and the run folder's train.json, when it has one.
pub struct Run<'a> {
    pub dir: Option<&'a Path>,
    pub history: Option<Vec<Epoch>>,
    pub record: Option<TrainRecord>,
}

impl<'a> Run<'a> {
    pub fn read(history: Option<&Path>, dir: Option<&'a Path>) -> Result<Self, FormatError> {
        let history_path = history
            .map(Path::to_path_buf)
            .or_else(|| dir.map(|r| r.join("history.csv")));
        let history = match &history_path {
            Some(path) => Some(ortl_manifest::history::read(path)?),
            None => None,
        };
        // An interrupted run has no record yet (its history still plots).
        let record = match dir.map(|r| r.join("train.json")) {
            Some(path) if path.exists() => Some(TrainRecord::read(&path)?),
            _ => None,
        };
        Ok(Run {
            dir,
            history,
            record,
        })
    }

    /// The validation fold the run held out of a k-fold manifest.
    pub fn val_fold(&self) -> Option<u32> {
        self.record.as_ref().and_then(|t| t.settings.val_fold)
    }

    /// What the predictions evaluated ([`evaluated`]), as said on stderr, and the report's
    /// first table: that, then how the run trained ([`provenance`]).
    pub fn provenance(&self, models: &[EvaluatedModel]) -> (String, Vec<(String, String)>) {
        let evaluated = evaluated(models, self.record.as_ref().zip(self.dir));
        let rows = std::iter::once(("Evaluated model".to_string(), evaluated.clone()))
            .chain(self.record.as_ref().map(provenance).unwrap_or_default())
            .collect();
        (evaluated, rows)
    }

    /// The training curves, with the run's best epoch marked, as (caption, SVG); None
    /// without a history.
    pub fn curves(&self, canvas: &plots::Canvas) -> Result<Option<(String, String)>> {
        let Some(history) = self.history.as_ref().filter(|h| !h.is_empty()) else {
            return Ok(None);
        };
        let best = self.record.as_ref().and_then(|t| {
            t.summary.best_epoch.map(|epoch| plots::BestEpoch {
                epoch,
                metric: t.settings.checkpoint.name(),
            })
        });
        let svg = plots::training_curves(canvas, history, best)?;
        Ok(Some(("Training curves".into(), svg)))
    }
}

/// The images scored by split, for people: `64 (51 test, 13 val)`; a row without a split
/// (a file given to ortl-infer directly) counts as `no split`.
pub fn splits(splits: &[Option<Split>]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for split in splits {
        // Rows without a split last.
        *counts.entry((split.is_none(), *split)).or_insert(0usize) += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|((_, split), n)| (split, n))
        .map(|(split, n)| match split {
            Some(Split::Fold(k)) => format!("{n} fold {k}"),
            Some(split) => format!("{n} {split}"),
            None => format!("{n} no split"),
        })
        .collect();
    format!("{} ({})", splits.len(), parts.join(", "))
}

/// The report's notes: warnings also go to stderr.
#[derive(Debug, Default)]
pub struct Notes(pub Vec<String>);

impl Notes {
    pub fn note(&mut self, note: String) {
        self.0.push(note);
    }

    pub fn warn(&mut self, warning: String) {
        eprintln!("ortl-report: warning: {warning}");
        self.0.push(format!("Warning: {warning}."));
    }

    /// Warns when `training` of the scored images are training images, and when a path
    /// is scored more than once.
    pub fn scored_images(&mut self, training: usize, paths: &[String]) {
        if training > 0 {
            self.warn(format!(
                "{training} of the {} scored images are training images (by the predictions' split column): the model has seen them, so these metrics are optimistic; classify a held-out split (ortl-infer --manifest M --split val or test)",
                paths.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let repeated = paths
            .iter()
            .filter(|p| !p.is_empty() && !seen.insert(p.as_str()))
            .count();
        if repeated > 0 {
            self.warn(format!(
                "{repeated} rows repeat an image already scored (the same path twice, e.g. pooled files that overlap): those images weigh double in every metric"
            ));
        }
    }
}

/// What was trained and how, from a run's train.json, as (what, value) rows for the
/// report's provenance table.
fn provenance(train: &TrainRecord) -> Vec<(String, String)> {
    let (s, env, summary) = (&train.settings, &train.environment, &train.summary);
    let optional = |value: Option<String>| value.unwrap_or_else(|| "none".into());
    vec![
        (
            "Backbone".into(),
            format!("{} ({} parameters)", s.backbone, s.backbone_parameters),
        ),
        ("Weights".into(), s.backbone_provenance.clone()),
        (
            "Input normalisation".into(),
            format!("{} ({})", s.normalization, s.normalization_reason),
        ),
        ("Head".into(), s.head.clone()),
        (
            "What trained".into(),
            format!(
                "frozen: {}; backbone BatchNorm: {}; fine-tune phases: {}",
                s.freeze,
                s.bn_mode,
                optional(
                    s.fine_tune
                        .map(|(a, b)| format!("{a} head-only, then {b} all"))
                )
            ),
        ),
        (
            "Image size".into(),
            format!("{}×{}", s.image_height, s.image_width),
        ),
        (
            match s.task {
                ortl_manifest::Task::MultiLabel => "Findings",
                ortl_manifest::Task::SingleLabel => "Classes",
            }
            .into(),
            s.classes.join(", "),
        ),
        ("Training data".into(), s.tensors.display().to_string()),
        (
            "Optimizer".into(),
            format!(
                "{}, learning rate {}, schedule {}, batch {}, weight decay {}",
                s.optimizer, s.lr, s.schedule, s.batch, s.weight_decay
            ),
        ),
        (
            "Loss".into(),
            match s.task {
                ortl_manifest::Task::MultiLabel => format!(
                    "{} (unknown labels masked), positive weights {}, label smoothing {}",
                    s.loss, s.pos_weight, s.label_smoothing
                ),
                ortl_manifest::Task::SingleLabel => format!(
                    "{}, class weights {}, label smoothing {}",
                    s.loss, s.class_weights, s.label_smoothing
                ),
            },
        ),
        (
            "Epochs".into(),
            format!(
                "{} run of {} (best by {}: {}; early stopping {})",
                summary.epochs_run,
                s.epochs,
                s.checkpoint,
                summary
                    .best_epoch
                    .map_or_else(|| "none".into(), |b| b.to_string()),
                s.early_stopping
            ),
        ),
        ("Seed".into(), s.seed.to_string()),
        (
            "Trained".into(),
            format!(
                "{} on {} ({}), {} convolutions, optimizer update {}, {:.1} s, {:.1} images/s",
                env.trained_at,
                env.device,
                env.threads
                    .map_or_else(|| "all cores".into(), |n| format!("{n} threads")),
                env.conv_layout,
                match env.update_on.as_deref() {
                    Some("host") => "on the host",
                    // Records from before --update-on updated in the graph.
                    Some("graph") | None => "in the step graph",
                    Some(other) => other,
                },
                summary.seconds,
                summary.images_per_second
            ),
        ),
        (
            "Software".into(),
            format!(
                "ortl {} (commit {}), ONNX Runtime {}",
                env.ortl_version,
                env.git_commit.as_deref().unwrap_or("unknown"),
                env.onnxruntime
            ),
        ),
    ]
}

/// What the predictions evaluated, for people: each model file and its epoch, and which
/// epoch that is in the run (the best by its checkpoint metric, or the last).
fn evaluated(models: &[EvaluatedModel], train: Option<(&TrainRecord, &Path)>) -> String {
    if models.is_empty() {
        return "not recorded (predictions written before ortl-infer recorded the model)".into();
    }
    // The run's record speaks for a model only when the model file is in that run's folder.
    let same_folder = |model: &str, run: &Path| {
        let folder = Path::new(model).parent();
        let real = |p: &Path| std::fs::canonicalize(p).ok();
        folder.and_then(real).is_some_and(|f| Some(f) == real(run))
    };
    let described = |model: &EvaluatedModel| {
        let train = train
            .filter(|(_, run)| same_folder(&model.path, run))
            .map(|(record, _)| record);
        let role = match (model.epoch, train) {
            (Some(epoch), Some(train)) if train.summary.best_epoch == Some(epoch) => format!(
                " (the best epoch by {}, of {})",
                train.settings.checkpoint, train.summary.epochs_run
            ),
            (Some(epoch), Some(train)) if train.summary.epochs_run == epoch => {
                format!(" (the last of {} epochs)", train.summary.epochs_run)
            }
            _ => String::new(),
        };
        format!("{model}{role}")
    };
    models.iter().map(described).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_counted_by_split_those_without_last() {
        let scored = [
            None,
            Some(Split::Test),
            Some(Split::Fold(2)),
            Some(Split::Val),
            Some(Split::Test),
        ];
        assert_eq!(splits(&scored), "5 (1 val, 2 test, 1 fold 2, 1 no split)");
    }
}
