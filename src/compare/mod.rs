//! Cell comparison: train every recurrent cell type on every data set with
//! the same budget and seed, and write a report (`gated compare`).
//!
//! Each model is `[Masking | Embedding] -> recurrent block -> Dense head`,
//! built from spec TOML text (so it prints a Keras summary); the recurrent
//! block is one of [`CELLS`]:
//!
//! | cell | block |
//! | --- | --- |
//! | `simple_rnn`, `lstm`, `gru` | one layer of that type |
//! | `stacked_lstm` | two LSTM layers, the first with `return_sequences` |
//! | `bilstm` | `Bidirectional(LSTM)`, outputs concatenated |
//! | `rnn_lstm_cell` | the generic `rnn` layer around one LSTM cell |
//! | `stacked_cells` | `rnn` around two LSTM cells (`StackedRNNCells`) |
//!
//! The head follows the task: `Dense(classes)` + softmax with sparse
//! categorical cross-entropy, `Dense(1)` + sigmoid with binary
//! cross-entropy, or a linear `Dense(horizon)` with mean squared error. Every
//! model is trained for the same epochs with the same optimizer, batch size
//! and seed; after each epoch it is scored on the validation part of the
//! training data and on the test split (test scoring is not counted in the
//! training time).
//!
//! ```no_run
//! use gated::compare::{data, run, CompareConfig};
//!
//! # fn main() -> gated::Result<()> {
//! let specs = data::parse_data_specs(&["ts:JV_TRAIN.ts,JV_TEST.ts".to_string()])?;
//! let cfg = CompareConfig::new(vec!["lstm".into(), "gru".into()]).epochs(3);
//! let results = run(&specs, &cfg)?;
//! gated::compare::report::write(std::path::Path::new("out"), &results, &cfg, 0.0)?;
//! # Ok(())
//! # }
//! ```

pub mod data;
pub mod report;

use std::path::Path;
use std::time::Instant;

use crate::model::spec::parse_spec;
use crate::model::Sequential;
use crate::train::{
    evaluate, fit_from, FitConfig, FitHooks, Loss, Metric, Optimizer, TrainingState, Verbosity,
};
use crate::{Error, Result};
use data::{Budget, DataSpec, Prepared, Task};

/// The cell types `gated compare` knows.
pub const CELLS: &[&str] = &[
    "simple_rnn",
    "lstm",
    "gru",
    "stacked_lstm",
    "bilstm",
    "rnn_lstm_cell",
    "stacked_cells",
];

/// The shared budget and settings of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareConfig {
    /// Cell types, each from [`CELLS`].
    pub cells: Vec<String>,
    /// Epochs per model.
    pub epochs: usize,
    /// Units of every recurrent layer or cell.
    pub units: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Seed of weights, shuffles and the validation split.
    pub seed: u64,
    /// Optimizer name (as [`Optimizer::parse`]).
    pub optimizer: String,
    /// Learning rate.
    pub lr: f64,
    /// Global gradient-norm clipping, if any.
    pub clipnorm: Option<f32>,
    /// At most this many training (and test) samples per data set.
    pub max_samples: Option<usize>,
    /// Fraction of the training data held out for validation.
    pub validation: f64,
    /// Print progress lines on stderr.
    pub progress: bool,
    /// The command line, for the report.
    pub command: String,
}

impl CompareConfig {
    /// Defaults: 5 epochs, 32 units, batch 32, seed 0, Adam at 0.001, 10%
    /// validation, progress on.
    pub fn new(cells: Vec<String>) -> Self {
        CompareConfig {
            cells,
            epochs: 5,
            units: 32,
            batch_size: 32,
            seed: 0,
            optimizer: "adam".into(),
            lr: 1e-3,
            clipnorm: None,
            max_samples: None,
            validation: 0.1,
            progress: true,
            command: String::new(),
        }
    }

