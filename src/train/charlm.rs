//! Char-level language models trained as Karpathy's char-rnn does: one
//! contiguous text, a sorted character vocabulary, truncated backpropagation
//! through time over contiguous lanes with the recurrent state carried from
//! one chunk to the next.
//!
//! The model ([`char_model_spec`]) is `Embedding -> N stacked recurrent layers
//! (return_sequences) -> TimeDistributed(Dense(V))` giving logits, trained with
//! softmax cross-entropy at every step. Everything matches the PyTorch
//! reference `scripts/charlm_pytorch.py`:
//!
//! - **Split** ([`split_train_val`]): the first `floor(n * train_frac)`
//!   characters train, the next `floor(n * val_frac)` validate.
//! - **Batching** ([`Lanes`]): the training stream is cut into `B` lanes as the
//!   reference does (lane `b` starts at `b * floor((n - 1) / B)`, each lane
//!   read through a one-row [`ContiguousBatches`]); chunk `k + 1` of a lane
//!   continues chunk `k`, the recurrent layers are stateful and
//!   `reset_states` is called once per pass (at chunk 0).
//! - **Optimizer**: char-rnn's RMSprop, `lr 2e-3, alpha 0.95, eps 1e-8`
//!   ([`char_rnn_optimizer`]); gradients clipped to a global norm of 5.
//! - **Schedule**: [`Schedule::CharRnn`]: at epoch `e >= decay_after` (0-based)
//!   the rate is `lr0 * decay^(e - decay_after + 1)`.
//! - **Validation** ([`evaluate_stream`]): mean cross-entropy over the whole
//!   validation stream cut into lanes the same way, state carried.
//!
//! ```
//! use gated::data::CharVocab;
//! use gated::train::charlm::{CharLmConfig, CharLmTrainer};
//!
//! # fn main() -> gated::Result<()> {
//! let text = "abcabcabd ".repeat(40);
//! let vocab = CharVocab::from_text(&text)?;
//! let cfg = CharLmConfig { units: 16, layers: 1, embedding_dim: 8, seq_len: 10,
//!                          batch_size: 4, steps: Some(5), ..CharLmConfig::default() };
//! let mut trainer = CharLmTrainer::new(&text, vocab, cfg, None)?;
//! let summary = trainer.train(&mut |_event| Ok(()))?;
//! assert_eq!(summary.steps, 5);
//! assert!(summary.val_loss.is_some());
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use crate::data::{CharVocab, Chunk, ContiguousBatches};
use crate::generate::{Generator, Strategy};
use crate::model::dir::{load_model_dir, save_checkpoint, save_model_dir, Checkpoint, SaveExtras};
use crate::model::spec::parse_spec;
use crate::model::Sequential;
use crate::recurrent::CellKind;
use crate::train::loss::sparse_categorical_ce;
use crate::train::step::{train_step, Clip};
use crate::train::{Algorithm, Optimizer, RmsProp, Schedule};
use crate::{Error, Result, Tensor};

/// Knobs of a char-level model and its training, with char-rnn's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CharLmConfig {
    /// The recurrence of every layer (char-rnn `model`): LSTM by default.
    pub cell: CellKind,
    /// Hidden units per layer (char-rnn `rnn_size`, 128).
    pub units: usize,
    /// Stacked recurrent layers (char-rnn `num_layers`, 2).
    pub layers: usize,
    /// Width of the character embedding (64; char-rnn uses one-hot inputs).
    pub embedding_dim: usize,
    /// Dropout between recurrent layers (char-rnn `dropout`, 0).
    pub dropout: f32,
    /// Characters per chunk, the truncated-BPTT length (char-rnn `seq_length`, 50).
    pub seq_len: usize,
    /// Contiguous lanes per chunk (char-rnn `batch_size`, 50).
    pub batch_size: usize,
    /// Optimizer name (`rmsprop` = char-rnn's RMSprop, alpha 0.95, eps 1e-8).
    pub optimizer: String,
    /// Initial learning rate (2e-3).
    pub lr: f64,
    /// Learning-rate decay per epoch once decaying (0.97).
    pub lr_decay: f64,
    /// Epoch (0-based) from which the rate decays (10).
    pub lr_decay_after: usize,
    /// Clip the global gradient norm to this (5); 0 turns clipping off.
    pub grad_clip: f32,
    /// Fraction of the text used for training (0.95).
    pub train_frac: f64,
    /// Fraction after it used for validation (0.05); 0 turns validation off.
    pub val_frac: f64,
    /// Evaluate (validation loss, samples) every this many steps (char-rnn
    /// `eval_val_every`, 1000); 0 evaluates only at the end.
    pub eval_every: usize,
    /// Seed of the weights, dropout masks and samples.
    pub seed: u64,
    /// Optimisation steps; when `None`, `epochs` passes over the training text.
    pub steps: Option<usize>,
    /// Passes over the training text when `steps` is `None` (char-rnn `max_epochs`, 50).
    pub epochs: usize,
    /// Temperatures of the samples printed at every evaluation (greedy is added).
    pub sample_temperatures: Vec<f32>,
    /// Characters per sample (0: no samples).
    pub sample_length: usize,
}

