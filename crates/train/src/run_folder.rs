//! The run folder as training fills it: history.csv and best.onnx after each epoch, the
//! checkpoint, the step log, and the console told of each step and epoch.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ortl_cli::{AtomicFile, usage};
use ortl_manifest::TrainSettings;

use crate::Trainer;
use crate::fit::{EpochRecord, Progress, Sink, State, StepRecord};
use crate::run::Console;

/// Files a fresh run replaces; anything else in the folder stays.
const OUTPUTS: [&str; 4] = ["train.json", "history.csv", "best.onnx", "model.onnx"];

/// A folder holding a finished run (train.json) is only replaced when `replace`.
pub fn prepare(dir: &Path, replace: bool) -> Result<()> {
    if dir.join("train.json").exists() && !replace {
        return Err(usage(format!(
            "{} holds a finished run; pass --force to replace it",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for stale in OUTPUTS {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    Ok(())
}

pub fn save_model(model: &ortl_onnx::Model, path: &Path) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(&ortl_onnx::io::to_bytes(model))?;
    file.commit()
}

/// What the training loop reports to while a run trains into `dir`.
pub struct RunFolder<'a> {
    pub dir: PathBuf,
    /// The run's last epoch.
    pub epochs: usize,
    pub settings: TrainSettings,
    pub step_log: Option<StepLog>,
    pub console: &'a mut dyn Console,
}

/// `--step-log`: a CSV that grows by one flushed row per step (a log, so appended in place
/// rather than written atomically).
pub struct StepLog {
    path: PathBuf,
    csv: csv::Writer<std::fs::File>,
}

impl StepLog {
    /// Opens `path`, continuing it when `resume` finds one.
    pub fn open(path: &Path, resume: bool) -> Result<Self> {
        let append = resume && path.is_file();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .with_context(|| format!("cannot write the step log {}", path.display()))?;
        let csv = csv::WriterBuilder::new()
            .has_headers(!append)
            .from_writer(file);
        Ok(Self {
            path: path.to_path_buf(),
            csv,
        })
    }
}

impl Sink for RunFolder<'_> {
    fn step(&mut self, record: &StepRecord) -> Result<()> {
        self.console.step(record, self.epochs);
        if let Some(log) = &mut self.step_log {
            log.csv
                .serialize(record)
                .and_then(|()| Ok(log.csv.flush()?))
                .with_context(|| format!("writing the step log {}", log.path.display()))?;
        }
        Ok(())
    }

    fn epoch(&mut self, r: &EpochRecord, history: &[EpochRecord]) -> Result<()> {
        self.console.line(&format!(
            "Epoch {}/{} - {:.1}s - loss: {:.4} - accuracy: {:.4} - val_loss: {:.4} - val_accuracy: {:.4} - val_auc: {:.4} - lr: {:.3e}",
            r.epoch,
            self.epochs,
            r.seconds,
            r.loss,
            r.accuracy,
            r.val_loss,
            r.val_accuracy,
            r.val_auc,
            r.lr
        ));
        let mut file = AtomicFile::create(&self.dir.join("history.csv"))?;
        ortl_manifest::history::write(&mut file, history)?;
        file.commit()
    }

    fn best(&mut self, model: &ortl_onnx::Model, _record: &EpochRecord) -> Result<()> {
        save_model(model, &self.dir.join("best.onnx"))
    }

    fn checkpoint(
        &mut self,
        progress: &Progress,
        trainer: &Trainer,
        restore: Option<&State>,
    ) -> Result<()> {
        crate::checkpoint::save(
            &self.dir,
            &self.settings,
            progress,
            &trainer.state()?,
            restore,
        )
    }
}
