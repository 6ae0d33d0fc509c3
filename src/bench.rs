//! The benchmark configurations of `bench/` (A, B, B-GRU, B-RNN, C, D, E) and the
//! code that times them: a training step (the library's one [`train_step`]:
//! forward, loss, finite checks, backward, Adam lr 1e-3) and inference
//! (forward only), after warm-up, as the median of repeated runs.
//!
//! The same configurations are run in PyTorch by `bench/pytorch_compare.py`; the
//! `gated bench` subcommand prints these results as a table or as JSON.
//!
//! ```no_run
//! use gated::bench::{run_config, BenchConfig, BenchOptions};
//! let r = run_config(BenchConfig::B, &BenchOptions::default()).unwrap();
//! println!("{} train {:.2} ms", r.config, r.train.unwrap().median_ms);
//! ```

use crate::layers::{Dense, DenseConfig, Dropout, DropoutConfig, Embedding, EmbeddingConfig};
use crate::model::{InputSpec, Sequential};
use crate::recurrent::{Gru, Lstm, RnnBuilder, SimpleRnn};
use crate::train::loss::{bce_logits, sparse_categorical_ce};
use crate::train::step::{train_step, Clip};
use crate::train::{softmax, Adam, Algorithm, Optimizer};
use crate::{Error, Layer, Result, Rng, Tensor};
use std::time::Instant;

/// One of the benchmark configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchConfig {
    /// "emojify": Embedding(20000, 50) -> LSTM(128, seq) -> Dropout(0.5) -> LSTM(128)
    /// -> Dropout(0.5) -> Dense(5); batch 32, 10 steps, softmax cross-entropy.
    A,
    /// "imdb": Embedding(20000, 128) -> LSTM(128) -> Dense(1); batch 32, 80 steps,
    /// sigmoid binary cross-entropy.
    B,
    /// As B with GRU(128) (reset_after, PyTorch's form).
    BGru,
    /// As B with SimpleRNN(128, tanh).
    BRnn,
    /// "charlm": Embedding(65, 64) -> LSTM(512) -> LSTM(512) -> TimeDistributed
    /// Dense(65); batch 32, 100 steps, softmax cross-entropy at every step.
    C,
    /// "big": LSTM(1024) on 1024 float features; batch 64, 50 steps, loss = sum
    /// of all outputs.
    D,
    /// "generate": the C model at batch 1, one character at a time with the state
    /// kept, the next character sampled from the softmax.
    E,
}

impl BenchConfig {
    /// Every configuration, in order.
    pub const ALL: [BenchConfig; 7] = [
        BenchConfig::A,
        BenchConfig::B,
        BenchConfig::BGru,
        BenchConfig::BRnn,
        BenchConfig::C,
        BenchConfig::D,
        BenchConfig::E,
    ];

    /// The id used on the command line and in bench/RESULTS.md (`A`, `B-GRU`, ...).
    pub fn id(self) -> &'static str {
        match self {
            BenchConfig::A => "A",
            BenchConfig::B => "B",
            BenchConfig::BGru => "B-GRU",
            BenchConfig::BRnn => "B-RNN",
            BenchConfig::C => "C",
            BenchConfig::D => "D",
            BenchConfig::E => "E",
        }
    }

    /// Parses an id, ignoring case.
    pub fn parse(s: &str) -> Result<Self> {
        let up = s.trim().to_ascii_uppercase();
        BenchConfig::ALL
            .into_iter()
            .find(|c| c.id() == up)
            .ok_or_else(|| {
                Error::invalid(
                    "bench config",
                    format!("unknown configuration {s:?}; known: A, B, B-GRU, B-RNN, C, D, E"),
                )
            })
    }

    /// (batch, steps) of the configuration.
    pub fn dims(self) -> (usize, usize) {
        match self {
            BenchConfig::A => (32, 10),
            BenchConfig::B | BenchConfig::BGru | BenchConfig::BRnn => (32, 80),
            BenchConfig::C => (32, 100),
            BenchConfig::D => (64, 50),
            BenchConfig::E => (1, 1),
        }
    }

    /// Recurrent FLOPs of one forward pass:
    /// `2 * gates * H * (I + H) * B * T` summed over the recurrent layers.
    pub fn forward_flops(self) -> f64 {
        let (b, t) = self.dims();
        let layer = |gates: usize, i: usize, h: usize| (2 * gates * h * (i + h) * b * t) as f64;
        match self {
            BenchConfig::A => layer(4, 50, 128) + layer(4, 128, 128),
            BenchConfig::B => layer(4, 128, 128),
            BenchConfig::BGru => layer(3, 128, 128),
            BenchConfig::BRnn => layer(1, 128, 128),
            BenchConfig::C | BenchConfig::E => layer(4, 64, 512) + layer(4, 512, 512),
            BenchConfig::D => layer(4, 1024, 1024),
        }
    }

    /// Repeats used when none are given: enough for a stable median in a few seconds.
    pub fn default_repeats(self) -> usize {
        match self {
            BenchConfig::A | BenchConfig::B | BenchConfig::BGru | BenchConfig::BRnn => 30,
            BenchConfig::C => 10,
            BenchConfig::D => 5,
            BenchConfig::E => 300,
        }
    }
}

