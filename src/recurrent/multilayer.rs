//! PyTorch's multi-layer recurrent module (`nn.RNN/LSTM/GRU` with `num_layers`,
//! `bidirectional` and `dropout`): whole layers run one after another, each
//! direction's output concatenated, dropout between layers in training.

use super::bidirectional::{concat_features, split_features, Bidirectional, MergeMode};
use super::builder::RnnBuilder;
use super::config::CellConfig;
use super::rnn::{CellState, Rnn, RnnOptions};
use crate::params::Params;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};

#[derive(Debug)]
enum Stage {
    Uni(Box<Rnn>),
    Bi(Box<Bidirectional>),
}

/// What [`MultiLayerRnn::forward_full`] returns, in PyTorch's shapes.
#[derive(Debug, Clone)]
pub struct MultiLayerOutput {
    /// `[B, T, D*H]`: the last layer's outputs, directions concatenated.
    pub output: Tensor,
    /// `[L*D, B, H]`: final hidden state of every layer and direction.
    pub h_n: Tensor,
    /// `[L*D, B, H]`: final cell states (LSTM only).
    pub c_n: Option<Tensor>,
}

/// A stack of whole recurrent layers, as PyTorch's `num_layers`.
#[derive(Debug)]
pub struct MultiLayerRnn {
    name: String,
    stages: Vec<Stage>,
    units: usize,
    has_c: bool,
    dropout: f32,
    rng: Rng,
    /// Dropout masks applied to each stage's output (all but the last), last forward.
    masks: Vec<Vec<f32>>,
}

fn states_of(t: Option<&Tensor>, index: usize, batch: usize, units: usize) -> Option<Tensor> {
    t.and_then(|t| {
        Tensor::from_vec(
            &[batch, units],
            t.data()[index * batch * units..][..batch * units].to_vec(),
        )
        .ok()
    })
}

impl MultiLayerRnn {
    /// `config` describes the first layer's cell (its input size is the module's
    /// input size); deeper layers take `D*H` features. `dropout` applies between layers.
    pub fn new(
        name: &str,
        config: CellConfig,
        num_layers: usize,
        bidirectional: bool,
        dropout: f32,
        seed: u64,
    ) -> Result<Self> {
        if num_layers == 0 {
            return Err(Error::invalid(
                "num_layers",
                format!("{name}: needs at least 1 layer, got 0"),
            ));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(Error::invalid(
                "dropout",
                format!("{name}: must be in [0, 1), got {dropout}"),
            ));
        }
        let dirs = if bidirectional { 2 } else { 1 };
        let mut rng = Rng::new(seed);
        let mut stages = Vec::with_capacity(num_layers);
        for l in 0..num_layers {
            let mut c = config.clone();
            if l > 0 {
                c.input_size = dirs * config.units;
            }
            let options = RnnOptions {
                return_sequences: true,
                ..RnnOptions::default()
            };
            let suffix = vec![format!("_l{l}")];
            let builder = RnnBuilder {
                configs: vec![c],
                options,
                name: format!("{name}_l{l}"),
                seed: rng.next_u64(),
            };
            stages.push(if bidirectional {
                Stage::Bi(Box::new(Bidirectional::with_suffixes(
                    &builder.name.clone(),
                    builder,
                    MergeMode::Concat,
                    &suffix,
                )?))
            } else {
                Stage::Uni(Box::new(Rnn::with_suffixes(
                    &builder.name,
                    &builder.configs,
                    &suffix,
                    builder.options,
                    builder.seed,
                )?))
            });
        }
        Ok(MultiLayerRnn {
            name: name.to_string(),
            stages,
            units: config.units,
            has_c: config.kind == super::CellKind::Lstm,
            dropout,
            rng: rng.fork(),
            masks: Vec::new(),
        })
    }

    fn dirs(&self) -> usize {
        match self.stages[0] {
            Stage::Uni(_) => 1,
            Stage::Bi(_) => 2,
        }
    }

    /// Every layer's parameters (forward direction before reverse), in PyTorch's order.
    pub fn params(&self) -> Vec<&Params> {
        use crate::layers::Layer;
        self.stages
            .iter()
            .flat_map(|s| match s {
                Stage::Uni(r) => r.params(),
                Stage::Bi(b) => b.params(),
            })
            .collect()
    }

    /// Every layer's parameters, mutable.
    pub fn params_mut(&mut self) -> Vec<&mut Params> {
        use crate::layers::Layer;
        self.stages
            .iter_mut()
            .flat_map(|s| match s {
                Stage::Uni(r) => r.params_mut(),
                Stage::Bi(b) => b.params_mut(),
            })
            .collect()
    }

