//! The Elman cell of Keras's SimpleRNN and PyTorch's nn.RNN:
//! `h = act(x W_ih^T + b_ih + h_prev W_hh^T + b_hh)`.

use super::cell::{Cell, CellCore, StepBackward, StepForward};
use super::config::{CellConfig, CellKind};
use crate::rng::Rng;
use crate::{Error, Result};

/// A SimpleRNN cell (Keras `SimpleRNNCell`).
#[derive(Debug, Clone)]
pub struct SimpleRnnCell {
    core: CellCore,
}

impl SimpleRnnCell {
    /// Builds the cell; `suffix` completes the PyTorch weight names (`_l0`).
    pub fn new(config: CellConfig, suffix: &str, rng: &mut Rng) -> Result<Self> {
        if config.kind != CellKind::SimpleRnn {
            return Err(Error::invalid(
                "cell",
                format!("SimpleRnnCell built from a {:?} config", config.kind),
            ));
        }
        Ok(SimpleRnnCell {
            core: CellCore::new(config, suffix, rng)?,
        })
    }
}

impl Cell for SimpleRnnCell {
    fn core(&self) -> &CellCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut CellCore {
        &mut self.core
    }
    fn state_count(&self) -> usize {
        1
    }
    fn cache_width(&self) -> usize {
        0
    }
    fn separate_recurrent_grad(&self) -> bool {
        false
    }

    fn step(&self, io: StepForward<'_>) {
        let units = self.core.config.units;
        let act = self.core.config.activation;
        // Both biases were folded into xw by the driver.
        self.core
            .project_recurrent(io.h_rec, units, io.batch, 0, units, io.h, units, false);
        for (h, x) in io.h.iter_mut().zip(io.xw) {
            *h += x;
        }
        act.apply_slice(io.h);
    }

    fn step_backward(&self, io: StepBackward<'_>) {
        let units = self.core.config.units;
        let act = self.core.config.activation;
        // [B, H]: da = dh * act'(h)
        if act == crate::kernels::act::Activation::Tanh {
            for ((d, &dh), &h) in io.dxw.iter_mut().zip(io.dh).zip(io.h) {
                *d = dh * (1.0 - h * h);
            }
        } else {
            for ((d, &dh), &h) in io.dxw.iter_mut().zip(io.dh).zip(io.h) {
                *d = dh * act.derivative_from_output(h);
            }
        }
        self.core
            .recurrent_input_grad(io.dxw, units, io.batch, 0, units, io.dh_rec, false);
        io.dh_prev.iter_mut().for_each(|v| *v = 0.0);
    }

    fn accumulate_recurrent_grads(
        &mut self,
        h_rec_all: &[f32],
        _cache: &[f32],
        drec_all: &[f32],
        n: usize,
    ) {
        let units = self.core.config.units;
        self.core
            .accumulate_recurrent(h_rec_all, units, drec_all, units, n, 0, units, false);
    }
}
