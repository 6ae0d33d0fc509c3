//! The runs behind `gated demo`: SimpleRNN, GRU and LSTM trained side by side
//! on the [embedded Reber grammar](super::tasks) and the [adding
//! problem](super::tasks), and a small LSTM language model trained on a text
//! written for the project ([`SAMPLE_TEXT`]).
//!
//! Each task run returns a [`TaskReport`]: per cell the parameter count, the
//! final held-out metric, the first evaluation step at which the task counted
//! as solved, the training time and the learning curve. [`TaskReport::table`]
//! prints it; [`TaskReport::plot`] draws the curves.
//!
//! ```
//! use gated::demo::suite::{run_reber, ReberConfig};
//! use gated::recurrent::CellKind;
//!
//! # fn main() -> gated::Result<()> {
//! let cfg = ReberConfig { cells: vec![CellKind::Lstm], steps: 4, eval_every: 2,
//!                         eval_size: 20, ..ReberConfig::default() };
//! let report = run_reber(&cfg, &mut |_line: &str| {})?;
//! assert_eq!(report.results.len(), 1);
//! assert!(report.table().contains("LSTM"));
//! # Ok(())
//! # }
//! ```

use std::time::Instant;

use super::tasks::{
    adding_batch, embedded_reber_batch, reber_correct, reber_loss, AddingBatch, MarkerPlacement,
    ReberBatch, ADDING_BASELINE_MSE,
};
use crate::data::CharVocab;
use crate::generate::Strategy;
use crate::layers::{Dense, DenseConfig, TimeDistributed};
use crate::model::{InputSpec, Sequential};
use crate::plot::{Plot, Series};
use crate::recurrent::{CellKind, Gru, Lstm, RnnBuilder, SimpleRnn};
use crate::rng::Rng;
use crate::train::charlm::{CharLmConfig, CharLmTrainer, Sample};
use crate::train::loss::mse;
use crate::train::step::{train_step, Clip, Objective};
use crate::train::Optimizer;
use crate::{Error, Result, Tensor};

/// A text written for this project (a description of the project itself),
/// embedded in the binary so that the text demo needs no download.
pub const SAMPLE_TEXT: &str = include_str!("sample.txt");

/// Progress lines go to this callback (the CLI prints them to stderr).
pub type ProgressFn<'a> = dyn FnMut(&str) + 'a;

/// The display name of a cell kind (`SimpleRNN`, `GRU`, `LSTM`).
pub fn cell_label(kind: CellKind) -> &'static str {
    kind.keras_name()
}

/// The three cells in the order the demo trains them.
pub const ALL_CELLS: [CellKind; 3] = [CellKind::SimpleRnn, CellKind::Gru, CellKind::Lstm];

fn rnn_builder(kind: CellKind, input: usize, units: usize) -> RnnBuilder {
    match kind {
        CellKind::SimpleRnn => SimpleRnn::new(input, units),
        CellKind::Gru => Gru::new(input, units),
        CellKind::Lstm => Lstm::new(input, units),
    }
}

/// One cell's outcome on a task.
#[derive(Debug, Clone, PartialEq)]
pub struct CellResult {
    /// The recurrence.
    pub cell: CellKind,
    /// Trainable parameters of the whole model (Keras count).
    pub params: usize,
    /// The held-out metric after the last step.
    pub final_metric: f64,
    /// First evaluated step at which the task counted as solved.
    pub solved_at: Option<usize>,
    /// Training time in seconds (evaluations included).
    pub seconds: f64,
    /// `(step, held-out metric)` at every evaluation (step 0 = untrained).
    pub curve: Vec<(usize, f64)>,
}

/// A task's results for every cell.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReport {
    /// Title, e.g. `Embedded Reber grammar`.
    pub title: String,
    /// The metric's column name, e.g. `held-out correct`.
    pub metric: String,
    /// How "solved" is defined, printed under the table.
    pub solved_rule: String,
    /// Draw the curves on a logarithmic y axis (MSE).
    pub log_y: bool,
    /// Whether the metric is a fraction printed as a percentage.
    pub percent: bool,
    /// One row per cell.
    pub results: Vec<CellResult>,
}

