//! The LSTM cell (Hochreiter & Schmidhuber, 1997, with the forget gate of Gers et
//! al., 2000), gate blocks in PyTorch's order i, f, g, o:
//!
//! ```text
//! i = σ(x W_ii + h W_hi + b_i)    f = σ(x W_if + h W_hf + b_f)
//! g = act(x W_ig + h W_hg + b_g)  o = σ(x W_io + h W_ho + b_o)
//! c = f * c_prev + i * g          h = o * act(c)
//! ```
//! The cell state c is the additive long-term memory path that carries gradients
//! across many steps; σ is the `recurrent_activation`.

use super::cell::{Cell, CellCore, StepBackward, StepForward};
use super::config::{CellConfig, CellKind};
use crate::rng::Rng;
use crate::{Error, Result};

/// An LSTM cell (Keras `LSTMCell`).
#[derive(Debug, Clone)]
pub struct LstmCell {
    core: CellCore,
}

impl LstmCell {
    /// Builds the cell; `suffix` completes the PyTorch weight names (`_l0`).
    pub fn new(config: CellConfig, suffix: &str, rng: &mut Rng) -> Result<Self> {
        if config.kind != CellKind::Lstm {
            return Err(Error::invalid(
                "cell",
                format!("LstmCell built from a {:?} config", config.kind),
            ));
        }
        Ok(LstmCell {
            core: CellCore::new(config, suffix, rng)?,
        })
    }
}

impl LstmCell {
    /// Gate gradients of one backward step into `io.dxw`, and `io.dc_prev`.
    /// `da` and `dr` are the derivatives of the activation and the recurrent
    /// activation expressed through their outputs.
    #[inline(always)]
    fn gate_grads(
        &self,
        io: &mut StepBackward<'_>,
        da: impl Fn(f32) -> f32,
        dr: impl Fn(f32) -> f32,
    ) {
        let hu = self.core.config.units;
        let (gw, cw) = (4 * hu, 5 * hu);
        for b in 0..io.batch {
            let cache = &io.cache[b * cw..(b + 1) * cw];
            let (i, rest) = cache.split_at(hu);
            let (f, rest) = rest.split_at(hu);
            let (g, rest) = rest.split_at(hu);
            let (o, ac) = rest.split_at(hu);
            let d = &mut io.dxw[b * gw..(b + 1) * gw];
            let (di, rest) = d.split_at_mut(hu);
            let (df, rest) = rest.split_at_mut(hu);
            let (dg, d_o) = rest.split_at_mut(hu);
            let row = b * hu..(b + 1) * hu;
            let (dh, dc, c_prev) = (
                &io.dh[row.clone()],
                &io.dc[row.clone()],
                &io.c_prev[row.clone()],
            );
            let dc_prev = &mut io.dc_prev[row];
            for j in 0..hu {
                let dct = dc[j] + dh[j] * o[j] * da(ac[j]);
                di[j] = dct * g[j] * dr(i[j]);
                df[j] = dct * c_prev[j] * dr(f[j]);
                dg[j] = dct * i[j] * da(g[j]);
                d_o[j] = dh[j] * ac[j] * dr(o[j]);
                dc_prev[j] = dct * f[j];
            }
        }
    }
}

impl Cell for LstmCell {
    fn core(&self) -> &CellCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut CellCore {
        &mut self.core
    }
    fn state_count(&self) -> usize {
        2
    }
    /// Cached per row: i, f, g, o and act(c).
    fn cache_width(&self) -> usize {
        5 * self.core.config.units
    }
    fn separate_recurrent_grad(&self) -> bool {
        false
    }

    fn step(&self, io: StepForward<'_>) {
        let hu = self.core.config.units;
        let (act, ract) = (
            self.core.config.activation,
            self.core.config.recurrent_activation,
        );
        let (gw, cw) = (4 * hu, 5 * hu);
        // scratch [B, 4H] = h_rec W_hh^T; both biases were folded into xw.
        self.core
            .project_recurrent(io.h_rec, hu, io.batch, 0, gw, io.scratch, gw, false);
        for b in 0..io.batch {
            let pre = &io.scratch[b * gw..(b + 1) * gw];
            let xw = &io.xw[b * gw..(b + 1) * gw];
            let cache = &mut io.cache[b * cw..(b + 1) * cw];
            // Gates i, f, g, o into the cache, activated in place.
            let (gates, ac) = cache.split_at_mut(gw);
            for ((g, &p), &x) in gates.iter_mut().zip(pre).zip(xw) {
                *g = p + x;
            }
            ract.apply_slice(&mut gates[..2 * hu]);
            act.apply_slice(&mut gates[2 * hu..3 * hu]);
            ract.apply_slice(&mut gates[3 * hu..]);
            let row = b * hu..(b + 1) * hu;
            let (c_prev, c) = (&io.c_prev[row.clone()], &mut io.c[row.clone()]);
            let (i, rest) = gates.split_at(hu);
            let (f, rest) = rest.split_at(hu);
            let (g, o) = rest.split_at(hu);
            for j in 0..hu {
                c[j] = f[j] * c_prev[j] + i[j] * g[j];
            }
            ac.copy_from_slice(c);
            act.apply_slice(ac);
            let h = &mut io.h[row];
            for j in 0..hu {
                h[j] = o[j] * ac[j];
            }
        }
    }

    fn step_backward(&self, mut io: StepBackward<'_>) {
        use crate::kernels::act::Activation;
        let (act, ract) = (
            self.core.config.activation,
            self.core.config.recurrent_activation,
        );
        let gw = 4 * self.core.config.units;
        // Monomorphised for the default activations so that the loop vectorises.
        if (act, ract) == (Activation::Tanh, Activation::Sigmoid) {
            self.gate_grads(&mut io, |y| 1.0 - y * y, |y| y * (1.0 - y));
        } else {
            self.gate_grads(
                &mut io,
                |y| act.derivative_from_output(y),
                |y| ract.derivative_from_output(y),
            );
        }
        self.core
            .recurrent_input_grad(io.dxw, gw, io.batch, 0, gw, io.dh_rec, false);
        io.dh_prev.iter_mut().for_each(|v| *v = 0.0);
    }

    fn accumulate_recurrent_grads(
        &mut self,
        h_rec_all: &[f32],
        _cache: &[f32],
        drec_all: &[f32],
        n: usize,
    ) {
        let h_units = self.core.config.units;
        self.core.accumulate_recurrent(
            h_rec_all,
            h_units,
            drec_all,
            4 * h_units,
            n,
            0,
            4 * h_units,
            false,
        );
    }
}