/// How to run the benchmarks.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Threads (see [`crate::threads::set_num_threads`]); every core by default.
    pub threads: usize,
    /// Timed repeats; `None` for [`BenchConfig::default_repeats`].
    pub repeats: Option<usize>,
    /// Untimed warm-up runs before the timed ones.
    pub warmup: usize,
    /// Seed of the weights and inputs.
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            threads: crate::threads::available(),
            repeats: None,
            warmup: 3,
            seed: 1,
        }
    }
}

/// Median, minimum and maximum of the timed runs, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Number of timed runs.
    pub runs: usize,
}

impl Timing {
    /// Summarises samples in milliseconds; `None` when there are none.
    pub fn from_samples(samples: &[f64]) -> Option<Timing> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            0.5 * (s[n / 2 - 1] + s[n / 2])
        };
        Some(Timing {
            median_ms: median,
            min_ms: s[0],
            max_ms: s[n - 1],
            runs: n,
        })
    }
}

/// The result of one configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchResult {
    /// Configuration id (`A`, `B-GRU`, ...).
    pub config: String,
    /// Threads used.
    pub threads: usize,
    /// Training step (forward + backward + Adam); absent for E.
    pub train: Option<Timing>,
    /// Forward only, no tape; for E the time per generated character.
    pub infer: Option<Timing>,
    /// Recurrent FLOPs of one forward pass.
    pub forward_flops: f64,
    /// GFLOP/s of the training step (3x the forward FLOPs), by its median.
    pub train_gflops: Option<f64>,
    /// GFLOP/s of inference, by its median.
    pub infer_gflops: Option<f64>,
    /// Peak resident memory of the process in KiB (`VmHWM`), if known.
    pub peak_rss_kib: Option<u64>,
}

/// Peak resident set size of this process in KiB (`VmHWM` of `/proc/self/status`),
/// `None` where that file does not exist.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// What a configuration trains against.
enum Target {
    /// Class ids, one per output row (softmax cross-entropy).
    Classes(Tensor),
    /// 0/1 targets for sigmoid binary cross-entropy on logits.
    Binary(Tensor),
    /// Loss = sum of all outputs.
    Sum,
}

fn rnn_layer(kind: BenchConfig, input: usize, units: usize, name: &str, seed: u64) -> RnnBuilder {
    let b = match kind {
        BenchConfig::BGru => Gru::new(input, units),
        BenchConfig::BRnn => SimpleRnn::new(input, units),
        _ => Lstm::new(input, units),
    };
    b.torch_like().name(name).seed(seed)
}

