//! A whole ortl-train run from resolved [`Settings`]: load the backbone, assemble the
//! classifier, build the step graph, train phase by phase into the run folder, write
//! model.onnx and train.json. Everything a person should see goes to a [`Console`], so the
//! binary draws it on stderr and a test reads it.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use ortl_cli::{AtomicFile, usage};
use ortl_manifest::train_record::{Environment, TrainRecord, TrainSettings, TrainSummary};
use ortl_models::{ClassifierSpec, classifier};

use crate::Trainer;
use crate::args::Preset;
use crate::callbacks::Metric;
use crate::fit::{ClassWeights, Dataset, FeatureCache, Fitter, Progress, State, StepRecord};
use crate::graph::{ConvLayout, TrainSpec, Trainable};
use crate::run_folder::{self, RunFolder, StepLog};
use crate::settings::{Phase, Settings, Start};

/// What a person watching a run sees.
pub trait Console {
    /// A line of progress, a resolved setting or a warning, whole (`ortl-train: …`).
    fn line(&mut self, text: &str);

    /// An optimizer step ended, in a run whose last epoch is `epochs`: for a live display
    /// between the lines.
    fn step(&mut self, _record: &StepRecord, _epochs: usize) {}

    /// The flag that, once raised, stops training after the step in progress (it then
    /// checkpoints and the run fails as interrupted). Asked for once, as training starts:
    /// the binary raises it on Ctrl-C and SIGTERM from then on, so that until then they
    /// end the process at once.
    fn stop_flag(&mut self) -> Result<Arc<AtomicBool>> {
        Ok(Arc::default())
    }
}

/// Keeps the lines: what a test reads.
impl Console for Vec<String> {
    fn line(&mut self, text: &str) {
        self.push(text.into());
    }
}

/// How a run ended, when it did not fail.
#[derive(Debug)]
pub enum Outcome {
    /// A finished run: what its train.json records.
    Trained(Box<TrainRecord>),
    /// `--export-step-graph`: the step graph is written, with this many nodes; nothing
    /// trained.
    StepGraphExported { nodes: usize },
}