impl TaskReport {
    fn format_metric(&self, v: f64) -> String {
        if self.percent {
            format!("{:.1}%", v * 100.0)
        } else {
            format!("{v:.4}")
        }
    }

    /// The table: cell, parameters, final metric, steps to solve, time.
    pub fn table(&self) -> String {
        let mut s = format!("{}\n", self.title);
        s.push_str(&format!(
            "{:<10} {:>8}  {:>18}  {:>15}  {:>8}\n",
            "cell", "params", self.metric, "steps to solve", "time"
        ));
        for r in &self.results {
            let solved = r
                .solved_at
                .map_or("not solved".to_string(), |s| s.to_string());
            s.push_str(&format!(
                "{:<10} {:>8}  {:>18}  {:>15}  {:>7.1}s\n",
                cell_label(r.cell),
                r.params,
                self.format_metric(r.final_metric),
                solved,
                r.seconds
            ));
        }
        s.push_str(&format!("({})\n", self.solved_rule));
        s
    }

    /// The learning curves: the metric against the training step, one series per cell.
    pub fn plot(&self) -> Plot {
        let mut plot = Plot::new(self.title.clone())
            .x_label("training step")
            .y_label(self.metric.clone())
            .log_y(self.log_y);
        for r in &self.results {
            let points = r
                .curve
                .iter()
                .map(|&(s, v)| (s as f64, if self.percent { v * 100.0 } else { v }))
                .collect();
            plot = plot.series(Series::new(cell_label(r.cell), points));
        }
        plot
    }
}

/// Settings of the embedded Reber run.
#[derive(Debug, Clone, PartialEq)]
pub struct ReberConfig {
    /// Cells to train, in order.
    pub cells: Vec<CellKind>,
    /// Optimisation steps per cell.
    pub steps: usize,
    /// Hidden units.
    pub units: usize,
    /// Strings per training batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Evaluate every this many steps.
    pub eval_every: usize,
    /// Held-out strings (a fixed set drawn from a separate seed).
    pub eval_size: usize,
    /// Seed of the weights and training strings.
    pub seed: u64,
}

impl Default for ReberConfig {
    fn default() -> Self {
        ReberConfig {
            cells: ALL_CELLS.to_vec(),
            steps: 1200,
            units: 24,
            batch_size: 32,
            lr: 1e-2,
            eval_every: 100,
            eval_size: 1000,
            seed: 1,
        }
    }
}

/// The fraction of held-out strings a Reber run must get fully right to count as solved.
pub const REBER_SOLVED: f64 = 0.99;

/// The test MSE below which an adding run counts as solved.
pub const ADDING_SOLVED: f64 = 0.01;

fn check_common(
    steps: usize,
    eval_every: usize,
    eval_size: usize,
    units: usize,
    batch: usize,
) -> Result<()> {
    for (name, v) in [
        ("steps", steps),
        ("eval_every", eval_every),
        ("eval_size", eval_size),
        ("units", units),
        ("batch_size", batch),
    ] {
        if v == 0 {
            return Err(Error::invalid(name, "must be at least 1"));
        }
    }
    Ok(())
}

fn reber_model(kind: CellKind, units: usize, seed: u64) -> Result<Sequential> {
    let mut m = Sequential::new(
        "reber",
        InputSpec {
            shape: vec![None, Some(7)],
            integer: false,
        },
    );
    m.add(Box::new(
        rnn_builder(kind, 7, units)
            .return_sequences(true)
            .name("rnn")
            .seed(seed)
            .build()?,
    ))?;
    let mut rng = Rng::new(seed.wrapping_add(1));
    let dense = Dense::new("dense", units, DenseConfig::new(7), &mut rng)?;
    m.add(Box::new(TimeDistributed::new("head", Box::new(dense))))?;
    Ok(m)
}

fn adam(lr: f64) -> Result<Optimizer> {
    Optimizer::parse("adam", lr)
}