/// Builds the model of a configuration at the given batch size with PyTorch's
/// default initialisation (E uses the C model).
pub fn build_model(cfg: BenchConfig, seed: u64) -> Result<Sequential> {
    let mut rng = Rng::new(seed);
    let (_, steps) = cfg.dims();
    let ids = |t: usize| InputSpec {
        shape: vec![Some(t)],
        integer: true,
    };
    let emb = |name: &str, n: usize, d: usize, rng: &mut Rng| -> Result<Box<dyn Layer>> {
        Ok(Box::new(Embedding::new(
            name,
            EmbeddingConfig::new(n, d).torch_default(),
            rng,
        )?))
    };
    let dense = |name: &str, i: usize, u: usize, rng: &mut Rng| -> Result<Dense> {
        Dense::new(name, i, DenseConfig::new(u).torch_default(), rng)
    };
    let mut m;
    match cfg {
        BenchConfig::A => {
            m = Sequential::new("emojify", ids(steps));
            m.add(emb("embedding", 20000, 50, &mut rng)?)?;
            let s = rng.next_u64();
            m.add(Box::new(
                rnn_layer(cfg, 50, 128, "lstm_1", s)
                    .return_sequences(true)
                    .build()?,
            ))?;
            m.add(Box::new(Dropout::new(
                "dropout_1",
                DropoutConfig::new(0.5),
                &mut rng,
            )?))?;
            let s = rng.next_u64();
            m.add(Box::new(rnn_layer(cfg, 128, 128, "lstm_2", s).build()?))?;
            m.add(Box::new(Dropout::new(
                "dropout_2",
                DropoutConfig::new(0.5),
                &mut rng,
            )?))?;
            m.add(Box::new(dense("dense", 128, 5, &mut rng)?))?;
        }
        BenchConfig::B | BenchConfig::BGru | BenchConfig::BRnn => {
            m = Sequential::new("imdb", ids(steps));
            m.add(emb("embedding", 20000, 128, &mut rng)?)?;
            let s = rng.next_u64();
            m.add(Box::new(rnn_layer(cfg, 128, 128, "rnn", s).build()?))?;
            m.add(Box::new(dense("dense", 128, 1, &mut rng)?))?;
        }
        BenchConfig::C | BenchConfig::E => {
            let t = if cfg == BenchConfig::E { 1 } else { steps };
            m = Sequential::new("charlm", ids(t));
            m.add(emb("embedding", 65, 64, &mut rng)?)?;
            for (k, i) in [64, 512].into_iter().enumerate() {
                let s = rng.next_u64();
                m.add(Box::new(
                    rnn_layer(cfg, i, 512, &format!("lstm_{}", k + 1), s)
                        .return_sequences(true)
                        .build()?,
                ))?;
            }
            let d = dense("dense", 512, 65, &mut rng)?;
            m.add(Box::new(crate::layers::TimeDistributed::new(
                "time_distributed",
                Box::new(d),
            )))?;
        }
        BenchConfig::D => {
            m = Sequential::new(
                "big",
                InputSpec {
                    shape: vec![Some(steps), Some(1024)],
                    integer: false,
                },
            );
            let s = rng.next_u64();
            m.add(Box::new(
                rnn_layer(cfg, 1024, 1024, "lstm", s)
                    .return_sequences(true)
                    .build()?,
            ))?;
        }
    }
    Ok(m)
}

/// Random input and target of a configuration.
fn make_batch(cfg: BenchConfig, rng: &mut Rng) -> Result<(Tensor, Target)> {
    let (b, t) = cfg.dims();
    let tokens = |vocab: usize, rng: &mut Rng| -> Result<Tensor> {
        Tensor::from_vec(
            &[b, t],
            (0..b * t).map(|_| rng.below(vocab) as f32).collect(),
        )
    };
    Ok(match cfg {
        BenchConfig::A => {
            let x = tokens(20000, rng)?;
            let y = Tensor::from_vec(&[b], (0..b).map(|_| rng.below(5) as f32).collect())?;
            (x, Target::Classes(y))
        }
        BenchConfig::B | BenchConfig::BGru | BenchConfig::BRnn => {
            let x = tokens(20000, rng)?;
            let y = Tensor::from_vec(&[b, 1], (0..b).map(|_| rng.below(2) as f32).collect())?;
            (x, Target::Binary(y))
        }
        BenchConfig::C | BenchConfig::E => {
            let x = tokens(65, rng)?;
            let y = Tensor::from_vec(&[b, t], (0..b * t).map(|_| rng.below(65) as f32).collect())?;
            (x, Target::Classes(y))
        }
        BenchConfig::D => {
            let x = Tensor::from_vec(
                &[b, t, 1024],
                (0..b * t * 1024).map(|_| rng.normal()).collect(),
            )?;
            (x, Target::Sum)
        }
    })
}

/// The loss of a configuration's output: softmax or sigmoid cross-entropy,
/// or the sum of all outputs (D).
fn objective(pred: &Tensor, target: &Target) -> Result<(f32, Tensor)> {
    match target {
        Target::Classes(y) => sparse_categorical_ce(pred, y),
        Target::Binary(y) => bce_logits(pred, y),
        Target::Sum => {
            let s: f64 = pred.data().iter().map(|&v| v as f64).sum();
            Ok((
                s as f32,
                Tensor::from_vec(pred.shape(), vec![1.0; pred.len()])?,
            ))
        }
    }
}

/// One training step, the one `fit` and `train --text` run
/// ([`train_step`]: forward, loss, finite checks, backward, Adam update,
/// gradients cleared), without clipping. The model's gradients must be zero
/// on entry. Returns the loss.
fn bench_step(
    model: &mut Sequential,
    opt: &mut Optimizer,
    x: &Tensor,
    target: &Target,
    step: u64,
) -> Result<f32> {
    let loss = |pred: &Tensor| objective(pred, target);
    Ok(train_step(model, opt, x.clone(), &loss, Clip::default(), step)?.loss)
}

fn time_runs(warmup: usize, repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        f()?;
    }
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t0 = Instant::now();
        f()?;
        samples.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(samples)
}

