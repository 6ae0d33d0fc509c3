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
            for j in 0..hu {
                cache[j] = ract.apply(xw[j] + s[j]);
                cache[hu + j] = ract.apply(xw[hu + j] + s[hu + j]);
                if reset_after {
                    cache[3 * hu + j] = s[2 * hu + j];
                } else {
                    cache[3 * hu + j] = cache[j] * io.h_rec[b * hu + j];
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
            for j in 0..hu {
                let (r, z) = (cache[j], cache[hu + j]);
                let n = if reset_after {
                    act.apply(xw[2 * hu + j] + r * cache[3 * hu + j])
                } else {
                    act.apply(xw[2 * hu + j] + s[2 * hu + j])
                };
                cache[2 * hu + j] = n;
                io.h[b * hu + j] = z * io.h_prev[b * hu + j] + (1.0 - z) * n;
            }
        }
    }

    fn step_backward(&self, io: StepBackward<'_>) {
        let hu = self.core.config.units;
        let (act, ract) = (
            self.core.config.activation,
            self.core.config.recurrent_activation,
        );
        let (gw, cw) = (3 * hu, 4 * hu);
        let reset_after = self.reset_after();
        // Pass 1: z, n and (reset after) r gradients; d(n_pre) lands in dxw[:, 2H..].
        for b in 0..io.batch {
            let cache = &io.cache[b * cw..(b + 1) * cw];
            let d = &mut io.dxw[b * gw..(b + 1) * gw];
            for j in 0..hu {
                let idx = b * hu + j;
                let (r, z, n, extra) = (
                    cache[j],
                    cache[hu + j],
                    cache[2 * hu + j],
                    cache[3 * hu + j],
                );
                let dh = io.dh[idx];
                let dpn = dh * (1.0 - z) * act.derivative_from_output(n);
                d[hu + j] = dh * (io.h_prev[idx] - n) * ract.derivative_from_output(z);
                d[2 * hu + j] = dpn;
                io.dh_prev[idx] = dh * z;
                if reset_after {
                    d[j] = dpn * extra * ract.derivative_from_output(r);
                    let dr = &mut io.drec[b * gw..(b + 1) * gw];
                    dr[j] = d[j];
                    dr[hu + j] = d[hu + j];
                    dr[2 * hu + j] = dpn * r;
                }
            }
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
