//! Keras's `model.fit`: mini-batch training with shuffling, validation,
//! metrics, gradient clipping, learning-rate schedules, early stopping, hooks
//! at every epoch end, and exact resumption from a saved [`TrainingState`].
//!
//! ```
//! use gated::layers::{Dense, DenseConfig};
//! use gated::model::{InputSpec, Sequential};
//! use gated::train::{fit, FitConfig, Loss, NoHooks, Optimizer, Verbosity};
//! use gated::{Rng, Tensor};
//!
//! # fn main() -> gated::Result<()> {
//! // Learn y = 2x - 1 with one Dense unit.
//! let mut model = Sequential::new("line", InputSpec { shape: vec![Some(1)], integer: false });
//! model.add(Box::new(Dense::new("dense_1", 1, DenseConfig::new(1), &mut Rng::new(0))?))?;
//! let xs: Vec<f32> = (0..64).map(|i| i as f32 / 32.0 - 1.0).collect();
//! let ys: Vec<f32> = xs.iter().map(|x| 2.0 * x - 1.0).collect();
//! let x = Tensor::from_vec(&[64, 1], xs)?;
//! let y = Tensor::from_vec(&[64, 1], ys)?;
//! let cfg = FitConfig::new(Loss::MeanSquaredError)
//!     .epochs(60)
//!     .batch_size(8)
//!     .verbosity(Verbosity::Quiet);
//! let mut opt = Optimizer::parse("adam", 0.05)?;
//! let history = fit(&mut model, &mut opt, &x, &y, &cfg, &mut NoHooks)?;
//! assert!(history.series("loss").last().unwrap().1 < 1e-3);
//! # Ok(())
//! # }
//! ```
//!
//! ## Determinism and resumption
//!
//! The run's PRNG (seeded from [`FitConfig::seed`]) is advanced once per
//! epoch; that one draw seeds the epoch's shuffle and every layer's dropout
//! generator (through [`Layer::reseed`](crate::Layer::reseed)). Its state after
//! each epoch is saved in [`TrainingState::rng`], so a run resumed with
//! [`fit_from`] from the state, weights and optimizer state of epoch `k` ends
//! with the same weights, bit for bit, as a run that never stopped.
//!
//! Layers whose randomness is not restarted by `reseed` break this guarantee:
//! at present the recurrent layers' own `dropout` / `recurrent_dropout` masks
//! (their `Layer` impls do not yet forward `reseed` to `Rnn::reseed`); the
//! `Dropout` layer and `TimeDistributed` do.

use std::collections::BTreeMap;
use std::time::Instant;

use super::loss::Loss;
use super::metrics;
use super::optim::Optimizer;
use super::progress::{Progress, Verbosity};
use super::schedule::Schedule;
use super::state::{EpochRecord, History, TrainingState};
use super::step::{train_step, Clip, Targets};
use crate::model::{format_shape, Sequential};
use crate::rng::Rng;
use crate::{Error, Result, Tensor};

/// Data held out to measure generalisation after every epoch.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Validation {
    /// No validation (the default).
    #[default]
    None,
    /// Keras's `validation_split`: the *last* fraction of the samples, taken
    /// before any shuffling, in `(0, 1)`.
    Split(f64),
    /// Keras's `validation_data=(x, y)`.
    Data(Tensor, Tensor),
}

/// Whether a monitored value should go down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Lower is better (losses, perplexity, error).
    Min,
    /// Higher is better (accuracies).
    Max,
}

impl Mode {
    /// Keras's `mode="auto"`: `Max` for names containing `acc`, else `Min`.
    pub fn infer(metric: &str) -> Mode {
        if metric.contains("acc") {
            Mode::Max
        } else {
            Mode::Min
        }
    }
}