    /// Sets the epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Checks every field; errors name the one at fault.
    pub fn validate(&self) -> Result<()> {
        if self.cells.is_empty() {
            return Err(Error::invalid("--cells", "no cell type given"));
        }
        for c in &self.cells {
            if !CELLS.contains(&c.as_str()) {
                return Err(Error::invalid(
                    "--cells",
                    format!("unknown cell type '{c}'; known: {}", CELLS.join(", ")),
                ));
            }
        }
        if self.epochs == 0 || self.units == 0 || self.batch_size == 0 {
            return Err(Error::invalid(
                "budget",
                "--epochs, --units and --batch-size must be at least 1",
            ));
        }
        if !(self.validation > 0.0 && self.validation < 1.0) {
            return Err(Error::invalid(
                "--validation-split",
                format!("{} is not in (0, 1)", self.validation),
            ));
        }
        if self.max_samples == Some(0) {
            return Err(Error::invalid("--max-samples", "0 must be at least 1"));
        }
        Optimizer::parse(&self.optimizer, self.lr)?;
        Ok(())
    }

    fn budget(&self) -> Budget {
        Budget {
            max_samples: self.max_samples,
            validation: self.validation,
            seed: self.seed,
        }
    }
}

/// One epoch of one model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EpochPoint {
    /// 1-based epoch.
    pub epoch: usize,
    /// Training time so far (training and validation passes), seconds.
    pub seconds: f64,
    /// Training loss of the epoch.
    pub loss: f64,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation metric (accuracy, or MAE for regression).
    pub val_metric: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test metric.
    pub test_metric: f64,
}

/// The outcome of one cell type on one data set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CellResult {
    /// The cell type.
    pub cell: String,
    /// Parameters (Keras's count).
    pub params: usize,
    /// The model's Keras summary.
    pub summary: String,
    /// The spec TOML the model was built from.
    pub spec: String,
    /// Per-epoch scores.
    pub epochs: Vec<EpochPoint>,
    /// Why training stopped early, if it did (e.g. a non-finite loss).
    pub error: Option<String>,
}

impl CellResult {
    /// The epoch with the best validation score (highest accuracy, or lowest
    /// validation loss for regression); the earliest on ties.
    pub fn best_epoch(&self, task: &Task) -> Option<&EpochPoint> {
        let key = |p: &EpochPoint| match task {
            Task::Regression { .. } => -p.val_loss,
            _ => p.val_metric,
        };
        self.epochs.iter().filter(|p| key(p).is_finite()).fold(
            None,
            |best: Option<&EpochPoint>, p| match best {
                Some(b) if key(b) >= key(p) => Some(b),
                _ => Some(p),
            },
        )
    }

    /// Mean seconds per epoch (training and validation passes).
    pub fn seconds_per_epoch(&self) -> Option<f64> {
        self.epochs
            .last()
            .map(|p| p.seconds / self.epochs.len() as f64)
    }
}

/// Every cell's outcome on one data set.
#[derive(Debug, Clone)]
pub struct DataResult {
    /// The prepared data set (its tensors are dropped after training).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// The spec as given.
    pub spec: String,
    /// The task.
    pub task: Task,
    /// One per cell, in the order asked for.
    pub cells: Vec<CellResult>,
}

impl Task {
    /// Loss and per-epoch metric for the task.
    pub fn loss_and_metric(&self) -> (Loss, Metric) {
        match self {
            Task::Classes(_) => (Loss::SparseCategoricalCrossEntropy, Metric::Accuracy),
            Task::Binary => (
                Loss::BinaryCrossEntropy { from_logits: false },
                Metric::Accuracy,
            ),
            Task::Regression { .. } => (Loss::MeanSquaredError, Metric::Mae),
        }
    }

    /// Name of the metric in reports.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Task::Regression { .. } => "MAE",
            _ => "accuracy",
        }
    }
}

