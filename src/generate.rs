//! Sampling from a model's output and streaming text generation.
//!
//! **Sampling.** A [`Strategy`] picks the next token from a row of scores:
//!
//! - [`Strategy::Greedy`]: the argmax (first one on ties).
//! - [`Strategy::Temperature`]: `p_i ∝ exp(log(p_i) / T)` as in Keras's
//!   `lstm_text_generation` example, which for logits `z` is `softmax(z / T)`.
//!   `T = 1` samples the model's own distribution; `T → 0` tends to the argmax
//!   (`T = 1e-6` picks it in practice); `T > 1` flattens the distribution.
//!   `T <= 0` or NaN is an error.
//! - [`Strategy::TopK`]: the same, restricted to the `k` highest scores (ties
//!   broken towards the lower index, so exactly `k` candidates remain).
//!
//! [`sample_logits`] takes logits (any finite values, `-inf` allowed for
//! masked tokens); [`sample_probs`] takes probabilities (non-negative, not all
//! zero; they need not sum to one). All draws come from the project's seeded
//! [`Rng`], so a seed fixes the generated text.
//!
//! **Generation.** A [`Generator`] drives a char model — a [`Sequential`]
//! taking `[batch, time]` token ids (Embedding → recurrent layers →
//! `TimeDistributed(Dense)` giving logits over the vocabulary): it makes the
//! recurrent layers stateful, feeds the prime text in one call, then produces
//! one character per [`Generator::next_char`] (or [`Iterator::next`]) by
//! feeding the previously sampled character as a `[1, 1]` batch, so a caller
//! can print each character as soon as it exists.
//!
//! ```
//! use gated::data::CharVocab;
//! use gated::generate::{Generator, Strategy};
//! use gated::layers::{Dense, DenseConfig, Embedding, EmbeddingConfig, TimeDistributed};
//! use gated::model::{InputSpec, Sequential};
//! use gated::recurrent::Lstm;
//! use gated::Rng;
//!
//! # fn main() -> gated::Result<()> {
//! let vocab = CharVocab::from_text("abc ")?;
//! let v = vocab.len();
//! let mut rng = Rng::new(1);
//! let mut model = Sequential::new("char_rnn", InputSpec { shape: vec![None], integer: true });
//! model.add(Box::new(Embedding::new("embedding_1", EmbeddingConfig::new(v, 8), &mut rng)?))?;
//! model.add(Box::new(Lstm::new(8, 16).return_sequences(true).name("lstm_1").seed(2).build()?))?;
//! let dense = Dense::new("dense_1", 16, DenseConfig::new(v), &mut rng)?;
//! model.add(Box::new(TimeDistributed::new("time_distributed_1", Box::new(dense))))?;
//!
//! let mut gen = Generator::new(&mut model, vocab, Strategy::temperature(0.8)?, 42)?;
//! gen.prime("ab")?;
//! let text: String = gen.by_ref().take(20).collect::<gated::Result<_>>()?;
//! assert_eq!(text.chars().count(), 20);
//! # Ok(())
//! # }
//! ```

use crate::data::CharVocab;
use crate::model::Sequential;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::borrow::BorrowMut;

/// How the next token is chosen from a row of scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// Always the highest score (first one on ties).
    Greedy,
    /// Sample from `softmax(logits / T)`, i.e. `p_i ∝ exp(log(p_i) / T)`.
    Temperature(f32),
    /// Sample with temperature among the `k` highest scores only.
    TopK {
        /// How many of the highest-scoring tokens stay candidates (>= 1).
        k: usize,
        /// The temperature applied to the remaining candidates.
        temperature: f32,
    },
}

/// Errors unless `t` is a finite positive temperature.
pub fn check_temperature(t: f32) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "temperature",
            format!(
                "{t} is not allowed; it must be a finite number above 0 (use greedy sampling \
                 for the argmax, or a small temperature such as 0.01)"
            ),
        ))
    }
}

impl Strategy {
    /// Temperature sampling; errors when `t` is not finite and positive.
    pub fn temperature(t: f32) -> Result<Self> {
        check_temperature(t)?;
        Ok(Strategy::Temperature(t))
    }

    /// Top-k sampling with temperature; errors when `k == 0` or `t` is invalid.
    pub fn top_k(k: usize, temperature: f32) -> Result<Self> {
        let s = Strategy::TopK { k, temperature };
        s.validate()?;
        Ok(s)
    }

