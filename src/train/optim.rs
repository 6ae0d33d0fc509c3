//! Optimizers with `torch.optim`'s exact update rules (the single-tensor,
//! `foreach=False` code path, `maximize=False`).
//!
//! An [`Optimizer`] holds one [`Algorithm`] (the hyperparameters) and its state:
//! per parameter group, flat buffers parallel to [`Params::values`] (moments,
//! accumulators) and a step count per slot, as PyTorch counts steps per
//! parameter. A group's buffers are allocated on the first [`Optimizer::step`]
//! in which it has a trainable slot. Only slots with `trainable` set are read or written;
//! frozen slots keep their values and their state untouched.
//!
//! Hyperparameters are f64, as PyTorch's Python floats; derived scalars are
//! computed in f64 and rounded to f32 where they meet the f32 buffers, as
//! PyTorch does. Every config has `torch_defaults()` and `keras_defaults()`;
//! the update formula is PyTorch's either way (Keras's own formulas agree for
//! Adam, RMSprop without momentum and Adagrad up to where `eps` is added).
//!
//! One departure from PyTorch's defaults, TensorFlow's: running averages that
//! decay below the smallest normal f32 (1.2e-38) are stored as zero rather
//! than as subnormals, which the CPU handles about ten times slower; see
//! `flush_subnormal` for when it matters and why it changes no result that
//! is not itself at that scale.

use serde::{Deserialize, Serialize};

use crate::{Error, Params, Result};

/// Stochastic gradient descent, `torch.optim.SGD` with `dampening = 0`.
///
/// With L2 `weight_decay` λ: `g ← g + λ p`. With momentum μ: the buffer is
/// `b ← g` on a slot's first step and `b ← μ b + g` after; then `g ← g + μ b`
/// (Nesterov) or `g ← b`. Finally `p ← p − lr g`.
///
/// | default | PyTorch | Keras |
/// |---|---|---|
/// | lr | 0.001 | 0.01 |
/// | momentum | 0 | 0 |
/// | nesterov | false | false |
/// | weight_decay | 0 | — |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor μ (0 disables the momentum buffer).
    pub momentum: f64,
    /// Nesterov momentum (needs `momentum > 0`).
    pub nesterov: bool,
    /// L2 penalty λ added to the gradient.
    pub weight_decay: f64,
}

impl Sgd {
    /// PyTorch's defaults: lr 0.001, no momentum.
    pub fn torch_defaults() -> Self {
        Sgd {
            lr: 1e-3,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
    /// Keras's defaults: lr 0.01, no momentum.
    pub fn keras_defaults() -> Self {
        Sgd {
            lr: 1e-2,
            ..Self::torch_defaults()
        }
    }
}

/// RMSprop, `torch.optim.RMSprop` with `momentum = 0`, `centered = false`.
///
/// `g ← g + λ p`; `s ← α s + (1 − α) g²`; `p ← p − lr g / (√s + eps)`.
///
/// | default | PyTorch | Keras |
/// |---|---|---|
/// | lr | 0.01 | 0.001 |
/// | alpha (Keras `rho`) | 0.99 | 0.9 |
/// | eps | 1e-8 | 1e-7 |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RmsProp {
    /// Learning rate.
    pub lr: f64,
    /// Smoothing constant α of the squared-gradient average (Keras `rho`).
    pub alpha: f64,
    /// Added to the root mean square.
    pub eps: f64,
    /// L2 penalty λ added to the gradient.
    pub weight_decay: f64,
}

impl RmsProp {
    /// PyTorch's defaults: lr 0.01, alpha 0.99, eps 1e-8.
    pub fn torch_defaults() -> Self {
        RmsProp {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
    /// Keras's defaults: lr 0.001, rho 0.9, eps 1e-7.
    pub fn keras_defaults() -> Self {
        RmsProp {
            lr: 1e-3,
            alpha: 0.9,
            eps: 1e-7,
            weight_decay: 0.0,
        }
    }
}

/// Adagrad, `torch.optim.Adagrad`.
///
/// `g ← g + λ p`; `clr = lr / (1 + (t − 1) lr_decay)`; `s ← s + g²` (s starts
/// at `initial_accumulator_value`); `p ← p − clr g / (√s + eps)`.
///
/// | default | PyTorch | Keras |
/// |---|---|---|
/// | lr | 0.01 | 0.001 |
/// | lr_decay | 0 | — |
/// | initial_accumulator_value | 0 | 0.1 |
/// | eps | 1e-10 | 1e-7 |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adagrad {
    /// Learning rate.
    pub lr: f64,
    /// Learning-rate decay per step.
    pub lr_decay: f64,
    /// Starting value of the squared-gradient sum.
    pub initial_accumulator_value: f64,
    /// Added to the root of the sum.
    pub eps: f64,
    /// L2 penalty λ added to the gradient.
    pub weight_decay: f64,
}

impl Adagrad {
    /// PyTorch's defaults: lr 0.01, initial accumulator 0, eps 1e-10.
    pub fn torch_defaults() -> Self {
        Adagrad {
            lr: 1e-2,
            lr_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            weight_decay: 0.0,
        }
    }
    /// Keras's defaults: lr 0.001, initial accumulator 0.1, eps 1e-7.
    pub fn keras_defaults() -> Self {
        Adagrad {
            lr: 1e-3,
            lr_decay: 0.0,
            initial_accumulator_value: 0.1,
            eps: 1e-7,
            weight_decay: 0.0,
        }
    }
}

/// Adam, `torch.optim.Adam` (`amsgrad = false`).
///
/// `g ← g + λ p`; `m ← β₁ m + (1 − β₁) g`; `v ← β₂ v + (1 − β₂) g²`;
/// `p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)`, t counted per slot.
///
/// | default | PyTorch | Keras |
/// |---|---|---|
/// | lr | 0.001 | 0.001 |
/// | beta1, beta2 | 0.9, 0.999 | 0.9, 0.999 |
/// | eps | 1e-8 | 1e-7 |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the bias-corrected root of the second moment.
    pub eps: f64,
    /// L2 penalty λ added to the gradient (not decoupled; see [`AdamW`]).
    pub weight_decay: f64,
}

impl Adam {
    /// PyTorch's defaults: lr 0.001, betas (0.9, 0.999), eps 1e-8.
    pub fn torch_defaults() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
    /// Keras's defaults: lr 0.001, betas (0.9, 0.999), eps 1e-7.
    pub fn keras_defaults() -> Self {
        Adam {
            eps: 1e-7,
            ..Self::torch_defaults()
        }
    }
}

/// AdamW, `torch.optim.AdamW`: Adam with decoupled weight decay,
/// `p ← p (1 − lr λ)` before the Adam update (which then has no L2 term).
///
/// | default | PyTorch | Keras |
/// |---|---|---|
/// | lr | 0.001 | 0.001 |
/// | beta1, beta2 | 0.9, 0.999 | 0.9, 0.999 |
/// | eps | 1e-8 | 1e-7 |
/// | weight_decay | 0.01 | 0.004 |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the bias-corrected root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
}

