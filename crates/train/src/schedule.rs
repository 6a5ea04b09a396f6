//! Learning-rate schedules, evaluated per epoch (as Keras' `LearningRateScheduler` does)
//! except `onecycle` and cosine warm-up, which are per step.
//!
//! - `constant`
//! - `exp:BASE,RATE,OFFSET` — BASE · RATE^(epoch + OFFSET); the tutorial's
//!   `1e-5 * 0.99 ** (epoch + 100)` is `exp:1e-5,0.99,100` (the base replaces `--lr`).
//! - `step:EVERY,FACTOR` — lr · FACTOR^⌊epoch / EVERY⌋.
//! - `cosine[:WARMUP]` — linear warm-up over WARMUP epochs, then half a cosine to 0.
//! - `onecycle` — linear rise to lr over the first 30 % of steps, cosine fall to lr/1e4.
//! - `plateau:PATIENCE,FACTOR` — multiply by FACTOR when val_loss has not improved for
//!   PATIENCE epochs.
//!
//! A [`Schedule`] is configuration only; what `plateau` has seen lives in a
//! [`PlateauState`] the training loop keeps (and checkpoints).

use std::f64::consts::PI;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Schedule {
    Constant,
    Exp { base: f64, rate: f64, offset: f64 },
    Step { every: usize, factor: f64 },
    Cosine { warmup: usize },
    OneCycle,
    Plateau { patience: usize, factor: f64 },
}

/// What a `plateau` schedule has seen: the best validation loss, the epochs since, and the
/// factor the rate is at.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlateauState {
    /// None until a finite loss is seen (JSON, which checkpoints use, has no infinity).
    best: Option<f64>,
    wait: usize,
    scale: f64,
}

impl Default for PlateauState {
    fn default() -> Self {
        Self {
            best: None,
            wait: 0,
            scale: 1.0,
        }
    }
}

/// The `--schedule` spelling (what train.json records); parses back to the same schedule.
impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Constant => write!(f, "constant"),
            Schedule::Exp { base, rate, offset } => write!(f, "exp:{base:e},{rate},{offset}"),
            Schedule::Step { every, factor } => write!(f, "step:{every},{factor}"),
            Schedule::Cosine { warmup: 0 } => write!(f, "cosine"),
            Schedule::Cosine { warmup } => write!(f, "cosine:{warmup}"),
            Schedule::OneCycle => write!(f, "onecycle"),
            Schedule::Plateau { patience, factor } => write!(f, "plateau:{patience},{factor}"),
        }
    }
}

impl FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, args) = s.split_once(':').unwrap_or((s, ""));
        let nums: Vec<f64> = if args.is_empty() {
            vec![]
        } else {
            args.split(',')
                .map(|a| {
                    a.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("'{a}' in --schedule {s} is not a number"))
                })
                .collect::<Result<_, _>>()?
        };
        let bad = || {
            format!(
                "--schedule {s}: expected constant, exp:BASE,RATE,OFFSET, step:EVERY,FACTOR, cosine[:WARMUP], onecycle or plateau:PATIENCE,FACTOR"
            )
        };
        match (name, nums.as_slice()) {
            ("constant", []) => Ok(Schedule::Constant),
            ("exp", [base, rate, offset]) => Ok(Schedule::Exp {
                base: *base,
                rate: *rate,
                offset: *offset,
            }),
            ("step", [every, factor]) if *every >= 1.0 => Ok(Schedule::Step {
                every: *every as usize,
                factor: *factor,
            }),
            ("cosine", []) => Ok(Schedule::Cosine { warmup: 0 }),
            ("cosine", [warmup]) => Ok(Schedule::Cosine {
                warmup: *warmup as usize,
            }),
            ("onecycle", []) => Ok(Schedule::OneCycle),
            ("plateau", [patience, factor]) => Ok(Schedule::Plateau {
                patience: *patience as usize,
                factor: *factor,
            }),
            _ => Err(bad()),
        }
    }
}

