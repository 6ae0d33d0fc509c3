//! Non-recurrent layers and the [`Layer`] trait every layer implements.
//!
//! Each layer caches what its backward pass needs during `forward(.., training)`
//! and returns the input gradient from `backward`; parameter gradients are
//! *accumulated* into the layer's [`Params`] (call `zero_grad` between steps).
//!
//! ```
//! use gated::layers::{ActivationLayer, Dense, DenseConfig, Embedding, EmbeddingConfig, Flow, Layer};
//! use gated::{Rng, Tensor};
//!
//! # fn main() -> gated::Result<()> {
//! let mut rng = Rng::new(42);
//! let mut emb = Embedding::new("embedding_1", EmbeddingConfig::new(100, 8).mask_zero(true), &mut rng)?;
//! let mut dense = Dense::new("dense_1", 8, DenseConfig::new(5), &mut rng)?;
//! let mut softmax = ActivationLayer::from_name("activation_1", "softmax")?;
//!
//! // Two sequences of three token ids, the second padded with 0.
//! let ids = Tensor::from_vec(&[2, 3], vec![4.0, 17.0, 9.0, 0.0, 3.0, 3.0])?;
//! let h = emb.forward(Flow::new(ids), true)?;
//! assert_eq!(h.mask.as_ref().map(|m| m.data().to_vec()), Some(vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0]));
//! let p = softmax.forward(dense.forward(h, true)?, true)?;
//! assert_eq!(p.x.shape(), &[2, 3, 5]);
//!
//! // Backward: d(loss)/d(probabilities) in, parameter gradients accumulated.
//! let d = softmax.backward(Tensor::from_vec(&[2, 3, 5], vec![0.1; 30])?)?;
//! let d = dense.backward(d)?;
//! emb.backward(d)?;
//! assert_eq!(dense.params()[0].len(), 8 * 5 + 5);
//! # Ok(())
//! # }
//! ```

use crate::params::Params;
use crate::tensor::Tensor;
use crate::Result;

/// Data flowing between layers: a tensor and, for sequences, an optional
/// per-step mask `[batch, time]` of 0.0/1.0 (Keras's `mask_zero` / `Masking`).
#[derive(Debug, Clone, Default)]
pub struct Flow {
    /// The values. Integer inputs (token ids) are carried as exact f32 values.
    pub x: Tensor,
    /// 1.0 where a step is real, 0.0 where it is padding.
    pub mask: Option<Tensor>,
}

impl Flow {
    /// A flow without a mask.
    pub fn new(x: Tensor) -> Self {
        Flow { x, mask: None }
    }
}

/// Token ids and the small table their rows come from. An [`Embedding`] whose
/// vocabulary is well below a batch's token count offers them (see
/// [`Layer::token_rows`]) so that a recurrent layer after it can project each
/// table row once instead of every token's copy of it: a character model's 65
/// symbols against 3,200 tokens a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRows {
    /// One id per input row, in the input's (batch-first) order; each `< vocab`.
    pub ids: Vec<usize>,
    /// The table `[vocab, dim]`, row-major.
    pub table: Vec<f32>,
    /// Row length of the table.
    pub dim: usize,
}

impl TokenRows {
    /// Rows in the table.
    pub fn vocab(&self) -> usize {
        self.table.len() / self.dim.max(1)
    }

    /// Whether `x`, rows of `dim` values, is exactly the table rows the ids
    /// pick: a layer checks this before it trusts the rows (one comparison
    /// per input value, against the products it replaces).
    pub fn describes(&self, x: &[f32], dim: usize) -> bool {
        let vocab = self.vocab();
        self.dim == dim
            && dim > 0
            && vocab > 0
            && self.table.len() == vocab * dim
            && x.len() == self.ids.len() * dim
            && self
                .ids
                .iter()
                .zip(x.chunks_exact(dim))
                .all(|(&id, row)| id < vocab && self.table[id * dim..(id + 1) * dim] == *row)
    }
}

/// A shape with `None` for a free dimension (the batch, or a variable length).
pub type Shape = Vec<Option<usize>>;

