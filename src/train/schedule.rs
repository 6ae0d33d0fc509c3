//! Learning-rate schedules, stepped once per epoch.
//!
//! A [`Schedule`] maps the base learning rate and the epoch to the rate for
//! that epoch; [`ReduceOnPlateau`] instead watches a metric and is stepped
//! with it at the end of each epoch. Rates are f64, as in PyTorch's schedulers.

use crate::{Error, Result};

/// A learning-rate schedule over epochs (0-based: epoch 0 is the first).
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Step decay, `torch.optim.lr_scheduler.StepLR`: the rate is multiplied by
    /// `gamma` every `step_size` epochs, `lr_e = base · gamma^⌊e / step_size⌋`.
    Step {
        /// Epochs between decays (> 0).
        step_size: usize,
        /// Multiplicative factor.
        gamma: f64,
    },
    /// Exponential decay, `torch.optim.lr_scheduler.ExponentialLR`:
    /// `lr_e = base · gamma^e`.
    Exponential {
        /// Multiplicative factor per epoch.
        gamma: f64,
    },
    /// char-rnn's rule (`learning_rate_decay_after`, `learning_rate_decay`):
    /// at the end of every epoch k (1-based) with `k >= decay_after` the rate is
    /// multiplied by `decay`, so `lr_e = base · decay^max(0, e + 1 − max(decay_after, 1))`.
    /// char-rnn's defaults are `decay_after = 10`, `decay = 0.97`.
    CharRnn {
        /// First epoch (1-based) at whose end the rate decays.
        decay_after: usize,
        /// Multiplicative factor per epoch once decaying.
        decay: f64,
    },
    /// Reduce on plateau; see [`ReduceOnPlateau`]. Its rate depends on the
    /// metric history, so [`Schedule::lr_at`] returns the rate it last set.
    Plateau(ReduceOnPlateau),
}

impl Schedule {
    /// Errors when a parameter is out of range (zero `step_size`, negative or
    /// non-finite factors).
    pub fn validate(&self) -> Result<()> {
        let factor = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    name,
                    format!("{v} must be a finite value >= 0"),
                ))
            }
        };
        match self {
            Schedule::Constant => Ok(()),
            Schedule::Step { step_size, gamma } => {
                if *step_size == 0 {
                    return Err(Error::invalid("step_size", "0 must be at least 1"));
                }
                factor("gamma", *gamma)
            }
            Schedule::Exponential { gamma } => factor("gamma", *gamma),
            Schedule::CharRnn { decay, .. } => factor("decay", *decay),
            Schedule::Plateau(p) => p.validate(),
        }
    }

    /// The learning rate for epoch `epoch` (0-based) starting from `base`.
    pub fn lr_at(&self, base: f64, epoch: usize) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => {
                base * gamma.powi(pow(epoch / (*step_size).max(1)))
            }
            Schedule::Exponential { gamma } => base * gamma.powi(pow(epoch)),
            Schedule::CharRnn { decay_after, decay } => {
                let n = (epoch + 1).saturating_sub((*decay_after).max(1));
                base * decay.powi(pow(n))
            }
            Schedule::Plateau(p) => p.lr().unwrap_or(base),
        }
    }
}

/// An exponent for `powi`, saturating.
fn pow(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// How [`ReduceOnPlateau`] decides that a metric improved (mode `min`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Better when `metric < best · (1 − threshold)` (PyTorch's default).
    Rel,
    /// Better when `metric < best − threshold` (Keras's `min_delta`).
    Abs,
}

/// `torch.optim.lr_scheduler.ReduceLROnPlateau` in mode `min`: when the metric
/// has not improved for more than `patience` epochs, the rate becomes
/// `max(lr · factor, min_lr)` (applied only when it falls by more than 1e-8),
/// then `cooldown` epochs pass before bad epochs are counted again.
///
/// | default | PyTorch | Keras |
/// |---|---|---|
/// | factor | 0.1 | 0.1 |
/// | patience | 10 | 10 |
/// | threshold / min_delta | 1e-4, relative | 1e-4, absolute |
/// | cooldown | 0 | 0 |
/// | min_lr | 0 | 0 |
#[derive(Debug, Clone, PartialEq)]
pub struct ReduceOnPlateau {
    /// Factor by which the rate is reduced (in [0, 1)).
    pub factor: f64,
    /// Bad epochs tolerated before reducing.
    pub patience: usize,
    /// Improvement threshold (`min_delta` in Keras).
    pub threshold: f64,
    /// Whether `threshold` is relative or absolute.
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction before counting bad epochs again.
    pub cooldown: usize,
    /// Lower bound on the rate.
    pub min_lr: f64,
    best: f64,
    bad_epochs: usize,
    cooldown_counter: usize,
    lr: Option<f64>,
}

