//! Keras' callbacks, each independent: early stopping and best-model checkpointing, with
//! the mode (min or max) inferred from the monitored metric's name as Keras does.

use std::str::FromStr;

/// A metric of `history.csv`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
pub enum Metric {
    Loss,
    #[value(alias = "acc")]
    Accuracy,
    #[value(name = "val_loss")]
    ValLoss,
    #[value(name = "val_accuracy", alias = "val_acc")]
    ValAccuracy,
    /// Macro ROC AUC on validation (history.csv's val_auc).
    #[value(name = "val_auc")]
    ValAuc,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::Accuracy => "accuracy",
            Metric::ValLoss => "val_loss",
            Metric::ValAccuracy => "val_accuracy",
            Metric::ValAuc => "val_auc",
        }
    }

    /// This metric's value in an epoch's record.
    pub fn of(self, epoch: &ortl_manifest::history::Epoch) -> f64 {
        match self {
            Metric::Loss => epoch.loss,
            Metric::Accuracy => epoch.accuracy,
            Metric::ValLoss => epoch.val_loss,
            Metric::ValAccuracy => epoch.val_accuracy,
            Metric::ValAuc => epoch.val_auc,
        }
    }

    /// Losses improve downwards, accuracies upwards.
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            Metric::Accuracy | Metric::ValAccuracy | Metric::ValAuc
        )
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, false).map_err(|_| {
            format!("unknown metric '{s}' (use loss, accuracy, val_loss, val_accuracy or val_auc)")
        })
    }
}

/// Tracks the best value of a metric.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Best {
    pub metric: Metric,
    pub min_delta: f64,
    pub value: Option<f64>,
    pub epoch: Option<usize>,
}

impl Best {
    pub fn new(metric: Metric, min_delta: f64) -> Self {
        Self {
            metric,
            min_delta,
            value: None,
            epoch: None,
        }
    }

    /// Records `value` at `epoch`; true if it is an improvement by more than `min_delta`.
    pub fn update(&mut self, epoch: usize, value: f64) -> bool {
        let better = match self.value {
            None => !value.is_nan(),
            Some(best) if self.metric.higher_is_better() => value > best + self.min_delta,
            Some(best) => value < best - self.min_delta,
        };
        if better {
            self.value = Some(value);
            self.epoch = Some(epoch);
        }
        better
    }
}

/// `--early-stopping monitor=loss,patience=10[,min_delta=0][,restore_best]`: configuration
/// only; what it has seen is an [`EarlyStoppingState`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EarlyStopping {
    pub monitor: Metric,
    pub min_delta: f64,
    pub patience: usize,
    pub restore_best: bool,
}

/// The best epoch so far by the monitored metric and the epochs since it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EarlyStoppingState {
    pub best: Best,
    wait: usize,
}

impl EarlyStopping {
    pub fn start(&self) -> EarlyStoppingState {
        EarlyStoppingState {
            best: Best::new(self.monitor, self.min_delta),
            wait: 0,
        }
    }

    /// Records the epoch's value in `state`; true when training should stop.
    pub fn should_stop(&self, state: &mut EarlyStoppingState, epoch: usize, value: f64) -> bool {
        if state.best.update(epoch, value) {
            state.wait = 0;
            false
        } else {
            state.wait += 1;
            state.wait >= self.patience
        }
    }
}

/// The `--early-stopping` spelling with every part stated; parses back to the same
/// configuration (the waiting state is not part of it).
impl std::fmt::Display for EarlyStopping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "monitor={},patience={},min_delta={}",
            self.monitor.name(),
            self.patience,
            self.min_delta
        )?;
        if self.restore_best {
            write!(f, ",restore_best")?;
        }
        Ok(())
    }
}

impl FromStr for EarlyStopping {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (mut monitor, mut patience, mut min_delta, mut restore) =
            (Metric::ValLoss, 10usize, 0.0f64, false);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("monitor", m)) => monitor = m.parse()?,
                Some(("patience", p)) => {
                    patience = p
                        .parse()
                        .map_err(|_| format!("patience '{p}' is not a whole number"))?
                }
                Some(("min_delta", d)) => {
                    min_delta = d
                        .parse()
                        .map_err(|_| format!("min_delta '{d}' is not a number"))?
                }
                None if part == "restore_best" => restore = true,
                _ => {
                    return Err(format!(
                        "--early-stopping: unknown part '{part}' (monitor=M,patience=N,min_delta=D,restore_best)"
                    ));
                }
            }
        }
        Ok(Self {
            monitor,
            min_delta,
            patience,
            restore_best: restore,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_displays_every_part_and_parses_back() {
        let stop: EarlyStopping = "patience=3,restore_best".parse().unwrap();
        let text = stop.to_string();
        assert_eq!(text, "monitor=val_loss,patience=3,min_delta=0,restore_best");
        let back: EarlyStopping = text.parse().unwrap();
        assert_eq!(
            back,
            EarlyStopping {
                monitor: Metric::ValLoss,
                min_delta: 0.0,
                patience: 3,
                restore_best: true
            }
        );
    }

    #[test]
    fn early_stopping_waits_patience_epochs_without_improvement() {
        let stop: EarlyStopping = "monitor=loss,patience=2,min_delta=0.01".parse().unwrap();
        let mut state = stop.start();
        assert!(!stop.should_stop(&mut state, 0, 1.0));
        assert!(
            !stop.should_stop(&mut state, 1, 0.995),
            "within min_delta: no improvement, wait 1"
        );
        assert!(stop.should_stop(&mut state, 2, 0.999), "wait 2 = patience");
        assert_eq!(state.best.epoch, Some(0));
    }

    #[test]
    fn best_follows_the_metrics_direction() {
        let mut acc = Best::new("val_accuracy".parse().unwrap(), 0.0);
        assert!(acc.update(0, 0.5));
        assert!(!acc.update(1, 0.4));
        assert!(acc.update(2, 0.7));
        assert_eq!(acc.epoch, Some(2));
        let mut loss = Best::new(Metric::ValLoss, 0.0);
        assert!(loss.update(0, 0.5));
        assert!(loss.update(1, 0.4));
        assert!(!loss.update(2, f64::NAN));
        assert!("monitor=f1".parse::<EarlyStopping>().is_err());
    }
}