impl AdamW {
    /// PyTorch's defaults: lr 0.001, betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
    pub fn torch_defaults() -> Self {
        AdamW {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
    /// Keras's defaults: lr 0.001, betas (0.9, 0.999), eps 1e-7, weight decay 0.004.
    pub fn keras_defaults() -> Self {
        AdamW {
            eps: 1e-7,
            weight_decay: 4e-3,
            ..Self::torch_defaults()
        }
    }
}

/// Adadelta, `torch.optim.Adadelta`.
///
/// `g ← g + λ p`; `s ← ρ s + (1 − ρ) g²`; `δ = √(a + eps) / √(s + eps) · g`;
/// `a ← ρ a + (1 − ρ) δ²`; `p ← p − lr δ`.
///
/// | default | PyTorch | Keras |
/// |---|---|---|
/// | lr | 1.0 | 0.001 |
/// | rho | 0.9 | 0.95 |
/// | eps | 1e-6 | 1e-7 |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Adadelta {
    /// Learning rate (scales the computed step).
    pub lr: f64,
    /// Decay of both running averages.
    pub rho: f64,
    /// Added inside both roots.
    pub eps: f64,
    /// L2 penalty λ added to the gradient.
    pub weight_decay: f64,
}

impl Adadelta {
    /// PyTorch's defaults: lr 1.0, rho 0.9, eps 1e-6.
    pub fn torch_defaults() -> Self {
        Adadelta {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
        }
    }
    /// Keras's defaults: lr 0.001, rho 0.95, eps 1e-7.
    pub fn keras_defaults() -> Self {
        Adadelta {
            lr: 1e-3,
            rho: 0.95,
            eps: 1e-7,
            weight_decay: 0.0,
        }
    }
}

/// One optimization algorithm with its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Algorithm {
    /// See [`Sgd`].
    Sgd(Sgd),
    /// See [`RmsProp`].
    RmsProp(RmsProp),
    /// See [`Adagrad`].
    Adagrad(Adagrad),
    /// See [`Adam`].
    Adam(Adam),
    /// See [`AdamW`].
    AdamW(AdamW),
    /// See [`Adadelta`].
    Adadelta(Adadelta),
}

/// The names [`Optimizer::parse`] accepts.
pub const OPTIMIZER_NAMES: [&str; 6] = ["sgd", "rmsprop", "adagrad", "adam", "adamw", "adadelta"];

impl Algorithm {
    /// The algorithm called `name` (one of [`OPTIMIZER_NAMES`], case and
    /// surrounding spaces ignored) with Keras's default hyperparameters.
    pub fn keras_defaults(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "sgd" => Algorithm::Sgd(Sgd::keras_defaults()),
            "rmsprop" => Algorithm::RmsProp(RmsProp::keras_defaults()),
            "adagrad" => Algorithm::Adagrad(Adagrad::keras_defaults()),
            "adam" => Algorithm::Adam(Adam::keras_defaults()),
            "adamw" => Algorithm::AdamW(AdamW::keras_defaults()),
            "adadelta" => Algorithm::Adadelta(Adadelta::keras_defaults()),
            _ => return None,
        })
    }

    /// The lowercase name (`sgd`, `rmsprop`, `adagrad`, `adam`, `adamw`, `adadelta`).
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::Sgd(_) => "sgd",
            Algorithm::RmsProp(_) => "rmsprop",
            Algorithm::Adagrad(_) => "adagrad",
            Algorithm::Adam(_) => "adam",
            Algorithm::AdamW(_) => "adamw",
            Algorithm::Adadelta(_) => "adadelta",
        }
    }

    /// The names of the state buffers kept per group, each parallel to the
    /// group's values.
    fn buffer_names(&self) -> &'static [&'static str] {
        match self {
            Algorithm::Sgd(c) if c.momentum != 0.0 => &["momentum_buffer"],
            Algorithm::Sgd(_) => &[],
            Algorithm::RmsProp(_) => &["square_avg"],
            Algorithm::Adagrad(_) => &["sum"],
            Algorithm::Adam(_) | Algorithm::AdamW(_) => &["exp_avg", "exp_avg_sq"],
            Algorithm::Adadelta(_) => &["square_avg", "acc_delta"],
        }
    }

    /// Initial value of the state buffers.
    fn buffer_init(&self) -> f32 {
        match self {
            Algorithm::Adagrad(c) => c.initial_accumulator_value as f32,
            _ => 0.0,
        }
    }

    /// The learning rate, mutable.
    pub fn lr_mut(&mut self) -> &mut f64 {
        match self {
            Algorithm::Sgd(c) => &mut c.lr,
            Algorithm::RmsProp(c) => &mut c.lr,
            Algorithm::Adagrad(c) => &mut c.lr,
            Algorithm::Adam(c) => &mut c.lr,
            Algorithm::AdamW(c) => &mut c.lr,
            Algorithm::Adadelta(c) => &mut c.lr,
        }
    }

    /// Errors when a hyperparameter is outside the range PyTorch accepts.
    fn validate(&self) -> Result<()> {
        let nonneg = |name: &str, v: f64| -> Result<()> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    format!("{} {name}", self.name()),
                    format!("{v} must be a finite value >= 0"),
                ))
            }
        };
        let unit = |name: &str, v: f64| -> Result<()> {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid(
                    format!("{} {name}", self.name()),
                    format!("{v} must be in [0, 1)"),
                ))
            }
        };
        match *self {
            Algorithm::Sgd(c) => {
                nonneg("lr", c.lr)?;
                nonneg("momentum", c.momentum)?;
                nonneg("weight_decay", c.weight_decay)?;
                if c.nesterov && c.momentum <= 0.0 {
                    return Err(Error::invalid(
                        "sgd nesterov",
                        "Nesterov momentum requires momentum > 0",
                    ));
                }
            }
            Algorithm::RmsProp(c) => {
                nonneg("lr", c.lr)?;
                nonneg("alpha", c.alpha)?;
                nonneg("eps", c.eps)?;
                nonneg("weight_decay", c.weight_decay)?;
            }
            Algorithm::Adagrad(c) => {
                nonneg("lr", c.lr)?;
                nonneg("lr_decay", c.lr_decay)?;
                nonneg("initial_accumulator_value", c.initial_accumulator_value)?;
                nonneg("eps", c.eps)?;
                nonneg("weight_decay", c.weight_decay)?;
            }
            Algorithm::Adam(Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            })
            | Algorithm::AdamW(AdamW {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            }) => {
                nonneg("lr", lr)?;
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                nonneg("eps", eps)?;
                nonneg("weight_decay", weight_decay)?;
            }
            Algorithm::Adadelta(c) => {
                nonneg("lr", c.lr)?;
                if !(0.0..=1.0).contains(&c.rho) {
                    return Err(Error::invalid(
                        "adadelta rho",
                        format!("{} must be in [0, 1]", c.rho),
                    ));
                }
                nonneg("eps", c.eps)?;
                nonneg("weight_decay", c.weight_decay)?;
            }
        }
        Ok(())
    }
}