/// Keras's `EarlyStopping` callback.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    /// The metric watched, e.g. `val_loss` (default) or `val_accuracy`.
    pub monitor: String,
    /// Epochs without improvement after which training stops.
    pub patience: usize,
    /// The least change that counts as an improvement (default 0).
    pub min_delta: f64,
    /// At the end, put back the weights of the best epoch (default false).
    pub restore_best_weights: bool,
    /// Direction; `None` infers it from the name (see [`Mode::infer`]).
    pub mode: Option<Mode>,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without improvement of `val_loss`.
    pub fn new(patience: usize) -> Self {
        EarlyStopping {
            monitor: "val_loss".into(),
            patience,
            min_delta: 0.0,
            restore_best_weights: false,
            mode: None,
        }
    }

    /// Sets the monitored metric.
    pub fn monitor(mut self, name: impl Into<String>) -> Self {
        self.monitor = name.into();
        self
    }

    /// Sets the minimum change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }

    /// Restores the best epoch's weights at the end.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// Fixes the direction instead of inferring it.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The direction used.
    pub fn effective_mode(&self) -> Mode {
        self.mode.unwrap_or_else(|| Mode::infer(&self.monitor))
    }

    /// Whether `value` improves on `best` by more than `min_delta`.
    pub fn improves(&self, value: f64, best: Option<f64>) -> bool {
        match best {
            None => !value.is_nan(),
            Some(b) => match self.effective_mode() {
                Mode::Min => value < b - self.min_delta.abs(),
                Mode::Max => value > b + self.min_delta.abs(),
            },
        }
    }
}

/// A metric reported per epoch beside the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `accuracy`: argmax agreement (sparse or one-hot targets); with binary
    /// cross-entropy it is binary accuracy, as in Keras.
    Accuracy,
    /// `binary_accuracy`: thresholded at 0.5 (or 0 on logits).
    BinaryAccuracy,
    /// `top_k_accuracy`: the target among the `k` highest scores (k = 5 by name).
    TopKAccuracy(usize),
    /// `perplexity`: `exp` of the epoch's mean cross-entropy.
    Perplexity,
    /// `bits_per_char`: the epoch's mean cross-entropy in bits.
    BitsPerChar,
    /// `mae`: mean absolute error.
    Mae,
}

/// The names [`Metric::parse`] accepts.
pub const METRIC_NAMES: &[&str] = &[
    "accuracy",
    "binary_accuracy",
    "top_k_accuracy",
    "perplexity",
    "bits_per_char",
    "mae",
];

impl Metric {
    /// The metric for a name in [`METRIC_NAMES`] (also `acc`, `top5`,
    /// `top_k_accuracy@K`, `bpc`, `mean_absolute_error`).
    pub fn parse(name: &str) -> Result<Metric> {
        let n = name.trim().to_ascii_lowercase();
        Ok(match n.as_str() {
            "accuracy" | "acc" => Metric::Accuracy,
            "binary_accuracy" => Metric::BinaryAccuracy,
            "top_k_accuracy" | "top5" | "sparse_top_k_categorical_accuracy" => {
                Metric::TopKAccuracy(5)
            }
            "perplexity" | "ppl" => Metric::Perplexity,
            "bits_per_char" | "bpc" => Metric::BitsPerChar,
            "mae" | "mean_absolute_error" => Metric::Mae,
            other => match other.strip_prefix("top_k_accuracy@").map(str::parse) {
                Some(Ok(k)) if k > 0 => Metric::TopKAccuracy(k),
                _ => {
                    return Err(Error::invalid(
                        "metric",
                        format!(
                            "unknown metric {name:?}; known: {}",
                            METRIC_NAMES.join(", ")
                        ),
                    ))
                }
            },
        })
    }

    /// The name used in the history (`accuracy`, `top_k_accuracy`, ...).
    pub fn name(self) -> String {
        match self {
            Metric::Accuracy => "accuracy".into(),
            Metric::BinaryAccuracy => "binary_accuracy".into(),
            Metric::TopKAccuracy(5) => "top_k_accuracy".into(),
            Metric::TopKAccuracy(k) => format!("top_k_accuracy@{k}"),
            Metric::Perplexity => "perplexity".into(),
            Metric::BitsPerChar => "bits_per_char".into(),
            Metric::Mae => "mae".into(),
        }
    }

    /// Whether the metric is derived from the mean loss rather than per batch.
    fn derived_from_loss(self) -> bool {
        matches!(self, Metric::Perplexity | Metric::BitsPerChar)
    }

