//! `gated.Sequential`: a model with Keras's methods (fit, predict, evaluate,
//! summary, count_params, save) and PyTorch's state_dict, over the library
//! calls the CLI makes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, TryLockError};

use gated::model::torch::apply_state_dict;
use gated::model::{
    load_model_dir, predict_batched, save_model_dir, torch_state_dict, SaveExtras, Sequential,
};
use gated::train::options::optimizer_by_name;
use gated::train::{evaluate, fit, Loss, Metric, Optimizer};
use gated::{Error, Tensor};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::arrays::{tensor_from, to_numpy};
use crate::errors;
use crate::fit::{FitArgs, PyHistory, SignalHooks};
use crate::spec::SpecText;

/// The optimizer of the last `fit`, kept (moments and all) for the next
/// `fit` with the same settings, as a compiled Keras model keeps its own.
struct KeptOptimizer {
    settings: (String, Option<f64>, f64),
    optimizer: Optimizer,
}

/// A Sequential model built from a spec or loaded from a model directory.
#[pyclass(module = "gated", name = "Sequential")]
pub struct PySequential {
    /// Behind a mutex because a pyclass must be Sync and layers are only
    /// Send; `locked` never waits for it (see there).
    model: Mutex<Sequential>,
    /// `model.toml` as saved.
    pub spec_toml: String,
    /// A char model's vocabulary, kept for `save`.
    vocab: Option<serde_json::Value>,
    /// Loss and metrics of the last `fit`, `evaluate`'s defaults.
    compiled: Option<(Loss, Vec<Metric>)>,
    optimizer: Option<KeptOptimizer>,
}

/// Metric names from `metrics`: a string, or a sequence of strings.
fn metric_names(metrics: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match metrics {
        None => Ok(Vec::new()),
        Some(m) if m.is_none() => Ok(Vec::new()),
        Some(m) => match m.cast::<PyString>() {
            Ok(s) => Ok(vec![s.extract::<String>()?]),
            Err(_) => m
                .extract::<Vec<String>>()
                .map_err(|_| PyValueError::new_err("invalid metrics: give a list of metric names")),
        },
    }
}

/// `(x, y)` of `validation_data`.
fn pair(obj: &Bound<'_, PyAny>) -> PyResult<(Tensor, Tensor)> {
    let items: Vec<Bound<'_, PyAny>> = obj
        .try_iter()
        .and_then(|it| it.collect::<PyResult<Vec<_>>>())
        .ok()
        .filter(|v| v.len() == 2)
        .ok_or_else(|| {
            PyValueError::new_err("invalid validation_data: give a pair (x_val, y_val)")
        })?;
    Ok((
        tensor_from(&items[0], "validation_data x")?,
        tensor_from(&items[1], "validation_data y")?,
    ))
}

/// An interrupted run raises what the signal handler raised (KeyboardInterrupt).
fn fit_error(e: Error, hooks: SignalHooks) -> PyErr {
    match e {
        Error::Interrupted => hooks
            .raised
            .unwrap_or_else(|| PyKeyboardInterrupt::new_err("training interrupted")),
        e => errors::value(e),
    }
}

impl PySequential {
    pub fn new(model: Sequential, spec_toml: String, vocab: Option<serde_json::Value>) -> Self {
        PySequential {
            model: Mutex::new(model),
            spec_toml,
            vocab,
            compiled: None,
            optimizer: None,
        }
    }