impl Schedule {
    /// Parses a command-line schedule: `constant`, `step:STEP_SIZE:GAMMA`,
    /// `exponential:GAMMA`, `char-rnn:DECAY_AFTER:DECAY` or `plateau:PATIENCE:FACTOR`
    /// (Keras's ReduceLROnPlateau defaults otherwise).
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split(':').map(str::trim).collect();
        let bad = |why: &str| {
            Error::invalid(
                "lr schedule",
                format!(
                    "{text:?}: {why}; use constant, step:STEP_SIZE:GAMMA, exponential:GAMMA, \
                     char-rnn:DECAY_AFTER:DECAY or plateau:PATIENCE:FACTOR"
                ),
            )
        };
        let num = |i: usize| -> Result<f64> {
            parts
                .get(i)
                .and_then(|p| p.parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(&format!("argument {i} must be a non-negative number")))
        };
        let whole = |i: usize| -> Result<usize> {
            parts
                .get(i)
                .and_then(|p| p.parse::<usize>().ok())
                .ok_or_else(|| bad(&format!("argument {i} must be a whole number")))
        };
        let schedule = match (parts[0], parts.len()) {
            ("constant", 1) => Schedule::Constant,
            ("step", 3) => Schedule::Step {
                step_size: whole(1)?,
                gamma: num(2)?,
            },
            ("exponential", 2) => Schedule::Exponential { gamma: num(1)? },
            ("char-rnn" | "charrnn", 3) => Schedule::CharRnn {
                decay_after: whole(1)?,
                decay: num(2)?,
            },
            ("plateau", 3) => {
                let mut p = ReduceOnPlateau::keras_defaults();
                p.patience = whole(1)?;
                p.factor = num(2)?;
                Schedule::Plateau(p)
            }
            _ => return Err(bad("unknown form")),
        };
        schedule.validate()?;
        Ok(schedule)
    }
}

/// The counters of a [`ReduceOnPlateau`]: saved with a run's state so that a
/// resumed run carries on counting where the interrupted one stopped.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct PlateauState {
    /// The best metric so far; `None` before the first epoch.
    pub best: Option<f64>,
    /// Epochs without improvement so far.
    pub bad_epochs: usize,
    /// Epochs of cooldown left.
    pub cooldown_counter: usize,
    /// The rate set by the last step, if any.
    pub lr: Option<f64>,
}

impl ReduceOnPlateau {
    /// The counters, for a checkpoint.
    pub fn state(&self) -> PlateauState {
        PlateauState {
            best: self.best.is_finite().then_some(self.best),
            bad_epochs: self.bad_epochs,
            cooldown_counter: self.cooldown_counter,
            lr: self.lr,
        }
    }

    /// Continues from saved counters (the settings stay this schedule's own).
    pub fn restore(&mut self, state: &PlateauState) {
        self.best = state.best.unwrap_or(f64::INFINITY);
        self.bad_epochs = state.bad_epochs;
        self.cooldown_counter = state.cooldown_counter;
        self.lr = state.lr;
    }

    /// PyTorch's defaults: factor 0.1, patience 10, threshold 1e-4 relative,
    /// cooldown 0, min_lr 0.
    pub fn torch_defaults() -> Self {
        ReduceOnPlateau {
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            best: f64::INFINITY,
            bad_epochs: 0,
            cooldown_counter: 0,
            lr: None,
        }
    }

    /// Keras's defaults: factor 0.1, patience 10, min_delta 1e-4 (absolute),
    /// cooldown 0, min_lr 0.
    pub fn keras_defaults() -> Self {
        ReduceOnPlateau {
            threshold_mode: ThresholdMode::Abs,
            ..Self::torch_defaults()
        }
    }

    /// A schedule with the given settings and PyTorch's relative threshold.
    pub fn new(factor: f64, patience: usize, min_delta: f64, cooldown: usize, min_lr: f64) -> Self {
        ReduceOnPlateau {
            factor,
            patience,
            threshold: min_delta,
            cooldown,
            min_lr,
            ..Self::torch_defaults()
        }
    }