    /// The metric on one batch (not for metrics derived from the loss).
    fn on_batch(self, loss: Loss, pred: &Tensor, target: &Tensor) -> Result<f64> {
        let bce_logits = matches!(loss, Loss::BinaryCrossEntropy { from_logits: true });
        let v = match self {
            Metric::Accuracy if matches!(loss, Loss::BinaryCrossEntropy { .. }) => {
                metrics::binary_accuracy(pred, target, bce_logits)?
            }
            Metric::Accuracy => metrics::accuracy(pred, target)?,
            Metric::BinaryAccuracy => metrics::binary_accuracy(pred, target, bce_logits)?,
            Metric::TopKAccuracy(k) if target.shape() == pred.shape() => {
                let classes = pred.shape().last().copied().unwrap_or(1).max(1);
                let labels: Vec<f32> = target
                    .data()
                    .chunks_exact(classes)
                    .map(|r| metrics::argmax(r) as f32)
                    .collect();
                let shape = &pred.shape()[..pred.rank().saturating_sub(1)];
                metrics::top_k_accuracy(pred, &Tensor::from_vec(shape, labels)?, k)?
            }
            Metric::TopKAccuracy(k) => metrics::top_k_accuracy(pred, target, k)?,
            Metric::Mae => metrics::mae(pred, target)?,
            Metric::Perplexity | Metric::BitsPerChar => 0.0,
        };
        Ok(v as f64)
    }
}

/// Everything `fit` needs besides the model, optimizer and data. Defaults
/// follow Keras: 1 epoch, batch size 32, shuffling on, no validation, no
/// metrics, no clipping, constant learning rate, no early stopping, seed 0,
/// progress bar.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Passes over the training data (Keras `epochs`, default 1).
    pub epochs: usize,
    /// Samples per gradient step (default 32); the last batch may be smaller.
    pub batch_size: usize,
    /// Reshuffle the training samples every epoch (default true).
    pub shuffle: bool,
    /// Validation data or split (default none).
    pub validation: Validation,
    /// The loss minimised.
    pub loss: Loss,
    /// Metrics reported besides the loss (default none).
    pub metrics: Vec<Metric>,
    /// Rescale gradients whose global L2 norm exceeds this (Keras `global_clipnorm`,
    /// PyTorch `clip_grad_norm_`).
    pub clipnorm: Option<f32>,
    /// Clamp every gradient element to `[-v, v]` (Keras `clipvalue`, PyTorch `clip_grad_value_`).
    pub clipvalue: Option<f32>,
    /// Learning rate per epoch from the optimizer's base rate (default constant).
    pub schedule: Schedule,
    /// Early stopping (default none).
    pub early_stopping: Option<EarlyStopping>,
    /// Seed of the shuffle and dropout streams (default 0).
    pub seed: u64,
    /// What is printed (default a progress bar).
    pub verbosity: Verbosity,
}

impl FitConfig {
    /// Keras's defaults with `loss`.
    pub fn new(loss: Loss) -> Self {
        FitConfig {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            validation: Validation::None,
            loss,
            metrics: Vec::new(),
            clipnorm: None,
            clipvalue: None,
            schedule: Schedule::Constant,
            early_stopping: None,
            seed: 0,
            verbosity: Verbosity::ProgressBar,
        }
    }