/// The state kept for one parameter group.
#[derive(Debug, Clone, PartialEq)]
struct GroupState {
    /// Steps taken by each slot (PyTorch keeps a step count per parameter).
    slot_steps: Vec<u64>,
    /// One buffer per name in `Algorithm::buffer_names`, each as long as the group.
    buffers: Vec<Vec<f32>>,
}

/// An optimizer's state as named flat vectors, for checkpoints.
///
/// Tensor names are `group{g}.{buffer}` (buffers as in PyTorch's state dict:
/// `momentum_buffer`, `square_avg`, `sum`, `exp_avg`, `exp_avg_sq`,
/// `acc_delta`), each parallel to group g's values, and `group{g}.step`: the
/// per-slot step counts as f32 (exact up to 2^24 steps). A group that has not
/// yet had a trainable slot has empty buffers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptimizerState {
    /// The algorithm's name, checked on import.
    pub algorithm: String,
    /// Number of `step` calls made.
    pub steps: u64,
    /// Named state vectors.
    pub tensors: Vec<(String, Vec<f32>)>,
}

/// An optimizer: an [`Algorithm`] plus its lazily allocated state.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimizer {
    algorithm: Algorithm,
    groups: Vec<GroupState>,
    steps: u64,
}

impl From<Algorithm> for Optimizer {
    fn from(algorithm: Algorithm) -> Self {
        Optimizer {
            algorithm,
            groups: Vec::new(),
            steps: 0,
        }
    }
}

macro_rules! from_config {
    ($($ty:ident),*) => {$(
        impl From<$ty> for Optimizer {
            fn from(c: $ty) -> Self {
                Optimizer::from(Algorithm::$ty(c))
            }
        }
    )*};
}
from_config!(Sgd, RmsProp, Adagrad, Adam, AdamW, Adadelta);

impl Optimizer {
    /// An optimizer for `algorithm`; errors when a hyperparameter is out of range.
    pub fn new(algorithm: Algorithm) -> Result<Self> {
        algorithm.validate()?;
        Ok(Optimizer::from(algorithm))
    }

