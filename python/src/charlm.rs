//! `gated.CharLM`: a char-level language model trained as `gated train
//! --text` trains it (same options, same defaults, same weights), and a
//! streaming `generate` as `gated generate`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, TryLockError};

use gated::data::CharVocab;
use gated::generate::{Generator, Strategy};
use gated::model::{torch_state_dict, Sequential};
use gated::train::charlm::{
    load_char_model, parse_cell, save_char_model, CharLmConfig, CharLmTrainer, Event,
};
use gated::train::metrics::{bits_per_char, perplexity};
use gated::Error;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::to_numpy;
use crate::errors;
use crate::fit::SignalHooks;
use crate::spec::{clone_model, SpecText};

/// A trained char model with its vocabulary.
#[pyclass(module = "gated", name = "CharLM")]
pub struct PyCharLm {
    /// A mutex makes the pyclass Sync (layers are only Send); see `locked`.
    model: Mutex<Sequential>,
    spec_toml: String,
    vocab: CharVocab,
    /// `(step, mean training loss)` at every evaluation.
    #[pyo3(get)]
    train_curve: Vec<(usize, f32)>,
    /// `(step, validation loss)` at every evaluation.
    #[pyo3(get)]
    val_curve: Vec<(usize, f32)>,
}

/// Python's `print`, so that notebooks show the lines.
fn print(line: &str) {
    Python::attach(|py| {
        let _ = py
            .import("builtins")
            .and_then(|b| b.getattr("print"))
            .and_then(|p| p.call1((line,)));
    });
}

/// The line `gated train --text` prints at an evaluation.
fn eval_line(step: usize, total: usize, train_loss: f32, val: Option<f32>, best: bool) -> String {
    let mut line = format!(
        "step {step}/{total}: train loss {train_loss:.4} (perplexity {:.2}, {:.3} bits/char)",
        perplexity(train_loss),
        bits_per_char(train_loss)
    );
    if let Some(v) = val {
        let _ = write!(
            line,
            ", val loss {v:.4} (perplexity {:.2}, {:.3} bits/char){}",
            perplexity(v),
            bits_per_char(v),
            if best { ", best so far" } else { "" }
        );
    }
    line
}

/// `m` locked without waiting: a waiting thread would hold the GIL that the
/// thread using `m` needs back.
fn locked<T>(m: &Mutex<T>) -> PyResult<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Ok(g),
        Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(
            "the model is in use by another thread",
        )),
    }
}

/// The weights of every parameter group.
fn snapshot(model: &Sequential) -> Vec<Vec<f32>> {
    model.params().iter().map(|p| p.values.clone()).collect()
}

