//! Keras's `Bidirectional` wrapper: a forward layer and a backward one
//! (`go_backwards`) whose outputs are re-aligned in time and merged.
//! The backward layer's weights carry PyTorch's `_reverse` suffix; outputs and
//! final states are ordered forward first, as PyTorch orders them.

use super::builder::RnnBuilder;
use super::rnn::{CellState, Rnn};
use crate::layers::{Flow, Layer, Shape};
use crate::params::Params;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// How the two directions' outputs are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    /// `[forward, backward]` along the features (Keras's default, PyTorch's layout).
    Concat,
    /// forward + backward.
    Sum,
    /// forward * backward.
    Mul,
    /// (forward + backward) / 2.
    Ave,
    /// Both outputs returned separately ([`Bidirectional::forward_pair`] only).
    None,
}

impl MergeMode {
    /// Parses a Keras merge_mode name.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "concat" => MergeMode::Concat,
            "sum" => MergeMode::Sum,
            "mul" => MergeMode::Mul,
            "ave" => MergeMode::Ave,
            "none" => MergeMode::None,
            _ => {
                return Err(Error::invalid(
                    "merge_mode",
                    format!("unknown merge_mode {name:?}; known: concat, sum, mul, ave, none"),
                ))
            }
        })
    }
}

/// Both directions' outputs, aligned in time, and their final states.
#[derive(Debug, Clone)]
pub struct PairOutput {
    /// The forward layer's output.
    pub forward: Tensor,
    /// The backward layer's output, re-aligned so step t is input step t.
    pub backward: Tensor,
    /// Final states of the forward layer's cells.
    pub forward_states: Vec<CellState>,
    /// Final states of the backward layer's cells.
    pub backward_states: Vec<CellState>,
}

/// A bidirectional recurrent layer.
#[derive(Debug)]
pub struct Bidirectional {
    name: String,
    forward: Rnn,
    backward: Rnn,
    merge: MergeMode,
    /// Outputs kept for the backward pass of `mul`.
    cached: Option<(Tensor, Tensor)>,
}

/// Reverses the time axis of `[B, T, F]`.
pub(crate) fn reverse_time(x: &Tensor) -> Tensor {
    let s = x.shape();
    if s.len() != 3 {
        return x.clone();
    }
    let (b, t, f) = (s[0], s[1], s[2]);
    let mut out = vec![0.0; x.len()];
    for bi in 0..b {
        for ti in 0..t {
            out[(bi * t + ti) * f..][..f]
                .copy_from_slice(&x.data()[(bi * t + (t - 1 - ti)) * f..][..f]);
        }
    }
    Tensor::from_vec(s, out).unwrap_or_default()
}

/// Interleaves rows of width `u` from `a` and `b`: `[a_row, b_row]` per row.
pub(crate) fn concat_features(a: &[f32], b: &[f32], u: usize) -> Vec<f32> {
    a.chunks_exact(u)
        .zip(b.chunks_exact(u))
        .flat_map(|(x, y)| x.iter().chain(y).copied())
        .collect()
}

/// Inverse of [`concat_features`].
pub(crate) fn split_features(d: &[f32], u: usize) -> (Vec<f32>, Vec<f32>) {
    let mut a = Vec::with_capacity(d.len() / 2);
    let mut b = Vec::with_capacity(d.len() / 2);
    for row in d.chunks_exact(2 * u) {
        a.extend_from_slice(&row[..u]);
        b.extend_from_slice(&row[u..]);
    }
    (a, b)
}

impl Bidirectional {
    /// Wraps the layer `builder` describes; the backward copy gets its own
    /// weights (drawn after the forward ones) and the opposite direction.
    pub fn new(builder: RnnBuilder, merge: MergeMode) -> Result<Self> {
        let name = format!("bidirectional_{}", builder.name);
        Self::named(&name, builder, merge)
    }