impl Default for CharLmConfig {
    fn default() -> Self {
        CharLmConfig {
            cell: CellKind::Lstm,
            units: 128,
            layers: 2,
            embedding_dim: 64,
            dropout: 0.0,
            seq_len: 50,
            batch_size: 50,
            optimizer: "rmsprop".into(),
            lr: 2e-3,
            lr_decay: 0.97,
            lr_decay_after: 10,
            grad_clip: 5.0,
            train_frac: 0.95,
            val_frac: 0.05,
            eval_every: 1000,
            seed: 42,
            steps: None,
            epochs: 50,
            sample_temperatures: vec![0.5, 1.0],
            sample_length: 0,
        }
    }
}

/// Parses `lstm`, `gru` or `rnn` (also `simple_rnn`).
pub fn parse_cell(name: &str) -> Result<CellKind> {
    match name.trim().to_ascii_lowercase().as_str() {
        "lstm" => Ok(CellKind::Lstm),
        "gru" => Ok(CellKind::Gru),
        "rnn" | "simple_rnn" | "simplernn" => Ok(CellKind::SimpleRnn),
        other => Err(Error::invalid(
            "cell",
            format!("unknown cell {other:?}; use lstm, gru or rnn"),
        )),
    }
}

/// The spec layer type of a cell kind (`lstm`, `gru`, `simple_rnn`).
pub fn cell_type_name(kind: CellKind) -> &'static str {
    match kind {
        CellKind::Lstm => "lstm",
        CellKind::Gru => "gru",
        CellKind::SimpleRnn => "simple_rnn",
    }
}

impl CharLmConfig {
    /// Checks every knob; messages name the flag at fault.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("units", self.units),
            ("layers", self.layers),
            ("embedding_dim", self.embedding_dim),
            ("seq_len", self.seq_len),
            ("batch_size", self.batch_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::invalid(
                "dropout",
                format!("{} is not a rate in [0, 1)", self.dropout),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(
                "lr",
                format!("{} must be a positive number", self.lr),
            ));
        }
        if !(self.lr_decay.is_finite() && self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return Err(Error::invalid(
                "lr_decay",
                format!("{} must be in (0, 1]", self.lr_decay),
            ));
        }
        if !(self.grad_clip.is_finite() && self.grad_clip >= 0.0) {
            return Err(Error::invalid(
                "grad_clip",
                format!("{} must be 0 (off) or a positive norm", self.grad_clip),
            ));
        }
        if !(self.train_frac > 0.0 && self.train_frac <= 1.0) {
            return Err(Error::invalid(
                "train_frac",
                format!("{} is not a fraction in (0, 1]", self.train_frac),
            ));
        }
        if !(self.val_frac >= 0.0 && self.train_frac + self.val_frac <= 1.0 + 1e-9) {
            return Err(Error::invalid(
                "val_frac",
                format!(
                    "{} must be >= 0 and train_frac + val_frac ({}) at most 1",
                    self.val_frac,
                    self.train_frac + self.val_frac
                ),
            ));
        }
        if self.steps == Some(0) || (self.steps.is_none() && self.epochs == 0) {
            return Err(Error::invalid(
                "steps/epochs",
                "train for at least one step",
            ));
        }
        for &t in &self.sample_temperatures {
            crate::generate::check_temperature(t)?;
        }
        Ok(())
    }
}