    /// The optimizer called `name` (`sgd`, `rmsprop`, `adagrad`, `adam`, `adamw`,
    /// `adadelta`; case ignored) with learning rate `lr` and Keras's defaults for
    /// every other hyperparameter, as `model.compile(optimizer=...)` gives.
    pub fn parse(name: &str, lr: f64) -> Result<Self> {
        let Some(mut algorithm) = Algorithm::keras_defaults(name) else {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "unknown optimizer {name:?}; known: {}",
                    OPTIMIZER_NAMES.join(", ")
                ),
            ));
        };
        *algorithm.lr_mut() = lr;
        Optimizer::new(algorithm)
    }

    /// The algorithm and its hyperparameters.
    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    /// The algorithm's name.
    pub fn name(&self) -> &'static str {
        self.algorithm.name()
    }

    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        let mut a = self.algorithm;
        *a.lr_mut()
    }

    /// Sets the learning rate (used by schedules); the state is kept.
    pub fn set_lr(&mut self, lr: f64) {
        *self.algorithm.lr_mut() = lr;
    }

    /// Number of `step` calls made so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Drops all state, as if no step had been taken.
    pub fn reset(&mut self) {
        self.groups.clear();
        self.steps = 0;
    }

    /// Creates the state on the first step, or checks that `groups` still
    /// match it. A group's buffers are allocated the first time it has a
    /// trainable slot, so a frozen group (a pretrained embedding) costs nothing.
    fn prepare(&mut self, groups: &[&mut Params]) -> Result<()> {
        let names = self.algorithm.buffer_names();
        if self.groups.is_empty() {
            self.groups = groups
                .iter()
                .map(|p| GroupState {
                    slot_steps: vec![0; p.slots().len()],
                    buffers: vec![Vec::new(); names.len()],
                })
                .collect();
        }
        if self.groups.len() != groups.len() {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "its state holds {} parameter groups but step was given {}",
                    self.groups.len(),
                    groups.len()
                ),
            ));
        }
        for (g, (state, p)) in self.groups.iter().zip(groups).enumerate() {
            let made_for = state.buffers.iter().map(Vec::len).find(|&n| n != 0);
            if state.slot_steps.len() != p.slots().len()
                || made_for.is_some_and(|n| n != p.len())
                || state.buffers.len() != names.len()
            {
                return Err(Error::invalid(
                    "optimizer",
                    format!(
                        "state for group {g} was made for {} slots / {} values, \
                         but the group has {} slots / {} values",
                        state.slot_steps.len(),
                        made_for.unwrap_or(p.len()),
                        p.slots().len(),
                        p.len()
                    ),
                ));
            }
        }
        let init = self.algorithm.buffer_init();
        for (state, p) in self.groups.iter_mut().zip(groups) {
            if p.trainable_len() > 0 {
                for b in state.buffers.iter_mut().filter(|b| b.is_empty()) {
                    *b = vec![init; p.len()];
                }
            }
        }
        Ok(())
    }

    /// One update of every trainable slot of every group from its gradient.
    /// Frozen slots are not read or written. Gradients are left unchanged.
    /// Errors when the groups do not match the state made on the first step.
    pub fn step(&mut self, groups: &mut [&mut Params]) -> Result<()> {
        crate::threads::in_pool(|| self.step_here(groups, false))
    }

    /// [`Optimizer::step`] followed by [`Params::zero_grad`] on every group, in
    /// one sweep over memory: each stretch of a gradient is cleared right
    /// after the update has read it, while it is still in cache, instead of
    /// by a second pass over the whole table (an embedding's gradient is
    /// megabytes). Same values, state and zeroed gradients as the two calls.
    /// A training loop that calls this after every batch needs `zero_grad`
    /// only before its first one.
    pub fn step_and_zero_grad(&mut self, groups: &mut [&mut Params]) -> Result<()> {
        crate::threads::in_pool(|| self.step_here(groups, true))
    }

    /// [`Optimizer::step`] on the calling thread, clearing the gradients
    /// too when `clear`.
    fn step_here(&mut self, groups: &mut [&mut Params], clear: bool) -> Result<()> {
        self.prepare(groups)?;
        self.steps += 1;
        let algorithm = self.algorithm;
        for (p, state) in groups.iter_mut().zip(&mut self.groups) {
            let trainable: Vec<(usize, std::ops::Range<usize>)> = p
                .slots()
                .iter()
                .enumerate()
                .filter(|(_, s)| s.trainable)
                .map(|(i, s)| (i, s.range()))
                .collect();
            for (slot, range) in trainable {
                state.slot_steps[slot] += 1;
                let t = state.slot_steps[slot];
                let values = &mut p.values[range.clone()];
                let grads = &mut p.grads[range.clone()];
                let bufs: Vec<&mut [f32]> = state
                    .buffers
                    .iter_mut()
                    .map(|b| &mut b[range.clone()])
                    .collect();
                let threads = crate::kernels::gemm::threads();
                update_split(&algorithm, t, values, grads, bufs, threads, clear);
            }
            if clear {
                // Frozen slots' gradients too, as zero_grad does.
                let frozen: Vec<_> = p
                    .slots()
                    .iter()
                    .filter(|s| !s.trainable)
                    .map(|s| s.range())
                    .collect();
                for r in frozen {
                    p.grads[r].fill(0.0);
                }
            }
        }
        Ok(())
    }

    /// The state as named flat vectors (see [`OptimizerState`]).
    pub fn export_state(&self) -> OptimizerState {
        let names = self.algorithm.buffer_names();
        let mut tensors = Vec::new();
        for (g, state) in self.groups.iter().enumerate() {
            tensors.push((
                format!("group{g}.step"),
                state.slot_steps.iter().map(|&s| s as f32).collect(),
            ));
            for (name, buf) in names.iter().zip(&state.buffers) {
                tensors.push((format!("group{g}.{name}"), buf.clone()));
            }
        }
        OptimizerState {
            algorithm: self.algorithm.name().to_string(),
            steps: self.steps,
            tensors,
        }
    }

    /// Restores state written by [`Optimizer::export_state`] for the same
    /// algorithm. Sizes are checked against the parameters on the next step.
    pub fn import_state(&mut self, state: &OptimizerState) -> Result<()> {
        if state.algorithm != self.algorithm.name() {
            return Err(Error::invalid(
                "optimizer state",
                format!(
                    "it was saved by {:?} but the optimizer is {:?}",
                    state.algorithm,
                    self.algorithm.name()
                ),
            ));
        }
        let names = self.algorithm.buffer_names();
        let find = |name: &str| -> Result<&Vec<f32>> {
            state
                .tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    Error::invalid("optimizer state", format!("missing tensor {name:?}"))
                })
        };
        let n_groups = state
            .tensors
            .iter()
            .filter(|(n, _)| n.ends_with(".step"))
            .count();
        let expected = n_groups * (1 + names.len());
        if state.tensors.len() != expected {
            return Err(Error::invalid(
                "optimizer state",
                format!(
                    "expected {expected} tensors for {n_groups} groups of {}, got {}",
                    self.algorithm.name(),
                    state.tensors.len()
                ),
            ));
        }
        let mut groups = Vec::with_capacity(n_groups);
        for g in 0..n_groups {
            let steps = find(&format!("group{g}.step"))?;
            let mut slot_steps = Vec::with_capacity(steps.len());
            for &s in steps {
                if !(s.is_finite() && s >= 0.0 && s.fract() == 0.0) {
                    return Err(Error::invalid(
                        "optimizer state",
                        format!("group{g}.step holds {s}, not a step count"),
                    ));
                }
                slot_steps.push(s as u64);
            }
            let mut buffers = Vec::with_capacity(names.len());
            for name in names {
                let full = format!("group{g}.{name}");
                let buf = find(&full)?;
                if buffers
                    .first()
                    .is_some_and(|b: &Vec<f32>| b.len() != buf.len())
                {
                    return Err(Error::invalid(
                        "optimizer state",
                        format!("{full} has {} values, unlike its group", buf.len()),
                    ));
                }
                buffers.push(buf.clone());
            }
            groups.push(GroupState {
                slot_steps,
                buffers,
            });
        }
        self.groups = groups;
        self.steps = state.steps;
        Ok(())
    }
}