    /// Sets the number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets the batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Turns per-epoch shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Holds out the last `fraction` of the samples (Keras `validation_split`).
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation = Validation::Split(fraction);
        self
    }

    /// Validates on explicit data (Keras `validation_data`).
    pub fn validation_data(mut self, x: Tensor, y: Tensor) -> Self {
        self.validation = Validation::Data(x, y);
        self
    }

    /// Sets the metrics.
    pub fn metrics(mut self, metrics: Vec<Metric>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sets global-norm clipping.
    pub fn clipnorm(mut self, max_norm: f32) -> Self {
        self.clipnorm = Some(max_norm);
        self
    }

    /// Sets value clipping.
    pub fn clipvalue(mut self, clip: f32) -> Self {
        self.clipvalue = Some(clip);
        self
    }

    /// Sets the learning-rate schedule.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets early stopping.
    pub fn early_stopping(mut self, early: EarlyStopping) -> Self {
        self.early_stopping = Some(early);
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the verbosity.
    pub fn verbosity(mut self, verbosity: Verbosity) -> Self {
        self.verbosity = verbosity;
        self
    }

    /// Errors on values out of range (zero batch size, split outside `(0, 1)`,
    /// non-positive clipping, loss-derived metrics without a cross-entropy,
    /// early stopping on validation metrics without validation data).
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size", "0 must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", "0 must be at least 1"));
        }
        if let Validation::Split(f) = self.validation {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::invalid(
                    "validation_split",
                    format!("{f} must be a fraction strictly between 0 and 1"),
                ));
            }
        }
        for (name, v) in [("clipnorm", self.clipnorm), ("clipvalue", self.clipvalue)] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(Error::invalid(
                        name,
                        format!("{v} must be a finite value > 0"),
                    ));
                }
            }
        }
        self.schedule.validate()?;
        let ce = matches!(
            self.loss,
            Loss::CategoricalCrossEntropy
                | Loss::SparseCategoricalCrossEntropy
                | Loss::BinaryCrossEntropy { .. }
        );
        for m in &self.metrics {
            if m.derived_from_loss() && !ce {
                return Err(Error::invalid(
                    "metric",
                    format!(
                        "{} is derived from a cross-entropy loss, but the loss is {}",
                        m.name(),
                        self.loss.name()
                    ),
                ));
            }
        }
        if let Some(es) = &self.early_stopping {
            if es.monitor.starts_with("val_") && self.validation == Validation::None {
                return Err(Error::invalid(
                    "early stopping",
                    format!(
                        "it monitors {} but there is no validation data; set a validation split \
                         or monitor {}",
                        es.monitor,
                        es.monitor.trim_start_matches("val_")
                    ),
                ));
            }
            if !es.min_delta.is_finite() {
                return Err(Error::invalid("min_delta", "must be finite"));
            }
        }
        Ok(())
    }

    /// The metric names recorded per epoch, in print order (`loss`, metrics,
    /// then the `val_` versions when there is validation data).
    pub fn metric_names(&self) -> Vec<String> {
        let train: Vec<String> = std::iter::once("loss".to_string())
            .chain(self.metrics.iter().map(|m| m.name()))
            .collect();
        let mut names = train.clone();
        if self.validation != Validation::None {
            names.extend(train.iter().map(|n| format!("val_{n}")));
        }
        names
    }
}

/// Called by the fit loop. Every method has a no-op default.
pub trait FitHooks {
    /// After every epoch, with the epoch's record, the model and optimizer as
    /// they are at the epoch's end, and the state a resumed run starts from.
    /// An error stops training and is returned by `fit`.
    fn on_epoch_end(
        &mut self,
        _record: &EpochRecord,
        _model: &Sequential,
        _optimizer: &Optimizer,
        _state: &TrainingState,
    ) -> Result<()> {
        Ok(())
    }

    /// Checked after every batch; `true` makes `fit` return
    /// [`Error::Interrupted`] (the CLI sets it on SIGINT).
    fn should_stop(&mut self) -> bool {
        false
    }

    /// Once at the end, after early stopping restored the best weights.
    fn on_train_end(&mut self, _model: &Sequential, _history: &History) -> Result<()> {
        Ok(())
    }
}

/// Hooks that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl FitHooks for NoHooks {}

/// The lecture's overfitting rule of thumb as a warning: `Some(text)` when the
/// model has more trainable parameters than there are training samples.
pub fn overfitting_warning(trainable: usize, samples: usize) -> Option<String> {
    (trainable > samples).then(|| {
        format!(
            "warning: the model has {trainable} trainable parameters but only {samples} training \
             samples; it can memorise them (overfit). Consider more data, a smaller model, \
             dropout or early stopping."
        )
    })
}

/// Samples `rows` of `t` (first axis) as a new tensor.
fn gather(t: &Tensor, rows: &[usize]) -> Result<Tensor> {
    let n = t.shape().first().copied().unwrap_or(0);
    let size = t.len().checked_div(n).unwrap_or(0);
    let mut data = Vec::with_capacity(rows.len() * size);
    for &r in rows {
        data.extend_from_slice(&t.data()[r * size..(r + 1) * size]);
    }
    let mut shape = t.shape().to_vec();
    shape[0] = rows.len();
    Tensor::from_vec(&shape, data)
}

/// Samples `start..end` of `t` (first axis).
fn slice_rows(t: &Tensor, start: usize, end: usize) -> Result<Tensor> {
    gather(t, &(start..end).collect::<Vec<_>>())
}