/// The default char model as spec TOML text (parse it with [`parse_spec`]):
/// `Embedding(V, E) -> layers x cell(units, return_sequences) ->
/// TimeDistributed(Dense(V))`, with a Dropout layer between recurrent layers
/// when `dropout > 0` (as `torch.nn.LSTM(dropout=...)`).
///
/// Initialised and laid out as PyTorch's `nn.Embedding`/`nn.LSTM`/`nn.Linear`
/// (N(0, 1) embeddings, U(-1/sqrt(H), 1/sqrt(H)) weights, two biases), the model of
/// `scripts/charlm_pytorch.py`: Keras's small U(-0.05, 0.05) embedding makes the
/// first few hundred steps markedly slower (measured: validation loss 2.50 vs
/// 2.10 after 150 steps of a 2x128 LSTM on tinyshakespeare).
pub fn char_model_spec(cfg: &CharLmConfig, vocab_size: usize) -> String {
    let mut s = String::from("# A char-level language model written by `gated train --text`.\n");
    s.push_str("name = \"char_rnn\"\n\n[input]\nshape = [\"None\"]\ndtype = \"int32\"\n\n");
    s.push_str(&format!(
        "[[layer]]\ntype = \"embedding\"\ninput_dim = {vocab_size}\noutput_dim = {}\n\
         embeddings_initializer = \"torch_default\"\n\n",
        cfg.embedding_dim
    ));
    let torch_init =
        "kernel_initializer = \"torch_default\"\nrecurrent_initializer = \"torch_default\"\n\
                      bias_initializer = \"torch_default\"\n";
    for l in 0..cfg.layers {
        if l > 0 && cfg.dropout > 0.0 {
            s.push_str(&format!(
                "[[layer]]\ntype = \"dropout\"\nrate = {}\n\n",
                cfg.dropout
            ));
        }
        s.push_str(&format!(
            "[[layer]]\ntype = \"{}\"\nunits = {}\nreturn_sequences = true\n\
             two_biases = true\nunit_forget_bias = false\n{torch_init}\n",
            cell_type_name(cfg.cell),
            cfg.units
        ));
    }
    s.push_str(&format!(
        "[[layer]]\ntype = \"time_distributed\"\n[layer.layer]\ntype = \"dense\"\nunits = {vocab_size}\n\
         kernel_initializer = \"torch_default\"\nbias_initializer = \"torch_default\"\n"
    ));
    s
}

/// Builds a model from spec text and checks that it is a char model for a
/// vocabulary of `vocab_size`: integer `[batch, time]` input, `[.., .., V]` logits.
pub fn build_char_model(spec_text: &str, vocab_size: usize, seed: u64) -> Result<Sequential> {
    let json = spec_text.trim_start().starts_with('{');
    let model = parse_spec(Path::new("model.toml"), spec_text, json, seed)?;
    check_char_model(&model, vocab_size)?;
    Ok(model)
}

/// Errors unless `model` takes token ids `[batch, time]` and emits
/// `vocab_size` logits per step.
pub fn check_char_model(model: &Sequential, vocab_size: usize) -> Result<()> {
    let input = model.input();
    if !input.integer || input.shape.len() != 1 || input.shape[0].is_some() {
        return Err(Error::invalid(
            "model",
            format!(
                "{} is not a char model: it must take token ids of any length \
                 ([input] shape = [\"None\"], dtype = \"int32\")",
                model.name()
            ),
        ));
    }
    let out = model.output_shape()?;
    if out.len() != 3 || out[2] != Some(vocab_size) {
        return Err(Error::invalid(
            "model",
            format!(
                "{} outputs {}, but a char model for this text must output \
                 (None, None, {vocab_size}): end with TimeDistributed(Dense({vocab_size})) \
                 after recurrent layers with return_sequences = true",
                model.name(),
                crate::model::format_shape(&out)
            ),
        ));
    }
    Ok(())
}

/// The training and validation streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSplit {
    /// The first `floor(n * train_frac)` ids.
    pub train: Vec<usize>,
    /// The next `floor(n * val_frac)` ids.
    pub val: Vec<usize>,
}

/// char-rnn's (and the reference's) split of a stream: train first, validation after.
pub fn split_train_val(ids: &[usize], train_frac: f64, val_frac: f64) -> Result<TextSplit> {
    let n = ids.len();
    let n_train = ((n as f64) * train_frac).floor() as usize;
    let n_val = ((n as f64) * val_frac).floor() as usize;
    if n_train < 2 {
        return Err(Error::invalid(
            "text",
            format!("{n} characters with train_frac {train_frac} leave fewer than 2 to train on"),
        ));
    }
    if val_frac > 0.0 && n_val < 2 {
        return Err(Error::invalid(
            "val_frac",
            format!(
                "{val_frac} of {n} characters is fewer than 2; use a longer text, a larger \
                 --val-frac, or --val-frac 0 to train without validation"
            ),
        ));
    }
    let end = (n_train + n_val).min(n);
    Ok(TextSplit {
        train: ids[..n_train].to_vec(),
        val: ids[n_train..end].to_vec(),
    })
}