/// Slots at least this long are updated in parallel halves: the update is
/// element-wise and bound by memory bandwidth, which a second core adds to
/// (an Embedding(20000, 128) table has 2.56M values). Same results either way.
const PARALLEL_MIN_VALUES: usize = 1 << 18;

/// [`update`] over two disjoint halves of the slot at once when `threads`
/// allows and the slot is long enough; `clear` zeroes the gradient as it goes.
fn update_split(
    algorithm: &Algorithm,
    t: u64,
    values: &mut [f32],
    grads: &mut [f32],
    bufs: Vec<&mut [f32]>,
    threads: usize,
    clear: bool,
) {
    if threads < 2 || values.len() < PARALLEL_MIN_VALUES {
        update_stretches(algorithm, t, values, grads, bufs, clear);
        return;
    }
    let mid = (values.len() / 2).next_multiple_of(16);
    let (v0, v1) = values.split_at_mut(mid);
    let (g0, g1) = grads.split_at_mut(mid);
    let (b0, b1): (Vec<_>, Vec<_>) = bufs.into_iter().map(|b| b.split_at_mut(mid)).unzip();
    rayon::join(
        || update_stretches(algorithm, t, v0, g0, b0, clear),
        || update_stretches(algorithm, t, v1, g1, b1, clear),
    );
}

/// Values per stretch when the gradient is cleared behind the update: the
/// stretch's gradient (64 KiB) is still in L2 when it is zeroed.
const CLEAR_STRETCH: usize = 1 << 14;

/// [`update_simd`], then (with `clear`) the gradient zeroed, stretch by
/// stretch. The update is element-wise, so the stretches change nothing in
/// the results.
fn update_stretches(
    algorithm: &Algorithm,
    t: u64,
    values: &mut [f32],
    grads: &mut [f32],
    mut bufs: Vec<&mut [f32]>,
    clear: bool,
) {
    if !clear {
        update_simd(algorithm, t, values, grads, bufs);
        return;
    }
    let mut start = 0;
    while start < values.len() {
        let end = (start + CLEAR_STRETCH).min(values.len());
        let part: Vec<&mut [f32]> = bufs.iter_mut().map(|b| &mut b[start..end]).collect();
        update_simd(
            algorithm,
            t,
            &mut values[start..end],
            &grads[start..end],
            part,
        );
        grads[start..end].fill(0.0);
        start = end;
    }
}

crate::kernels::simd::multiversion!(
    /// [`update`] compiled for the widest vector unit the CPU has. Same bits
    /// as the scalar loop: every operation (sqrt and division included) is
    /// correctly rounded lane by lane, and nothing is fused.
    fn update_simd(
        algorithm: &Algorithm,
        t: u64,
        values: &mut [f32],
        grads: &[f32],
        bufs: Vec<&mut [f32]>,
    ) => update_owned
);

#[inline(always)]
fn update_owned(
    algorithm: &Algorithm,
    t: u64,
    values: &mut [f32],
    grads: &[f32],
    bufs: Vec<&mut [f32]>,
) {
    update(algorithm, t, values, grads, &mut bufs.into_iter());
}