/// Runs `settings` to the end, telling `console` how it goes. Errors a user fixes by
/// changing the command line carry [`ortl_cli::UsageError`]; an interrupted run's
/// [`ortl_cli::Interrupted`].
pub fn run(settings: Settings, console: &mut dyn Console) -> Result<Outcome> {
    let s = &settings;
    let set = &s.tensors;
    console.line(&format!(
        "ortl-train: {} from {}; loading the backbone {}{} …",
        ortl_cli::count(set.rows.len(), "stored image", "stored images"),
        set.dir.display(),
        s.backbone,
        crate::backbone::weights_wanted(&s.backbone, s.weights.as_ref())
    ));
    // Before any output is replaced: a download that fails (no network, a wrong name)
    // leaves the previous run as it was.
    let backbone = crate::backbone::load(s)?;
    // One run per output folder at a time (checked before anything is replaced).
    let _lock = match &s.export_step_graph {
        None => Some(ortl_cli::OutputLock::acquire(&s.output)?),
        Some(_) => None,
    };
    if s.export_step_graph.is_none()
        && let Start::Fresh { replace } = s.start
    {
        run_folder::prepare(&s.output, replace)?;
    }
    let runtime = s.runtime.init()?;
    let options = s.runtime.session_options();
    // Checked before any graph is built, so a too-small image is one line, not an error
    // deep inside the gradient graph.
    if let Some(minimum) = backbone.minimum_size()
        && (set.meta.height < minimum || set.meta.width < minimum)
    {
        return Err(usage(format!(
            "{}: images are {}x{}, below {}'s minimum of {minimum}x{minimum}; make the tensors again with ortl-augment --size {minimum}x{minimum} or larger",
            set.dir.display(),
            set.meta.height,
            set.meta.width,
            backbone.name
        )));
    }
    if let Some(why) = backbone.unfit_size(set.meta.height, set.meta.width) {
        return Err(usage(format!("{}: {why}", s.backbone)));
    }
    console.line(&format!(
        "ortl-train: backbone {} ({} parameters, {}), cut {}, normalisation {} ({})",
        backbone.name,
        backbone.parameter_count(),
        backbone.weights,
        backbone.cut,
        backbone.normalization,
        backbone.normalization_reason
    ));
    if s.preset == Some(Preset::Tutorial) && !backbone.weights.is_pretrained() {
        console.line(&format!(
            "ortl-train: warning: the tutorial fine-tunes ImageNet weights, but this {} starts from random weights; give --weights imagenet (downloaded once and cached) or a pretrained classifier as --backbone FILE.onnx (README: pretrained weights)",
            backbone.name
        ));
    }
    let spec = ClassifierSpec {
        task: set.meta.task,
        classes: set.meta.classes.clone(),
        height: set.meta.height,
        width: set.meta.width,
        head: s.head.clone(),
        seed: s.seed,
    };
    let (mut model, head) = {
        let (model, mut head) = classifier(&backbone, &spec);
        if let Some(coefficient) = s.l2 {
            head.penalise_dense_kernels(&model.graph, coefficient);
        }
        (model, head)
    };
    // ortl-infer must decode and resize new images exactly as these tensors were made.
    model.metadata.insert(
        ortl_models::classifier::keys::RESIZE.into(),
        set.meta.filter.to_string(),
    );
    model.metadata.insert(
        ortl_models::classifier::keys::WINDOW.into(),
        set.meta.window.to_string(),
    );
    // The convolution layout, decided here once: where ONNX Runtime has blocked kernels is
    // known only now that it is loaded.
    let block = s
        .conv_layout
        .resolve(s.runtime.device, runtime.nchwc_block())?;
    let train_spec = TrainSpec {
        trainable: s.trainable.clone(),
        bn_mode: s.bn_mode,
        head_bn_momentum: ortl_models::heads::BN_MOMENTUM,
        backbone_bn_momentum: ortl_models::backbone::TRAINING_BN_MOMENTUM,
        loss: s.loss,
        optimizer: s.optimizer(),
        clip_norm: s.clip_norm,
        conv_layout: match block {
            Some(_) => ConvLayout::Blocked,
            None => ConvLayout::Plain,
        },
        update_on: s.update_on,
    };
    // An operator without a gradient rule in the part that trains is named before any
    // data is read, with the freeze that trains around it.
    if let Some((node, op)) = crate::graph::untrainable_node(&model, &s.widest_trainable())? {
        return Err(usage(format!(
            "--backbone {}: node '{node}' ({op}) has no gradient rule in ortl, so the layers before it cannot train; add --freeze upto:{node} to train what follows it, or --freeze backbone to train the head only",
            s.backbone
        )));
    }
    if let Some(path) = &s.export_step_graph {
        console.line("ortl-train: building the training step graph …");
        let mut step = crate::build_step(&model, &head, &train_spec)?;
        crate::graph::apply_conv_layout(
            &mut step,
            train_spec.conv_layout,
            s.runtime.device,
            block,
        )?;
        run_folder::save_model(&step.model, path)?;
        let nodes = step.model.graph.nodes.len();
        console.line(&format!(
            "ortl-train: wrote the step graph ({nodes} nodes) to {}",
            path.display()
        ));
        return Ok(Outcome::StepGraphExported { nodes });
    }
    let data = Dataset::load(set, s.val_fold)?;
    let recorded = s.record(&backbone);
    let phases = s.phases();
    let total_epochs = phases.last().map_or(0, |p| p.until);
    let mut config = s.fit_config(total_epochs);
    let (class_weights, positive_weights) = data.loss_weights(&config).map_err(usage)?;
    for (flag, setting, weights) in [
        ("--class-weights", &s.class_weights, class_weights),
        ("--pos-weight", &s.positive_weights, positive_weights),
    ] {
        if *setting != ClassWeights::None && !weights.is_empty() {
            let each: Vec<String> = data
                .classes
                .iter()
                .zip(&weights)
                .map(|(name, w)| format!("{name} {w:.3}"))
                .collect();
            console.line(&format!(
                "ortl-train: {flag} {setting}: {}",
                each.join(", ")
            ));
        }
    }
    let resuming = s.start == Start::Resume;
    let (mut progress, mut restore, mut resumed_state) = if resuming {
        let saved = resume(&s.output, &recorded, console)?;
        (saved.progress, saved.restore, Some(saved.state))
    } else {
        (Progress::start(&config), None, None)
    };
    let stop = console.stop_flag()?;

    let mut trainer: Option<Trainer> = None;
    let mut folder = RunFolder {
        dir: s.output.clone(),
        epochs: total_epochs,
        settings: recorded.clone(),
        step_log: match &s.step_log {
            Some(path) => Some(StepLog::open(path, resuming)?),
            None => None,
        },
        console,
    };
    let mut phase_start = 0;
    for Phase {
        trainable,
        lr,
        until,
    } in phases
    {
        let first_epoch = std::mem::replace(&mut phase_start, until);
        if progress.epoch >= until || progress.stopped_early {
            continue;
        }
        if let Some(previous) = trainer.take() {
            // Between phases the weights carry over; the optimizer starts afresh (as Keras'
            // recompile in the two-phase recipe).
            model = previous.export()?;
        }
        let spec = TrainSpec {
            trainable: trainable.clone(),
            ..train_spec.clone()
        };
        let mut cache = if trainable == Trainable::Head && s.feature_cache {
            let extractor =
                crate::graph::feature_extractor(&model, &head.pooled, backbone.channels);
            Some(FeatureCache::new(
                runtime,
                &options,
                &extractor,
                data.labels.len(),
            )?)
        } else {
            None
        };
        folder.console.line(&format!(
            "ortl-train: building the training step ({}) and its ONNX Runtime session …",
            if trainable == Trainable::Head {
                "head only"
            } else {
                "backbone and head"
            }
        ));
        let mut current = match &cache {
            Some(_) => Trainer::on_features(
                runtime,
                &options,
                model.clone(),
                &head,
                spec,
                backbone.channels,
            )?,
            None => Trainer::new(runtime, &options, model.clone(), &head, spec)?,
        };
        current.label_smoothing = s.label_smoothing;
        if let Some(state) = resumed_state.take() {
            // Resuming exactly at a phase boundary: the new phase's optimizer starts afresh.
            let fresh_optimizer =
                first_epoch > 0 && progress.epoch == first_epoch && progress.step == 0;
            if fresh_optimizer {
                progress.steps_done = 0;
            }
            let carried: State = state
                .into_iter()
                .filter(|(name, _)| {
                    !(fresh_optimizer && current.step_graph.optimizer_state.contains(name))
                })
                .collect();
            current.set_state(&carried)?;
        }
        let layout = match &current.blocked {
            Some(b) if s.verbose => format!(
                "blocked convolutions ({} Conv, {} ConvTranspose, {} per-channel products rewritten; {} nodes fused into them; {} strided dX as batch GEMMs)",
                b.convs, b.transposed, b.scales, b.fused, b.strided
            ),
            Some(_) => "blocked convolutions".into(),
            None => "plain convolutions".into(),
        };
        let epochs = match progress.epoch + 1 {
            first if first == until => format!("epoch {first}"),
            first => format!("epochs {first}–{until}"),
        };
        folder.console.line(&format!(
            "ortl-train: {} training images ({} stored variants), {} validation images, {} trainable tensors, {layout}, {epochs}",
            data.train.len(),
            data.train.iter().map(Vec::len).sum::<usize>(),
            data.val.len(),
            current.step_graph.params.len(),
        ));
        config.epochs = until;
        config.lr = lr;
        let outcome = Fitter {
            trainer: &mut current,
            data: &data,
            config: &config,
            runtime,
            options: &options,
            sink: &mut folder,
            stop: &stop,
            cache: cache.as_mut(),
        }
        .fit(&mut progress, &mut restore)?;
        if outcome == crate::fit::Outcome::Interrupted {
            return Err(interrupted(&progress, &s.output));
        }
        trainer = Some(current);
        progress.steps_done = 0;
    }
    let mut trainer = trainer.ok_or_else(|| {
        usage("nothing to train: the run already reached --epochs; raise --epochs to continue it")
    })?;
    // restore_best: the weights of the best epoch by the early-stopping metric, whether or
    // not stopping triggered (Keras' restore_best_weights restores only when it stops).
    let weights_epoch = match (&restore, &progress.early) {
        (Some(_), Some(early)) => early.best.epoch,
        _ => Some(progress.epoch),
    };
    if let Some(state) = restore {
        trainer.set_state(&state)?;
    }
    let mut model = trainer.export()?;
    if let Some(epoch) = weights_epoch {
        crate::fit::mark_epoch(&mut model, epoch);
    }
    run_folder::save_model(&model, &s.output.join("model.onnx"))?;
    let record = TrainRecord {
        format: ortl_manifest::train_record::VERSION,
        settings: recorded,
        environment: environment(s, runtime, block),
        summary: progress.summary(),
    };
    let mut file = AtomicFile::create(&s.output.join("train.json"))?;
    file.write_all(record.to_json().as_bytes())?;
    file.commit()?;
    folder
        .console
        .line(&summary_line(&record.summary, &s.output, s.checkpoint));
    Ok(Outcome::Trained(Box::new(record)))
}

