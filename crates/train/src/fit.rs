//! The epoch loop: shuffled batches with a fresh augmentation variant each epoch, a
//! validation pass, history, callbacks, the learning-rate schedule, and NaN detection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use ndarray::{Array4, ArrayD, Axis};
use ortl_autodiff::loss::Loss;
use ortl_manifest::train_record::TrainSummary;
use ortl_manifest::{Split, TensorSet};
use ortl_runtime::{Feed, Runtime, SessionOptions};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::callbacks::{Best, EarlyStopping, EarlyStoppingState, Metric};
use crate::schedule::{PlateauState, Schedule};
use crate::trainer::{Input, Targets};
use crate::{Batch, Trainer};

/// What each stored image is labelled with.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    /// One class index per image.
    Classes(Vec<usize>),
    /// Per image and finding: present, absent or unknown (multi-label tensors).
    Findings(Vec<Vec<Option<bool>>>),
}

impl Labels {
    pub fn len(&self) -> usize {
        match self {
            Labels::Classes(labels) => labels.len(),
            Labels::Findings(labels) => labels.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The labels of `indices`, kept alive for a [`Targets`] view.
    fn select(&self, indices: &[usize]) -> Selected<'_> {
        match self {
            Labels::Classes(labels) => {
                Selected::Classes(indices.iter().map(|&i| labels[i]).collect())
            }
            Labels::Findings(labels) => {
                Selected::Findings(indices.iter().map(|&i| labels[i].as_slice()).collect())
            }
        }
    }
}

/// Some images' labels, owned where a [`Targets`] view borrows them.
enum Selected<'a> {
    Classes(Vec<usize>),
    Findings(Vec<&'a [Option<bool>]>),
}

impl Selected<'_> {
    fn targets<'b>(&'b self, positive_weights: &'b [f32]) -> Targets<'b> {
        match self {
            Selected::Classes(labels) => Targets::Classes(labels),
            Selected::Findings(labels) => Targets::Findings {
                labels,
                positive_weights,
            },
        }
    }
}

/// Stored images in memory, grouped for training.
pub struct Dataset {
    /// Every stored image, `[M, H, W, 3]`.
    pub images: Array4<u8>,
    pub labels: Labels,
    /// Per training source image, the indices of its stored variants.
    pub train: Vec<Vec<usize>>,
    /// Indices of validation images.
    pub val: Vec<usize>,
    pub classes: Vec<String>,
}

impl Dataset {
    /// Loads every shard; `val_fold` picks the validation fold of a k-fold manifest.
    pub fn load(
        set: &TensorSet,
        val_fold: Option<u32>,
    ) -> Result<Self, ortl_manifest::FormatError> {
        let (h, w) = (set.meta.height, set.meta.width);
        let mut images = Array4::<u8>::zeros((set.rows.len(), h, w, 3));
        let mut loaded = Array4::<u8>::zeros((0, h, w, 3));
        let mut loaded_file = String::new();
        let mut train_groups: std::collections::BTreeMap<&str, Vec<usize>> =
            std::collections::BTreeMap::new();
        let mut val = Vec::new();
        let multi_label = set.meta.task == ortl_manifest::Task::MultiLabel;
        let (mut classes, mut findings) = (Vec::new(), Vec::new());
        for (i, row) in set.rows.iter().enumerate() {
            if row.shard != loaded_file {
                let shard = set
                    .meta
                    .shards
                    .iter()
                    .find(|s| s.file == row.shard)
                    .expect("checked by TensorSet::open");
                loaded = set.load_shard(shard)?;
                loaded_file = row.shard.clone();
            }
            images
                .index_axis_mut(Axis(0), i)
                .assign(&loaded.index_axis(Axis(0), row.index));
            match row.label {
                _ if multi_label => findings.push(row.findings()),
                Some(label) => classes.push(label),
                None => unreachable!("TensorSet::open checks single-label rows have a label"),
            }
            let is_val = match (row.split, val_fold) {
                (Split::Val, None) => true,
                (Split::Fold(k), Some(v)) => k == v,
                _ => false,
            };
            let is_train = match (row.split, val_fold) {
                (Split::Train, _) => true,
                (Split::Fold(k), Some(v)) => k != v,
                _ => false,
            };
            if is_val && row.variant == 0 {
                val.push(i);
            } else if is_train
                && (row.variant > 0 || set.meta.copies == 0 || set.meta.keep_original)
            {
                train_groups.entry(row.path.as_str()).or_default().push(i);
            }
        }
        Ok(Self {
            images,
            labels: match multi_label {
                true => Labels::Findings(findings),
                false => Labels::Classes(classes),
            },
            train: train_groups.into_values().collect(),
            val,
            classes: set.meta.classes.clone(),
        })
    }