/// The demo's gradient clipping: global norm 1 (both tasks).
const CLIP: Clip = Clip {
    value: None,
    norm: Some(1.0),
};

/// One training step ([`train_step`]) of the demo's runs on `inputs`;
/// returns the loss.
fn demo_step(
    model: &mut Sequential,
    opt: &mut Optimizer,
    inputs: Tensor,
    objective: &dyn Objective,
    step: usize,
) -> Result<f32> {
    train_step(model, opt, inputs, objective, CLIP, step as u64)
        .map(|o| o.loss)
        .map_err(|e| match e {
            Error::NonFinite { step, message } => Error::NonFinite {
                step,
                message: format!("{message}; try a smaller learning rate"),
            },
            e => e,
        })
}

fn reber_eval(model: &mut Sequential, sets: &[ReberBatch]) -> Result<f64> {
    let (mut ok, mut n) = (0usize, 0usize);
    for b in sets {
        let out = model.forward(b.inputs.clone(), false)?;
        let c = reber_correct(&out, b, true)?;
        ok += c.iter().filter(|&&v| v).count();
        n += c.len();
    }
    Ok(ok as f64 / n.max(1) as f64)
}

/// Trains each cell on the embedded Reber grammar (predict the set of legal
/// next symbols, masked binary cross-entropy on logits) and reports the
/// fraction of held-out strings predicted correctly at every step.
pub fn run_reber(cfg: &ReberConfig, progress: &mut ProgressFn<'_>) -> Result<TaskReport> {
    check_common(
        cfg.steps,
        cfg.eval_every,
        cfg.eval_size,
        cfg.units,
        cfg.batch_size,
    )?;
    let mut held_rng = Rng::new(cfg.seed ^ 0x005e_ed0f_4e1d);
    let mut held = Vec::new();
    let mut left = cfg.eval_size;
    while left > 0 {
        let n = left.min(250);
        held.push(embedded_reber_batch(n, None, &mut held_rng)?);
        left -= n;
    }
    let mut results = Vec::new();
    for &cell in &cfg.cells {
        let start = Instant::now();
        let mut model = reber_model(cell, cfg.units, cfg.seed)?;
        let mut opt = adam(cfg.lr)?;
        let mut rng = Rng::new(cfg.seed.wrapping_add(100));
        let mut curve = vec![(0, reber_eval(&mut model, &held)?)];
        let mut solved_at = None;
        let mut window = (0.0f64, 0usize);
        model.zero_grad();
        for step in 1..=cfg.steps {
            let batch = embedded_reber_batch(cfg.batch_size, None, &mut rng)?;
            let objective = |logits: &Tensor| reber_loss(logits, &batch);
            let loss = demo_step(&mut model, &mut opt, batch.inputs.clone(), &objective, step)?;
            window = (window.0 + loss as f64, window.1 + 1);
            if step % cfg.eval_every == 0 || step == cfg.steps {
                let acc = reber_eval(&mut model, &held)?;
                curve.push((step, acc));
                if solved_at.is_none() && acc >= REBER_SOLVED {
                    solved_at = Some(step);
                }
                progress(&format!(
                    "[reber] {:<9} step {step:>5}/{}  loss {:.4}  held-out correct {:.1}%",
                    cell_label(cell),
                    cfg.steps,
                    window.0 / window.1.max(1) as f64,
                    acc * 100.0
                ));
                window = (0.0, 0);
            }
        }
        results.push(CellResult {
            cell,
            params: model.param_counts().0,
            final_metric: curve.last().map_or(0.0, |c| c.1),
            solved_at,
            seconds: start.elapsed().as_secs_f64(),
            curve,
        });
    }
    Ok(TaskReport {
        title: format!(
            "Embedded Reber grammar: {} held-out strings fully correct",
            cfg.eval_size
        ),
        metric: "held-out correct".into(),
        solved_rule: format!(
            "solved = at least {:.0}% of the held-out strings right at every step; {} units, \
             batch {}, Adam lr {}",
            REBER_SOLVED * 100.0,
            cfg.units,
            cfg.batch_size,
            cfg.lr
        ),
        log_y: false,
        percent: true,
        results,
    })
}