    /// Builds a strategy from CLI-style options: `greedy`, else temperature
    /// sampling, restricted to the top `k` when `top_k` is given.
    pub fn from_options(greedy: bool, temperature: f32, top_k: Option<usize>) -> Result<Self> {
        let s = match (greedy, top_k) {
            (true, _) => Strategy::Greedy,
            (false, Some(k)) => Strategy::TopK { k, temperature },
            (false, None) => Strategy::Temperature(temperature),
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks the temperature and `k`.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Strategy::Greedy => Ok(()),
            Strategy::Temperature(t) => check_temperature(t),
            Strategy::TopK { k, temperature } => {
                if k == 0 {
                    return Err(Error::invalid("top_k", "k must be at least 1"));
                }
                check_temperature(temperature)
            }
        }
    }
}

/// Checks a row of log-scores: not empty, no NaN, no `+inf`, at least one finite.
fn check_log_scores(scores: &[f64], what: &str) -> Result<()> {
    if scores.is_empty() {
        return Err(Error::invalid(what, "the row of scores is empty"));
    }
    if let Some((i, v)) = scores
        .iter()
        .enumerate()
        .find(|(_, v)| v.is_nan() || **v == f64::INFINITY)
    {
        return Err(Error::invalid(
            what,
            format!("score {i} is {v}; the model's output is not finite"),
        ));
    }
    if !scores.iter().any(|v| v.is_finite()) {
        return Err(Error::invalid(what, "every score is -inf"));
    }
    Ok(())
}

/// Index of the largest score, first one on ties.
fn argmax64(scores: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in scores.iter().enumerate() {
        if v > scores[best] {
            best = i;
        }
    }
    best
}

/// The sampling distribution of `strategy` over log-scores (logits or
/// log-probabilities; only differences matter). Greedy gives a one-hot row.
fn distribution(log_scores: &[f64], strategy: Strategy, what: &str) -> Result<Vec<f64>> {
    strategy.validate()?;
    check_log_scores(log_scores, what)?;
    let n = log_scores.len();
    let (keep, t) = match strategy {
        Strategy::Greedy => {
            let mut p = vec![0.0; n];
            p[argmax64(log_scores)] = 1.0;
            return Ok(p);
        }
        Strategy::Temperature(t) => (None, t),
        Strategy::TopK { k, temperature } => {
            let mut order: Vec<usize> = (0..n).collect();
            // Highest first; equal scores keep index order (stable sort).
            order.sort_by(|&a, &b| log_scores[b].total_cmp(&log_scores[a]));
            let mut keep = vec![false; n];
            order.iter().take(k).for_each(|&i| keep[i] = true);
            (Some(keep), temperature)
        }
    };
    let allowed = |i: usize| keep.as_ref().is_none_or(|k| k[i]);
    let max = (0..n)
        .filter(|&i| allowed(i))
        .map(|i| log_scores[i])
        .fold(f64::NEG_INFINITY, f64::max);
    let t = t as f64;
    let mut p: Vec<f64> = (0..n)
        .map(|i| {
            if allowed(i) && log_scores[i].is_finite() {
                ((log_scores[i] - max) / t).exp()
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = p.iter().sum();
    // total >= 1: the maximum contributes exp(0).
    p.iter_mut().for_each(|v| *v /= total);
    Ok(p)
}

/// The distribution [`sample_logits`] draws from: `softmax(logits / T)`,
/// restricted to the top k for [`Strategy::TopK`], one-hot for greedy.
pub fn logits_distribution(logits: &[f32], strategy: Strategy) -> Result<Vec<f64>> {
    let s: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    distribution(&s, strategy, "logits")
}

/// The distribution [`sample_probs`] draws from: Keras's reweighting
/// `p_i^(1/T) / Σ_j p_j^(1/T)`, restricted to the top k for [`Strategy::TopK`].
pub fn probs_distribution(probs: &[f32], strategy: Strategy) -> Result<Vec<f64>> {
    if let Some((i, v)) = probs
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite() || **v < 0.0)
    {
        return Err(Error::invalid(
            "probabilities",
            format!("entry {i} is {v}; probabilities must be finite and non-negative"),
        ));
    }
    let s: Vec<f64> = probs.iter().map(|&v| (v as f64).ln()).collect();
    distribution(&s, strategy, "probabilities")
}

/// Draws an index from non-negative weights that sum to a positive number.
pub fn sample_index(weights: &[f64], rng: &mut Rng) -> Result<usize> {
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total > 0.0) || weights.iter().any(|w| w.is_nan() || *w < 0.0) {
        return Err(Error::invalid(
            "weights",
            "sampling needs finite non-negative weights with a positive sum",
        ));
    }
    let u = rng.next_f64() * total;
    let mut cum = 0.0;
    let mut last = 0;
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            cum += w;
            last = i;
            if u < cum {
                return Ok(i);
            }
        }
    }
    Ok(last) // rounding left u at the very top
}

