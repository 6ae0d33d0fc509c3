//! The GRU cell (Cho et al., 2014), gate blocks in PyTorch's order r, z, n.
//!
//! `reset_after = true` (PyTorch, cuDNN, Keras >= 2.3; two biases):
//! ```text
//! r = σ(x W_ir + b_ir + h W_hr + b_hr)      z = σ(x W_iz + b_iz + h W_hz + b_hz)
//! n = act(x W_in + b_in + r * (h W_hn + b_hn))
//! h' = z * h + (1 - z) * n
//! ```
//! `reset_after = false` (Keras 2.2; one bias): `n = act(x W_in + b_n + (r * h) W_hn)`.
//! Keras orders the blocks z, r, h; see `docs/weights.md` for the mapping.

use super::cell::{Cell, CellCore, StepBackward, StepForward};
use super::config::{CellConfig, CellKind};
use crate::kernels::act::Activation;
use crate::rng::Rng;
use crate::{Error, Result};

/// A GRU cell (Keras `GRUCell`).
#[derive(Debug, Clone)]
pub struct GruCell {
    core: CellCore,
}

impl GruCell {
    /// Builds the cell; `suffix` completes the PyTorch weight names (`_l0`).
    pub fn new(config: CellConfig, suffix: &str, rng: &mut Rng) -> Result<Self> {
        if config.kind != CellKind::Gru {
            return Err(Error::invalid(
                "cell",
                format!("GruCell built from a {:?} config", config.kind),
            ));
        }
        Ok(GruCell {
            core: CellCore::new(config, suffix, rng)?,
        })
    }

    fn reset_after(&self) -> bool {
        self.core.config.reset_after
    }

    /// Backward pass 1: d(z), d(n_pre) and, with the reset after the product,
    /// d(r) and the recurrent gradients. `da`/`dr` are the activation
    /// derivatives expressed through their outputs.
    #[inline(always)]
    fn pass1(&self, io: &mut StepBackward<'_>, da: impl Fn(f32) -> f32, dr: impl Fn(f32) -> f32) {
        let hu = self.core.config.units;
        let (gw, cw) = (3 * hu, 4 * hu);
        let reset_after = self.reset_after();
        for b in 0..io.batch {
            let cache = &io.cache[b * cw..(b + 1) * cw];
            let (r, rest) = cache.split_at(hu);
            let (z, rest) = rest.split_at(hu);
            let (n, extra) = rest.split_at(hu);
            let d = &mut io.dxw[b * gw..(b + 1) * gw];
            let (d_r, rest) = d.split_at_mut(hu);
            let (d_z, d_n) = rest.split_at_mut(hu);
            let row = b * hu..(b + 1) * hu;
            let (dh, h_prev) = (&io.dh[row.clone()], &io.h_prev[row.clone()]);
            let dh_prev = &mut io.dh_prev[row];
            for j in 0..hu {
                let dpn = dh[j] * (1.0 - z[j]) * da(n[j]);
                d_z[j] = dh[j] * (h_prev[j] - n[j]) * dr(z[j]);
                d_n[j] = dpn;
                dh_prev[j] = dh[j] * z[j];
            }
            if reset_after {
                for j in 0..hu {
                    d_r[j] = d_n[j] * extra[j] * dr(r[j]);
                }
                let drec = &mut io.drec[b * gw..(b + 1) * gw];
                drec[..2 * hu].copy_from_slice(&d[..2 * hu]);
                for j in 0..hu {
                    drec[2 * hu + j] = d[2 * hu + j] * r[j];
                }
            }
        }
    }
}

impl Cell for GruCell {
    fn core(&self) -> &CellCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut CellCore {
        &mut self.core
    }
    fn state_count(&self) -> usize {
        1
    }
    /// Cached per row: r, z, n and either `h W_hn + b_hn` (reset after) or `r * h` (before).
    fn cache_width(&self) -> usize {
        4 * self.core.config.units
    }
    /// With the reset after the product, d(h W_hn) = d(n_pre) * r differs from d(x W_in).
    fn separate_recurrent_grad(&self) -> bool {
        self.reset_after()
    }