/// The checkpoint of the run in `output`, if its settings are `settings` (but `--epochs`).
fn resume(
    output: &Path,
    settings: &TrainSettings,
    console: &mut dyn Console,
) -> Result<crate::checkpoint::Checkpoint> {
    let saved = crate::checkpoint::load(output).map_err(|e| usage(ortl_cli::one_line(&e)))?;
    let differing = settings.changed_since(&saved.settings);
    if !differing.is_empty() {
        return Err(usage(format!(
            "--resume needs the settings of the first run; these differ: {}",
            differing.join("; ")
        )));
    }
    console.line(&format!(
        "ortl-train: resuming at epoch {}, step {}",
        saved.progress.epoch + 1,
        saved.progress.step
    ));
    Ok(saved)
}

/// Ctrl-C's exit: where the run stopped and how to continue it.
fn interrupted(progress: &Progress, output: &Path) -> anyhow::Error {
    let position = if progress.step > 0 {
        format!(
            "in epoch {} after step {}",
            progress.epoch + 1,
            progress.step
        )
    } else {
        format!("after epoch {}", progress.epoch)
    };
    ortl_cli::interrupted(format!(
        "interrupted {position}; the checkpoint is in {}; continue with the same command plus --resume",
        output.join(crate::checkpoint::DIR).display()
    ))
}