    /// The loss's weights from the training images (one per source image): per class
    /// (`--class-weights`) for classes, of each finding's positives (`--pos-weight`) for
    /// findings; the other list is empty.
    pub fn loss_weights(&self, config: &FitConfig) -> Result<(Vec<f32>, Vec<f32>), String> {
        let sources: Vec<usize> = self.train.iter().map(|g| g[0]).collect();
        let classes = self.classes.len();
        Ok(match self.labels.select(&sources) {
            Selected::Classes(labels) => {
                (config.class_weights.resolve(&labels, classes)?, Vec::new())
            }
            Selected::Findings(labels) => (
                Vec::new(),
                config.positive_weights.resolve_positive(&labels, classes)?,
            ),
        })
    }

    fn gather(&self, indices: &[usize]) -> ArrayD<u8> {
        self.images.select(Axis(0), indices).into_dyn()
    }
}

/// A frozen backbone's pooled features, computed the first time each stored image is
/// used and kept in memory (`C` floats per image), so head-only epochs skip the backbone.
pub struct FeatureCache {
    session: ortl_runtime::Session,
    input: String,
    /// The pooled value's name (the head's input).
    pub pooled: String,
    pub width: usize,
    features: Vec<Option<Vec<f32>>>,
}

impl FeatureCache {
    /// `extractor` maps images to the pooled features (see `graph::feature_extractor`).
    pub fn new(
        runtime: &Runtime,
        options: &SessionOptions,
        extractor: &ortl_onnx::Model,
        images: usize,
    ) -> anyhow::Result<Self> {
        let output = extractor
            .graph
            .outputs
            .first()
            .context("the extractor has no output")?;
        let width = output
            .dims()
            .and_then(|d| d.get(1).copied().flatten())
            .context("pooled features need a fixed width")? as usize;
        let input = extractor
            .graph
            .feeds()
            .next()
            .context("the extractor has no input")?
            .name
            .clone();
        let session = runtime.load_model(options, extractor)?;
        Ok(Self {
            session,
            input,
            pooled: output.name.clone(),
            width,
            features: vec![None; images],
        })
    }

    /// Features of `indices`, `[n, width]`, computing missing ones in batches of `batch`.
    pub fn gather(
        &mut self,
        data: &Dataset,
        indices: &[usize],
        batch: usize,
    ) -> anyhow::Result<ArrayD<f32>> {
        let missing: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&i| self.features[i].is_none())
            .collect();
        for chunk in missing.chunks(batch.max(1)) {
            let mut out = ortl_runtime::run(
                &mut self.session,
                vec![(self.input.as_str(), Feed::U8(data.gather(chunk)))],
            )?;
            let values = out
                .remove(&self.pooled)
                .context("the extractor produced no features")?;
            for (&i, row) in chunk.iter().zip(values.outer_iter()) {
                self.features[i] = Some(row.iter().copied().collect());
            }
        }
        let mut flat = Vec::with_capacity(indices.len() * self.width);
        for &i in indices {
            flat.extend_from_slice(self.features[i].as_deref().expect("computed above"));
        }
        Ok(ArrayD::from_shape_vec(
            ndarray::IxDyn(&[indices.len(), self.width]),
            flat,
        )?)
    }
}