    /// Runs all layers. `h0`/`c0` are `[L*D, B, H]` (zeros when `None`).
    pub fn forward_full(
        &mut self,
        x: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        training: bool,
    ) -> Result<MultiLayerOutput> {
        x.expect_rank(3, &format!("{} input [batch, time, features]", self.name))?;
        let (batch, dirs, units) = (x.shape()[0], self.dirs(), self.units);
        let want = [self.stages.len() * dirs, batch, units];
        for (what, t) in [("h0", h0), ("c0", c0)] {
            if let Some(t) = t {
                if t.shape() != want {
                    return Err(Error::shape(
                        format!("{} {what}", self.name),
                        want,
                        t.shape(),
                    ));
                }
            }
        }
        let has_c = self.has_c;
        let state = |idx: usize| CellState {
            h: states_of(h0, idx, batch, units).unwrap_or_else(|| Tensor::zeros(&[batch, units])),
            c: has_c.then(|| {
                states_of(c0, idx, batch, units).unwrap_or_else(|| Tensor::zeros(&[batch, units]))
            }),
        };
        let mut h_n = Vec::with_capacity(want.iter().product());
        let mut c_n = Vec::new();
        let mut input = x.clone();
        self.masks.clear();
        let last = self.stages.len() - 1;
        for l in 0..self.stages.len() {
            let (out, states) = match &mut self.stages[l] {
                Stage::Uni(r) => {
                    let init = [state(l)];
                    let o = r.forward_seq(&input, None, Some(&init), training)?;
                    (o.output, o.states)
                }
                Stage::Bi(b) => {
                    let init_f = [state(2 * l)];
                    let init_b = [state(2 * l + 1)];
                    let o = b.forward_pair(&input, None, Some((&init_f, &init_b)), training)?;
                    let mut shape = o.forward.shape().to_vec();
                    shape[2] = 2 * units;
                    let merged = Tensor::from_vec(
                        &shape,
                        concat_features(o.forward.data(), o.backward.data(), units),
                    )?;
                    let mut states = o.forward_states;
                    states.extend(o.backward_states);
                    (merged, states)
                }
            };
            for s in &states {
                h_n.extend_from_slice(s.h.data());
                if let Some(c) = &s.c {
                    c_n.extend_from_slice(c.data());
                }
            }
            input = out;
            if l < last && training && self.dropout > 0.0 {
                let keep = 1.0 - self.dropout;
                let mask: Vec<f32> = (0..input.len())
                    .map(|_| {
                        if self.rng.next_f32() < keep {
                            1.0 / keep
                        } else {
                            0.0
                        }
                    })
                    .collect();
                input
                    .data_mut()
                    .iter_mut()
                    .zip(&mask)
                    .for_each(|(v, m)| *v *= m);
                self.masks.push(mask);
            }
        }
        Ok(MultiLayerOutput {
            output: input,
            h_n: Tensor::from_vec(&want, h_n)?,
            c_n: if self.has_c {
                Some(Tensor::from_vec(&want, c_n)?)
            } else {
                None
            },
        })
    }

    /// Backward pass of the last training [`MultiLayerRnn::forward_full`]; returns
    /// `(dx, dh0, dc0)`.
    pub fn backward_full(
        &mut self,
        d_output: &Tensor,
        d_hn: Option<&Tensor>,
        d_cn: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let dirs = self.dirs();
        let units = self.units;
        let batch = d_output.shape().first().copied().unwrap_or(0);
        let n_states = self.stages.len() * dirs;
        let has_c = self.has_c;
        let grad_state = |idx: usize| CellState {
            h: states_of(d_hn, idx, batch, units).unwrap_or_else(|| Tensor::zeros(&[batch, units])),
            c: has_c.then(|| {
                states_of(d_cn, idx, batch, units).unwrap_or_else(|| Tensor::zeros(&[batch, units]))
            }),
        };
        let mut dh0 = vec![0.0; n_states * batch * units];
        let mut dc0 = vec![0.0; n_states * batch * units];
        let mut d = d_output.clone();
        for l in (0..self.stages.len()).rev() {
            if l < self.stages.len() - 1 {
                if let Some(mask) = self.masks.get(l) {
                    d.data_mut().iter_mut().zip(mask).for_each(|(g, m)| *g *= m);
                }
            }
            let (dx, inits) = match &mut self.stages[l] {
                Stage::Uni(r) => {
                    let g = r.backward_seq(&d, Some(&[grad_state(l)]))?;
                    (g.dx, g.d_initial)
                }
                Stage::Bi(b) => {
                    let (df, db) = split_features(d.data(), units);
                    let mut shape = d.shape().to_vec();
                    shape[2] = units;
                    let (df, db) = (Tensor::from_vec(&shape, df)?, Tensor::from_vec(&shape, db)?);
                    let (sf, sb) = ([grad_state(2 * l)], [grad_state(2 * l + 1)]);
                    let (dx, mut gf, gb) = b.backward_pair(&df, &db, Some((&sf, &sb)))?;
                    gf.extend(gb);
                    (dx, gf)
                }
            };
            for (j, s) in inits.iter().enumerate() {
                let idx = l * dirs + j;
                dh0[idx * batch * units..][..batch * units].copy_from_slice(s.h.data());
                if let Some(c) = &s.c {
                    dc0[idx * batch * units..][..batch * units].copy_from_slice(c.data());
                }
            }
            d = dx;
        }
        let shape = [n_states, batch, units];
        Ok((
            d,
            Tensor::from_vec(&shape, dh0)?,
            if self.has_c {
                Some(Tensor::from_vec(&shape, dc0)?)
            } else {
                None
            },
        ))
    }
}
