//! Optimizers as ops in the step graph: each parameter's update reads the parameter, its
//! gradient and its state, and writes new ones, so a step never leaves the execution
//! provider. [`Optimizer::apply`] is the same update on the host, in place, for the CPU
//! (one pass instead of one per op). The learning rate and Adam's bias corrections
//! `1 − β₁ᵗ`, `1 − β₂ᵗ` are scalar graph inputs computed by the host each step (schedules
//! stay on the host).
//!
//! Formulas (PyTorch's, which are the textbook ones):
//! - SGD: g ← g + λp; v ← μv + g; p ← p − η·(g + μv if Nesterov else v).
//! - Adam: g ← g + λp; m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
//!   p ← p − η·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε).
//! - AdamW: p ← p·(1 − ηλ), then Adam without the λp term.
//! - RMSprop: v ← ρv + (1−ρ)g²; p ← p − η·g/(√v + ε).
//!
//! Defaults are Keras' (the tutorial's framework): Adam β = (0.9, 0.999), ε = 1e-7; RMSprop
//! ρ = 0.9, ε = 1e-7; SGD momentum 0.
//!
//! Two things keep the update cheap on ONNX Runtime's CPU kernels, where each element-wise op
//! is a pass over every parameter:
//! - Adam's bias corrections are folded into two scalars, η·√(1−β₂ᵗ)/(1−β₁ᵗ) and
//!   ε·√(1−β₂ᵗ), as PyTorch does: 12 passes instead of 14.
//! - Every scalar gets the parameter's rank (`[1, 1, 1, 1]`, not `[]`). ORT 1.31/1.32
//!   broadcast a lower-rank scalar over a tensor with trailing 1s (a 1×1 convolution's
//!   weights) one element at a time, far slower than a scalar of the tensor's rank
//!   (measurements: bench/RESULTS.md and the history it links).

use std::collections::BTreeMap;

use ortl_onnx::GraphBuilder;

use crate::emit::{reshape, scalar, scalar_of_rank, sum_all};