/// Checks `x` against the model input and `y` against the model output for
/// `loss`; returns `y`, reshaped `[N] -> [N, 1]` when the output has one unit
/// (as Keras does).
pub fn check_data(model: &Sequential, x: &Tensor, y: &Tensor, loss: Loss) -> Result<Tensor> {
    let (nx, ny) = (x.shape().first(), y.shape().first());
    if nx != ny || nx.is_none() {
        return Err(Error::invalid(
            "y",
            format!(
                "x has shape {:?} and y has shape {:?}: both need the samples on the first axis, \
                 with the same count",
                x.shape(),
                y.shape()
            ),
        ));
    }
    if nx == Some(&0) {
        return Err(Error::invalid("data", "x and y hold no samples"));
    }
    model.check_input(x)?;
    super::targets::check_inputs_finite(x)?;
    let out = model.output_shape()?;
    let per: Vec<Option<usize>> = out.iter().skip(1).copied().collect();
    let fits = |want: &[Option<usize>], got: &[usize]| {
        want.len() == got.len() && want.iter().zip(got).all(|(w, g)| w.is_none_or(|w| w == *g))
    };
    let ys = &y.shape()[1..];
    let (ok, expected) = if loss == Loss::SparseCategoricalCrossEntropy {
        let lead = &per[..per.len().saturating_sub(1)];
        let with_one: Vec<Option<usize>> = lead.iter().copied().chain([Some(1)]).collect();
        (
            !per.is_empty() && (fits(lead, ys) || fits(&with_one, ys)),
            format!(
                "class ids of shape {}",
                format_shape(
                    &std::iter::once(None)
                        .chain(lead.iter().copied())
                        .collect::<Vec<_>>()
                )
            ),
        )
    } else {
        if per.last() == Some(&Some(1)) && fits(&per[..per.len() - 1], ys) {
            super::targets::check_targets(y, loss, Some(1))?;
            let mut shape = y.shape().to_vec();
            shape.push(1);
            return y.clone().reshape(&shape);
        }
        (
            fits(&per, ys),
            format!("targets of shape {}", format_shape(&out)),
        )
    };
    if !ok {
        return Err(Error::invalid(
            "y",
            format!(
                "shape {:?} does not fit the model's output {}: {} needs {expected}",
                y.shape(),
                format_shape(&out),
                loss.name()
            ),
        ));
    }
    super::targets::check_targets(y, loss, per.last().copied().flatten())?;
    Ok(y.clone())
}

/// Weighted running sums of the loss and batch metrics.
#[derive(Debug, Default)]
struct Accumulator {
    samples: usize,
    loss: f64,
    metrics: Vec<f64>,
}

impl Accumulator {
    fn new(n_metrics: usize) -> Self {
        Accumulator {
            samples: 0,
            loss: 0.0,
            metrics: vec![0.0; n_metrics],
        }
    }

    fn add(
        &mut self,
        cfg_metrics: &[Metric],
        loss_fn: Loss,
        loss: f32,
        pred: &Tensor,
        y: &Tensor,
    ) -> Result<()> {
        let b = pred.shape().first().copied().unwrap_or(1);
        self.samples += b;
        self.loss += loss as f64 * b as f64;
        for (sum, m) in self.metrics.iter_mut().zip(cfg_metrics) {
            if !m.derived_from_loss() {
                *sum += m.on_batch(loss_fn, pred, y)? * b as f64;
            }
        }
        Ok(())
    }

    /// `(name, value)` pairs, names prefixed with `prefix`.
    fn values(&self, cfg_metrics: &[Metric], prefix: &str) -> Vec<(String, f64)> {
        let n = self.samples.max(1) as f64;
        let loss = self.loss / n;
        let mut out = vec![(format!("{prefix}loss"), loss)];
        for (sum, m) in self.metrics.iter().zip(cfg_metrics) {
            let v = match m {
                Metric::Perplexity => loss.exp(),
                Metric::BitsPerChar => loss / std::f64::consts::LN_2,
                _ => sum / n,
            };
            out.push((format!("{prefix}{}", m.name()), v));
        }
        out
    }
}

/// Keras's `model.evaluate`: the mean loss and metrics over `x`, `y` in
/// batches of `batch_size`, in inference mode (no dropout). Keys are `loss`
/// and the metric names.
pub fn evaluate(
    model: &mut Sequential,
    x: &Tensor,
    y: &Tensor,
    loss: Loss,
    metrics: &[Metric],
    batch_size: usize,
) -> Result<BTreeMap<String, f64>> {
    Ok(evaluate_pairs(model, x, y, loss, metrics, batch_size, "")?
        .into_iter()
        .collect())
}