impl Schedule {
    /// The rate for 0-based `epoch`, step `step` of `steps_per_epoch`, out of `epochs`;
    /// `plateau` is the state [`Schedule::observe`] keeps.
    pub fn rate(
        &self,
        plateau: &PlateauState,
        lr: f64,
        epoch: usize,
        step: usize,
        steps_per_epoch: usize,
        epochs: usize,
    ) -> f64 {
        let progress =
            (epoch * steps_per_epoch + step) as f64 / (epochs * steps_per_epoch).max(1) as f64;
        match self {
            Schedule::Constant => lr,
            Schedule::Exp { base, rate, offset } => base * rate.powf(epoch as f64 + offset),
            Schedule::Step { every, factor } => lr * factor.powi((epoch / every) as i32),
            Schedule::Cosine { warmup } => {
                if epoch < *warmup {
                    lr * ((epoch * steps_per_epoch + step + 1) as f64
                        / (warmup * steps_per_epoch) as f64)
                } else {
                    let span = (epochs - warmup).max(1) as f64;
                    let t = ((epoch - warmup) as f64 + step as f64 / steps_per_epoch.max(1) as f64)
                        / span;
                    lr * 0.5 * (1.0 + (PI * t).cos())
                }
            }
            Schedule::OneCycle => {
                let peak = 0.3;
                if progress < peak {
                    lr * (0.04 + 0.96 * progress / peak)
                } else {
                    let t = (progress - peak) / (1.0 - peak);
                    let floor = lr / 1e4;
                    floor + (lr - floor) * 0.5 * (1.0 + (PI * t).cos())
                }
            }
            Schedule::Plateau { .. } => lr * plateau.scale,
        }
    }

    /// Feeds the epoch's validation loss to a `plateau` schedule's `state`; returns true
    /// when it cut the rate.
    pub fn observe(&self, state: &mut PlateauState, val_loss: f64) -> bool {
        if let Schedule::Plateau { patience, factor } = self {
            if val_loss < state.best.unwrap_or(f64::INFINITY) {
                state.best = Some(val_loss);
                state.wait = 0;
            } else {
                state.wait += 1;
                if state.wait >= *patience {
                    state.scale *= factor;
                    state.wait = 0;
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_flag_spelling_and_parses_back() {
        for text in [
            "constant",
            "exp:1e-5,0.99,100",
            "step:10,0.5",
            "cosine",
            "cosine:3",
            "onecycle",
            "plateau:4,0.2",
        ] {
            let schedule: Schedule = text.parse().unwrap();
            assert_eq!(schedule.to_string(), text);
            assert_eq!(schedule.to_string().parse::<Schedule>().unwrap(), schedule);
        }
    }

    #[test]
    fn schedules_follow_their_formulas() {
        let tutorial: Schedule = "exp:1e-5,0.99,100".parse().unwrap();
        for epoch in [0, 1, 37] {
            let expected = 1e-5 * 0.99f64.powi(epoch as i32 + 100);
            assert!(
                (tutorial.rate(&PlateauState::default(), 1.0, epoch, 0, 10, 100) - expected).abs()
                    < 1e-15
            );
        }
        let step: Schedule = "step:3,0.5".parse().unwrap();
        assert_eq!(
            [0, 2, 3, 7].map(|e| step.rate(&PlateauState::default(), 0.1, e, 0, 5, 10)),
            [0.1, 0.1, 0.05, 0.025]
        );
        let cosine: Schedule = "cosine".parse().unwrap();
        assert_eq!(cosine.rate(&PlateauState::default(), 0.2, 0, 0, 10, 4), 0.2);
        assert!(
            (cosine.rate(&PlateauState::default(), 0.2, 2, 0, 10, 4) - 0.1).abs() < 1e-12,
            "half-way is half"
        );
        let warm: Schedule = "cosine:2".parse().unwrap();
        assert!(
            (warm.rate(&PlateauState::default(), 1.0, 0, 4, 10, 10) - 0.25).abs() < 1e-12,
            "5 of 20 warm-up steps"
        );
        let one: Schedule = "onecycle".parse().unwrap();
        assert!(
            (one.rate(&PlateauState::default(), 1.0, 3, 0, 10, 10) - 1.0).abs() < 1e-12,
            "peak at 30 %"
        );
        assert!(one.rate(&PlateauState::default(), 1.0, 9, 9, 10, 10) < 0.01);
    }

    #[test]
    fn plateau_cuts_after_patience() {
        let p: Schedule = "plateau:2,0.1".parse().unwrap();
        let mut state = PlateauState::default();
        assert!(!p.observe(&mut state, 1.0));
        assert!(!p.observe(&mut state, 1.1));
        assert!(p.observe(&mut state, 1.2));
        assert!((p.rate(&state, 1.0, 5, 0, 1, 10) - 0.1).abs() < 1e-12);
        assert!(!p.observe(&mut state, 0.5));
    }

    #[test]
    fn bad_schedules_say_what_is_expected() {
        assert!(
            "exp:1,2"
                .parse::<Schedule>()
                .unwrap_err()
                .contains("exp:BASE,RATE,OFFSET")
        );
        assert!("linear".parse::<Schedule>().is_err());
    }
}
