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
        let h_units = self.core.config.units;
        let (act, ract) = (
            self.core.config.activation,
            self.core.config.recurrent_activation,
        );
        let gw = 4 * h_units;
        // scratch [B, 4H] = h_rec W_hh^T; both biases were folded into xw.
        self.core
            .project_recurrent(io.h_rec, h_units, io.batch, 0, gw, io.scratch, gw, false);
        for b in 0..io.batch {
            let pre = &io.scratch[b * gw..(b + 1) * gw];
            let xw = &io.xw[b * gw..(b + 1) * gw];
            let cache = &mut io.cache[b * 5 * h_units..(b + 1) * 5 * h_units];
            let row = b * h_units..(b + 1) * h_units;
            let (c_prev, c, h) = (
                &io.c_prev[row.clone()],
                &mut io.c[row.clone()],
                &mut io.h[row],
            );
            for j in 0..h_units {
                let i = ract.apply(pre[j] + xw[j]);
                let f = ract.apply(pre[h_units + j] + xw[h_units + j]);
                let g = act.apply(pre[2 * h_units + j] + xw[2 * h_units + j]);
                let o = ract.apply(pre[3 * h_units + j] + xw[3 * h_units + j]);
                let cj = f * c_prev[j] + i * g;
                let ac = act.apply(cj);
                c[j] = cj;
                h[j] = o * ac;
                cache[j] = i;
                cache[h_units + j] = f;
                cache[2 * h_units + j] = g;
                cache[3 * h_units + j] = o;
                cache[4 * h_units + j] = ac;
            }
        }
    }

    fn step_backward(&self, io: StepBackward<'_>) {
        let h_units = self.core.config.units;
        let (act, ract) = (
            self.core.config.activation,
            self.core.config.recurrent_activation,
        );
        let gw = 4 * h_units;
        for b in 0..io.batch {
            let cache = &io.cache[b * 5 * h_units..(b + 1) * 5 * h_units];
            let d = &mut io.dxw[b * gw..(b + 1) * gw];
            let row = b * h_units..(b + 1) * h_units;
            let (dh, dc, c_prev) = (
                &io.dh[row.clone()],
                &io.dc[row.clone()],
                &io.c_prev[row.clone()],
            );
            let dc_prev = &mut io.dc_prev[row];
            for j in 0..h_units {
                let (i, f, g, o, ac) = (
                    cache[j],
                    cache[h_units + j],
                    cache[2 * h_units + j],
                    cache[3 * h_units + j],
                    cache[4 * h_units + j],
                );
                let dct = dc[j] + dh[j] * o * act.derivative_from_output(ac);
                d[j] = dct * g * ract.derivative_from_output(i);
                d[h_units + j] = dct * c_prev[j] * ract.derivative_from_output(f);
                d[2 * h_units + j] = dct * i * act.derivative_from_output(g);
                d[3 * h_units + j] = dh[j] * ac * ract.derivative_from_output(o);
                dc_prev[j] = dct * f;
            }
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