/// Settings of the adding-problem run.
#[derive(Debug, Clone, PartialEq)]
pub struct AddingConfig {
    /// Cells to train, in order.
    pub cells: Vec<CellKind>,
    /// Sequence length T.
    pub length: usize,
    /// Optimisation steps per cell.
    pub steps: usize,
    /// Hidden units.
    pub units: usize,
    /// Sequences per training batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Evaluate every this many steps.
    pub eval_every: usize,
    /// Test sequences (a fixed set drawn from a separate seed).
    pub eval_size: usize,
    /// Seed of the weights and training data.
    pub seed: u64,
}

impl Default for AddingConfig {
    fn default() -> Self {
        AddingConfig {
            cells: ALL_CELLS.to_vec(),
            length: 100,
            steps: 1200,
            units: 32,
            batch_size: 32,
            lr: 1e-2,
            eval_every: 100,
            eval_size: 1000,
            seed: 1,
        }
    }
}

fn adding_model(kind: CellKind, units: usize, seed: u64) -> Result<Sequential> {
    let mut m = Sequential::new(
        "adding",
        InputSpec {
            shape: vec![None, Some(2)],
            integer: false,
        },
    );
    m.add(Box::new(
        rnn_builder(kind, 2, units).name("rnn").seed(seed).build()?,
    ))?;
    let mut rng = Rng::new(seed.wrapping_add(1));
    m.add(Box::new(Dense::new(
        "dense",
        units,
        DenseConfig::new(1),
        &mut rng,
    )?))?;
    Ok(m)
}

fn adding_eval(model: &mut Sequential, sets: &[AddingBatch]) -> Result<f64> {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for b in sets {
        let out = model.forward(b.inputs.clone(), false)?;
        let (loss, _) = mse(&out, &b.targets)?;
        sum += loss as f64 * b.targets.len() as f64;
        n += b.targets.len();
    }
    Ok(sum / n.max(1) as f64)
}

/// Trains each cell on the adding problem (markers in the two halves, MSE)
/// and reports the test MSE at every evaluation.
pub fn run_adding(cfg: &AddingConfig, progress: &mut ProgressFn<'_>) -> Result<TaskReport> {
    check_common(
        cfg.steps,
        cfg.eval_every,
        cfg.eval_size,
        cfg.units,
        cfg.batch_size,
    )?;
    let mut test_rng = Rng::new(cfg.seed ^ 0x0add_1e57);
    let mut test = Vec::new();
    let mut left = cfg.eval_size;
    while left > 0 {
        let n = left.min(250);
        test.push(adding_batch(
            n,
            cfg.length,
            MarkerPlacement::Halves,
            &mut test_rng,
        )?);
        left -= n;
    }
    let mut results = Vec::new();
    for &cell in &cfg.cells {
        let start = Instant::now();
        let mut model = adding_model(cell, cfg.units, cfg.seed)?;
        let mut opt = adam(cfg.lr)?;
        let mut rng = Rng::new(cfg.seed.wrapping_add(200));
        let mut curve = vec![(0, adding_eval(&mut model, &test)?)];
        let mut solved_at = None;
        let mut window = (0.0f64, 0usize);
        model.zero_grad();
        for step in 1..=cfg.steps {
            let batch = adding_batch(
                cfg.batch_size,
                cfg.length,
                MarkerPlacement::Halves,
                &mut rng,
            )?;
            let objective = |pred: &Tensor| mse(pred, &batch.targets);
            let loss = demo_step(&mut model, &mut opt, batch.inputs, &objective, step)?;
            window = (window.0 + loss as f64, window.1 + 1);
            if step % cfg.eval_every == 0 || step == cfg.steps {
                let m = adding_eval(&mut model, &test)?;
                curve.push((step, m));
                if solved_at.is_none() && m < ADDING_SOLVED {
                    solved_at = Some(step);
                }
                progress(&format!(
                    "[adding T={}] {:<9} step {step:>5}/{}  train MSE {:.4}  test MSE {:.4}",
                    cfg.length,
                    cell_label(cell),
                    cfg.steps,
                    window.0 / window.1.max(1) as f64,
                    m
                ));
                window = (0.0, 0);
            }
        }
        results.push(CellResult {
            cell,
            params: model.param_counts().0,
            final_metric: curve.last().map_or(f64::NAN, |c| c.1),
            solved_at,
            seconds: start.elapsed().as_secs_f64(),
            curve,
        });
    }
    Ok(TaskReport {
        title: format!(
            "Adding problem, T = {}: test MSE on {} sequences (always 1.0: {:.3})",
            cfg.length, cfg.eval_size, ADDING_BASELINE_MSE
        ),
        metric: "test MSE".into(),
        solved_rule: format!(
            "solved = test MSE below {ADDING_SOLVED}; {} units, batch {}, Adam lr {}",
            cfg.units, cfg.batch_size, cfg.lr
        ),
        log_y: true,
        percent: false,
        results,
    })
}