/// A layer with an explicit forward and backward pass.
pub trait Layer: Send + std::fmt::Debug {
    /// The instance name, e.g. `lstm_1`.
    fn name(&self) -> &str;
    /// The Keras class name printed by `summary()`, e.g. `LSTM`.
    fn type_name(&self) -> &'static str;
    /// Output shape (batch dimension included, as `None`) for an input shape; errors
    /// name both shapes when they are incompatible.
    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape>;
    /// Forward pass. In training mode it caches what `backward` needs and applies dropout.
    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow>;
    /// Backward pass for the last training forward: takes d(loss)/d(output),
    /// accumulates parameter gradients and returns d(loss)/d(input).
    fn backward(&mut self, d_output: Tensor) -> Result<Tensor>;
    /// The layer's parameters (empty for layers without any).
    fn params(&self) -> Vec<&Params> {
        Vec::new()
    }
    /// The layer's parameters, mutable.
    fn params_mut(&mut self) -> Vec<&mut Params> {
        Vec::new()
    }
    /// Clears any state kept between calls (stateful RNNs).
    fn reset_states(&mut self) {}
    /// Makes recurrent layers carry their final state into the next call
    /// (truncated BPTT, step-by-step generation); other layers ignore it.
    fn set_stateful(&mut self, _stateful: bool) {}
    /// Restarts the layer's random generator (dropout masks) from `seed`.
    /// The fit loop calls it at the start of every epoch with a seed derived
    /// from the run's saved state, so an interrupted and resumed run draws the
    /// same masks as an uninterrupted one. Layers without randomness ignore it.
    fn reseed(&mut self, _seed: u64) {}
    /// Tells the layer whether its `backward` must return d(loss)/d(input).
    /// A model passes `false` to layers with no trainable layer before them
    /// (their input is data), which may then return zeros and skip the work.
    fn set_input_grad_needed(&mut self, _needed: bool) {}
    /// When this layer's output rows are rows of a small table picked by the
    /// ids in `input` (an [`Embedding`] whose vocabulary is at most a quarter
    /// of the ids): the ids and the table. `None` otherwise, and for input
    /// that `forward` would reject.
    fn token_rows(&self, _input: &Tensor) -> Option<TokenRows> {
        None
    }
    /// Whether [`Layer::forward_tokens`] can make use of token rows.
    fn takes_token_rows(&self) -> bool {
        false
    }
    /// Forward pass given `tokens`, which should describe the rows of
    /// `input.x` ([`TokenRows::describes`]; a layer checks it and runs its
    /// plain pass when they do not). A layer that uses them hands back, after
    /// its `backward` (which then returns an empty tensor), the gradient of
    /// the table instead of its input's: see [`Layer::take_table_grad`]. The
    /// default ignores them.
    fn forward_tokens(&mut self, input: Flow, _tokens: TokenRows, training: bool) -> Result<Flow> {
        self.forward(input, training)
    }
    /// After `backward` of a pass that used token rows: d(loss)/d(table)
    /// `[vocab, dim]`, once. `None` otherwise.
    fn take_table_grad(&mut self) -> Option<Tensor> {
        None
    }
    /// Backward pass from d(loss)/d(table), the gradient the next layer's
    /// [`Layer::take_table_grad`] gave instead of d(loss)/d(output), for the
    /// layer whose [`Layer::token_rows`] it used.
    fn backward_table(&mut self, _d_table: Tensor) -> Result<Tensor> {
        Err(crate::Error::invalid(
            "backward",
            format!(
                "layer {} ({}) has no token table to take a gradient",
                self.name(),
                self.type_name()
            ),
        ))
    }
    /// True when no trainable gradient of the layer is NaN or infinite,
    /// provided the gradients were zero before the last backward pass (as in
    /// [`train_step`](crate::train::step::train_step)): a layer may then
    /// check only what that pass wrote (an [`Embedding`] checks its rows as
    /// the scatter writes them, with no second pass over a large table).
    fn grads_finite(&self) -> bool {
        self.params().iter().all(|p| p.grads_finite())
    }
    /// For an `Activation` layer, its function; `None` for every other layer.
    /// Lets a model fuse a final softmax or sigmoid into the loss.
    fn activation_kind(&self) -> Option<ActivationKind> {
        None
    }
}

pub mod activation;
pub mod dense;
pub mod dropout;
pub mod embedding;
pub mod masking;
pub mod time_distributed;

#[cfg(test)]
mod testutil;

pub use activation::{ActivationKind, ActivationLayer};
pub use dense::{Dense, DenseConfig};
pub use dropout::{Dropout, DropoutConfig};
pub use embedding::{Embedding, EmbeddingConfig};
pub use masking::Masking;
pub use time_distributed::TimeDistributed;

/// The error `backward` returns when no training forward pass has been cached.
pub(crate) fn no_cache(name: &str, type_name: &str) -> crate::Error {
    crate::Error::invalid(
        "backward",
        format!(
            "layer {name} ({type_name}): backward called without a preceding forward pass in training mode"
        ),
    )
}

/// Errors unless `d_output` has exactly the shape of the cached output.
pub(crate) fn check_d_output(
    name: &str,
    type_name: &str,
    expected: &[usize],
    d_output: &Tensor,
) -> Result<()> {
    if d_output.shape() != expected {
        return Err(crate::Error::shape(
            format!("layer {name} ({type_name}) backward: d_output"),
            expected,
            d_output.shape(),
        ));
    }
    Ok(())
}

/// Formats a multi-index such as `[1, 3]` for error messages.
pub(crate) fn format_index(flat: usize, shape: &[usize]) -> String {
    let mut idx = vec![0usize; shape.len()];
    let mut rest = flat;
    for (d, &n) in shape.iter().enumerate().rev() {
        let n = n.max(1);
        idx[d] = rest % n;
        rest /= n;
    }
    let parts: Vec<String> = idx.iter().map(|i| i.to_string()).collect();
    format!("[{}]", parts.join(", "))
}