/// The recurrent block of a cell type as `[[layer]]` TOML.
fn block(cell: &str, units: usize) -> Result<String> {
    let lstm_cell = format!("{{ type = \"lstm\", units = {units} }}");
    Ok(match cell {
        "simple_rnn" | "lstm" | "gru" => {
            format!("[[layer]]\ntype = \"{cell}\"\nunits = {units}\n")
        }
        "stacked_lstm" => format!(
            "[[layer]]\ntype = \"lstm\"\nunits = {units}\nreturn_sequences = true\n\n\
             [[layer]]\ntype = \"lstm\"\nunits = {units}\n"
        ),
        "bilstm" => format!(
            "[[layer]]\ntype = \"bidirectional\"\nmerge_mode = \"concat\"\n\
             [layer.layer]\ntype = \"lstm\"\nunits = {units}\n"
        ),
        "rnn_lstm_cell" => format!("[[layer]]\ntype = \"rnn\"\ncells = [{lstm_cell}]\n"),
        "stacked_cells" => {
            format!("[[layer]]\ntype = \"rnn\"\ncells = [{lstm_cell}, {lstm_cell}]\n")
        }
        other => {
            return Err(Error::invalid(
                "--cells",
                format!("unknown cell type '{other}'; known: {}", CELLS.join(", ")),
            ))
        }
    })
}

/// The spec TOML of `cell` on a prepared data set.
pub fn model_spec(cell: &str, data: &Prepared, units: usize) -> Result<String> {
    let mut s = format!(
        "name = \"{}_{}\"\n\n[input]\n",
        data.name.replace('-', "_"),
        cell
    );
    let x = &data.x_train;
    match data.embedding {
        Some((vocab, width)) => {
            s.push_str(&format!(
                "shape = [{}]\ndtype = \"int32\"\n\n[[layer]]\ntype = \"embedding\"\n\
                 input_dim = {vocab}\noutput_dim = {width}\n\n",
                x.shape().get(1).copied().unwrap_or(1)
            ));
        }
        None => {
            let dims: Vec<String> = x.shape()[1..].iter().map(usize::to_string).collect();
            s.push_str(&format!(
                "shape = [{}]\ndtype = \"float32\"\n\n",
                dims.join(", ")
            ));
            if data.masked {
                s.push_str("[[layer]]\ntype = \"masking\"\nmask_value = 0.0\n\n");
            }
        }
    }
    s.push_str(&block(cell, units)?);
    s.push('\n');
    match data.task {
        Task::Classes(k) => s.push_str(&format!(
            "[[layer]]\ntype = \"dense\"\nunits = {k}\n\n[[layer]]\ntype = \"activation\"\nactivation = \"softmax\"\n"
        )),
        Task::Binary => s.push_str(
            "[[layer]]\ntype = \"dense\"\nunits = 1\n\n[[layer]]\ntype = \"activation\"\nactivation = \"sigmoid\"\n",
        ),
        Task::Regression { horizon, .. } => {
            s.push_str(&format!("[[layer]]\ntype = \"dense\"\nunits = {horizon}\n"))
        }
    }
    Ok(s)
}

/// Keeps the training state after every epoch, to continue one epoch at a time.
struct Capture(Option<TrainingState>);

impl FitHooks for Capture {
    fn on_epoch_end(
        &mut self,
        _record: &crate::train::EpochRecord,
        _model: &Sequential,
        _optimizer: &Optimizer,
        state: &TrainingState,
    ) -> Result<()> {
        self.0 = Some(state.clone());
        Ok(())
    }
}