/// Settings of the text demo: a small char LSTM trained briefly on [`SAMPLE_TEXT`].
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    /// Optimisation steps.
    pub steps: usize,
    /// LSTM units (one layer).
    pub units: usize,
    /// Characters per generated sample.
    pub length: usize,
    /// The prime of every sample.
    pub prime: String,
    /// Seed of the weights and samples.
    pub seed: u64,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            steps: 300,
            units: 128,
            length: 200,
            prime: "The ".into(),
            seed: 1,
        }
    }
}

/// The outcome of the text demo.
#[derive(Debug, Clone, PartialEq)]
pub struct TextReport {
    /// Final mean training loss (nats per character) of the last window.
    pub train_loss: f32,
    /// Validation loss on the last 5% of the text.
    pub val_loss: Option<f32>,
    /// Samples at temperatures 0.2, 0.5, 1.0, 1.5 and greedy.
    pub samples: Vec<Sample>,
    /// Training time in seconds.
    pub seconds: f64,
}

/// The sample temperatures of the text demo.
pub const TEXT_TEMPERATURES: [f32; 4] = [0.2, 0.5, 1.0, 1.5];

/// Trains a one-layer char LSTM on [`SAMPLE_TEXT`] and samples from it at
/// [`TEXT_TEMPERATURES`] and greedily.
pub fn run_text(cfg: &TextConfig, progress: &mut ProgressFn<'_>) -> Result<TextReport> {
    let vocab = CharVocab::from_text(SAMPLE_TEXT)?;
    let lm = CharLmConfig {
        units: cfg.units,
        layers: 1,
        embedding_dim: 32,
        seq_len: 50,
        batch_size: 16,
        optimizer: "adam".into(),
        lr: 3e-3,
        steps: Some(cfg.steps),
        eval_every: (cfg.steps / 5).max(1),
        seed: cfg.seed,
        ..CharLmConfig::default()
    };
    let mut trainer = CharLmTrainer::new(SAMPLE_TEXT, vocab, lm, None)?;
    trainer.set_prime(&cfg.prime)?;
    let summary = trainer.train(&mut |e| {
        if let crate::train::charlm::Event::Eval {
            step,
            total,
            train_loss,
            val_loss,
            ..
        } = e
        {
            let val = val_loss.map_or(String::new(), |v| format!("  val loss {v:.3}"));
            progress(&format!(
                "[text] LSTM step {step:>4}/{total}  train loss {train_loss:.3} nats/char{val}"
            ));
        }
        Ok(())
    })?;
    let mut strategies: Vec<Strategy> = TEXT_TEMPERATURES
        .iter()
        .map(|&t| Strategy::Temperature(t))
        .collect();
    strategies.push(Strategy::Greedy);
    let samples = trainer.samples(&strategies, cfg.length)?;
    Ok(TextReport {
        train_loss: summary.train_loss,
        val_loss: summary.val_loss,
        samples,
        seconds: summary.seconds,
    })
}