    /// Like [`Bidirectional::new`] with an explicit name.
    pub fn named(name: &str, builder: RnnBuilder, merge: MergeMode) -> Result<Self> {
        let n = builder.configs.len();
        let fwd_suffix: Vec<String> = (0..n).map(|k| format!("_l{k}")).collect();
        Self::with_suffixes(name, builder, merge, &fwd_suffix)
    }

    /// Builds with explicit forward weight-name suffixes (the backward ones add `_reverse`).
    pub(crate) fn with_suffixes(
        name: &str,
        builder: RnnBuilder,
        merge: MergeMode,
        suffixes: &[String],
    ) -> Result<Self> {
        let rev_suffix: Vec<String> = suffixes.iter().map(|s| format!("{s}_reverse")).collect();
        let mut back_opts = builder.options.clone();
        back_opts.go_backwards = !back_opts.go_backwards;
        let forward = Rnn::with_suffixes(
            &builder.name,
            &builder.configs,
            suffixes,
            builder.options.clone(),
            builder.seed,
        )?;
        let backward = Rnn::with_suffixes(
            &format!("{}_reverse", builder.name),
            &builder.configs,
            &rev_suffix,
            back_opts,
            builder.seed ^ 0x5EED_0FBA_C4D1,
        )?;
        Ok(Bidirectional {
            name: name.to_string(),
            forward,
            backward,
            merge,
            cached: None,
        })
    }

    /// The forward-direction layer.
    pub fn forward_layer(&self) -> &Rnn {
        &self.forward
    }

    /// The backward-direction layer.
    pub fn backward_layer(&self) -> &Rnn {
        &self.backward
    }

    /// Both layers, mutable (to set weights or reseed dropout).
    pub fn layers_mut(&mut self) -> (&mut Rnn, &mut Rnn) {
        (&mut self.forward, &mut self.backward)
    }

    /// The merge mode.
    pub fn merge_mode(&self) -> MergeMode {
        self.merge
    }

    /// Units of the merged output.
    pub fn output_units(&self) -> usize {
        let u = self.forward.units();
        if self.merge == MergeMode::Concat {
            2 * u
        } else {
            u
        }
    }

    /// Runs both directions; `initial` is (forward states, backward states).
    pub fn forward_pair(
        &mut self,
        x: &Tensor,
        mask: Option<&Tensor>,
        initial: Option<(&[CellState], &[CellState])>,
        training: bool,
    ) -> Result<PairOutput> {
        let f = self
            .forward
            .forward_seq(x, mask, initial.map(|i| i.0), training)?;
        let b = self
            .backward
            .forward_seq(x, mask, initial.map(|i| i.1), training)?;
        let backward = if self.backward.options.return_sequences {
            reverse_time(&b.output)
        } else {
            b.output
        };
        Ok(PairOutput {
            forward: f.output,
            backward,
            forward_states: f.states,
            backward_states: b.states,
        })
    }

    /// Backward pass of [`Bidirectional::forward_pair`] given the gradients of the
    /// two aligned outputs and (optionally) of the final states. Returns dx and
    /// the initial-state gradients (forward, backward).
    pub fn backward_pair(
        &mut self,
        d_forward: &Tensor,
        d_backward: &Tensor,
        d_states: Option<(&[CellState], &[CellState])>,
    ) -> Result<(Tensor, Vec<CellState>, Vec<CellState>)> {
        let d_back_raw = if self.backward.options.return_sequences {
            reverse_time(d_backward)
        } else {
            d_backward.clone()
        };
        let gf = self
            .forward
            .backward_seq(d_forward, d_states.map(|d| d.0))?;
        let gb = self
            .backward
            .backward_seq(&d_back_raw, d_states.map(|d| d.1))?;
        let mut dx = gf.dx;
        dx.data_mut()
            .iter_mut()
            .zip(gb.dx.data())
            .for_each(|(a, b)| *a += b);
        Ok((dx, gf.d_initial, gb.d_initial))
    }