/// Trains one cell type on one prepared data set.
pub fn run_cell(cell: &str, data: &Prepared, cfg: &CompareConfig) -> Result<CellResult> {
    let spec = model_spec(cell, data, cfg.units)?;
    let origin = Path::new("<compare>");
    let mut model = parse_spec(origin, &spec, false, cfg.seed)?;
    let (loss, metric) = data.task.loss_and_metric();
    let mut fit_cfg = FitConfig::new(loss)
        .batch_size(cfg.batch_size)
        .metrics(vec![metric])
        .seed(cfg.seed)
        .verbosity(Verbosity::Quiet)
        .validation_data(data.x_val.clone(), data.y_val.clone());
    if let Some(c) = cfg.clipnorm {
        fit_cfg = fit_cfg.clipnorm(c);
    }
    let mut optimizer = Optimizer::parse(&cfg.optimizer, cfg.lr)?;
    let mut result = CellResult {
        cell: cell.to_string(),
        params: model.param_counts().0,
        summary: model.summary(),
        spec,
        epochs: Vec::new(),
        error: None,
    };
    let metric_key = metric.name();
    let mut capture = Capture(None);
    let mut elapsed = 0.0;
    for epoch in 1..=cfg.epochs {
        fit_cfg.epochs = epoch;
        let state = capture.0.clone();
        let t0 = Instant::now();
        let history = match fit_from(
            &mut model,
            &mut optimizer,
            &data.x_train,
            &data.y_train,
            &fit_cfg,
            state.as_ref(),
            &mut capture,
        ) {
            Ok(h) => h,
            Err(e @ Error::NonFinite { .. }) => {
                result.error = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        };
        elapsed += t0.elapsed().as_secs_f64();
        let Some(rec) = history.epochs.last() else {
            break;
        };
        let get = |k: &str| rec.metrics.get(k).copied().unwrap_or(f64::NAN);
        let test = evaluate(
            &mut model,
            &data.x_test,
            &data.y_test,
            loss,
            &[metric],
            cfg.batch_size.max(256),
        )?;
        let point = EpochPoint {
            epoch,
            seconds: elapsed,
            loss: get("loss"),
            val_loss: get("val_loss"),
            val_metric: get(&format!("val_{metric_key}")),
            test_loss: test.get("loss").copied().unwrap_or(f64::NAN),
            test_metric: test.get(&metric_key).copied().unwrap_or(f64::NAN),
        };
        if cfg.progress {
            // The report gives regression MAE in the target's original units;
            // the progress lines say the same numbers under the same names.
            let (k, unit) = match data.task {
                Task::Regression { scale, .. } => (f64::from(scale), " (original units)"),
                _ => (1.0, ""),
            };
            eprintln!(
                "  {cell} epoch {epoch}/{} - {:.1}s - loss: {:.4} - val_loss: {:.4} - val_{metric_key}: {:.4}{unit} - test_{metric_key}: {:.4}{unit}",
                cfg.epochs, rec.seconds, point.loss, point.val_loss, point.val_metric * k, point.test_metric * k
            );
        }
        result.epochs.push(point);
    }
    Ok(result)
}

/// Loads every data set (all before any training, so a bad file fails
/// fast), then trains every cell type on each.
pub fn run(specs: &[DataSpec], cfg: &CompareConfig) -> Result<Vec<DataResult>> {
    cfg.validate()?;
    let budget = cfg.budget();
    for s in specs {
        s.check_paths()?;
    }
    let mut prepared = Vec::new();
    for s in specs {
        if cfg.progress {
            eprintln!("loading {}", s.text);
        }
        prepared.push(data::load(s, &budget)?);
    }
    // Distinct names for files even when two specs share a stem.
    let mut seen = std::collections::HashMap::new();
    for p in &mut prepared {
        let n = seen.entry(p.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            p.name = format!("{}-{}", p.name, n);
        }
    }
    let mut out = Vec::new();
    let total = prepared.len();
    if cfg.progress {
        eprintln!(
            "compare: {total} data sets x {} cells, {} epochs each, {} threads",
            cfg.cells.len(),
            cfg.epochs,
            crate::threads::num_threads()
        );
    }
    for (i, p) in prepared.into_iter().enumerate() {
        let mut cells = Vec::new();
        for (j, cell) in cfg.cells.iter().enumerate() {
            if cfg.progress {
                eprintln!(
                    "[{}/{total}] {}: {cell} ({}/{})",
                    i + 1,
                    p.name,
                    j + 1,
                    cfg.cells.len()
                );
            }
            cells.push(run_cell(cell, &p, cfg)?);
        }
        out.push(DataResult {
            name: p.name.clone(),
            description: p.description.clone(),
            spec: p.spec.text.clone(),
            task: p.task.clone(),
            cells,
        });
    }
    Ok(out)
}
