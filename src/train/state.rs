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