/// The index of the largest logit (first on ties); errors on an empty row or a NaN.
pub fn greedy(scores: &[f32]) -> Result<usize> {
    let s: Vec<f64> = scores.iter().map(|&v| v as f64).collect();
    check_log_scores(&s, "scores")?;
    Ok(argmax64(&s))
}

/// Picks a token from a row of logits with `strategy`.
pub fn sample_logits(logits: &[f32], strategy: Strategy, rng: &mut Rng) -> Result<usize> {
    if strategy == Strategy::Greedy {
        return greedy(logits);
    }
    sample_index(&logits_distribution(logits, strategy)?, rng)
}

/// Picks a token from a row of probabilities with `strategy`.
pub fn sample_probs(probs: &[f32], strategy: Strategy, rng: &mut Rng) -> Result<usize> {
    let p = probs_distribution(probs, strategy)?;
    if strategy == Strategy::Greedy {
        return Ok(argmax64(&p));
    }
    sample_index(&p, rng)
}

/// What the model's last layer emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelOutput {
    /// Unnormalised scores (a `Dense` head without softmax). The default.
    #[default]
    Logits,
    /// Probabilities (the model ends in a softmax).
    Probabilities,
}

/// Streams characters from a char model. See the [module docs](self).
///
/// `M` is the model or a mutable borrow of it. The generator makes the model's
/// recurrent layers stateful; [`Generator::into_model`] turns that off again
/// (a borrowed model stays stateful when the generator is simply dropped;
/// call `set_stateful(false)` on it before training it further).
///
/// Prime text characters outside the vocabulary are an error that names the
/// character and its position (0-based, in characters); there is no fallback.
#[derive(Debug)]
pub struct Generator<M: BorrowMut<Sequential>> {
    model: M,
    vocab: CharVocab,
    strategy: Strategy,
    output: ModelOutput,
    rng: Rng,
    /// Scores for the next token, when up to date.
    scores: Option<Vec<f32>>,
    /// A sampled token the model has not seen yet (fed lazily).
    pending: Option<usize>,
}