/// The optimizers by name (`--optimizer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// Adam, β = (0.9, 0.999), ε = 1e-7.
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
    /// SGD with momentum (`--momentum`).
    Sgd,
    /// SGD with Nesterov momentum.
    Nesterov,
    /// RMSprop, ρ = 0.9, ε = 1e-7.
    Rmsprop,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    Sgd {
        momentum: f32,
        nesterov: bool,
        weight_decay: f32,
    },
    Adam {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
    AdamW {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
    RmsProp {
        rho: f32,
        eps: f32,
        weight_decay: f32,
    },
}

/// Scalar inputs of the step graph that drive the optimizer.
pub const LR: &str = "lr";
pub const BIAS_CORRECTION1: &str = "bias_correction1";
pub const BIAS_CORRECTION2: &str = "bias_correction2";

impl Optimizer {
    /// `kind` with Keras' defaults, the given L2 (or decoupled, for AdamW) weight decay
    /// and, for SGD, momentum.
    pub fn keras(kind: OptimizerKind, weight_decay: f32, momentum: f32) -> Self {
        match kind {
            OptimizerKind::Adam => Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-7,
                weight_decay,
            },
            OptimizerKind::Adamw => Optimizer::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-7,
                weight_decay,
            },
            OptimizerKind::Sgd | OptimizerKind::Nesterov => Optimizer::Sgd {
                momentum,
                nesterov: kind == OptimizerKind::Nesterov,
                weight_decay,
            },
            OptimizerKind::Rmsprop => Optimizer::RmsProp {
                rho: 0.9,
                eps: 1e-7,
                weight_decay,
            },
        }
    }

    /// Names of the per-parameter state tensors (same shape as the parameter).
    pub fn states(&self, param: &str) -> Vec<String> {
        match self {
            Optimizer::Sgd { momentum, .. } if *momentum == 0.0 => vec![],
            Optimizer::Sgd { .. } => vec![format!("{param}.momentum")],
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => {
                vec![format!("{param}.m"), format!("{param}.v")]
            }
            Optimizer::RmsProp { .. } => vec![format!("{param}.v")],
        }
    }

    /// Whether the step graph takes the bias-correction inputs.
    pub fn uses_bias_correction(&self) -> bool {
        self.adam_params().is_some()
    }

    /// Adam's or AdamW's hyperparameters, `None` for the other optimizers. The graph form
    /// ([`Optimizer::update`]) and the host form ([`Optimizer::apply`]) of the update, and
    /// the bias corrections, read both variants through this one place, so the two forms
    /// cannot disagree on which variant decays the weights where.
    fn adam_params(&self) -> Option<AdamParams> {
        match *self {
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            }
            | Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => Some(AdamParams {
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled: matches!(self, Optimizer::AdamW { .. }),
            }),
            _ => None,
        }
    }

    /// Host-side values of the bias corrections at 1-based step `t`.
    pub fn bias_corrections(&self, t: u64) -> (f32, f32) {
        match self.adam_params() {
            Some(AdamParams { beta1, beta2, .. }) => {
                let t = t as i32;
                (
                    (1.0 - f64::from(beta1).powi(t)) as f32,
                    (1.0 - f64::from(beta2).powi(t)) as f32,
                )
            }
            None => (1.0, 1.0),
        }
    }

    /// Emits one parameter's update for a parameter of rank `rank`; returns (new parameter,
    /// new states).
    pub fn update(
        &self,
        b: &mut GraphBuilder,
        param: &str,
        grad: &str,
        states: &[String],
        rank: usize,
    ) -> (String, Vec<String>) {
        let ones = vec![1; rank];
        let scalar = |b: &mut GraphBuilder, value: f32| scalar_of_rank(b, value, rank);
        let lr = reshape(b, LR, &ones);
        let lr = lr.as_str();
        let mix = |b: &mut GraphBuilder, state: &str, keep: f32, value: &str| {
            let k = scalar(b, keep);
            let r = scalar(b, 1.0 - keep);
            let a = b.mul(state, &k);
            let c = b.mul(value, &r);
            b.add(&a, &c)
        };
        let decayed_grad = |b: &mut GraphBuilder, wd: f32| {
            if wd == 0.0 {
                grad.to_string()
            } else {
                let w = scalar(b, wd);
                let wp = b.mul(param, &w);
                b.add(grad, &wp)
            }
        };
        let step = |b: &mut GraphBuilder, p: &str, direction: &str, lr: &str| {
            let scaled = b.mul(direction, lr);
            b.sub(p, &scaled)
        };
        match self {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                let g = decayed_grad(b, *weight_decay);
                if *momentum == 0.0 {
                    return (step(b, param, &g, lr), vec![]);
                }
                let mu = scalar(b, *momentum);
                let mv = b.mul(&states[0], &mu);
                let v = b.add(&mv, &g);
                let direction = if *nesterov {
                    let muv = b.mul(&v, &mu);
                    b.add(&g, &muv)
                } else {
                    v.clone()
                };
                (step(b, param, &direction, lr), vec![v])
            }
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => {
                let AdamParams {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled,
                } = self.adam_params().expect("an Adam variant");
                let g = if decoupled {
                    grad.to_string()
                } else {
                    decayed_grad(b, weight_decay)
                };
                let p = if decoupled && weight_decay != 0.0 {
                    let w = scalar(b, weight_decay);
                    let lw = b.mul(lr, &w);
                    let one = scalar(b, 1.0);
                    let factor = b.sub(&one, &lw);
                    b.mul(param, &factor)
                } else {
                    param.to_string()
                };
                let m = mix(b, &states[0], beta1, &g);
                let g2 = b.mul(&g, &g);
                let v = mix(b, &states[1], beta2, &g2);
                // η·(m/bc₁) / (√(v/bc₂) + ε) = (η·√bc₂/bc₁) · m / (√v + ε·√bc₂), with the
                // scalars computed first.
                let root_bc2 = b.sqrt(BIAS_CORRECTION2);
                let root_bc2 = reshape(b, &root_bc2, &ones);
                let bc1 = reshape(b, BIAS_CORRECTION1, &ones);
                let lr_scaled = b.mul(lr, &root_bc2);
                let lr_hat = b.div(&lr_scaled, &bc1);
                let e = scalar(b, eps);
                let eps_hat = b.mul(&root_bc2, &e);
                let root = b.sqrt(&v);
                let denom = b.add(&root, &eps_hat);
                let direction = b.div(&m, &denom);
                (step(b, &p, &direction, &lr_hat), vec![m, v])
            }
            Optimizer::RmsProp {
                rho,
                eps,
                weight_decay,
            } => {
                let g = decayed_grad(b, *weight_decay);
                let g2 = b.mul(&g, &g);
                let v = mix(b, &states[0], *rho, &g2);
                let root = b.sqrt(&v);
                let e = scalar(b, *eps);
                let denom = b.add(&root, &e);
                let direction = b.div(&g, &denom);
                (step(b, param, &direction, lr), vec![v])
            }
        }
    }
}