/// `--class-weights` (one weight per class) and `--pos-weight` (one weight per finding's
/// positives).
#[derive(Clone, Debug, PartialEq)]
pub enum ClassWeights {
    None,
    /// Classes: n_samples / (n_classes · n_c), as scikit-learn's "balanced". Findings:
    /// negatives / positives among the known labels, as PyTorch's `pos_weight` is usually
    /// set (1 for a finding without both).
    Auto,
    Given(Vec<f32>),
}

/// The `--class-weights` spelling; parses back to the same weights.
impl std::fmt::Display for ClassWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassWeights::None => write!(f, "none"),
            ClassWeights::Auto => write!(f, "auto"),
            ClassWeights::Given(weights) => {
                let text: Vec<String> = weights.iter().map(f32::to_string).collect();
                write!(f, "{}", text.join(","))
            }
        }
    }
}

impl std::str::FromStr for ClassWeights {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(ClassWeights::None),
            "auto" => Ok(ClassWeights::Auto),
            list => list
                .split(',')
                .map(|w| {
                    w.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|w| w.is_finite() && *w >= 0.0)
                })
                .collect::<Option<Vec<_>>>()
                .map(ClassWeights::Given)
                .ok_or_else(|| {
                    format!("'{list}': use auto, none or w0,w1,… (non-negative numbers)")
                }),
        }
    }
}

impl ClassWeights {
    /// The weight of each class given the training labels.
    pub fn resolve(&self, labels: &[usize], classes: usize) -> Result<Vec<f32>, String> {
        match self {
            ClassWeights::None => Ok(vec![1.0; classes]),
            ClassWeights::Given(w) if w.len() == classes => Ok(w.clone()),
            ClassWeights::Given(w) => Err(format!(
                "--class-weights has {} values for {classes} classes",
                w.len()
            )),
            ClassWeights::Auto => {
                let mut counts = vec![0usize; classes];
                labels.iter().for_each(|&l| counts[l] += 1);
                Ok(counts
                    .iter()
                    .map(|&n| {
                        if n == 0 {
                            0.0
                        } else {
                            labels.len() as f32 / (classes * n) as f32
                        }
                    })
                    .collect())
            }
        }
    }
}