/// Zero for a subnormal `x` (below `f32::MIN_POSITIVE` in magnitude), else `x`.
///
/// Running averages that decay towards zero (momentum, Adam's moments,
/// RMSProp's and Adadelta's mean squares) turn subnormal after some hundreds
/// of steps without a gradient, as an embedding's rows for rare tokens do, and
/// from then on every operation on them takes the CPU's slow microcode path:
/// Adam on a 2.56M-value table went from 2.2 to 21-23 ms a step after 720
/// steps here (PyTorch, which keeps subnormals by default: 7.8 to 24-34 ms).
/// The optimizers flush them to zero instead, as TensorFlow does in all its
/// CPU kernels (they run under its `ScopedFlushDenormal`). Where an `eps` is
/// added to a square root the flush changes no bits of the denominator; a
/// subnormal first moment moves a parameter by under `1.2e-38 / eps` times
/// the step size, a subnormal momentum by under `1.2e-38` times the learning
/// rate. Adam, RMSProp and Adadelta flush nothing when `eps = 0`: a zero
/// there could turn a tiny quotient into a division by zero.
#[inline(always)]
fn flush_subnormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// Applies one update to a slot's `values` from `grads`, with `t` the slot's
/// 1-based step count and `bufs` the slot's part of each state buffer in
/// `buffer_names` order.
#[inline(always)]
fn update<'a>(
    algorithm: &Algorithm,
    t: u64,
    values: &mut [f32],
    grads: &[f32],
    bufs: &mut impl Iterator<Item = &'a mut [f32]>,
) {
    // Gradient with the L2 term, as `grad.add(param, alpha=weight_decay)`.
    let l2 = |wd: f64, g: f32, p: f32| if wd != 0.0 { g + wd as f32 * p } else { g };
    match *algorithm {
        Algorithm::Sgd(c) => {
            let lr = c.lr as f32;
            let wd = c.weight_decay;
            if c.momentum == 0.0 {
                for (p, &g) in values.iter_mut().zip(grads) {
                    let g = l2(wd, g, *p);
                    *p -= lr * g;
                }
                return;
            }
            let Some(buf) = bufs.next() else { return };
            let mu = c.momentum as f32;
            for ((p, &g), b) in values.iter_mut().zip(grads).zip(buf.iter_mut()) {
                let g = l2(wd, g, *p);
                *b = flush_subnormal(if t == 1 { g } else { *b * mu + g });
                let d = if c.nesterov { g + mu * *b } else { *b };
                *p -= lr * d;
            }
        }
        Algorithm::RmsProp(c) => {
            let Some(sq) = bufs.next() else { return };
            let (lr, alpha, one_m) = (c.lr as f32, c.alpha as f32, (1.0 - c.alpha) as f32);
            let eps = c.eps as f32;
            let flush = |x: f32| if eps > 0.0 { flush_subnormal(x) } else { x };
            for ((p, &g), s) in values.iter_mut().zip(grads).zip(sq.iter_mut()) {
                let g = l2(c.weight_decay, g, *p);
                *s = flush(*s * alpha + one_m * g * g);
                let avg = s.sqrt() + eps;
                *p -= lr * (g / avg);
            }
        }
        Algorithm::Adagrad(c) => {
            let Some(sum) = bufs.next() else { return };
            let clr = (c.lr / (1.0 + (t - 1) as f64 * c.lr_decay)) as f32;
            let eps = c.eps as f32;
            for ((p, &g), s) in values.iter_mut().zip(grads).zip(sum.iter_mut()) {
                let g = l2(c.weight_decay, g, *p);
                *s += g * g;
                let std = s.sqrt() + eps;
                *p -= clr * (g / std);
            }
        }
        Algorithm::Adam(Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        })
        | Algorithm::AdamW(AdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        }) => {
            let decoupled = matches!(algorithm, Algorithm::AdamW(_));
            let (Some(m), Some(v)) = (bufs.next(), bufs.next()) else {
                return;
            };
            let tf = t as f64;
            let bc1 = 1.0 - beta1.powf(tf);
            let bc2_sqrt = (1.0 - beta2.powf(tf)).sqrt() as f32;
            let step_size = (lr / bc1) as f32;
            let w1 = (1.0 - beta1) as f32;
            let b2 = beta2 as f32;
            let w2 = (1.0 - beta2) as f32;
            let eps = eps as f32;
            let flush = |x: f32| if eps > 0.0 { flush_subnormal(x) } else { x };
            let shrink = (1.0 - lr * weight_decay) as f32;
            for (((p, &g), m), v) in values
                .iter_mut()
                .zip(grads)
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                let g = if decoupled {
                    if weight_decay != 0.0 {
                        *p *= shrink;
                    }
                    g
                } else {
                    l2(weight_decay, g, *p)
                };
                // torch's lerp for weight < 0.5: m + w (g - m)
                *m = flush(*m + w1 * (g - *m));
                *v = flush(*v * b2 + w2 * g * g);
                let denom = v.sqrt() / bc2_sqrt + eps;
                *p -= step_size * (*m / denom);
            }
        }
        Algorithm::Adadelta(c) => {
            let (Some(sq), Some(acc)) = (bufs.next(), bufs.next()) else {
                return;
            };
            let (lr, rho, one_m, eps) = (
                c.lr as f32,
                c.rho as f32,
                (1.0 - c.rho) as f32,
                c.eps as f32,
            );
            let flush = |x: f32| if eps > 0.0 { flush_subnormal(x) } else { x };
            for (((p, &g), s), a) in values
                .iter_mut()
                .zip(grads)
                .zip(sq.iter_mut())
                .zip(acc.iter_mut())
            {
                let g = l2(c.weight_decay, g, *p);
                *s = flush(*s * rho + one_m * g * g);
                let std = (*s + eps).sqrt();
                let delta = (*a + eps).sqrt() / std * g;
                *a = flush(*a * rho + one_m * delta * delta);
                *p -= lr * delta;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_algorithms() -> Vec<Algorithm> {
        vec![
            Algorithm::Sgd(Sgd {
                lr: 0.1,
                ..Sgd::torch_defaults()
            }),
            Algorithm::Sgd(Sgd {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 0.1,
            }),
            Algorithm::RmsProp(RmsProp {
                weight_decay: 0.1,
                ..RmsProp::torch_defaults()
            }),
            Algorithm::Adagrad(Adagrad::keras_defaults()),
            Algorithm::Adam(Adam {
                weight_decay: 0.1,
                ..Adam::torch_defaults()
            }),
            Algorithm::AdamW(AdamW::torch_defaults()),
            Algorithm::Adadelta(Adadelta {
                weight_decay: 0.1,
                ..Adadelta::torch_defaults()
            }),
        ]
    }

    /// A running average that one step without a gradient makes subnormal is
    /// stored as zero (see `flush_subnormal`), on every SIMD level; with
    /// `eps = 0` it is kept.
    #[test]
    fn decaying_state_is_flushed_to_zero_instead_of_turning_subnormal() {
        let flushed = [
            Algorithm::Sgd(Sgd {
                momentum: 0.9,
                ..Sgd::torch_defaults()
            }),
            Algorithm::RmsProp(RmsProp::torch_defaults()),
            Algorithm::Adam(Adam::torch_defaults()),
            Algorithm::AdamW(AdamW::torch_defaults()),
            Algorithm::Adadelta(Adadelta::torch_defaults()),
        ];
        let kept = Algorithm::Adam(Adam {
            eps: 0.0,
            ..Adam::torch_defaults()
        });
        // Just above the smallest normal: one decay (0.9 to 0.999) goes below.
        let start = f32::MIN_POSITIVE * 1.0005;
        let n = 37;
        for simd in [true, false] {
            crate::kernels::simd::set_simd_enabled(simd);
            for algorithm in flushed.iter().chain([&kept]) {
                let mut values = vec![0.5f32; n];
                let grads = vec![0.0f32; n];
                let mut bufs = vec![vec![start; n]; algorithm.buffer_names().len()];
                let parts: Vec<&mut [f32]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
                update_simd(algorithm, 1000, &mut values, &grads, parts);
                assert!(values
                    .iter()
                    .all(|v| v.is_finite() && (v - 0.5).abs() < 1e-4));
                for (name, buf) in algorithm.buffer_names().iter().zip(&bufs) {
                    if algorithm == &kept {
                        assert!(buf.iter().all(|v| v.is_subnormal()), "{name} kept");
                    } else {
                        assert!(
                            buf.iter().all(|&v| v == 0.0),
                            "{} {name}: {:?}",
                            algorithm.name(),
                            buf[0]
                        );
                    }
                }
            }
        }
        crate::kernels::simd::set_simd_enabled(true);
    }

    /// The vectorised, two-thread update of a long slot gives the bits of the
    /// plain scalar loop, for every algorithm.
    #[test]
    fn split_vectorised_update_equals_scalar_loop() {
        let n = PARALLEL_MIN_VALUES + 37;
        let mut rng = crate::Rng::new(3);
        let values: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        let grads: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        for algorithm in all_algorithms() {
            let nb = algorithm.buffer_names().len();
            let bufs0: Vec<Vec<f32>> = (0..nb)
                .map(|_| (0..n).map(|_| rng.normal().abs()).collect())
                .collect();
            let (mut v_ref, mut b_ref) = (values.clone(), bufs0.clone());
            let (mut v_fast, mut b_fast) = (values.clone(), bufs0.clone());
            let (mut v_clear, mut b_clear) = (values.clone(), bufs0.clone());
            for t in 1..=3 {
                let mut it = b_ref.iter_mut().map(|b| &mut b[..]);
                update(&algorithm, t, &mut v_ref, &grads, &mut it);
                let bufs = b_fast.iter_mut().map(|b| &mut b[..]).collect();
                update_split(
                    &algorithm,
                    t,
                    &mut v_fast,
                    &mut grads.clone(),
                    bufs,
                    2,
                    false,
                );
                // Clearing behind the update, stretch by stretch, changes nothing else.
                let mut g = grads.clone();
                let bufs = b_clear.iter_mut().map(|b| &mut b[..]).collect();
                update_split(&algorithm, t, &mut v_clear, &mut g, bufs, 2, true);
                assert!(g.iter().all(|&x| x.to_bits() == 0), "{}", algorithm.name());
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&v_ref), bits(&v_fast), "{}", algorithm.name());
            assert_eq!(bits(&v_ref), bits(&v_clear), "{} cleared", algorithm.name());
            for ((r, f), c) in b_ref.iter().zip(&b_fast).zip(&b_clear) {
                assert_eq!(bits(r), bits(f), "{} state", algorithm.name());
                assert_eq!(bits(r), bits(c), "{} state, cleared", algorithm.name());
            }
        }
    }

    /// Group a (7 values, two slots) is trainable, group b (4 values) frozen.
    fn model() -> (Params, Params) {
        let mut a = Params::new();
        a.add("v", &[3]);
        a.add("w", &[2, 2]);
        a.values
            .copy_from_slice(&[1.0, 2.0, 3.0, 0.5, -0.5, 0.25, -0.25]);
        a.grads
            .copy_from_slice(&[0.3, -0.3, 0.1, 0.4, 0.2, -0.1, 0.3]);
        let mut b = Params::new();
        b.add("emb", &[4]);
        b.values.copy_from_slice(&[0.1, 0.2, 0.3, 0.4]);
        b.grads.copy_from_slice(&[1.0, 1.0, 1.0, 1.0]);
        b.set_trainable(false);
        (a, b)
    }

    /// `step_and_zero_grad` = `step` then `zero_grad`: same values and state,
    /// every gradient zero (a frozen group's too), for 1 and 2 threads.
    #[test]
    fn step_and_zero_grad_equals_step_then_zero_grad() {
        for threads in [1, 2] {
            crate::kernels::gemm::set_threads(threads);
            for algorithm in all_algorithms() {
                let (mut a1, mut b1) = model();
                let (mut a2, mut b2) = model();
                let mut o1 = Optimizer::new(algorithm).unwrap();
                let mut o2 = Optimizer::new(algorithm).unwrap();
                for _ in 0..3 {
                    o1.step(&mut [&mut a1, &mut b1]).unwrap();
                    a1.zero_grad();
                    b1.zero_grad();
                    o2.step_and_zero_grad(&mut [&mut a2, &mut b2]).unwrap();
                    assert_eq!((&a1.values, &a1.grads), (&a2.values, &a2.grads));
                    assert_eq!((&b1.values, &b1.grads), (&b2.values, &b2.grads));
                    assert!(a2.grads.iter().chain(&b2.grads).all(|&g| g == 0.0));
                    assert_eq!(o1.export_state(), o2.export_state());
                    // The next batch's gradients.
                    for (i, g) in a1.grads.iter_mut().chain(&mut b1.grads).enumerate() {
                        *g = 0.1 * i as f32 - 0.2;
                    }
                    a2.grads.copy_from_slice(&a1.grads);
                    b2.grads.copy_from_slice(&b1.grads);
                }
            }
        }
        crate::kernels::gemm::set_threads(1);
    }

    #[test]
    fn frozen_slots_untouched_by_every_optimizer() {
        for algorithm in all_algorithms() {
            let mut opt = Optimizer::new(algorithm).unwrap();
            let (mut a, mut b) = model();
            // A frozen copy of a, placed first so group indices differ from a's.
            let mut frozen = a.clone();
            frozen.set_trainable(false);
            let before_a = a.values.clone();
            let before_b = b.values.clone();
            for _ in 0..3 {
                opt.step(&mut [&mut frozen, &mut a, &mut b]).unwrap();
            }
            let name = algorithm.name();
            assert_eq!(b.values, before_b, "{name}");
            assert_eq!(frozen.values, before_a, "{name}");
            assert!(
                a.values.iter().zip(&before_a).all(|(x, y)| x != y),
                "{name}: every trainable value moves: {:?} -> {:?}",
                before_a,
                a.values
            );
            // Frozen groups get no state: zero step counts, no buffers.
            for (n, v) in &opt.export_state().tensors {
                if n.starts_with("group0.") || n.starts_with("group2.") {
                    if n.ends_with(".step") {
                        assert!(v.iter().all(|&s| s == 0.0), "{name} {n}");
                    } else {
                        assert!(v.is_empty(), "{name} {n}");
                    }
                }
            }
        }
    }

    #[test]
    fn unfrozen_group_starts_its_own_step_count() {
        for algorithm in all_algorithms() {
            let (mut a, _) = model();
            let mut late = a.clone();
            late.set_trainable(false);
            let mut opt = Optimizer::new(algorithm).unwrap();
            opt.step(&mut [&mut a, &mut late]).unwrap();
            opt.step(&mut [&mut a, &mut late]).unwrap();
            late.set_trainable(true);
            opt.step(&mut [&mut a, &mut late]).unwrap();
            // Same as a fresh optimizer's first step on the same values.
            let (mut fresh, _) = model();
            Optimizer::new(algorithm)
                .unwrap()
                .step(&mut [&mut fresh])
                .unwrap();
            assert_eq!(late.values, fresh.values, "{}", algorithm.name());
        }
    }

    #[test]
    fn documented_defaults() {
        assert_eq!(
            (Sgd::torch_defaults().lr, Sgd::keras_defaults().lr),
            (1e-3, 1e-2)
        );
        let (t, k) = (RmsProp::torch_defaults(), RmsProp::keras_defaults());
        assert_eq!((t.lr, t.alpha, t.eps), (1e-2, 0.99, 1e-8));
        assert_eq!((k.lr, k.alpha, k.eps), (1e-3, 0.9, 1e-7));
        let (t, k) = (Adagrad::torch_defaults(), Adagrad::keras_defaults());
        assert_eq!(
            (t.lr, t.initial_accumulator_value, t.eps),
            (1e-2, 0.0, 1e-10)
        );
        assert_eq!(
            (k.lr, k.initial_accumulator_value, k.eps),
            (1e-3, 0.1, 1e-7)
        );
        let (t, k) = (Adam::torch_defaults(), Adam::keras_defaults());
        assert_eq!((t.lr, t.beta1, t.beta2, t.eps), (1e-3, 0.9, 0.999, 1e-8));
        assert_eq!((k.lr, k.beta1, k.beta2, k.eps), (1e-3, 0.9, 0.999, 1e-7));
        let (t, k) = (AdamW::torch_defaults(), AdamW::keras_defaults());
        assert_eq!(
            (t.weight_decay, t.eps, k.weight_decay, k.eps),
            (1e-2, 1e-8, 4e-3, 1e-7)
        );
        let (t, k) = (Adadelta::torch_defaults(), Adadelta::keras_defaults());
        assert_eq!((t.lr, t.rho, t.eps), (1.0, 0.9, 1e-6));
        assert_eq!((k.lr, k.rho, k.eps), (1e-3, 0.95, 1e-7));
        // parse uses Keras's defaults with the given rate.
        let opt = Optimizer::parse("rmsprop", 0.5).unwrap();
        assert_eq!(
            opt.algorithm(),
            &Algorithm::RmsProp(RmsProp {
                lr: 0.5,
                ..RmsProp::keras_defaults()
            })
        );
    }

    #[test]
    fn sgd_by_hand() {
        let mut p = Params::new();
        p.add("w", &[2]);
        p.values.copy_from_slice(&[1.0, -1.0]);
        p.grads.copy_from_slice(&[0.5, 0.25]);
        let mut opt = Optimizer::from(Sgd {
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        });
        opt.step(&mut [&mut p]).unwrap();
        assert_eq!(p.values, vec![0.95, -1.025]);
        opt.step(&mut [&mut p]).unwrap();
        // buf = 0.9*0.5 + 0.5 = 0.95 -> 0.95 - 0.095
        assert!((p.values[0] - 0.855).abs() < 1e-6);
        assert_eq!(p.grads, vec![0.5, 0.25]);
    }

    #[test]
    fn parse_lr_and_unknown_names() {
        let mut opt = Optimizer::parse("Adam", 0.02).unwrap();
        assert_eq!(opt.name(), "adam");
        assert_eq!(opt.lr(), 0.02);
        opt.set_lr(0.5);
        assert_eq!(opt.lr(), 0.5);
        let err = Optimizer::parse("lbfgs", 0.1).unwrap_err().to_string();
        assert!(err.contains("lbfgs") && err.contains("adadelta"), "{err}");
        assert!(Optimizer::parse("sgd", -1.0).is_err());
        assert!(Optimizer::new(Algorithm::Adam(Adam {
            beta1: 1.5,
            ..Adam::torch_defaults()
        }))
        .is_err());
    }

    #[test]
    fn state_round_trip_continues_identically() {
        for algorithm in all_algorithms() {
            let (mut a, _) = model();
            let mut opt = Optimizer::new(algorithm).unwrap();
            opt.step(&mut [&mut a]).unwrap();
            let saved = opt.export_state();
            let mut a2 = a.clone();
            let mut opt2 = Optimizer::new(algorithm).unwrap();
            opt2.import_state(&saved).unwrap();
            opt.step(&mut [&mut a]).unwrap();
            opt2.step(&mut [&mut a2]).unwrap();
            assert_eq!(a.values, a2.values, "{}", algorithm.name());
            assert_eq!(opt2.steps(), 2);
        }
    }

    #[test]
    fn mismatched_groups_and_state_are_errors() {
        let (mut a, mut b) = model();
        let mut opt = Optimizer::parse("adam", 0.1).unwrap();
        opt.step(&mut [&mut a]).unwrap();
        let err = opt.step(&mut [&mut a, &mut b]).unwrap_err().to_string();
        assert!(
            err.contains("1 parameter groups") && err.contains("2"),
            "{err}"
        );
        let err = opt.step(&mut [&mut b]).unwrap_err().to_string();
        assert!(
            err.contains("7 values") && err.contains("4 values"),
            "{err}"
        );
        let mut sgd = Optimizer::parse("sgd", 0.1).unwrap();
        assert!(sgd.import_state(&opt.export_state()).is_err());
        let mut st = opt.export_state();
        st.tensors.pop();
        let mut adam = Optimizer::parse("adam", 0.1).unwrap();
        assert!(adam.import_state(&st).is_err());
    }
}
