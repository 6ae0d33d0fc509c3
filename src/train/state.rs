//! What a training run records and what it needs to resume: the per-epoch
//! history and the training state saved beside the weights.

use std::collections::BTreeMap;

/// One epoch's metrics, e.g. `loss`, `accuracy`, `val_loss`, `val_accuracy`, `lr`.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Metric name -> value.
    pub metrics: BTreeMap<String, f64>,
    /// Wall-clock seconds the epoch took.
    pub seconds: f64,
}

/// The history of a run, epoch by epoch (Keras's `History`).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct History {
    /// Records in order.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// The values of one metric over the epochs (missing values skipped).
    pub fn series(&self, metric: &str) -> Vec<(usize, f64)> {
        self.epochs
            .iter()
            .filter_map(|e| e.metrics.get(metric).map(|v| (e.epoch, *v)))
            .collect()
    }
}

/// Everything besides the weights that a resumed run needs to continue exactly
/// as an uninterrupted one: position, RNG, optimizer moments, history, the best
/// monitored value so far. Optimizer tensors are stored separately (safetensors);
/// this struct holds their names and the scalar state.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainingState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimisation steps completed.
    pub step: u64,
    /// State of the run's PRNG (shuffling, dropout seeds) after the last completed epoch.
    pub rng: [u64; 4],
    /// The optimizer's name and step count (its tensors live in `optimizer.safetensors`).
    pub optimizer_algorithm: String,
    /// The optimizer's `steps()`.
    pub optimizer_steps: u64,
    /// Current learning rate.
    pub lr: f64,
    /// Best value of the monitored metric so far, and its epoch.
    pub best: Option<(f64, usize)>,
    /// Epochs since the monitored metric last improved (early stopping).
    pub wait: usize,
    /// The counters of a reduce-on-plateau schedule, when the run has one
    /// (absent from states saved before they were recorded).
    #[serde(default)]
    pub plateau: Option<super::schedule::PlateauState>,
    /// The history so far.
    pub history: History,
    /// What defines the run (absent from states saved before it was recorded).
    #[serde(default)]
    pub run: Option<super::run::RunIdentity>,
}

/// The largest step, epoch or optimizer step count a saved state may hold:
/// far beyond any real run, and far from overflowing when counted on.
pub const MAX_SAVED_COUNT: u64 = 1 << 48;

impl TrainingState {
    /// Checks the values a crafted or damaged `training_state.json` could
    /// hold before a resumed run relies on them; the message names the field.
    pub fn check(&self) -> std::result::Result<(), String> {
        let counts = [
            ("epoch", self.epoch as u64),
            ("step", self.step),
            ("optimizer_steps", self.optimizer_steps),
            ("wait", self.wait as u64),
        ];
        for (name, v) in counts {
            if v > MAX_SAVED_COUNT {
                return Err(format!("`{name}` is {v}, more than {MAX_SAVED_COUNT}"));
            }
        }
        if !self.lr.is_finite() || self.lr < 0.0 {
            return Err(format!(
                "`lr` is {}; a learning rate is finite and not negative",
                self.lr
            ));
        }
        if let Some((value, epoch)) = self.best {
            if !value.is_finite() || epoch > self.epoch {
                return Err(format!(
                    "`best` is ({value}, epoch {epoch}) after {} epochs",
                    self.epoch
                ));
            }
        }
        if self.wait > self.epoch {
            return Err(format!(
                "`wait` is {} after only {} epochs",
                self.wait, self.epoch
            ));
        }
        if let Some(last) = self.history.epochs.iter().map(|e| e.epoch).max() {
            if last > self.epoch {
                return Err(format!(
                    "the history records epoch {last} after only {} epochs",
                    self.epoch
                ));
            }
        }
        if let Some(lr) = self.plateau.as_ref().and_then(|p| p.lr) {
            if !lr.is_finite() || lr < 0.0 {
                return Err(format!("`plateau.lr` is {lr}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crafted_values_are_refused_with_the_field_named() {
        let ok = TrainingState {
            epoch: 3,
            step: 30,
            lr: 0.001,
            best: Some((0.5, 2)),
            wait: 1,
            ..Default::default()
        };
        ok.check().unwrap();
        let bad = |f: fn(&mut TrainingState)| {
            let mut s = ok.clone();
            f(&mut s);
            s.check().unwrap_err()
        };
        assert!(bad(|s| s.lr = -5.0).contains("`lr` is -5"));
        assert!(bad(|s| s.step = u64::MAX).contains("`step`"));
        assert!(bad(|s| s.best = Some((0.1, 9))).contains("`best`"));
        assert!(bad(|s| s.wait = 7).contains("`wait`"));
        assert!(bad(|s| s.history.epochs.push(EpochRecord {
            epoch: 8,
            ..Default::default()
        }))
        .contains("epoch 8"));
    }
}