/// Adam's hyperparameters with the variant folded into `decoupled` (AdamW: the weight decay
/// shrinks the parameter instead of joining the gradient).
#[derive(Clone, Copy, Debug)]
struct AdamParams {
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    decoupled: bool,
}

/// The scalars one step's update reads: the graph's [`LR`], [`BIAS_CORRECTION1`] and
/// [`BIAS_CORRECTION2`] inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepScalars {
    pub lr: f32,
    pub bias_correction1: f32,
    pub bias_correction2: f32,
}

impl Optimizer {
    /// [`Optimizer::update`] on the host, in place: the same float operations in the same
    /// order, so the same bits. Element-wise, so any split of the slices into pieces (one per
    /// thread) gives the same result. `states` are the parameter's [`Optimizer::states`].
    pub fn apply(
        &self,
        param: &mut [f32],
        grad: &[f32],
        states: &mut [&mut [f32]],
        scalars: StepScalars,
    ) {
        let lr = scalars.lr;
        match *self {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                let decayed = |g: f32, p: f32| {
                    if weight_decay == 0.0 {
                        g
                    } else {
                        g + p * weight_decay
                    }
                };
                match states {
                    [] => {
                        for (p, &g) in param.iter_mut().zip(grad) {
                            *p -= decayed(g, *p) * lr;
                        }
                    }
                    [velocity] => {
                        for ((p, &g), v) in param.iter_mut().zip(grad).zip(velocity.iter_mut()) {
                            let g = decayed(g, *p);
                            *v = *v * momentum + g;
                            let direction = if nesterov { g + *v * momentum } else { *v };
                            *p -= direction * lr;
                        }
                    }
                    _ => panic!("SGD keeps at most one state tensor"),
                }
            }
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => {
                let AdamParams {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled,
                } = self.adam_params().expect("an Adam variant");
                let shrink = 1.0 - lr * weight_decay;
                let root_bc2 = scalars.bias_correction2.sqrt();
                let lr_hat = lr * root_bc2 / scalars.bias_correction1;
                let eps_hat = root_bc2 * eps;
                let [m, v] = states else {
                    panic!("Adam keeps two state tensors")
                };
                for (((p, &g), m), v) in param
                    .iter_mut()
                    .zip(grad)
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                {
                    let g = if !decoupled && weight_decay != 0.0 {
                        g + *p * weight_decay
                    } else {
                        g
                    };
                    let p0 = if decoupled && weight_decay != 0.0 {
                        *p * shrink
                    } else {
                        *p
                    };
                    *m = *m * beta1 + g * (1.0 - beta1);
                    *v = *v * beta2 + g * g * (1.0 - beta2);
                    *p = p0 - *m / (v.sqrt() + eps_hat) * lr_hat;
                }
            }
            Optimizer::RmsProp {
                rho,
                eps,
                weight_decay,
            } => {
                let [v] = states else {
                    panic!("RMSprop keeps one state tensor")
                };
                for ((p, &g), v) in param.iter_mut().zip(grad).zip(v.iter_mut()) {
                    let g = if weight_decay == 0.0 {
                        g
                    } else {
                        g + *p * weight_decay
                    };
                    *v = *v * rho + g * g * (1.0 - rho);
                    *p -= g / (v.sqrt() + eps) * lr;
                }
            }
        }
    }
}

/// Scales all gradients by min(1, max_norm / ‖g‖) where ‖g‖ is their joint L2 norm;
/// `ranks` gives each gradient's rank (its parameter's), for the factor's shape.
pub fn clip_global_norm(
    b: &mut GraphBuilder,
    grads: &mut BTreeMap<String, String>,
    ranks: &BTreeMap<String, usize>,
    max_norm: f32,
) {
    let squares: Vec<String> = grads
        .values()
        .map(|g| {
            let sq = b.mul(g, g);
            sum_all(b, &sq)
        })
        .collect();
    let refs: Vec<&str> = squares.iter().map(String::as_str).collect();
    let total = if refs.len() == 1 {
        refs[0].to_string()
    } else {
        b.sum(&refs)
    };
    let norm = b.sqrt(&total);
    let tiny = scalar(b, 1e-6);
    let safe = b.add(&norm, &tiny);
    let max = scalar(b, max_norm);
    let ratio = b.div(&max, &safe);
    let one = scalar(b, 1.0);
    let factor = b.min(&[&ratio, &one]);
    for (param, g) in grads.iter_mut() {
        let factor = reshape(b, &factor, &vec![1; ranks[param]]);
        *g = b.mul(g.as_str(), &factor);
    }
}