    /// Errors unless `factor` is in [0, 1) and `threshold`, `min_lr` are finite and >= 0.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.factor) {
            return Err(Error::invalid(
                "plateau factor",
                format!("{} must be in [0, 1)", self.factor),
            ));
        }
        for (name, v) in [("min_delta", self.threshold), ("min_lr", self.min_lr)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(
                    name,
                    format!("{v} must be a finite value >= 0"),
                ));
            }
        }
        Ok(())
    }

    /// The best metric seen so far (infinity before the first step).
    pub fn best(&self) -> f64 {
        self.best
    }

    /// The rate set by the last [`ReduceOnPlateau::step`], if any.
    pub fn lr(&self) -> Option<f64> {
        self.lr
    }

    fn is_better(&self, metric: f64) -> bool {
        match self.threshold_mode {
            ThresholdMode::Rel => metric < self.best * (1.0 - self.threshold),
            ThresholdMode::Abs => metric < self.best - self.threshold,
        }
    }

    /// Records the end-of-epoch `metric` (e.g. validation loss) and returns the
    /// rate for the next epoch, given the current rate `lr`. A NaN metric counts
    /// as a bad epoch.
    pub fn step(&mut self, metric: f64, lr: f64) -> f64 {
        if self.is_better(metric) {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.bad_epochs = 0;
        }
        let mut new_lr = lr;
        if self.bad_epochs > self.patience {
            let reduced = (lr * self.factor).max(self.min_lr);
            if lr - reduced > 1e-8 {
                new_lr = reduced;
            }
            self.cooldown_counter = self.cooldown;
            self.bad_epochs = 0;
        }
        self.lr = Some(new_lr);
        new_lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_command_line_schedules() {
        assert_eq!(Schedule::parse("constant").unwrap(), Schedule::Constant);
        assert_eq!(
            Schedule::parse("step:3:0.5").unwrap(),
            Schedule::Step {
                step_size: 3,
                gamma: 0.5
            }
        );
        assert_eq!(
            Schedule::parse("exponential:0.9").unwrap(),
            Schedule::Exponential { gamma: 0.9 }
        );
        assert_eq!(
            Schedule::parse("char-rnn:10:0.97").unwrap(),
            Schedule::CharRnn {
                decay_after: 10,
                decay: 0.97
            }
        );
        match Schedule::parse("plateau:4:0.2").unwrap() {
            Schedule::Plateau(p) => assert!(p.patience == 4 && (p.factor - 0.2).abs() < 1e-12),
            other => panic!("{other:?}"),
        }
        for bad in ["", "step:2", "step:x:0.5", "exponential:-1", "warmup:3"] {
            let e = Schedule::parse(bad).unwrap_err().to_string();
            assert!(e.contains("step:STEP_SIZE:GAMMA"), "{bad}: {e}");
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    fn seq(s: &Schedule, base: f64, n: usize) -> Vec<f64> {
        (0..n).map(|e| s.lr_at(base, e)).collect()
    }

    fn assert_seq(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (e, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(close(*g, *w), "epoch {e}: got {g}, want {w}; {got:?}");
        }
    }

    #[test]
    fn step_decay() {
        let s = Schedule::Step {
            step_size: 3,
            gamma: 0.5,
        };
        assert_seq(
            &seq(&s, 0.1, 8),
            &[0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025],
        );
        assert!(Schedule::Step {
            step_size: 0,
            gamma: 0.5
        }
        .validate()
        .is_err());
    }

    #[test]
    fn exponential_decay() {
        let s = Schedule::Exponential { gamma: 0.9 };
        assert_seq(&seq(&s, 1.0, 4), &[1.0, 0.9, 0.81, 0.729]);
    }

    #[test]
    fn char_rnn_decay() {
        let s = Schedule::CharRnn {
            decay_after: 3,
            decay: 0.5,
        };
        // Epochs 1 and 2 (1-based) end without decay; epoch 3's end decays.
        assert_seq(&seq(&s, 2e-3, 6), &[2e-3, 2e-3, 2e-3, 1e-3, 5e-4, 2.5e-4]);
        let s = Schedule::CharRnn {
            decay_after: 0,
            decay: 0.5,
        };
        assert_seq(&seq(&s, 1.0, 3), &[1.0, 0.5, 0.25]);
    }

    #[test]
    fn plateau_patience_cooldown_min_lr() {
        let mut p = ReduceOnPlateau::new(0.5, 1, 0.0, 1, 0.3);
        let metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95];
        let mut lr = 1.0;
        let mut got = Vec::new();
        for m in metrics {
            lr = p.step(m, lr);
            got.push(lr);
        }
        // Hand-computed with torch's rules: bad epochs at indices 2,3 -> reduce at 3;
        // index 4 is cooldown; bad at 5,6 -> reduce at 6 to max(0.25, 0.3) = 0.3;
        // cooldown 7; bad 8 (one bad epoch, patience 1: no change).
        assert_seq(&got, &[1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3]);
        assert_eq!(p.best(), 0.9);
        assert_eq!(Schedule::Plateau(p).lr_at(1.0, 9), 0.3);
    }

    #[test]
    fn plateau_threshold_modes() {
        // Relative: 0.99995 is not better than 1.0 * (1 - 1e-4).
        let mut rel = ReduceOnPlateau::torch_defaults();
        rel.patience = 0;
        assert_eq!(rel.step(1.0, 1.0), 1.0);
        assert!(close(rel.step(0.99995, 1.0), 0.1));
        // Absolute with min_delta 0.1: 0.95 is not better than 1.0 - 0.1.
        let mut abs = ReduceOnPlateau::keras_defaults();
        abs.patience = 0;
        abs.threshold = 0.1;
        assert_eq!(abs.step(1.0, 1.0), 1.0);
        assert!(close(abs.step(0.95, 1.0), 0.1));
        assert_eq!(abs.step(0.85, 0.1), 0.1);
        // A NaN metric is a bad epoch.
        assert!(close(abs.step(f64::NAN, 0.1), 0.01));
        assert!(ReduceOnPlateau::new(1.5, 1, 0.0, 0, 0.0)
            .validate()
            .is_err());
    }
}