/// char-rnn's optimizer for `name`: RMSprop with alpha 0.95 and eps 1e-8 for
/// `rmsprop`, else [`Optimizer::parse`] with PyTorch's defaults.
pub fn char_rnn_optimizer(name: &str, lr: f64) -> Result<Optimizer> {
    if name.trim().eq_ignore_ascii_case("rmsprop") {
        Optimizer::new(Algorithm::RmsProp(RmsProp {
            lr,
            alpha: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
        }))
    } else {
        Optimizer::parse(name, lr)
    }
}

/// A stream cut into contiguous lanes exactly as the reference's `lanes()`:
/// `per_lane = floor((n - 1) / B)`, lane `b` reads inputs
/// `ids[b * per_lane ..][..chunks * seq_len]` (targets one further on), with
/// `chunks = floor(per_lane / seq_len)`. Each lane is a one-row
/// [`ContiguousBatches`], so chunk `k + 1` of lane `b` continues chunk `k`.
#[derive(Debug, Clone)]
pub struct Lanes {
    lanes: Vec<ContiguousBatches>,
    seq_len: usize,
}

impl Lanes {
    /// Cuts `ids` into `batch_size` lanes read `seq_len` at a time. Errors when
    /// the stream is too short for one chunk per lane (the message gives the minimum).
    pub fn new(ids: &[usize], batch_size: usize, seq_len: usize) -> Result<Self> {
        if batch_size == 0 || seq_len == 0 {
            return Err(Error::invalid(
                "batching",
                format!("batch_size ({batch_size}) and seq_len ({seq_len}) must be positive"),
            ));
        }
        let per_lane = ids.len().saturating_sub(1) / batch_size;
        let usable = (per_lane / seq_len) * seq_len;
        if usable == 0 {
            return Err(Error::invalid(
                "batching",
                format!(
                    "a stream of {} characters is too short for batch_size {batch_size} and \
                     seq_len {seq_len}: it needs at least batch_size * seq_len + 1 = {} characters",
                    ids.len(),
                    batch_size * seq_len + 1
                ),
            ));
        }
        let lanes = (0..batch_size)
            .map(|b| {
                let start = b * per_lane;
                ContiguousBatches::new(&ids[start..start + usable + 1], 1, seq_len)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Lanes { lanes, seq_len })
    }

    /// Chunks per pass.
    pub fn len(&self) -> usize {
        self.lanes.first().map_or(0, |l| l.len())
    }

    /// Always false: construction fails without a chunk.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chunk `k` as `[batch_size, seq_len]` inputs and targets (`None` past the end).
    pub fn chunk(&self, k: usize) -> Option<Chunk> {
        let (b, s) = (self.lanes.len(), self.seq_len);
        let mut inputs = Tensor::zeros(&[b, s]);
        let mut targets = Tensor::zeros(&[b, s]);
        for (row, lane) in self.lanes.iter().enumerate() {
            let c = lane.chunk(k)?;
            inputs.data_mut()[row * s..(row + 1) * s].copy_from_slice(c.inputs.data());
            targets.data_mut()[row * s..(row + 1) * s].copy_from_slice(c.targets.data());
        }
        Some(Chunk { inputs, targets })
    }
}

/// Mean cross-entropy (nats per character) of a stateful pass over `ids` cut
/// into `batch_size` lanes of `seq_len` chunks ([`Lanes`]), as the reference's `evaluate`.
/// A stream too short for `batch_size` lanes uses as many lanes as fit (at
/// least one; a stream shorter than `seq_len + 1` is read as one chunk).
/// The model's states are reset before and after; it is left stateful.
pub fn evaluate_stream(
    model: &mut Sequential,
    ids: &[usize],
    batch_size: usize,
    seq_len: usize,
) -> Result<f32> {
    if ids.len() < 2 {
        return Err(Error::invalid(
            "validation text",
            "needs at least 2 characters",
        ));
    }
    let pairs = ids.len() - 1;
    let seq = seq_len.min(pairs).max(1);
    let lanes = batch_size.min(pairs / seq).max(1);
    let batches = Lanes::new(ids, lanes, seq)?;
    model.set_stateful(true);
    model.reset_states();
    let (mut total, mut count) = (0.0f64, 0usize);
    for chunk in (0..batches.len()).filter_map(|k| batches.chunk(k)) {
        let logits = model.forward(chunk.inputs, false)?;
        let (loss, _) = sparse_categorical_ce(&logits, &chunk.targets)?;
        let n = chunk.targets.len();
        total += loss as f64 * n as f64;
        count += n;
    }
    model.reset_states();
    Ok((total / count.max(1) as f64) as f32)
}

/// A sample printed at an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `"T=0.5"` or `"greedy"`.
    pub label: String,
    /// The prime followed by the generated characters.
    pub text: String,
}