/// The run's last line: epochs, time, speed and the best epoch.
fn summary_line(summary: &TrainSummary, output: &Path, checkpoint: Metric) -> String {
    let best = match summary.best_epoch {
        Some(epoch) => format!(
            "best epoch by {} {epoch} -> {}",
            checkpoint.name(),
            output.join("best.onnx").display()
        ),
        // The checkpoint metric was never defined (no validation images for val_*).
        None => format!("no best epoch by {} (no best.onnx)", checkpoint.name()),
    };
    format!(
        "ortl-train: {} in {:.1} s ({:.1} training images/s){}; {best}",
        ortl_cli::count(summary.epochs_run, "epoch", "epochs"),
        summary.seconds,
        summary.images_per_second,
        if summary.stopped_early {
            ", stopped early"
        } else {
            ""
        },
    )
}

/// Where and with what this run ran: `block` is the NCHWc block its convolutions ran in
/// (`None`: plain).
fn environment(s: &Settings, runtime: &ortl_runtime::Runtime, block: Option<i64>) -> Environment {
    Environment {
        trained_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        git_commit: git_commit(),
        ortl_version: env!("CARGO_PKG_VERSION").into(),
        onnxruntime: ortl_runtime::ORT_VERSION.into(),
        onnxruntime_library: runtime.library.clone(),
        device: s.runtime.device.to_string(),
        threads: s.runtime.threads,
        conv_layout: match block {
            Some(block) => format!("blocked (NCHW{block}c)"),
            None => "plain".into(),
        },
        update_on: Some(
            clap::ValueEnum::to_possible_value(&s.update_on)
                .expect("every variant has a name")
                .get_name()
                .into(),
        ),
    }
}

/// The commit of the working directory's git checkout, when there is one.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