impl<M: BorrowMut<Sequential>> Generator<M> {
    /// Wraps `model`, checking that it takes integer ids of any length and
    /// emits `vocab.len()` scores per step, and makes it stateful. `seed` fixes
    /// the sampled text. The model's output is taken as logits; see
    /// [`Generator::output`].
    pub fn new(mut model: M, vocab: CharVocab, strategy: Strategy, seed: u64) -> Result<Self> {
        strategy.validate()?;
        {
            let m: &mut Sequential = model.borrow_mut();
            let input = m.input();
            if !input.integer || input.shape.len() != 1 {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "model {} cannot generate text: it must take token ids [batch, time] \
                         (input dtype int32, shape [None])",
                        m.name()
                    ),
                ));
            }
            if let Some(n) = input.shape[0] {
                if n != 1 {
                    return Err(Error::invalid(
                        "model",
                        format!(
                            "model {} takes sequences of exactly {n} ids, but generation feeds \
                             the prime text and then one id at a time; declare the input \
                             length as None",
                            m.name()
                        ),
                    ));
                }
            }
            if let Some(l) = m.layers().iter().find(|l| l.type_name() == "Bidirectional") {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "layer {} is Bidirectional; a model that reads the future cannot generate",
                        l.name()
                    ),
                ));
            }
            let out = m.output_shape()?;
            if !(2..=3).contains(&out.len()) || out.last() != Some(&Some(vocab.len())) {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "model {} outputs {}, but the vocabulary has {} characters; expected \
                         (None, None, {}) or (None, {})",
                        m.name(),
                        crate::model::format_shape(&out),
                        vocab.len(),
                        vocab.len(),
                        vocab.len()
                    ),
                ));
            }
            m.set_stateful(true);
            m.reset_states();
        }
        Ok(Generator {
            model,
            vocab,
            strategy,
            output: ModelOutput::Logits,
            rng: Rng::new(seed),
            scores: None,
            pending: None,
        })
    }

    /// Says whether the model emits logits (default) or probabilities.
    pub fn output(mut self, output: ModelOutput) -> Self {
        self.output = output;
        self
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &CharVocab {
        &self.vocab
    }

    /// The sampling strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Changes the sampling strategy (e.g. a new temperature) mid-stream.
    pub fn set_strategy(&mut self, strategy: Strategy) -> Result<()> {
        strategy.validate()?;
        self.strategy = strategy;
        Ok(())
    }

    /// Clears the carried state and feeds `text` in one call. Errors when `text`
    /// is empty or holds a character outside the vocabulary (naming it and its
    /// position).
    pub fn prime(&mut self, text: &str) -> Result<()> {
        if text.is_empty() {
            return Err(Error::invalid(
                "prime text",
                "it is empty; give at least one character to start from",
            ));
        }
        let ids = self.encode_prime(text)?;
        self.model.borrow_mut().reset_states();
        self.scores = None;
        self.pending = None;
        self.feed_ids(&ids)
    }

    /// Feeds more text after what was primed or generated so far, keeping the
    /// state (a generated character not yet fed goes first).
    pub fn feed(&mut self, text: &str) -> Result<()> {
        let ids = self.encode_prime(text)?;
        self.feed_ids(&ids)
    }

    fn encode_prime(&self, text: &str) -> Result<Vec<usize>> {
        self.vocab.encode(text).map_err(|e| match e {
            Error::Invalid { message, .. } => Error::invalid("prime text", message),
            other => other,
        })
    }

    /// Runs the model on `ids` (after any pending token) and keeps the last step's scores.
    fn feed_ids(&mut self, ids: &[usize]) -> Result<()> {
        let seq: Vec<f32> = self
            .pending
            .take()
            .into_iter()
            .chain(ids.iter().copied())
            .map(|i| i as f32)
            .collect();
        if seq.is_empty() {
            return Ok(());
        }
        let x = Tensor::from_vec(&[1, seq.len()], seq)?;
        let y = self.model.borrow_mut().forward(x, false)?;
        let v = self.vocab.len();
        if y.shape().last() != Some(&v) || y.len() < v {
            return Err(Error::shape(
                "generator: model output",
                format!("[.., {v}]"),
                y.shape(),
            ));
        }
        self.scores = Some(y.data()[y.len() - v..].to_vec());
        Ok(())
    }

    /// The scores the next token will be drawn from (the model's output after
    /// the last fed or generated character). Errors before [`Generator::prime`].
    pub fn next_scores(&mut self) -> Result<&[f32]> {
        if self.pending.is_some() {
            self.feed_ids(&[])?;
        }
        self.scores.as_deref().ok_or_else(|| {
            Error::invalid(
                "generator",
                "no text has been fed yet; call prime() with a prime text first",
            )
        })
    }

    /// Samples the next token id (and remembers it, to be fed on the next call).
    pub fn next_token(&mut self) -> Result<usize> {
        let (strategy, output) = (self.strategy, self.output);
        self.next_scores()?;
        let scores = self.scores.as_deref().unwrap_or(&[]);
        let token = match output {
            ModelOutput::Logits => sample_logits(scores, strategy, &mut self.rng)?,
            ModelOutput::Probabilities => sample_probs(scores, strategy, &mut self.rng)?,
        };
        self.pending = Some(token);
        Ok(token)
    }

    /// Samples the next character.
    pub fn next_char(&mut self) -> Result<char> {
        let t = self.next_token()?;
        self.vocab.char_of(t).ok_or_else(|| {
            Error::invalid(
                "generator",
                format!("sampled id {t} is outside the vocabulary"),
            )
        })
    }

    /// Generates `n` characters into a string.
    pub fn generate(&mut self, n: usize) -> Result<String> {
        (0..n).map(|_| self.next_char()).collect()
    }

    /// The model, mutable (still stateful while generating).
    pub fn model_mut(&mut self) -> &mut Sequential {
        self.model.borrow_mut()
    }

    /// Gives the model back with its recurrent layers no longer stateful.
    pub fn into_model(mut self) -> M {
        self.model.borrow_mut().set_stateful(false);
        self.model
    }
}