/// What [`CharLmTrainer::train`] reports to its caller.
#[derive(Debug)]
pub enum Event<'a> {
    /// One optimisation step finished.
    Step {
        /// 1-based step.
        step: usize,
        /// Total steps of the run.
        total: usize,
        /// 0-based epoch (pass over the training text).
        epoch: usize,
        /// The chunk's mean cross-entropy.
        loss: f32,
        /// The learning rate used.
        lr: f64,
    },
    /// An evaluation (every `eval_every` steps and at the end).
    Eval {
        /// 1-based step after which it ran.
        step: usize,
        /// Total steps of the run.
        total: usize,
        /// Mean training loss since the previous evaluation.
        train_loss: f32,
        /// Validation mean cross-entropy, when there is validation text.
        val_loss: Option<f32>,
        /// Whether this is the best validation loss so far (always true
        /// without validation).
        best: bool,
        /// Samples at the configured temperatures and greedy.
        samples: Vec<Sample>,
        /// The model being trained (stateful; do not run it).
        model: &'a Sequential,
    },
}

/// The outcome of [`CharLmTrainer::train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Steps taken.
    pub steps: usize,
    /// Mean training loss of the last evaluation window.
    pub train_loss: f32,
    /// Final validation loss.
    pub val_loss: Option<f32>,
    /// Best validation loss and its step.
    pub best: Option<(usize, f32)>,
    /// `(step, mean train loss)` at every evaluation.
    pub train_curve: Vec<(usize, f32)>,
    /// `(step, val loss)` at every evaluation.
    pub val_curve: Vec<(usize, f32)>,
    /// Seconds spent.
    pub seconds: f64,
}

/// Trains a char model on a text. See the [module docs](self).
#[derive(Debug)]
pub struct CharLmTrainer {
    cfg: CharLmConfig,
    vocab: CharVocab,
    spec_text: String,
    model: Sequential,
    /// A second instance for evaluation and sampling, so that the training
    /// state carried between chunks is left alone.
    eval_model: Sequential,
    split: TextSplit,
    batches: Lanes,
    prime: String,
}

impl CharLmTrainer {
    /// Prepares training on `text` with `vocab` (which must cover it). `spec`
    /// overrides the default model ([`char_model_spec`]).
    pub fn new(
        text: &str,
        vocab: CharVocab,
        cfg: CharLmConfig,
        spec: Option<String>,
    ) -> Result<Self> {
        cfg.validate()?;
        let ids = vocab.encode(text)?;
        let split = split_train_val(&ids, cfg.train_frac, cfg.val_frac)?;
        let batches =
            Lanes::new(&split.train, cfg.batch_size, cfg.seq_len).map_err(|e| match e {
                Error::Invalid { message, .. } => Error::invalid(
                    "training text",
                    format!("{message}; use a longer text or smaller --batch-size/--seq-len"),
                ),
                e => e,
            })?;
        let spec_text = spec.unwrap_or_else(|| char_model_spec(&cfg, vocab.len()));
        let model = build_char_model(&spec_text, vocab.len(), cfg.seed)?;
        let eval_model = build_char_model(&spec_text, vocab.len(), cfg.seed)?;
        let prime: String = text.chars().take(1).collect();
        Ok(CharLmTrainer {
            cfg,
            vocab,
            spec_text,
            model,
            eval_model,
            split,
            batches,
            prime,
        })
    }