    /// The model. Never blocks: a thread waiting here would hold the GIL that
    /// the thread computing with the model needs at its next signal check.
    fn locked(&self) -> PyResult<MutexGuard<'_, Sequential>> {
        match self.model.try_lock() {
            Ok(g) => Ok(g),
            // A panic cannot leave a model half-written that an error would not.
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(
                "the model is in use by another thread (fit, predict or evaluate)",
            )),
        }
    }

    /// The optimizer for these settings: the kept one when they match.
    fn optimizer_for(&mut self, name: &str, lr: Option<f64>, wd: f64) -> PyResult<Optimizer> {
        let settings = (name.trim().to_ascii_lowercase(), lr, wd);
        match self.optimizer.take() {
            Some(k) if k.settings == settings => Ok(k.optimizer),
            _ => optimizer_by_name(name, lr, wd).map_err(errors::value),
        }
    }

    /// Checks inputs as `gated predict` does: the model's input shape and no
    /// empty axis.
    fn check_inputs(model: &Sequential, x: &Tensor) -> PyResult<()> {
        model.check_input(x).map_err(errors::value)?;
        if let Some(axis) = x.shape().iter().position(|&d| d == 0) {
            return Err(PyValueError::new_err(format!(
                "x: shape {:?} has an empty axis {axis}, so it holds no values",
                x.shape()
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl PySequential {
    /// A model from a spec: a dict, a TOML or JSON string, or a path to a
    /// .toml/.json file, as `gated summary`/`gated train --spec` read. `seed`
    /// draws the initial weights (`gated train --seed`).
    #[staticmethod]
    #[pyo3(signature = (spec, seed = 0))]
    fn from_spec(spec: &Bound<'_, PyAny>, seed: u64) -> PyResult<Self> {
        let spec = SpecText::from_py(spec)?;
        let model = spec.build(seed)?;
        Ok(PySequential::new(model, spec.toml()?, None))
    }

    /// A model directory written by `gated train` or `save` (model.toml and
    /// weights.safetensors, which may come from PyTorch).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let loaded = py.detach(|| load_model_dir(&path)).map_err(errors::os)?;
        Ok(PySequential::new(
            loaded.model,
            loaded.spec_text,
            loaded.vocab,
        ))
    }

    /// Writes a model directory (model.toml, weights.safetensors in PyTorch's
    /// naming, the manifest), loadable by `gated.load` and the CLI.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let extras = SaveExtras {
            vocab: self.vocab.as_ref(),
            ..Default::default()
        };
        let mut guard = self.locked()?;
        let model: &mut Sequential = &mut guard;
        let spec = &self.spec_toml;
        py.detach(move || save_model_dir(&path, model, spec, &extras))
            .map_err(errors::os)
    }

    /// Keras's summary table: printed, and returned as a string.
    fn summary(&self, py: Python<'_>) -> PyResult<String> {
        let s = self.locked()?.summary();
        py.import("builtins")?.getattr("print")?.call1((&s,))?;
        Ok(s)
    }

    /// All parameters, trainable or not, counted Keras's way.
    fn count_params(&self) -> PyResult<usize> {
        Ok(self.locked()?.param_counts().0)
    }

    /// The model's name (the spec's `name`).
    #[getter]
    fn name(&self) -> PyResult<String> {
        Ok(self.locked()?.name().to_string())
    }

    /// Input shape with the batch axis first (None where any size fits).
    #[getter]
    fn input_shape(&self) -> PyResult<Vec<Option<usize>>> {
        Ok(self.locked()?.input_shape_with_batch())
    }

    /// Output shape with the batch axis first.
    #[getter]
    fn output_shape(&self) -> PyResult<Vec<Option<usize>>> {
        self.locked()?.output_shape().map_err(errors::value)
    }

    /// Keras's `fit`: trains in place and returns a History. The same
    /// arguments and seed give the same weights, bit for bit, as `gated
    /// train` with the same flags (`from_spec(spec, seed=S)` + `fit(...,
    /// seed=S)` is `gated train --seed S`). The optimizer (with its moments)
    /// is kept for the next fit with the same optimizer, lr and
    /// weight_decay. Ctrl-C stops after the current step and raises
    /// KeyboardInterrupt; the model keeps the weights of that step.
    #[pyo3(signature = (
        x, y, *, loss, optimizer = "adam", lr = None, epochs = 1, batch_size = 32,
        validation_split = 0.0, validation_data = None, metrics = None, clipnorm = None,
        clipvalue = None, weight_decay = 0.0, lr_schedule = None, from_logits = false,
        early_stopping_patience = None, monitor = None, min_delta = 0.0,
        restore_best_weights = false, seed = 0, shuffle = true, verbose = 1
    ))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        loss: &str,
        optimizer: &str,
        lr: Option<f64>,
        epochs: usize,
        batch_size: usize,
        validation_split: f64,
        validation_data: Option<&Bound<'_, PyAny>>,
        metrics: Option<&Bound<'_, PyAny>>,
        clipnorm: Option<f32>,
        clipvalue: Option<f32>,
        weight_decay: f64,
        lr_schedule: Option<String>,
        from_logits: bool,
        early_stopping_patience: Option<usize>,
        monitor: Option<String>,
        min_delta: f64,
        restore_best_weights: bool,
        seed: u64,
        shuffle: bool,
        verbose: i64,
    ) -> PyResult<PyHistory> {
        let validation_data = validation_data.filter(|v| !v.is_none());
        let args = FitArgs {
            epochs,
            batch_size,
            shuffle,
            metrics: metric_names(metrics)?,
            seed,
            verbose,
            validation_split,
            validation_data: validation_data.map(pair).transpose()?,
            lr_schedule,
            clipnorm,
            clipvalue,
            early_stopping_patience,
            monitor,
            min_delta,
            restore_best_weights,
        };
        let loss = Loss::parse(loss)
            .map_err(errors::value)?
            .with_from_logits(from_logits);
        let cfg = args.options()?.config(loss).map_err(errors::value)?;
        let x = tensor_from(x, "x")?;
        let y = tensor_from(y, "y")?;
        let mut opt = self.optimizer_for(optimizer, lr, weight_decay)?;
        let mut hooks = SignalHooks::default();
        let mut guard = self.locked()?;
        let model: &mut Sequential = &mut guard;
        let result = py.detach(|| fit(model, &mut opt, &x, &y, &cfg, &mut hooks));
        drop(guard);
        self.optimizer = Some(KeptOptimizer {
            settings: (optimizer.trim().to_ascii_lowercase(), lr, weight_decay),
            optimizer: opt,
        });
        self.compiled = Some((loss, cfg.metrics.clone()));
        let history = result.map_err(|e| fit_error(e, hooks))?;
        PyHistory::new(py, &history, &cfg.metric_names())
    }

    /// The model's outputs for `x` (inference mode), in batches.
    #[pyo3(signature = (x, batch_size = 32))]
    fn predict<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let x = tensor_from(x, "x")?;
        let mut guard = self.locked()?;
        let model: &mut Sequential = &mut guard;
        Self::check_inputs(model, &x)?;
        let y = py
            .detach(|| predict_batched(model, &x, batch_size, Path::new("x")))
            .map_err(errors::value)?;
        to_numpy(py, y)
    }

    /// Keras's `evaluate(return_dict=True)`: the loss and metrics on (x, y).
    /// `loss` and `metrics` default to those of the last `fit`.
    #[pyo3(signature = (x, y, *, loss = None, metrics = None, batch_size = 32, from_logits = false))]
    #[allow(clippy::too_many_arguments)]
    fn evaluate<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        loss: Option<&str>,
        metrics: Option<&Bound<'py, PyAny>>,
        batch_size: usize,
        from_logits: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (loss, default_metrics) = match (loss, &self.compiled) {
            (Some(l), _) => (
                Loss::parse(l)
                    .map_err(errors::value)?
                    .with_from_logits(from_logits),
                Vec::new(),
            ),
            (None, Some((l, m))) => (*l, m.clone()),
            (None, None) => {
                return Err(PyValueError::new_err(
                    "invalid loss: the model has not been fitted; pass loss=...",
                ))
            }
        };
        let metrics = match metrics.filter(|m| !m.is_none()) {
            Some(m) => metric_names(Some(m))?
                .iter()
                .filter(|n| !n.trim().is_empty())
                .map(|n| Metric::parse(n))
                .collect::<gated::Result<Vec<_>>>()
                .map_err(errors::value)?,
            None => default_metrics,
        };
        let x = tensor_from(x, "x")?;
        let y = tensor_from(y, "y")?;
        let mut guard = self.locked()?;
        let model: &mut Sequential = &mut guard;
        let values: BTreeMap<String, f64> = py
            .detach(|| evaluate(model, &x, &y, loss, &metrics, batch_size))
            .map_err(errors::value)?;
        let out = PyDict::new(py);
        let names = std::iter::once("loss".to_string()).chain(metrics.iter().map(|m| m.name()));
        for name in names {
            if let Some(v) = values.get(&name) {
                out.set_item(&name, v)?;
            }
        }
        Ok(out)
    }

    /// PyTorch's `state_dict()`: `<layer>.<param>` -> float32 array, names,
    /// shapes and gate orders as in weights.safetensors (a single-bias LSTM
    /// or SimpleRNN shows its bias as `bias_ih` and zeros as `bias_hh`).
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let model = self.locked()?;
        let dict = torch_state_dict(&model).map_err(errors::value)?;
        for (name, t) in dict {
            out.set_item(name, to_numpy(py, t)?)?;
        }
        Ok(out)
    }

    /// PyTorch's `load_state_dict(d)` (strict): arrays or torch tensors; a
    /// PyTorch module's state dict with the spec's layer names loads as is.
    /// On error the model is unchanged.
    fn load_state_dict(&mut self, state_dict: &Bound<'_, PyAny>) -> PyResult<()> {
        let items = state_dict.call_method0("items").map_err(|_| {
            PyValueError::new_err("invalid state_dict: give a dict of name -> array")
        })?;
        let mut tensors = Vec::new();
        for item in items.try_iter()? {
            let (name, value): (String, Bound<'_, PyAny>) = item?.extract()?;
            let t = tensor_from(&value, &name)?;
            tensors.push((name, t));
        }
        let mut model = self.locked()?;
        apply_state_dict(&mut model, &tensors, Path::new("state_dict")).map_err(errors::value)
    }

    fn __repr__(&self) -> PyResult<String> {
        let m = self.locked()?;
        Ok(format!(
            "<gated.Sequential {:?}: {} layers, {} parameters>",
            m.name(),
            m.layers().len(),
            m.param_counts().0
        ))
    }
}

/// `gated.load(dir)`: a model directory as a Sequential.
#[pyfunction]
pub fn load(py: Python<'_>, path: PathBuf) -> PyResult<PySequential> {
    PySequential::load(py, path)
}