    fn step(&self, io: StepForward<'_>) {
        let hu = self.core.config.units;
        let (act, ract) = (
            self.core.config.activation,
            self.core.config.recurrent_activation,
        );
        let (gw, cw) = (3 * hu, 4 * hu);
        let reset_after = self.reset_after();
        let first_cols = if reset_after { gw } else { 2 * hu };
        self.core.project_recurrent(
            io.h_rec,
            hu,
            io.batch,
            0,
            first_cols,
            io.scratch,
            gw,
            reset_after,
        );
        for b in 0..io.batch {
            let (xw, s) = (
                &io.xw[b * gw..(b + 1) * gw],
                &io.scratch[b * gw..(b + 1) * gw],
            );
            let cache = &mut io.cache[b * cw..(b + 1) * cw];
            for j in 0..2 * hu {
                cache[j] = xw[j] + s[j];
            }
            ract.apply_slice(&mut cache[..2 * hu]);
            let (rz, rest) = cache.split_at_mut(2 * hu);
            let extra = &mut rest[hu..];
            if reset_after {
                extra.copy_from_slice(&s[2 * hu..]);
            } else {
                let h_rec = &io.h_rec[b * hu..(b + 1) * hu];
                for j in 0..hu {
                    extra[j] = rz[j] * h_rec[j];
                }
            }
        }
        if !reset_after {
            // scratch[:, 2H..3H] = (r * h_rec) W_hn^T, reading r*h from the cache.
            let (rh, out) = (&io.cache[3 * hu..], &mut io.scratch[2 * hu..]);
            self.core
                .project_recurrent(rh, cw, io.batch, 2 * hu, hu, out, gw, false);
        }
        for b in 0..io.batch {
            let (xw, s) = (
                &io.xw[b * gw..(b + 1) * gw],
                &io.scratch[b * gw..(b + 1) * gw],
            );
            let cache = &mut io.cache[b * cw..(b + 1) * cw];
            let (r, rest) = cache.split_at_mut(hu);
            let (z, rest) = rest.split_at_mut(hu);
            let (n, extra) = rest.split_at_mut(hu);
            if reset_after {
                for j in 0..hu {
                    n[j] = xw[2 * hu + j] + r[j] * extra[j];
                }
            } else {
                for j in 0..hu {
                    n[j] = xw[2 * hu + j] + s[2 * hu + j];
                }
            }
            act.apply_slice(n);
            let (h_prev, h) = (
                &io.h_prev[b * hu..(b + 1) * hu],
                &mut io.h[b * hu..(b + 1) * hu],
            );
            for j in 0..hu {
                h[j] = z[j] * h_prev[j] + (1.0 - z[j]) * n[j];
            }
        }
    }

    fn step_backward(&self, mut io: StepBackward<'_>) {
        let hu = self.core.config.units;
        let (act, ract) = (
            self.core.config.activation,
            self.core.config.recurrent_activation,
        );
        let (gw, cw) = (3 * hu, 4 * hu);
        let reset_after = self.reset_after();
        // Pass 1: z, n and (reset after) r gradients; d(n_pre) lands in dxw[:, 2H..].
        if (act, ract) == (Activation::Tanh, Activation::Sigmoid) {
            self.pass1(&mut io, |y| 1.0 - y * y, |y| y * (1.0 - y));
        } else {
            self.pass1(
                &mut io,
                |y| act.derivative_from_output(y),
                |y| ract.derivative_from_output(y),
            );
        }
        if reset_after {
            self.core
                .recurrent_input_grad(io.drec, gw, io.batch, 0, gw, io.dh_rec, false);
            return;
        }
        // Reset before: d(r*h) [B, H] = d(n_pre) W_hn, into scratch.
        let d_rh = &mut io.scratch[..io.batch * hu];
        self.core
            .recurrent_input_grad(&io.dxw[2 * hu..], gw, io.batch, 2 * hu, hu, d_rh, false);
        for b in 0..io.batch {
            for j in 0..hu {
                let idx = b * hu + j;
                let r = io.cache[b * cw + j];
                let dr = d_rh[idx] * io.h_rec[idx];
                io.dxw[b * gw + j] = dr * ract.derivative_from_output(r);
                io.dh_rec[idx] = d_rh[idx] * r;
            }
        }
        self.core
            .recurrent_input_grad(io.dxw, gw, io.batch, 0, 2 * hu, io.dh_rec, true);
    }

    fn accumulate_recurrent_grads(
        &mut self,
        h_rec_all: &[f32],
        cache_all: &[f32],
        drec_all: &[f32],
        n: usize,
    ) {
        let hu = self.core.config.units;
        let (gw, cw) = (3 * hu, 4 * hu);
        if self.reset_after() {
            self.core
                .accumulate_recurrent(h_rec_all, hu, drec_all, gw, n, 0, gw, true);
        } else {
            self.core
                .accumulate_recurrent(h_rec_all, hu, drec_all, gw, n, 0, 2 * hu, false);
            self.core.accumulate_recurrent(
                &cache_all[3 * hu..],
                cw,
                &drec_all[2 * hu..],
                gw,
                n,
                2 * hu,
                hu,
                false,
            );
        }
    }
}