#[pymethods]
impl PyCharLm {
    /// Trains a char model on `text` (the text itself as a str, or a
    /// pathlib.Path / os.PathLike of a UTF-8 file) with
    /// `gated train --text`'s options and defaults; the same options and
    /// seed give the same weights. The model kept is the one `gated train
    /// --text` saves: the best by validation loss (the last without
    /// validation text). Ctrl-C stops after the current step with a
    /// KeyboardInterrupt whose `.model` is the CharLM at that step.
    /// verbose: 0 silent, 1 the evaluation lines and samples, 2 also a line
    /// every 10 steps.
    #[staticmethod]
    #[pyo3(signature = (
        text, *, cell = "lstm", units = 128, layers = 2, embedding_dim = 64, dropout = 0.0,
        seq_len = 50, batch_size = 50, optimizer = "rmsprop", lr = 2e-3, lr_decay = 0.97,
        lr_decay_after = 10, grad_clip = 5.0, train_frac = 0.95, val_frac = 0.05,
        eval_every = 1000, steps = None, epochs = 50, seed = 0, spec = None,
        sample_length = 200, verbose = 1
    ))]
    #[allow(clippy::too_many_arguments)]
    fn train(
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        cell: &str,
        units: usize,
        layers: usize,
        embedding_dim: usize,
        dropout: f32,
        seq_len: usize,
        batch_size: usize,
        optimizer: &str,
        lr: f64,
        lr_decay: f64,
        lr_decay_after: usize,
        grad_clip: f32,
        train_frac: f64,
        val_frac: f64,
        eval_every: usize,
        steps: Option<usize>,
        epochs: usize,
        seed: u64,
        spec: Option<&Bound<'_, PyAny>>,
        sample_length: usize,
        verbose: i64,
    ) -> PyResult<Self> {
        crate::fit::verbosity(verbose)?;
        let text: String = match text.extract::<String>() {
            Ok(s) => s,
            Err(_) => {
                let path: PathBuf = text.extract().map_err(|_| {
                    PyValueError::new_err("invalid text: give a str or a path to a text file")
                })?;
                gated::data::read_text(&path).map_err(errors::os)?
            }
        };
        let cfg = CharLmConfig {
            cell: parse_cell(cell).map_err(errors::value)?,
            units,
            layers,
            embedding_dim,
            dropout,
            seq_len,
            batch_size,
            optimizer: optimizer.to_string(),
            lr,
            lr_decay,
            lr_decay_after,
            grad_clip,
            train_frac,
            val_frac,
            eval_every,
            seed,
            steps,
            epochs,
            sample_temperatures: vec![0.5, 1.0],
            // Samples cost time; only make them when they are printed.
            sample_length: if verbose > 0 { sample_length } else { 0 },
        };
        cfg.validate().map_err(errors::value)?;
        let spec = match spec.filter(|s| !s.is_none()) {
            Some(s) => Some(SpecText::from_py(s)?.toml()?),
            None => None,
        };
        let vocab = CharVocab::from_text(&text).map_err(errors::value)?;
        let mut hooks = SignalHooks::default();
        let (result, trainer, best) = py.detach(|| {
            let mut trainer = match CharLmTrainer::new(&text, vocab.clone(), cfg, spec) {
                Ok(t) => t,
                Err(e) => return (Err(e), None, None),
            };
            let mut best: Option<Vec<Vec<f32>>> = None;
            let result = trainer.train(&mut |event| {
                match event {
                    Event::Step {
                        step,
                        total,
                        epoch,
                        loss,
                        lr,
                    } => {
                        if verbose >= 2 && (step % 10 == 0 || step == 1) {
                            print(&format!(
                                "step {step}/{total} (epoch {epoch}): train loss {loss:.4}, lr {lr:.2e}"
                            ));
                        }
                        if hooks.poll() {
                            return Err(Error::Interrupted);
                        }
                    }
                    Event::Eval {
                        step,
                        total,
                        train_loss,
                        val_loss,
                        best: is_best,
                        samples,
                        model,
                    } => {
                        if verbose > 0 {
                            print(&eval_line(step, total, train_loss, val_loss, is_best));
                            for s in &samples {
                                print(&format!("--- sample {} ---\n{}", s.label, s.text));
                            }
                        }
                        if is_best {
                            best = Some(snapshot(model));
                        }
                    }
                }
                Ok(())
            });
            (result, Some(trainer), best)
        });
        let Some(trainer) = trainer else {
            return Err(errors::value(result.err().unwrap_or(Error::Interrupted)));
        };
        let spec_toml = trainer.spec_text().to_string();
        let vocab = trainer.vocab().clone();
        match result {
            Ok(summary) => {
                let mut model = trainer.into_model();
                if let Some(w) = best {
                    for (p, v) in model.params_mut().into_iter().zip(w) {
                        p.values.copy_from_slice(&v);
                    }
                }
                Ok(PyCharLm {
                    model: Mutex::new(model),
                    spec_toml,
                    vocab,
                    train_curve: summary.train_curve,
                    val_curve: summary.val_curve,
                })
            }
            Err(Error::Interrupted) => {
                let err = hooks
                    .raised
                    .take()
                    .unwrap_or_else(|| PyKeyboardInterrupt::new_err("training interrupted"));
                let lm = PyCharLm {
                    model: Mutex::new(trainer.into_model()),
                    spec_toml,
                    vocab,
                    train_curve: Vec::new(),
                    val_curve: Vec::new(),
                };
                let _ = err.value(py).setattr("model", Py::new(py, lm)?);
                Err(err)
            }
            Err(e) => Err(errors::value(e)),
        }
    }

    /// A char model directory written by `gated train --text` or `save`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let (model, vocab) = py.detach(|| load_char_model(&path)).map_err(errors::os)?;
        let spec_toml = gated::model::dir::load_spec_text(&path)
            .map_err(errors::os)?
            .1;
        Ok(PyCharLm {
            model: Mutex::new(model),
            spec_toml,
            vocab,
            train_curve: Vec::new(),
            val_curve: Vec::new(),
        })
    }

    /// Writes the model directory (model.toml, weights.safetensors,
    /// vocab.json) that `gated generate --model DIR` reads.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let mut guard = locked(&self.model)?;
        let model: &mut Sequential = &mut guard;
        let (spec, vocab) = (&self.spec_toml, &self.vocab);
        py.detach(move || save_char_model(&path, model, spec, vocab))
            .map_err(errors::os)
    }

    /// Streams `length` characters after reading `prime`, one str per
    /// character as it is sampled (the prime itself is not yielded).
    /// `temperature` > 0 scales the logits, `top_k` keeps the k most likely,
    /// `argmax` always takes the most likely; `seed` fixes the sample.
    #[pyo3(signature = (prime = None, length = 500, temperature = 1.0, top_k = None, *, argmax = false, seed = 0))]
    fn generate(
        &self,
        prime: Option<String>,
        length: usize,
        temperature: f32,
        top_k: Option<usize>,
        argmax: bool,
        seed: u64,
    ) -> PyResult<CharStream> {
        let strategy = Strategy::from_options(argmax, temperature, top_k).map_err(errors::value)?;
        let prime = match prime {
            Some(p) => p,
            None => ['\n', ' ']
                .into_iter()
                .find(|&c| self.vocab.id(c).is_some())
                .or_else(|| self.vocab.chars().first().copied())
                .map(String::from)
                .unwrap_or_default(),
        };
        let model = {
            let trained = locked(&self.model)?;
            clone_model(&trained, &self.spec_toml).map_err(errors::value)?
        };
        let mut gen =
            Generator::new(model, self.vocab.clone(), strategy, seed).map_err(errors::value)?;
        gen.prime(&prime).map_err(|e| match e {
            Error::Invalid { message, .. } => errors::value(Error::invalid("prime", message)),
            e => errors::value(e),
        })?;
        Ok(CharStream {
            gen: Mutex::new(gen),
            left: length,
        })
    }

    /// The vocabulary, sorted.
    #[getter]
    fn vocab(&self) -> String {
        self.vocab.chars().iter().collect()
    }

    /// Keras's summary table: printed, and returned as a string.
    fn summary(&self, py: Python<'_>) -> PyResult<String> {
        let s = locked(&self.model)?.summary();
        py.import("builtins")?.getattr("print")?.call1((&s,))?;
        Ok(s)
    }

    /// All parameters, counted Keras's way.
    fn count_params(&self) -> PyResult<usize> {
        Ok(locked(&self.model)?.param_counts().0)
    }

    /// The weights as PyTorch's `state_dict()` (see `Sequential.state_dict`).
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let model = locked(&self.model)?;
        let dict = torch_state_dict(&model).map_err(errors::value)?;
        for (name, t) in dict {
            out.set_item(name, to_numpy(py, t)?)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> PyResult<String> {
        Ok(format!(
            "<gated.CharLM: vocabulary {}, {} parameters>",
            self.vocab.len(),
            locked(&self.model)?.param_counts().0
        ))
    }
}

/// The characters of `CharLM.generate`, sampled one per `next()` with the
/// GIL released.
#[pyclass(module = "gated")]
pub struct CharStream {
    gen: Mutex<Generator<Sequential>>,
    left: usize,
}

#[pymethods]
impl CharStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<String>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut guard = locked(&self.gen)?;
        let gen: &mut Generator<Sequential> = &mut guard;
        let c = py.detach(|| gen.next_char()).map_err(errors::value)?;
        self.left -= 1;
        Ok(Some(c.to_string()))
    }
}
