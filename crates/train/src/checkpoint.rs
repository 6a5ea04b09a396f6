//! `run/checkpoint/`: what `--resume` needs to continue a run exactly — every state tensor
//! (parameters, optimizer state, BatchNorm statistics; `.npy`, readable by numpy), the best
//! weights kept for `restore_best`, the loop's [`Progress`] and the settings the run was
//! started with. Written whole under a temporary name and swapped into place, so an
//! interruption while saving leaves the previous checkpoint intact.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use anyhow::{Context, Result};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use serde::{Deserialize, Serialize};

use ortl_manifest::TrainSettings;

use crate::fit::{Progress, State};

pub const DIR: &str = "checkpoint";

#[derive(Serialize, Deserialize)]
struct Index {
    settings: TrainSettings,
    progress: Progress,
    /// State tensor names in file order: `state-N.npy`.
    state: Vec<String>,
    /// Names of the restore_best snapshot, if any: `restore-N.npy`.
    restore: Option<Vec<String>>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    pub settings: TrainSettings,
    pub progress: Progress,
    pub state: State,
    pub restore: Option<State>,
}

pub fn save(
    run: &Path,
    settings: &TrainSettings,
    progress: &Progress,
    state: &State,
    restore: Option<&State>,
) -> Result<()> {
    let out = ortl_cli::AtomicDir::create(&run.join(DIR), true)?;
    let write_all = |prefix: &str, tensors: &State| -> Result<Vec<String>> {
        for (i, value) in tensors.values().enumerate() {
            let path = out.staging().join(format!("{prefix}-{i}.npy"));
            let mut file = BufWriter::new(
                File::create(&path).with_context(|| format!("writing {}", path.display()))?,
            );
            value
                .write_npy(&mut file)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(tensors.keys().cloned().collect())
    };
    let index = Index {
        settings: settings.clone(),
        progress: progress.clone(),
        state: write_all("state", state)?,
        restore: restore.map(|r| write_all("restore", r)).transpose()?,
    };
    std::fs::write(
        out.staging().join("checkpoint.json"),
        serde_json::to_vec(&index)?,
    )?;
    out.commit()
}

pub fn load(run: &Path) -> Result<Checkpoint> {
    let dir = run.join(DIR);
    let text = std::fs::read_to_string(dir.join("checkpoint.json")).with_context(|| {
        format!(
            "{}: no checkpoint to resume from (it is written after every epoch)",
            dir.display()
        )
    })?;
    let index: Index = serde_json::from_str(&text)
        .with_context(|| format!("{}: not an ortl checkpoint", dir.display()))?;
    let read_all = |prefix: &str, names: &[String]| -> Result<State> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let path = dir.join(format!("{prefix}-{i}.npy"));
                let file = BufReader::new(
                    File::open(&path).with_context(|| format!("reading {}", path.display()))?,
                );
                let value = ArrayD::<f32>::read_npy(file)
                    .with_context(|| format!("reading {}", path.display()))?;
                Ok((name.clone(), value))
            })
            .collect()
    };
    Ok(Checkpoint {
        state: read_all("state", &index.state)?,
        restore: index
            .restore
            .as_deref()
            .map(|r| read_all("restore", r))
            .transpose()?,
        settings: index.settings,
        progress: Progress {
            // Checkpoints from before `judged` were single-label: one judgement per image seen.
            judged: match index.progress.judged {
                0 => index.progress.seen,
                judged => judged,
            },
            ..index.progress
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::{ClassWeights, FitConfig};

    /// A checkpoint written before `judged` existed resumes with one judgement per image
    /// seen, so the epoch's accuracy stays correct / seen (not above 1).
    #[test]
    fn a_checkpoint_from_before_judged_counts_the_images_seen() {
        let dir = tempfile::tempdir().unwrap();
        let config = FitConfig {
            epochs: 2,
            batch: 4,
            lr: 1e-3,
            schedule: crate::schedule::Schedule::Constant,
            early_stopping: None,
            checkpoint: crate::callbacks::Metric::ValAccuracy,
            class_weights: ClassWeights::None,
            positive_weights: ClassWeights::None,
            seed: 1,
        };
        let mut progress = Progress::start(&config);
        (progress.seen, progress.correct, progress.judged) = (12, 9, 12);
        let settings = ortl_manifest::samples::train_record().settings;
        save(dir.path(), &settings, &progress, &State::new(), None).unwrap();
        let path = dir.path().join(DIR).join("checkpoint.json");
        let mut index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        index["progress"].as_object_mut().unwrap().remove("judged");
        std::fs::write(&path, index.to_string()).unwrap();
        assert_eq!(load(dir.path()).unwrap().progress.judged, 12);
    }
}