fn evaluate_pairs(
    model: &mut Sequential,
    x: &Tensor,
    y: &Tensor,
    loss: Loss,
    metrics: &[Metric],
    batch_size: usize,
    prefix: &str,
) -> Result<Vec<(String, f64)>> {
    if batch_size == 0 {
        return Err(Error::invalid("batch_size", "0 must be at least 1"));
    }
    let y = check_data(model, x, y, loss)?;
    let n = x.shape()[0];
    let mut acc = Accumulator::new(metrics.len());
    let mut start = 0;
    while start < n {
        let end = (start + batch_size).min(n);
        let xb = slice_rows(x, start, end)?;
        let yb = slice_rows(&y, start, end)?;
        let (head, skip) = model.loss_head(loss);
        let pred = model.forward_head(xb, false, skip)?;
        let (l, _) = head.compute(&pred, &yb)?;
        acc.add(metrics, head, l, &pred, &yb)?;
        start = end;
    }
    Ok(acc.values(metrics, prefix))
}

/// A copy of every parameter value, for restoring the best weights.
fn snapshot(model: &Sequential) -> Vec<Vec<f32>> {
    model.params().iter().map(|p| p.values.clone()).collect()
}

fn restore(model: &mut Sequential, snap: &[Vec<f32>]) {
    for (p, v) in model.params_mut().into_iter().zip(snap) {
        p.values.copy_from_slice(v);
    }
}

/// Trains `model` on `x`, `y` (samples on the first axis) from scratch; see
/// [`fit_from`].
pub fn fit(
    model: &mut Sequential,
    optimizer: &mut Optimizer,
    x: &Tensor,
    y: &Tensor,
    cfg: &FitConfig,
    hooks: &mut dyn FitHooks,
) -> Result<History> {
    fit_from(model, optimizer, x, y, cfg, None, hooks)
}