    /// The model's spec text (for `model.toml`).
    pub fn spec_text(&self) -> &str {
        &self.spec_text
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &CharVocab {
        &self.vocab
    }

    /// The model (stateful while training).
    pub fn model(&self) -> &Sequential {
        &self.model
    }

    /// Takes the trained model out, no longer stateful.
    pub fn into_model(mut self) -> Sequential {
        self.model.set_stateful(false);
        self.model
    }

    /// Chunks per pass over the training text.
    pub fn chunks_per_epoch(&self) -> usize {
        self.batches.len()
    }

    /// Total steps of the run.
    pub fn total_steps(&self) -> usize {
        self.cfg
            .steps
            .unwrap_or(self.cfg.epochs.saturating_mul(self.batches.len()))
    }

    /// Sets the prime of the samples (default: the text's first character).
    pub fn set_prime(&mut self, prime: &str) -> Result<()> {
        self.vocab.encode(prime)?;
        self.prime = prime.to_string();
        Ok(())
    }

    fn sync_eval_model(&mut self) {
        for (dst, src) in self
            .eval_model
            .params_mut()
            .into_iter()
            .zip(self.model.params())
        {
            dst.values.copy_from_slice(&src.values);
        }
    }

    /// Samples `length` characters from the current weights with each strategy.
    pub fn samples(&mut self, strategies: &[Strategy], length: usize) -> Result<Vec<Sample>> {
        self.sync_eval_model();
        let mut out = Vec::new();
        for (i, &s) in strategies.iter().enumerate() {
            let label = match s {
                Strategy::Greedy => "greedy".to_string(),
                Strategy::Temperature(t) => format!("T={t}"),
                Strategy::TopK { k, temperature } => format!("T={temperature} top-{k}"),
            };
            let mut gen = Generator::new(
                &mut self.eval_model,
                self.vocab.clone(),
                s,
                self.cfg.seed.wrapping_add(i as u64 + 1),
            )?;
            gen.prime(&self.prime)?;
            let text = gen.generate(length)?;
            out.push(Sample {
                label,
                text: format!("{}{text}", self.prime),
            });
        }
        self.eval_model.set_stateful(false);
        Ok(out)
    }

    fn default_samples(&mut self) -> Result<Vec<Sample>> {
        if self.cfg.sample_length == 0 {
            return Ok(Vec::new());
        }
        let mut strategies: Vec<Strategy> = self
            .cfg
            .sample_temperatures
            .iter()
            .map(|&t| Strategy::Temperature(t))
            .collect();
        strategies.push(Strategy::Greedy);
        self.samples(&strategies, self.cfg.sample_length)
    }

    /// Validation loss of the current weights (`None` without validation text).
    pub fn validation_loss(&mut self) -> Result<Option<f32>> {
        if self.split.val.len() < 2 {
            return Ok(None);
        }
        self.sync_eval_model();
        let loss = evaluate_stream(
            &mut self.eval_model,
            &self.split.val,
            self.cfg.batch_size,
            self.cfg.seq_len,
        )?;
        self.eval_model.set_stateful(false);
        Ok(Some(loss))
    }

    /// Runs the training, calling `on_event` after every step and evaluation.
    /// An error from `on_event` stops training and is returned.
    pub fn train(
        &mut self,
        on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
    ) -> Result<TrainSummary> {
        let start = std::time::Instant::now();
        let total = self.total_steps();
        let chunks = self.batches.len();
        let schedule = Schedule::CharRnn {
            decay_after: self.cfg.lr_decay_after,
            decay: self.cfg.lr_decay,
        };
        let mut opt = char_rnn_optimizer(&self.cfg.optimizer, self.cfg.lr)?;
        self.model.set_stateful(true);
        let (mut window, mut window_n) = (0.0f64, 0usize);
        let mut summary = TrainSummary {
            steps: 0,
            train_loss: f32::NAN,
            val_loss: None,
            best: None,
            train_curve: Vec::new(),
            val_curve: Vec::new(),
            seconds: 0.0,
        };
        let mut lr = self.cfg.lr;
        let clip = if self.cfg.grad_clip > 0.0 {
            Clip::norm(self.cfg.grad_clip)
        } else {
            Clip::default()
        };
        // Each step clears the gradients behind its update (step_and_zero_grad).
        self.model.zero_grad();
        for step in 0..total {
            let (epoch, k) = (step / chunks, step % chunks);
            if k == 0 {
                self.model.reset_states();
                // PyTorch's rule (lr_at counts epochs from 0 the same way).
                lr = schedule.lr_at(self.cfg.lr, epoch);
                opt.set_lr(lr);
            }
            let chunk = self
                .batches
                .chunk(k)
                .ok_or_else(|| Error::invalid("batching", format!("no chunk {k}")))?;
            // The logits as they are (no fused head): the loss the
            // validation and the reference compute.
            let targets = &chunk.targets;
            let objective = |logits: &Tensor| sparse_categorical_ce(logits, targets);
            let loss = train_step(
                &mut self.model,
                &mut opt,
                chunk.inputs,
                &objective,
                clip,
                step as u64 + 1,
            )
            .map_err(|e| match e {
                Error::NonFinite { step, message } => Error::NonFinite {
                    step,
                    message: format!("{message}; try a smaller --lr"),
                },
                e => e,
            })?
            .loss;
            window += loss as f64;
            window_n += 1;
            on_event(Event::Step {
                step: step + 1,
                total,
                epoch,
                loss,
                lr,
            })?;
            let last = step + 1 == total;
            let due = self.cfg.eval_every > 0 && (step + 1) % self.cfg.eval_every == 0;
            if due || last {
                let train_loss = (window / window_n.max(1) as f64) as f32;
                window = 0.0;
                window_n = 0;
                let val_loss = self.validation_loss()?;
                let best = match (val_loss, summary.best) {
                    (Some(v), Some((_, b))) => v < b,
                    _ => true,
                };
                if let (Some(v), true) = (val_loss, best) {
                    summary.best = Some((step + 1, v));
                }
                summary.train_curve.push((step + 1, train_loss));
                if let Some(v) = val_loss {
                    summary.val_curve.push((step + 1, v));
                }
                summary.train_loss = train_loss;
                summary.val_loss = val_loss;
                let samples = self.default_samples()?;
                on_event(Event::Eval {
                    step: step + 1,
                    total,
                    train_loss,
                    val_loss,
                    best,
                    samples,
                    model: &self.model,
                })?;
            }
            summary.steps = step + 1;
        }
        summary.seconds = start.elapsed().as_secs_f64();
        Ok(summary)
    }
}

/// The vocabulary file of a model directory.
pub const VOCAB_FILE: &str = crate::model::dir::VOCAB_FILE;

fn vocab_value(vocab: &CharVocab) -> Result<serde_json::Value> {
    serde_json::to_value(vocab)
        .map_err(|e| Error::invalid("vocabulary", format!("cannot serialise: {e}")))
}

/// Writes a char model as a [model directory](crate::model::dir) at `dir`:
/// `model.toml` (the spec), `weights.safetensors` (PyTorch naming),
/// `vocab.json` and the manifest, each file atomically.
pub fn save_char_model(
    dir: &Path,
    model: &Sequential,
    spec_text: &str,
    vocab: &CharVocab,
) -> Result<()> {
    let v = vocab_value(vocab)?;
    let extras = SaveExtras {
        vocab: Some(&v),
        ..Default::default()
    };
    save_model_dir(dir, model, spec_text, &extras)
}

/// Writes a char model as the `which` checkpoint (`DIR/last`, `DIR/best`) of
/// the model directory `dir`, swapped in whole (see [`save_checkpoint`]).
pub fn save_char_checkpoint(
    dir: &Path,
    which: Checkpoint,
    model: &Sequential,
    spec_text: &str,
    vocab: &CharVocab,
) -> Result<()> {
    let v = vocab_value(vocab)?;
    let extras = SaveExtras {
        vocab: Some(&v),
        ..Default::default()
    };
    save_checkpoint(dir, which, model, spec_text, &extras).map(|_| ())
}

/// Loads a char model directory written by [`save_char_model`] (or by
/// `gated train --text`): the model and its vocabulary. A directory without
/// a vocabulary, or whose model is not a char model for it, is an error that
/// says so.
pub fn load_char_model(dir: &Path) -> Result<(Sequential, CharVocab)> {
    if !dir.is_dir() {
        return Err(Error::file(
            dir,
            "not a model directory (expected the --out directory of `gated train --text`)",
        ));
    }
    if !crate::io::regular::is_present(&dir.join(VOCAB_FILE)) {
        return Err(Error::file(
            dir,
            "not a char model: it has no vocab.json (train one with `gated train --text FILE --out DIR`)",
        ));
    }
    let loaded = load_model_dir(dir)?;
    let vocab_path = dir.join(VOCAB_FILE);
    let value = loaded
        .vocab
        .ok_or_else(|| Error::file(&vocab_path, "missing"))?;
    let vocab: CharVocab = serde_json::from_value(value)
        .map_err(|e| Error::file(&vocab_path, format!("not a character vocabulary: {e}")))?;
    check_char_model(&loaded.model, vocab.len()).map_err(|e| Error::file(dir, e.to_string()))?;
    Ok((loaded.model, vocab))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_the_reference() {
        // n_train = floor(n * train_frac), n_val = floor(n * val_frac), in stream order.
        let ids: Vec<usize> = (0..1001).collect();
        let s = split_train_val(&ids, 0.95, 0.05).unwrap();
        assert_eq!(s.train.len(), 950);
        assert_eq!(s.val.len(), 50);
        assert_eq!(s.val[0], 950);
        let s = split_train_val(&ids, 0.9, 0.0).unwrap();
        assert!(s.val.is_empty() && s.train.len() == 900);
        assert!(split_train_val(&ids[..20], 0.95, 0.05).is_err());
        assert!(split_train_val(&ids[..1], 1.0, 0.0).is_err());
    }

    #[test]
    fn lanes_match_the_reference_offsets() {
        // n = 23 ids, B = 3: per_lane = 22 / 3 = 7, seq_len 3 -> 2 chunks, 6 usable.
        let ids: Vec<usize> = (0..23).collect();
        let l = Lanes::new(&ids, 3, 3).unwrap();
        assert_eq!(l.len(), 2);
        let c0 = l.chunk(0).unwrap();
        let c1 = l.chunk(1).unwrap();
        assert_eq!(c0.inputs.data(), &[0., 1., 2., 7., 8., 9., 14., 15., 16.]);
        assert_eq!(c0.targets.data(), &[1., 2., 3., 8., 9., 10., 15., 16., 17.]);
        assert_eq!(
            c1.inputs.data(),
            &[3., 4., 5., 10., 11., 12., 17., 18., 19.]
        );
        assert!(l.chunk(2).is_none());
        assert!(Lanes::new(&ids, 8, 3).is_err());
        assert!(Lanes::new(&ids, 0, 3).is_err());
    }

    #[test]
    fn default_spec_builds_the_char_rnn_model() {
        let cfg = CharLmConfig {
            dropout: 0.25,
            layers: 3,
            ..CharLmConfig::default()
        };
        let spec = char_model_spec(&cfg, 65);
        let m = build_char_model(&spec, 65, 0).unwrap();
        let types: Vec<&str> = m.layers().iter().map(|l| l.type_name()).collect();
        assert_eq!(
            types,
            [
                "Embedding",
                "LSTM",
                "Dropout",
                "LSTM",
                "Dropout",
                "LSTM",
                "TimeDistributed"
            ]
        );
        assert!(build_char_model(&spec, 64, 0).is_err());
        for (name, kind) in [
            ("gru", CellKind::Gru),
            ("rnn", CellKind::SimpleRnn),
            ("LSTM", CellKind::Lstm),
        ] {
            assert_eq!(parse_cell(name).unwrap(), kind);
        }
        assert!(parse_cell("tcn").is_err());
    }

    #[test]
    fn config_checks_and_optimizer() {
        let ok = CharLmConfig::default();
        ok.validate().unwrap();
        for bad in [
            CharLmConfig {
                units: 0,
                ..ok.clone()
            },
            CharLmConfig {
                dropout: 1.0,
                ..ok.clone()
            },
            CharLmConfig {
                lr: f64::NAN,
                ..ok.clone()
            },
            CharLmConfig {
                train_frac: 0.9,
                val_frac: 0.2,
                ..ok.clone()
            },
            CharLmConfig {
                steps: Some(0),
                ..ok.clone()
            },
            CharLmConfig {
                sample_temperatures: vec![0.0],
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let opt = char_rnn_optimizer("rmsprop", 2e-3).unwrap();
        match opt.algorithm() {
            Algorithm::RmsProp(r) => {
                assert_eq!((r.lr, r.alpha, r.eps), (2e-3, 0.95, 1e-8));
            }
            other => panic!("{other:?}"),
        }
        // char-rnn's decay: epochs 0..=9 at lr0, epoch 10 at lr0 * 0.97, 11 at * 0.97^2.
        let s = Schedule::CharRnn {
            decay_after: 10,
            decay: 0.97,
        };
        assert_eq!(s.lr_at(1.0, 9), 1.0);
        assert!((s.lr_at(1.0, 10) - 0.97).abs() < 1e-12);
        assert!((s.lr_at(1.0, 11) - 0.97f64.powi(2)).abs() < 1e-12);
    }

    #[test]
    fn training_learns_a_periodic_text() {
        let text = "abcd".repeat(300);
        let vocab = CharVocab::from_text(&text).unwrap();
        let cfg = CharLmConfig {
            units: 16,
            layers: 1,
            embedding_dim: 8,
            seq_len: 8,
            batch_size: 4,
            optimizer: "adam".into(),
            lr: 1e-2,
            steps: Some(60),
            eval_every: 20,
            sample_length: 8,
            sample_temperatures: vec![0.5],
            ..CharLmConfig::default()
        };
        let mut t = CharLmTrainer::new(&text, vocab, cfg, None).unwrap();
        let mut evals = 0;
        let mut samples = Vec::new();
        let s = t
            .train(&mut |e| {
                if let Event::Eval { samples: s, .. } = e {
                    evals += 1;
                    samples = s;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(evals, 3);
        assert_eq!(s.train_curve.len(), 3);
        let v = s.val_loss.unwrap();
        assert!(v < 0.5, "a periodic text should be easy: val loss {v}");
        // Greedy continues the period.
        let greedy = samples.iter().find(|s| s.label == "greedy").unwrap();
        assert_eq!(greedy.text, "abcdabcda");
        // A short validation stream still evaluates (fewer lanes, shorter chunk).
        let mut m = t.into_model();
        let l = evaluate_stream(&mut m, &[0, 1, 2], 50, 50).unwrap();
        assert!(l.is_finite());
        assert!(evaluate_stream(&mut m, &[0], 50, 50).is_err());
    }
}