/// Endless: one sampled character per call (`Some(Err(..))` on failure, e.g.
/// before priming). Use `take(n)` to bound it.
impl<M: BorrowMut<Sequential>> Iterator for Generator<M> {
    type Item = Result<char>;

    fn next(&mut self) -> Option<Result<char>> {
        Some(self.next_char())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Dense, DenseConfig, Embedding, EmbeddingConfig, TimeDistributed};
    use crate::model::InputSpec;
    use crate::recurrent::{Gru, Lstm};
    use crate::train::softmax;

    const LOGITS: [f32; 5] = [1.0, 2.0, 0.5, -1.0, 1.5];

    fn softmax_of(l: &[f32]) -> Vec<f32> {
        softmax(&Tensor::from_vec(&[l.len()], l.to_vec()).unwrap())
            .unwrap()
            .into_vec()
    }

    #[test]
    fn frequencies_at_t1_match_softmax() {
        // 10,000 draws; each frequency within 0.015 of its probability
        // (about 3 standard deviations for p near 0.5).
        let p = softmax_of(&LOGITS);
        let mut rng = Rng::new(2024);
        let n = 10_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[sample_logits(&LOGITS, Strategy::Temperature(1.0), &mut rng).unwrap()] += 1;
        }
        for (c, p) in counts.iter().zip(&p) {
            let f = *c as f32 / n as f32;
            assert!((f - p).abs() < 0.015, "freq {f} vs p {p} ({counts:?})");
        }
        // Same through the probabilities path.
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[sample_probs(&p, Strategy::Temperature(1.0), &mut rng).unwrap()] += 1;
        }
        for (c, p) in counts.iter().zip(&p) {
            assert!((*c as f32 / n as f32 - p).abs() < 0.015, "{counts:?}");
        }
    }

    #[test]
    fn keras_reweighting_equals_softmax_over_t() {
        let p = softmax_of(&LOGITS);
        for t in [0.2f32, 0.5, 1.0, 1.7] {
            let a = probs_distribution(&p, Strategy::Temperature(t)).unwrap();
            // Keras: exp(log(p)/T) normalised, computed here directly.
            let w: Vec<f64> = p
                .iter()
                .map(|&v| ((v as f64).ln() / t as f64).exp())
                .collect();
            let s: f64 = w.iter().sum();
            let b = logits_distribution(&LOGITS, Strategy::Temperature(t)).unwrap();
            for i in 0..5 {
                assert!((a[i] - w[i] / s).abs() < 1e-6, "T={t}");
                assert!((b[i] - w[i] / s).abs() < 1e-6, "T={t}");
            }
        }
        // A zero probability is never drawn.
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let i = sample_probs(&[0.5, 0.0, 0.5], Strategy::Temperature(2.0), &mut rng).unwrap();
            assert_ne!(i, 1);
        }
    }

    #[test]
    fn tiny_temperature_and_greedy_give_argmax() {
        let mut rng = Rng::new(5);
        for _ in 0..2000 {
            assert_eq!(
                sample_logits(&LOGITS, Strategy::Temperature(1e-6), &mut rng).unwrap(),
                1
            );
            let p = softmax_of(&LOGITS);
            assert_eq!(
                sample_probs(&p, Strategy::Temperature(1e-6), &mut rng).unwrap(),
                1
            );
        }
        assert_eq!(greedy(&LOGITS).unwrap(), 1);
        assert_eq!(greedy(&[3.0, 3.0, 1.0]).unwrap(), 0);
        let mut rng2 = Rng::new(5);
        assert_eq!(
            sample_logits(&LOGITS, Strategy::Greedy, &mut rng2).unwrap(),
            1
        );
        // Greedy draws nothing from the generator.
        assert_eq!(rng2, Rng::new(5));
    }

    #[test]
    fn top_k_stays_in_top_k() {
        let mut rng = Rng::new(9);
        // Top 2 of LOGITS are indices 1 (2.0) and 4 (1.5).
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            let i = sample_logits(&LOGITS, Strategy::top_k(2, 1.0).unwrap(), &mut rng).unwrap();
            seen[i] += 1;
        }
        assert_eq!(seen[0] + seen[2] + seen[3], 0, "{seen:?}");
        // Renormalised over the two: p(1) = 1 / (1 + e^-0.5) ≈ 0.6225.
        let f = seen[1] as f64 / 5000.0;
        assert!((f - 1.0 / (1.0 + (-0.5f64).exp())).abs() < 0.02, "{f}");
        // k = 1 is greedy; k >= n is plain temperature sampling.
        for _ in 0..200 {
            assert_eq!(
                sample_logits(&LOGITS, Strategy::top_k(1, 3.0).unwrap(), &mut rng).unwrap(),
                1
            );
        }
        let a = logits_distribution(&LOGITS, Strategy::top_k(9, 0.7).unwrap()).unwrap();
        let b = logits_distribution(&LOGITS, Strategy::Temperature(0.7)).unwrap();
        assert_eq!(a, b);
        // Ties at the boundary: exactly k candidates, lower index first.
        let d = logits_distribution(&[1.0, 1.0, 1.0], Strategy::top_k(2, 1.0).unwrap()).unwrap();
        assert_eq!(d, vec![0.5, 0.5, 0.0]);
        // Random rows: never outside the top k.
        let mut r = Rng::new(11);
        for _ in 0..300 {
            let row: Vec<f32> = (0..10).map(|_| r.normal()).collect();
            let mut sorted = row.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let i = sample_logits(&row, Strategy::top_k(3, 1.5).unwrap(), &mut r).unwrap();
            assert!(row[i] >= sorted[2]);
        }
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let mut rng = Rng::new(1);
        for t in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(Strategy::temperature(t).is_err(), "{t}");
            assert!(sample_logits(&LOGITS, Strategy::Temperature(t), &mut rng).is_err());
        }
        let e = Strategy::temperature(0.0).unwrap_err().to_string();
        assert!(e.contains("temperature"), "{e}");
        assert!(Strategy::top_k(0, 1.0).is_err());
        assert!(Strategy::from_options(false, 1.0, Some(0)).is_err());
        assert_eq!(
            Strategy::from_options(true, -5.0, None).unwrap(),
            Strategy::Greedy
        );
        assert!(sample_logits(&[], Strategy::Temperature(1.0), &mut rng).is_err());
        assert!(sample_logits(&[1.0, f32::NAN], Strategy::Temperature(1.0), &mut rng).is_err());
        assert!(greedy(&[1.0, f32::NAN]).is_err());
        assert!(sample_probs(&[0.5, -0.1], Strategy::Temperature(1.0), &mut rng).is_err());
        assert!(sample_probs(&[0.0, 0.0], Strategy::Temperature(1.0), &mut rng).is_err());
        // -inf logits are masked tokens.
        for _ in 0..100 {
            let i = sample_logits(
                &[f32::NEG_INFINITY, 0.0, 0.0],
                Strategy::Temperature(1.0),
                &mut rng,
            )
            .unwrap();
            assert_ne!(i, 0);
        }
    }

    fn char_model(v: usize, seed: u64) -> Sequential {
        let mut rng = Rng::new(seed);
        let mut m = Sequential::new(
            "char_rnn",
            InputSpec {
                shape: vec![None],
                integer: true,
            },
        );
        let emb = EmbeddingConfig::new(v, 6).torch_default();
        m.add(Box::new(
            Embedding::new("embedding_1", emb, &mut rng).unwrap(),
        ))
        .unwrap();
        m.add(Box::new(
            Lstm::new(6, 10)
                .return_sequences(true)
                .name("lstm_1")
                .seed(seed + 1)
                .build()
                .unwrap(),
        ))
        .unwrap();
        m.add(Box::new(
            Gru::new(10, 8)
                .return_sequences(true)
                .name("gru_1")
                .seed(seed + 2)
                .build()
                .unwrap(),
        ))
        .unwrap();
        let dense = Dense::new("dense_1", 8, DenseConfig::new(v), &mut rng).unwrap();
        m.add(Box::new(TimeDistributed::new(
            "time_distributed_1",
            Box::new(dense),
        )))
        .unwrap();
        m
    }

    const TEXT: &str = "the cat sat on the mat, then the rat ran.";

    #[test]
    fn stepwise_state_matches_whole_sequence() {
        let vocab = CharVocab::from_text(TEXT).unwrap();
        let v = vocab.len();
        let ids = vocab.encode(TEXT).unwrap();
        // Reference: the whole text at once through a fresh, non-stateful model.
        let mut fresh = char_model(v, 7);
        let x = Tensor::from_vec(&[1, ids.len()], ids.iter().map(|&i| i as f32).collect()).unwrap();
        let full = fresh.forward(x, false).unwrap();
        assert_eq!(full.shape(), &[1, ids.len(), v]);

        let mut gen = Generator::new(char_model(v, 7), vocab.clone(), Strategy::Greedy, 0).unwrap();
        let first: String = TEXT.chars().take(1).collect();
        gen.prime(&first).unwrap();
        let mut worst = 0.0f32;
        for (t, c) in TEXT.chars().enumerate() {
            if t > 0 {
                gen.feed(&c.to_string()).unwrap();
            }
            let row = &full.data()[t * v..(t + 1) * v];
            let got = gen.next_scores().unwrap();
            for (a, b) in got.iter().zip(row) {
                worst = worst.max((a - b).abs());
            }
        }
        assert!(worst < 1e-5, "worst difference {worst}");

        // Priming with a longer text in one call gives the same last row, and
        // priming again starts from a cleared state.
        gen.prime(TEXT).unwrap();
        let row = full.data()[(ids.len() - 1) * v..].to_vec();
        let got = gen.next_scores().unwrap().to_vec();
        assert!(got.iter().zip(&row).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn greedy_stream_matches_recomputing_from_scratch() {
        let vocab = CharVocab::from_text(TEXT).unwrap();
        let v = vocab.len();
        let prime = "the ";
        let mut gen = Generator::new(char_model(v, 3), vocab.clone(), Strategy::Greedy, 0).unwrap();
        gen.prime(prime).unwrap();
        let streamed: String = gen.by_ref().take(15).collect::<Result<_>>().unwrap();
        let model = gen.into_model();
        assert_eq!(model.output_shape().unwrap().len(), 3);

        let mut fresh = char_model(v, 3);
        let mut text = prime.to_string();
        for _ in 0..15 {
            let ids = vocab.encode(&text).unwrap();
            let n = ids.len();
            let x = Tensor::from_vec(&[1, n], ids.iter().map(|&i| i as f32).collect()).unwrap();
            let y = fresh.forward(x, false).unwrap();
            let next = greedy(&y.data()[(n - 1) * v..]).unwrap();
            text.push(vocab.char_of(next).unwrap());
        }
        assert_eq!(format!("{prime}{streamed}"), text);
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_borrowing_works() {
        let vocab = CharVocab::from_text(TEXT).unwrap();
        let v = vocab.len();
        let run = |seed| {
            let mut model = char_model(v, 5);
            let mut g = Generator::new(&mut model, vocab.clone(), Strategy::Temperature(1.0), seed)
                .unwrap();
            g.prime("the").unwrap();
            g.generate(30).unwrap()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn prime_and_model_errors() {
        let vocab = CharVocab::from_text(TEXT).unwrap();
        let v = vocab.len();
        let mut gen = Generator::new(char_model(v, 1), vocab.clone(), Strategy::Greedy, 0).unwrap();
        // Before priming.
        assert!(gen.next().unwrap().is_err());
        let e = gen.prime("the Zoo").unwrap_err().to_string();
        assert!(e.contains("prime text"), "{e}");
        assert!(e.contains("'Z'") && e.contains("position 4"), "{e}");
        assert!(gen.prime("").is_err());

        // Vocabulary size different from the model's output.
        let small = CharVocab::from_text("ab").unwrap();
        let e = Generator::new(char_model(v, 1), small, Strategy::Greedy, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vocabulary has 2"), "{e}");
        // A fixed-length input.
        let mut fixed = Sequential::new(
            "fixed",
            InputSpec {
                shape: vec![Some(10)],
                integer: true,
            },
        );
        let mut rng = Rng::new(0);
        fixed
            .add(Box::new(
                Embedding::new("e", EmbeddingConfig::new(v, 4), &mut rng).unwrap(),
            ))
            .unwrap();
        assert!(Generator::new(fixed, vocab, Strategy::Greedy, 0).is_err());
    }
}