impl ClassWeights {
    /// The weight of each finding's positive labels given the training labels.
    pub fn resolve_positive(
        &self,
        labels: &[&[Option<bool>]],
        findings: usize,
    ) -> Result<Vec<f32>, String> {
        match self {
            ClassWeights::None => Ok(vec![1.0; findings]),
            ClassWeights::Given(w) if w.len() == findings => Ok(w.clone()),
            ClassWeights::Given(w) => Err(format!(
                "--pos-weight has {} values for {findings} findings",
                w.len()
            )),
            ClassWeights::Auto => Ok((0..findings)
                .map(|f| {
                    let positives = labels.iter().filter(|l| l[f] == Some(true)).count();
                    let negatives = labels.iter().filter(|l| l[f] == Some(false)).count();
                    match positives * negatives {
                        0 => 1.0,
                        _ => negatives as f32 / positives as f32,
                    }
                })
                .collect()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub schedule: Schedule,
    pub early_stopping: Option<EarlyStopping>,
    pub checkpoint: Metric,
    pub class_weights: ClassWeights,
    /// Multi-label: the weight of each finding's positives (`--pos-weight`).
    pub positive_weights: ClassWeights,
    pub seed: u64,
}

/// One row of history.csv.
pub use ortl_manifest::history::Epoch as EpochRecord;

/// One optimizer step, for a per-step log (`ortl-train --step-log`).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct StepRecord {
    /// 1-based epoch and step within it.
    pub epoch: usize,
    pub step: usize,
    /// The batch's mean loss (before the update).
    pub loss: f64,
    pub lr: f64,
    /// Wall time of the step: batch assembly, the run and reading the loss back.
    pub seconds: f64,
    /// Steps in this epoch and images in this step (for progress; not logged).
    #[serde(skip)]
    pub steps: usize,
    #[serde(skip)]
    pub images: usize,
}

/// Where each epoch's results go (files written by the caller).
pub trait Sink {
    /// After every optimizer step; nothing by default.
    fn step(&mut self, _record: &StepRecord) -> anyhow::Result<()> {
        Ok(())
    }

    fn epoch(&mut self, record: &EpochRecord, history: &[EpochRecord]) -> anyhow::Result<()>;
    fn best(&mut self, model: &ortl_onnx::Model, record: &EpochRecord) -> anyhow::Result<()>;
    /// Saves everything needed to resume: at the end of every epoch and on interruption.
    fn checkpoint(
        &mut self,
        progress: &Progress,
        trainer: &Trainer,
        restore: Option<&State>,
    ) -> anyhow::Result<()>;
}

/// Training state tensors by name.
pub type State = std::collections::BTreeMap<String, ArrayD<f32>>;

/// Everything besides the state tensors that a resumed run needs to continue exactly:
/// position (epoch, step, that epoch's shuffled order and running sums), the generator,
/// history, schedule and callback states.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Progress {
    /// The epoch in progress or next (0-based).
    pub epoch: usize,
    /// Steps already taken in `epoch` (0 at an epoch boundary).
    pub step: usize,
    pub order: Vec<usize>,
    pub loss_sum: f64,
    /// Labels predicted right, of `judged` (images for one class each; known labels, at
    /// 0.5, for findings). Absent in checkpoints from before it: `seen`, set on loading.
    pub correct: usize,
    #[serde(default)]
    pub judged: usize,
    pub seen: usize,
    pub epoch_seconds: f64,
    pub rng: ChaCha8Rng,
    pub history: Vec<EpochRecord>,
    pub plateau: PlateauState,
    pub early: Option<EarlyStoppingState>,
    pub best: Best,
    pub trained_images: usize,
    pub seconds: f64,
    pub stopped_early: bool,
    /// Optimizer steps taken (Adam's t).
    pub steps_done: u64,
}

impl Progress {
    pub fn start(config: &FitConfig) -> Self {
        Self {
            epoch: 0,
            step: 0,
            order: Vec::new(),
            loss_sum: 0.0,
            correct: 0,
            judged: 0,
            seen: 0,
            epoch_seconds: 0.0,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            history: Vec::new(),
            plateau: PlateauState::default(),
            early: config.early_stopping.as_ref().map(EarlyStopping::start),
            best: Best::new(config.checkpoint, 0.0),
            trained_images: 0,
            seconds: 0.0,
            stopped_early: false,
            steps_done: 0,
        }
    }

    pub fn summary(&self) -> TrainSummary {
        TrainSummary {
            epochs_run: self.history.len(),
            best_epoch: self.best.epoch,
            stopped_early: self.stopped_early,
            images_per_second: self.trained_images as f64 / self.seconds.max(1e-9),
            seconds: self.seconds,
        }
    }
}

/// How a call to [`fit`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// `stop` was raised; a checkpoint was written after the step in progress.
    Interrupted,
}

/// One phase of training: what the loop runs on and reports to. The loop's state is a
/// [`Progress`] (and the `restore_best` weights), kept by the caller across phases and
/// checkpoints.
pub struct Fitter<'a> {
    pub trainer: &'a mut Trainer,
    pub data: &'a Dataset,
    pub config: &'a FitConfig,
    /// For the validation pass, which runs the exported model.
    pub runtime: &'a Runtime,
    pub options: &'a SessionOptions,
    pub sink: &'a mut dyn Sink,
    /// Raised by Ctrl-C: the loop checkpoints after the step in progress and returns.
    pub stop: &'a AtomicBool,
    /// The frozen backbone's pooled features, when only the head trains.
    pub cache: Option<&'a mut FeatureCache>,
}

