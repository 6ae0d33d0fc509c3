//! `Sequential.fit`: the arguments as [`FitOptions`] (the CLI's flags), and
//! hooks that let Ctrl-C stop training between steps.

use gated::train::options::FitOptions;
use gated::train::{FitHooks, History, Verbosity};
use gated::Tensor;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Checks for signals (Ctrl-C) after every step, with the GIL taken back
/// for that moment only; the first exception is kept to be raised after fit
/// returns, the model as it is after the step.
#[derive(Default)]
pub struct SignalHooks {
    pub raised: Option<PyErr>,
}

impl SignalHooks {
    /// Whether a signal handler raised (now or before).
    pub fn poll(&mut self) -> bool {
        if self.raised.is_none() {
            if let Err(e) = Python::attach(|py| py.check_signals()) {
                self.raised = Some(e);
            }
        }
        self.raised.is_some()
    }
}

impl FitHooks for SignalHooks {
    fn should_stop(&mut self) -> bool {
        self.poll()
    }
}

/// Keras's `verbose`: 0 silent, 1 progress bar, 2 one line per epoch.
pub fn verbosity(verbose: i64) -> PyResult<Verbosity> {
    match verbose {
        0 => Ok(Verbosity::Quiet),
        1 => Ok(Verbosity::ProgressBar),
        2 => Ok(Verbosity::Plain),
        v => Err(PyValueError::new_err(format!(
            "invalid verbose: {v}; use 0 (silent), 1 (progress bar) or 2 (one line per epoch)"
        ))),
    }
}

/// `fit`'s keyword arguments, as given.
pub struct FitArgs {
    pub epochs: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    pub metrics: Vec<String>,
    pub seed: u64,
    pub verbose: i64,
    pub validation_split: f64,
    pub validation_data: Option<(Tensor, Tensor)>,
    pub lr_schedule: Option<String>,
    pub clipnorm: Option<f32>,
    pub clipvalue: Option<f32>,
    pub early_stopping_patience: Option<usize>,
    pub monitor: Option<String>,
    pub min_delta: f64,
    pub restore_best_weights: bool,
}

impl FitArgs {
    pub fn options(self) -> PyResult<FitOptions> {
        Ok(FitOptions {
            epochs: Some(self.epochs),
            batch_size: Some(self.batch_size),
            no_shuffle: !self.shuffle,
            metrics: self.metrics,
            seed: self.seed,
            verbosity: verbosity(self.verbose)?,
            validation_split: Some(self.validation_split),
            validation_data: self.validation_data,
            lr_schedule: self.lr_schedule,
            clipnorm: self.clipnorm,
            clipvalue: self.clipvalue,
            early_stopping_patience: self.early_stopping_patience,
            monitor: self.monitor,
            min_delta: self.min_delta,
            restore_best_weights: self.restore_best_weights,
        })
    }
}

/// Keras's `History`: `.history` maps each metric (`loss`, metrics, then
/// their `val_` versions) to its per-epoch values; `.epoch` lists the epochs
/// run (0-based, as Keras); `.lr` the learning rate of each epoch.
#[pyclass(module = "gated", name = "History", frozen)]
pub struct PyHistory {
    #[pyo3(get)]
    history: Py<PyDict>,
    #[pyo3(get)]
    epoch: Vec<usize>,
    #[pyo3(get)]
    lr: Vec<f64>,
}

#[pymethods]
impl PyHistory {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "History(epochs={}, history={})",
            self.epoch.len(),
            self.history.bind(py).repr()?
        ))
    }
}

impl PyHistory {
    /// `names` in Keras's order (see `FitConfig::metric_names`).
    pub fn new(py: Python<'_>, h: &History, names: &[String]) -> PyResult<Self> {
        let dict = PyDict::new(py);
        for name in names {
            let values: Vec<f64> = h
                .epochs
                .iter()
                .map(|r| r.metrics.get(name).copied().unwrap_or(f64::NAN))
                .collect();
            dict.set_item(name, values)?;
        }
        Ok(PyHistory {
            history: dict.unbind(),
            epoch: h.epochs.iter().map(|r| r.epoch - 1).collect(),
            lr: h
                .epochs
                .iter()
                .map(|r| r.metrics.get("lr").copied().unwrap_or(f64::NAN))
                .collect(),
        })
    }
}