/// Trains `model`, continuing from `start` when given, and returns the full
/// history (the resumed part appended to `start.history`).
///
/// The optimizer carries the *base* learning rate that `cfg.schedule` scales;
/// to resume, pass the model with the weights saved at `start.epoch`, an
/// optimizer with the same base rate and its state imported
/// ([`Optimizer::import_state`]), and the same `cfg` and data.
/// A [`Schedule::Plateau`] continues from the counters saved in `start` (or,
/// for a state saved without them, starts counting afresh from `start.lr`);
/// with `restore_best_weights` a resumed run only knows the best weights it
/// has seen itself.
///
/// Each step is [`train_step`]: forward in training mode, loss, backward,
/// check that the loss and every gradient are finite (else
/// [`Error::NonFinite`] naming the step, before the weights change), clip,
/// update.
pub fn fit_from(
    model: &mut Sequential,
    optimizer: &mut Optimizer,
    x: &Tensor,
    y: &Tensor,
    cfg: &FitConfig,
    start: Option<&TrainingState>,
    hooks: &mut dyn FitHooks,
) -> Result<History> {
    cfg.validate()?;
    let y = check_data(model, x, y, cfg.loss)?;
    let n = x.shape()[0];
    let (x_train, y_train, val) = match &cfg.validation {
        Validation::None => (x.clone(), y, None),
        Validation::Split(f) => {
            let split_at = (n as f64 * (1.0 - f)).floor() as usize;
            if split_at == 0 || split_at == n {
                return Err(Error::invalid(
                    "validation_split",
                    format!("{f} of {n} samples leaves an empty training or validation set"),
                ));
            }
            (
                slice_rows(x, 0, split_at)?,
                slice_rows(&y, 0, split_at)?,
                Some((slice_rows(x, split_at, n)?, slice_rows(&y, split_at, n)?)),
            )
        }
        Validation::Data(xv, yv) => {
            let yv = check_data(model, xv, yv, cfg.loss)?;
            (x.clone(), y, Some((xv.clone(), yv)))
        }
    };
    let n_train = x_train.shape()[0];
    let mut progress = Progress::new(cfg.verbosity);
    if let Some(w) = overfitting_warning(model.param_counts().1, n_train) {
        progress.note(&w);
    }

    let base_lr = optimizer.lr();
    let mut state = match start {
        Some(s) => {
            if s.epoch > cfg.epochs {
                return Err(Error::invalid(
                    "resume",
                    format!(
                        "the saved state is at epoch {} but only {} epochs were asked for",
                        s.epoch, cfg.epochs
                    ),
                ));
            }
            if matches!(cfg.schedule, Schedule::Plateau(_)) {
                optimizer.set_lr(s.lr);
            }
            s.clone()
        }
        None => TrainingState {
            rng: Rng::new(cfg.seed).state(),
            lr: base_lr,
            ..TrainingState::default()
        },
    };
    let mut schedule = cfg.schedule.clone();
    if let (Schedule::Plateau(p), Some(saved)) = (&mut schedule, &state.plateau) {
        p.restore(saved);
    }
    let mut best_weights: Option<Vec<Vec<f32>>> = None;
    let batches = n_train.div_ceil(cfg.batch_size);
    let mut order: Vec<usize> = (0..n_train).collect();

    // Each step clears the gradients behind its update; this clears whatever
    // the model held before the run.
    model.zero_grad();
    for epoch in state.epoch..cfg.epochs {
        let t0 = Instant::now();
        if !matches!(schedule, Schedule::Plateau(_)) {
            optimizer.set_lr(schedule.lr_at(base_lr, epoch));
        }
        let lr = optimizer.lr();
        let mut run_rng = Rng::from_state(state.rng);
        let mut epoch_rng = Rng::new(run_rng.next_u64());
        order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
        if cfg.shuffle {
            epoch_rng.shuffle(&mut order);
        }
        for l in model.layers_mut() {
            l.reseed(epoch_rng.next_u64());
        }

        progress.epoch_begin(epoch + 1, cfg.epochs, batches);
        let mut acc = Accumulator::new(cfg.metrics.len());
        for (b, rows) in order.chunks(cfg.batch_size).enumerate() {
            let step = state.step + 1;
            let result = train_step_on(model, optimizer, cfg, &x_train, &y_train, rows, step)
                .map_err(|e| match e {
                    Error::NonFinite { step, message } => Error::NonFinite {
                        step,
                        message: format!("{message} (epoch {}, batch {})", epoch + 1, b + 1),
                    },
                    e => e,
                });
            let (loss, pred, yb) = match result {
                Ok(r) => r,
                Err(e) => {
                    progress.abandon();
                    return Err(e);
                }
            };
            state.step = step;
            acc.add(&cfg.metrics, model.loss_head(cfg.loss).0, loss, &pred, &yb)?;
            progress.batch(b + 1, &acc.values(&cfg.metrics, ""));
            if hooks.should_stop() {
                progress.abandon();
                return Err(Error::Interrupted);
            }
        }

        let mut values = acc.values(&cfg.metrics, "");
        if let Some((xv, yv)) = &val {
            values.extend(evaluate_pairs(
                model,
                xv,
                yv,
                cfg.loss,
                &cfg.metrics,
                cfg.batch_size,
                "val_",
            )?);
        }
        let seconds = t0.elapsed().as_secs_f64();
        progress.epoch_end(epoch + 1, cfg.epochs, batches, seconds, &values);
        let mut metrics: BTreeMap<String, f64> = values.into_iter().collect();
        metrics.insert("lr".into(), lr);
        let record = EpochRecord {
            epoch: epoch + 1,
            metrics,
            seconds,
        };

        if let Schedule::Plateau(p) = &mut schedule {
            let key = if val.is_some() { "val_loss" } else { "loss" };
            let watched = record.metrics.get(key).copied().unwrap_or(f64::NAN);
            optimizer.set_lr(p.step(watched, lr));
            state.plateau = Some(p.state());
        }
        let mut stop = false;
        if let Some(es) = &cfg.early_stopping {
            let value = *record.metrics.get(&es.monitor).ok_or_else(|| {
                Error::invalid(
                    "early stopping",
                    format!(
                        "it monitors {:?}, which is not recorded; recorded: {}",
                        es.monitor,
                        record
                            .metrics
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            if es.improves(value, state.best.map(|b| b.0)) {
                state.best = Some((value, epoch + 1));
                state.wait = 0;
                if es.restore_best_weights {
                    best_weights = Some(snapshot(model));
                }
            } else {
                state.wait += 1;
                stop = state.wait >= es.patience;
            }
        } else if let Some(&value) = record
            .metrics
            .get("val_loss")
            .or_else(|| record.metrics.get("loss"))
        {
            // Without early stopping the best epoch is still tracked, as
            // Keras's ModelCheckpoint(save_best_only=True) does, on val_loss
            // when there is validation data, else on loss.
            if state.best.is_none_or(|(best, _)| value < best) {
                state.best = Some((value, epoch + 1));
            }
        }
        state.epoch = epoch + 1;
        state.rng = run_rng.state();
        state.lr = optimizer.lr();
        state.optimizer_algorithm = optimizer.name().to_string();
        state.optimizer_steps = optimizer.steps();
        state.history.epochs.push(record.clone());
        hooks.on_epoch_end(&record, model, optimizer, &state)?;
        if stop {
            progress.line(&format!("Epoch {}: early stopping", epoch + 1));
            break;
        }
    }

    if let (Some(es), Some((_, best_epoch))) = (&cfg.early_stopping, state.best) {
        if es.restore_best_weights && best_epoch != state.epoch {
            match &best_weights {
                Some(w) => {
                    restore(model, w);
                    progress.line(&format!(
                        "Restoring model weights from the end of the best epoch: {best_epoch}."
                    ));
                }
                None => progress.note(&format!(
                    "warning: the best epoch ({best_epoch}) precedes the resumed run, whose \
                     memory lacks its weights; keeping the last weights"
                )),
            }
        }
    }
    hooks.on_train_end(model, &state.history)?;
    Ok(state.history)
}

/// One optimisation step ([`train_step`]) on the samples `rows`; returns the
/// batch loss, the prediction and the batch targets.
fn train_step_on(
    model: &mut Sequential,
    optimizer: &mut Optimizer,
    cfg: &FitConfig,
    x: &Tensor,
    y: &Tensor,
    rows: &[usize],
    step: u64,
) -> Result<(f32, Tensor, Tensor)> {
    let xb = gather(x, rows)?;
    let yb = gather(y, rows)?;
    let clip = Clip {
        value: cfg.clipvalue,
        norm: cfg.clipnorm,
    };
    let target = Targets::new(model, cfg.loss, &yb);
    let out = train_step(model, optimizer, xb, &target, clip, step)?;
    Ok((out.loss, out.pred, yb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_round_trip() {
        for name in METRIC_NAMES {
            assert_eq!(Metric::parse(name).unwrap().name(), *name);
        }
        assert_eq!(
            Metric::parse("top_k_accuracy@3").unwrap(),
            Metric::TopKAccuracy(3)
        );
        assert!(Metric::parse("f1").is_err());
    }

    #[test]
    fn mode_inference_and_min_delta() {
        assert_eq!(Mode::infer("val_accuracy"), Mode::Max);
        assert_eq!(Mode::infer("val_loss"), Mode::Min);
        let es = EarlyStopping::new(2).min_delta(0.1);
        assert!(es.improves(1.0, None));
        assert!(!es.improves(0.95, Some(1.0)));
        assert!(es.improves(0.85, Some(1.0)));
        let es = EarlyStopping::new(2).monitor("val_accuracy");
        assert!(es.improves(0.9, Some(0.8)));
        assert!(!es.improves(0.7, Some(0.8)));
    }

    #[test]
    fn config_validation() {
        let c = FitConfig::new(Loss::MeanSquaredError);
        assert!(c.clone().batch_size(0).validate().is_err());
        assert!(c.clone().epochs(0).validate().is_err());
        assert!(c.clone().validation_split(1.0).validate().is_err());
        assert!(c.clone().clipnorm(-1.0).validate().is_err());
        assert!(c
            .clone()
            .metrics(vec![Metric::Perplexity])
            .validate()
            .is_err());
        assert!(c
            .clone()
            .early_stopping(EarlyStopping::new(1))
            .validate()
            .is_err());
        assert!(c
            .clone()
            .early_stopping(EarlyStopping::new(1).monitor("loss"))
            .validate()
            .is_ok());
        assert_eq!(
            c.validation_split(0.2)
                .metrics(vec![Metric::Mae])
                .metric_names(),
            ["loss", "mae", "val_loss", "val_mae"]
        );
    }

    #[test]
    fn overfitting_rule_of_thumb() {
        assert!(overfitting_warning(1000, 100)
            .unwrap()
            .contains("1000 trainable"));
        assert!(overfitting_warning(100, 100).is_none());
    }
}