impl Fitter<'_> {
    /// Trains from `progress` up to `config.epochs` (or until early stopping, or until
    /// `stop` is raised). `restore` holds the best weights for `restore_best` across calls.
    pub fn fit(
        self,
        progress: &mut Progress,
        restore: &mut Option<State>,
    ) -> anyhow::Result<Outcome> {
        let Fitter {
            trainer,
            data,
            config,
            runtime,
            options,
            sink,
            stop,
            mut cache,
        } = self;
        anyhow::ensure!(
            !data.train.is_empty(),
            "no training images in the tensors folder"
        );
        let (class_weights, positive_weights) =
            data.loss_weights(config).map_err(anyhow::Error::msg)?;
        let steps_per_epoch = data.train.len().div_ceil(config.batch);
        trainer.steps_done = progress.steps_done;
        while progress.epoch < config.epochs && !progress.stopped_early {
            let epoch = progress.epoch;
            let started = Instant::now();
            if progress.step == 0 {
                let mut order: Vec<usize> = (0..data.train.len()).collect();
                order.shuffle(&mut progress.rng);
                progress.order = order;
                (
                    progress.loss_sum,
                    progress.correct,
                    progress.judged,
                    progress.seen,
                    progress.epoch_seconds,
                ) = (0.0, 0, 0, 0, 0.0);
            }
            let mut lr = config.lr;
            let order = progress.order.clone();
            for (step, chunk) in order.chunks(config.batch).enumerate().skip(progress.step) {
                let step_started = Instant::now();
                lr = config.schedule.rate(
                    &progress.plateau,
                    config.lr,
                    epoch,
                    step,
                    steps_per_epoch,
                    config.epochs,
                );
                // Epoch e sees each image's stored variant e mod K: fresh augmentations each epoch.
                let indices: Vec<usize> = chunk
                    .iter()
                    .map(|&g| data.train[g][epoch % data.train[g].len()])
                    .collect();
                let selected = data.labels.select(&indices);
                let targets = selected.targets(&positive_weights);
                let input = match cache.as_deref_mut() {
                    Some(cache) => Input::Features(cache.gather(data, &indices, config.batch)?),
                    None => Input::Images(data.gather(&indices)),
                };
                let batch = Batch {
                    input,
                    targets,
                    weights: match &selected {
                        Selected::Classes(labels) => {
                            labels.iter().map(|&l| class_weights[l]).collect()
                        }
                        Selected::Findings(_) => vec![1.0; indices.len()],
                    },
                };
                let result = trainer.step(&batch, lr as f32, &mut progress.rng)?;
                if !result.loss.is_finite() {
                    anyhow::bail!(
                        "loss became {} at epoch {}, step {} (learning rate {lr:.3e}); lower --lr or add --clip-norm. The last good checkpoint is untouched",
                        result.loss,
                        epoch + 1,
                        step + 1
                    );
                }
                sink.step(&StepRecord {
                    epoch: epoch + 1,
                    step: step + 1,
                    loss: f64::from(result.loss),
                    lr,
                    seconds: step_started.elapsed().as_secs_f64(),
                    steps: steps_per_epoch,
                    images: indices.len(),
                })?;
                progress.loss_sum += f64::from(result.loss) * indices.len() as f64;
                let (correct, judged) = judge(&result.probabilities.view().into_dyn(), &targets);
                progress.correct += correct;
                progress.judged += judged;
                progress.seen += indices.len();
                progress.step = step + 1;
                progress.steps_done = trainer.steps_done;
                if stop.load(Ordering::SeqCst) && progress.step < steps_per_epoch {
                    let elapsed = started.elapsed().as_secs_f64();
                    progress.epoch_seconds += elapsed;
                    progress.seconds += elapsed;
                    sink.checkpoint(progress, trainer, restore.as_ref())?;
                    return Ok(Outcome::Interrupted);
                }
            }
            progress.trained_images += progress.seen;
            let mut model = trainer.export()?;
            mark_epoch(&mut model, epoch + 1);
            let (val_loss, val_accuracy, val_auc) = if data.val.is_empty() {
                (f64::NAN, f64::NAN, f64::NAN)
            } else {
                let probs = match cache.as_deref_mut() {
                    Some(cache) => {
                        let features = cache.gather(data, &data.val, config.batch)?;
                        let head = crate::graph::head_model(&model, &cache.pooled, cache.width);
                        let mut session = runtime.load_model(options, &head)?;
                        let mut out = ortl_runtime::run(
                            &mut session,
                            vec![(cache.pooled.as_str(), Feed::F32(features))],
                        )?;
                        out.remove("probabilities")
                            .context("the head has no probabilities output")?
                    }
                    None => predict(runtime, options, &model, data, &data.val, config.batch)?,
                };
                let selected = data.labels.select(&data.val);
                let targets = selected.targets(&[]);
                let loss = host_loss(trainer.spec().loss, &probs, &targets) + l2(trainer)?;
                let (correct, judged) = judge(&probs.view(), &targets);
                (
                    loss,
                    correct as f64 / judged as f64,
                    macro_auc(&probs.view(), &targets),
                )
            };
            let elapsed = started.elapsed().as_secs_f64();
            let record = EpochRecord {
                epoch: epoch + 1,
                loss: progress.loss_sum / progress.seen as f64,
                accuracy: progress.correct as f64 / progress.judged as f64,
                val_loss,
                val_accuracy,
                val_auc,
                lr,
                seconds: progress.epoch_seconds + elapsed,
            };
            progress.seconds += elapsed;
            progress.history.push(record.clone());
            sink.epoch(&record, &progress.history)?;
            if progress
                .best
                .update(epoch + 1, config.checkpoint.of(&record))
            {
                sink.best(&model, &record)?;
            }
            config
                .schedule
                .observe(&mut progress.plateau, record.val_loss);
            if let (Some(early), Some(state)) = (&config.early_stopping, progress.early.as_mut()) {
                let best_before = state.best.epoch;
                let stop_now = early.should_stop(state, epoch + 1, early.monitor.of(&record));
                if early.restore_best && state.best.epoch != best_before {
                    *restore = Some(trainer.state()?);
                }
                progress.stopped_early = stop_now;
            }
            progress.epoch += 1;
            progress.step = 0;
            sink.checkpoint(progress, trainer, restore.as_ref())?;
            if stop.load(Ordering::SeqCst)
                && progress.epoch < config.epochs
                && !progress.stopped_early
            {
                return Ok(Outcome::Interrupted);
            }
        }
        Ok(Outcome::Finished)
    }
}