/// Samples a class from `probs` (which sum to 1) with one uniform draw.
pub fn sample_from(probs: &[f32], rng: &mut Rng) -> usize {
    let u = rng.next_f32();
    let mut acc = 0.0f32;
    for (i, &p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.len().saturating_sub(1)
}

/// Runs one configuration and returns its timings. The thread count is applied
/// for the duration of the process.
pub fn run_config(cfg: BenchConfig, opts: &BenchOptions) -> Result<BenchResult> {
    crate::threads::set_num_threads(opts.threads);
    let repeats = opts.repeats.unwrap_or(cfg.default_repeats()).max(1);
    let mut model = build_model(cfg, opts.seed)?;
    let mut rng = Rng::new(opts.seed ^ 0x9e37_79b9);
    let flops = cfg.forward_flops();
    let (train, infer) = if cfg == BenchConfig::E {
        model.set_stateful(true);
        model.reset_states();
        let mut next = rng.below(65);
        let samples = time_runs(opts.warmup * 10, repeats, || {
            let x = Tensor::from_vec(&[1, 1], vec![next as f32])?;
            let logits = model.forward(x, false)?;
            let p = softmax(&logits)?;
            next = sample_from(p.data(), &mut rng);
            Ok(())
        })?;
        (None, Timing::from_samples(&samples))
    } else {
        let (x, target) = make_batch(cfg, &mut rng)?;
        let mut opt = Optimizer::new(Algorithm::Adam(Adam::torch_defaults()))?;
        model.zero_grad();
        let mut step = 0;
        let train = time_runs(opts.warmup, repeats, || {
            step += 1;
            bench_step(&mut model, &mut opt, &x, &target, step).map(|_| ())
        })?;
        let infer = time_runs(opts.warmup, repeats, || {
            model.forward(x.clone(), false).map(|_| ())
        })?;
        (Timing::from_samples(&train), Timing::from_samples(&infer))
    };
    let rate = |t: &Timing, mult: f64| flops * mult / (t.median_ms * 1e-3) / 1e9;
    Ok(BenchResult {
        config: cfg.id().to_string(),
        threads: opts.threads,
        train_gflops: train.as_ref().map(|t| rate(t, 3.0)),
        infer_gflops: infer.as_ref().map(|t| rate(t, 1.0)),
        train,
        infer,
        forward_flops: flops,
        peak_rss_kib: peak_rss_kib(),
    })
}

/// A plain-text table of results, one row per configuration.
pub fn format_table(results: &[BenchResult]) -> String {
    let mut s = format!(
        "{:<6} {:>4} {:>12} {:>10} {:>10} {:>9} {:>12} {:>9} {:>10}\n",
        "config", "thr", "train ms", "min", "max", "GFLOP/s", "infer ms", "GFLOP/s", "peak MiB"
    );
    let ms = |t: Option<Timing>, f: fn(&Timing) -> f64| {
        t.map_or("-".to_string(), |t| format!("{:.3}", f(&t)))
    };
    let gf = |g: Option<f64>| g.map_or("-".to_string(), |g| format!("{g:.1}"));
    for r in results {
        s.push_str(&format!(
            "{:<6} {:>4} {:>12} {:>10} {:>10} {:>9} {:>12} {:>9} {:>10}\n",
            r.config,
            r.threads,
            ms(r.train, |t| t.median_ms),
            ms(r.train, |t| t.min_ms),
            ms(r.train, |t| t.max_ms),
            gf(r.train_gflops),
            ms(r.infer, |t| t.median_ms),
            gf(r.infer_gflops),
            r.peak_rss_kib
                .map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0)),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_flops() {
        for c in BenchConfig::ALL {
            assert_eq!(BenchConfig::parse(&c.id().to_lowercase()).unwrap(), c);
        }
        assert!(BenchConfig::parse("Z").is_err());
        // D: 2 * 4 * 1024 * 2048 * 64 * 50
        assert_eq!(
            BenchConfig::D.forward_flops(),
            2.0 * 4.0 * 1024.0 * 2048.0 * 3200.0
        );
    }

    #[test]
    fn timing_median() {
        let t = Timing::from_samples(&[3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!(
            (t.median_ms, t.min_ms, t.max_ms, t.runs),
            (2.5, 1.0, 10.0, 4)
        );
    }

    #[test]
    fn every_model_builds_and_trains_one_step() {
        for cfg in [BenchConfig::A, BenchConfig::BGru, BenchConfig::BRnn] {
            let mut m = build_model(cfg, 3).unwrap();
            let mut rng = Rng::new(4);
            let (x, t) = make_batch(cfg, &mut rng).unwrap();
            let mut opt = Optimizer::new(Algorithm::Adam(Adam::torch_defaults())).unwrap();
            m.zero_grad();
            let l = bench_step(&mut m, &mut opt, &x, &t, 1).unwrap();
            assert!(l.is_finite());
        }
    }
}