    /// Merges two aligned outputs.
    fn merge(&self, f: &Tensor, b: &Tensor) -> Result<Tensor> {
        let (fd, bd) = (f.data(), b.data());
        let data: Vec<f32> = match self.merge {
            MergeMode::Concat => concat_features(fd, bd, self.forward.units()),
            MergeMode::Sum => fd.iter().zip(bd).map(|(x, y)| x + y).collect(),
            MergeMode::Mul => fd.iter().zip(bd).map(|(x, y)| x * y).collect(),
            MergeMode::Ave => fd.iter().zip(bd).map(|(x, y)| 0.5 * (x + y)).collect(),
            MergeMode::None => {
                return Err(Error::invalid(
                    "merge_mode",
                    format!(
                        "{}: merge_mode none gives two outputs; use Bidirectional::forward_pair",
                        self.name
                    ),
                ))
            }
        };
        let mut shape = f.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = self.output_units();
        }
        Tensor::from_vec(&shape, data)
    }

    /// Splits a merged gradient into the two outputs' gradients.
    fn split(&self, d: &Tensor) -> Result<(Tensor, Tensor)> {
        let (f, b) = self.cached.as_ref().ok_or_else(|| {
            Error::invalid(
                "backward",
                format!(
                    "{}: backward called without a training forward pass",
                    self.name
                ),
            )
        })?;
        let mut want = f.shape().to_vec();
        if let Some(last) = want.last_mut() {
            *last = self.output_units();
        }
        if d.shape() != want.as_slice() {
            return Err(Error::shape(
                format!("{} output gradient", self.name),
                want,
                d.shape(),
            ));
        }
        let dd = d.data();
        let (df, db): (Vec<f32>, Vec<f32>) = match self.merge {
            MergeMode::Concat => split_features(dd, self.forward.units()),
            MergeMode::Sum => (dd.to_vec(), dd.to_vec()),
            MergeMode::Ave => (
                dd.iter().map(|v| 0.5 * v).collect(),
                dd.iter().map(|v| 0.5 * v).collect(),
            ),
            MergeMode::Mul => (
                dd.iter().zip(b.data()).map(|(g, y)| g * y).collect(),
                dd.iter().zip(f.data()).map(|(g, y)| g * y).collect(),
            ),
            MergeMode::None => {
                return Err(Error::invalid("merge_mode", "none has no merged gradient"))
            }
        };
        Ok((
            Tensor::from_vec(f.shape(), df)?,
            Tensor::from_vec(b.shape(), db)?,
        ))
    }
}

impl Layer for Bidirectional {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        "Bidirectional"
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        let mut s = self.forward.output_shape(input)?;
        if let Some(last) = s.last_mut() {
            *last = Some(self.output_units());
        }
        Ok(s)
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let out = self.forward_pair(&input.x, input.mask.as_ref(), None, training)?;
        let merged = self.merge(&out.forward, &out.backward)?;
        self.cached = training.then_some((out.forward, out.backward));
        let mask = if self.forward.options.return_sequences {
            input.mask
        } else {
            None
        };
        Ok(Flow { x: merged, mask })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let (df, db) = self.split(&d_output)?;
        self.cached = None;
        Ok(self.backward_pair(&df, &db, None)?.0)
    }

    fn set_input_grad_needed(&mut self, needed: bool) {
        self.forward.set_input_grad_needed(needed);
        self.backward.set_input_grad_needed(needed);
    }

    fn params(&self) -> Vec<&Params> {
        let mut p = self.forward.params();
        p.extend(self.backward.params());
        p
    }

    fn params_mut(&mut self) -> Vec<&mut Params> {
        let mut p = self.forward.params_mut();
        p.extend(self.backward.params_mut());
        p
    }

    fn reseed(&mut self, seed: u64) {
        self.forward.reseed(seed);
        self.backward.reseed(seed ^ 0x5EED_0FBA_C4D1);
    }

    fn set_stateful(&mut self, stateful: bool) {
        self.forward.set_stateful(stateful);
        self.backward.set_stateful(stateful);
    }

    fn reset_states(&mut self) {
        self.forward.reset_states();
        self.backward.reset_states();
    }
}