/// Records in `model`'s metadata the epoch (1-based) its weights are from, so that a model
/// file, and the predictions made with it, say what they hold.
pub fn mark_epoch(model: &mut ortl_onnx::Model, epoch: usize) {
    model.metadata.insert(
        ortl_models::classifier::keys::EPOCH.into(),
        epoch.to_string(),
    );
}

/// Probabilities for `indices`, in batches, through the exported inference model.
pub fn predict(
    runtime: &Runtime,
    options: &SessionOptions,
    model: &ortl_onnx::Model,
    data: &Dataset,
    indices: &[usize],
    batch: usize,
) -> anyhow::Result<ArrayD<f32>> {
    let mut session = runtime.load_model(options, model)?;
    let mut parts = Vec::new();
    for chunk in indices.chunks(batch.max(1)) {
        let mut out =
            ortl_runtime::run(&mut session, vec![("image", Feed::U8(data.gather(chunk)))])?;
        parts.push(
            out.remove("probabilities")
                .ok_or_else(|| anyhow::anyhow!("model has no probabilities output"))?,
        );
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    Ok(ndarray::concatenate(Axis(0), &views)?)
}

/// Labels predicted right and labels judged: the most probable class against each image's
/// class, or each known finding against p ≥ 0.5 (Keras' binary accuracy).
fn judge(probs: &ndarray::ArrayViewD<f32>, targets: &Targets) -> (usize, usize) {
    match targets {
        Targets::Classes(labels) => {
            let correct = probs
                .outer_iter()
                .zip(labels.iter())
                .filter(|(row, label)| {
                    row.iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map(|(i, _)| i)
                        == Some(**label)
                })
                .count();
            (correct, labels.len())
        }
        Targets::Findings { labels, .. } => {
            let mut judged = (0, 0);
            for (row, known) in probs.outer_iter().zip(labels.iter()) {
                for (&p, t) in row.iter().zip(known.iter()) {
                    if let Some(t) = t {
                        judged.0 += usize::from((p >= 0.5) == *t);
                        judged.1 += 1;
                    }
                }
            }
            judged
        }
    }
}

/// The mean ROC AUC over classes (one against the rest; a two-class model's is its
/// positive class's alone) or findings (known labels only), leaving out those without
/// both values; NaN when none has both.
pub fn macro_auc(probs: &ndarray::ArrayViewD<f32>, targets: &Targets) -> f64 {
    let columns = probs.shape().get(1).copied().unwrap_or(0);
    let auc_of = |column: usize| {
        let (labels, scores): (Vec<bool>, Vec<f64>) = probs
            .outer_iter()
            .enumerate()
            .filter_map(|(i, row)| {
                let label = match targets {
                    Targets::Classes(labels) => Some(labels[i] == column),
                    Targets::Findings { labels, .. } => labels[i][column],
                };
                label.map(|y| (y, f64::from(row[column])))
            })
            .unzip();
        ortl_metrics::roc_auc(&labels, &scores)
    };
    let aucs: Vec<f64> = match targets {
        Targets::Classes(_) if columns == 2 => vec![auc_of(1)],
        _ => (0..columns).map(auc_of).filter(|a| !a.is_nan()).collect(),
    };
    match aucs.len() {
        0 => f64::NAN,
        n => aucs.iter().sum::<f64>() / n as f64,
    }
}

/// The training loss recomputed from probabilities (Keras reports val_loss this way,
/// without class weights); for findings, binary cross-entropy over the known labels
/// divided by the number of findings, as the training loss with positive weights 1.
pub fn host_loss(loss: Loss, probs: &ArrayD<f32>, targets: &Targets) -> f64 {
    let eps = 1e-7f64;
    let bce = |p: f64, t: bool| {
        let p = p.clamp(eps, 1.0 - eps);
        if t { -p.ln() } else { -(1.0 - p).ln() }
    };
    let total: f64 = probs
        .outer_iter()
        .enumerate()
        .map(|(i, row)| {
            let row: Vec<f64> = row.iter().map(|&p| f64::from(p)).collect();
            let classes = row.len() as f64;
            match (targets, loss) {
                (Targets::Findings { labels, .. }, _) => {
                    row.iter()
                        .zip(labels[i].iter())
                        .filter_map(|(&p, t)| t.map(|t| bce(p, t)))
                        .sum::<f64>()
                        / classes
                }
                (Targets::Classes(labels), Loss::SoftmaxCrossEntropy) => {
                    -row[labels[i]].max(eps).ln()
                }
                (Targets::Classes(labels), Loss::SigmoidCategorical) => {
                    let sum: f64 = row.iter().sum();
                    -(row[labels[i]] / sum).clamp(eps, 1.0 - eps).ln()
                }
                (Targets::Classes(labels), Loss::SigmoidBinary) => {
                    row.iter()
                        .enumerate()
                        .map(|(c, &p)| bce(p, c == labels[i]))
                        .sum::<f64>()
                        / classes
                }
            }
        })
        .sum();
    total / targets.len().max(1) as f64
}

/// The current L2 penalty (Keras adds regularisation to the validation loss too).
fn l2(trainer: &Trainer) -> Result<f64, crate::trainer::TrainError> {
    let mut total = 0.0;
    for (name, c) in trainer.l2_terms() {
        let squares: f64 = trainer
            .value(&name)?
            .iter()
            .map(|&w| f64::from(w) * f64::from(w))
            .sum();
        total += f64::from(c) * squares;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_weights_display_as_the_flag_and_parse_back() {
        for text in ["none", "auto", "1,2.5,0"] {
            let weights: ClassWeights = text.parse().unwrap();
            assert_eq!(weights.to_string(), text);
        }
    }
}
