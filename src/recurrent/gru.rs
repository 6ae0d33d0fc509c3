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
    /// d(r) and the recurrent gradients, row by row through `row` (see
    /// [`pass1_row`]).
    fn pass1(&self, io: &mut StepBackward<'_>, mut row: impl FnMut(Pass1Row<'_>)) {
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
            let rows = b * hu..(b + 1) * hu;
            let drec: &mut [f32] = if reset_after {
                &mut io.drec[b * gw..(b + 1) * gw]
            } else {
                &mut []
            };
            row(Pass1Row {
                gates: [r, z, n, extra],
                grads: [d_r, d_z, d_n],
                dh: &io.dh[rows.clone()],
                h_prev: &io.h_prev[rows.clone()],
                dh_prev: &mut io.dh_prev[rows],
                drec,
            });
        }
    }
}

/// The end of a forward step for one row: the candidate
/// `n = act(xw_n + r * add)` (`+ add` when `r` is empty) into `n`, and
/// `h = z * h_prev + (1 - z) * n`. Its own function, one row per call, so
/// that `n`, split from the cache row that also holds `r` and `add`, is seen
/// apart from them and the loops vectorise.
#[inline(always)]
fn output_row_imp(
    n: &mut [f32],
    h: &mut [f32],
    [xw_n, r, add, z, h_prev]: [&[f32]; 5],
    act: Activation,
) {
    let hu = n.len();
    let (xw_n, add, z, h_prev, h) = (
        &xw_n[..hu],
        &add[..hu],
        &z[..hu],
        &h_prev[..hu],
        &mut h[..hu],
    );
    if r.is_empty() {
        for j in 0..hu {
            n[j] = xw_n[j] + add[j];
        }
    } else {
        let r = &r[..hu];
        for j in 0..hu {
            n[j] = xw_n[j] + r[j] * add[j];
        }
    }
    act.apply_slice(n);
    for j in 0..hu {
        h[j] = z[j] * h_prev[j] + (1.0 - z[j]) * n[j];
    }
}

crate::kernels::simd::multiversion!(
    /// See [`output_row_imp`] (vectorised).
    fn output_row(
        n: &mut [f32],
        h: &mut [f32],
        inputs: [&[f32]; 5],
        act: Activation,
    ) => output_row_imp
);

/// One row's slices for backward pass 1 (each `[H]`, `drec` `[3H]` or empty).
struct Pass1Row<'a> {
    /// r, z, n and the cached extra (`h W_hn + b_hn` or `r * h`).
    gates: [&'a [f32]; 4],
    /// d(r_pre), d(z_pre), d(n_pre).
    grads: [&'a mut [f32]; 3],
    dh: &'a [f32],
    h_prev: &'a [f32],
    dh_prev: &'a mut [f32],
    /// With the reset after the product: the recurrent gate gradients.
    drec: &'a mut [f32],
}

/// Backward pass 1 for one row; `da`/`dr` are the activation derivatives
/// expressed through their outputs.
#[inline(always)]
fn pass1_row(
    [r, z, n, extra]: [&[f32]; 4],
    [d_r, d_z, d_n]: [&mut [f32]; 3],
    [dh, h_prev]: [&[f32]; 2],
    dh_prev: &mut [f32],
    drec: &mut [f32],
    da: impl Fn(f32) -> f32,
    dr: impl Fn(f32) -> f32,
) {
    let hu = dh.len();
    // Equal lengths, stated once, so that the loops need no bounds checks.
    let (r, z, n, extra) = (&r[..hu], &z[..hu], &n[..hu], &extra[..hu]);
    let (d_r, d_z, d_n) = (&mut d_r[..hu], &mut d_z[..hu], &mut d_n[..hu]);
    let (h_prev, dh_prev) = (&h_prev[..hu], &mut dh_prev[..hu]);
    for j in 0..hu {
        let dpn = dh[j] * (1.0 - z[j]) * da(n[j]);
        d_z[j] = dh[j] * (h_prev[j] - n[j]) * dr(z[j]);
        d_n[j] = dpn;
        dh_prev[j] = dh[j] * z[j];
    }
    if drec.is_empty() {
        return;
    }
    for j in 0..hu {
        d_r[j] = d_n[j] * extra[j] * dr(r[j]);
    }
    let (drec_rz, drec_n) = drec.split_at_mut(2 * hu);
    drec_rz[..hu].copy_from_slice(d_r);
    drec_rz[hu..2 * hu].copy_from_slice(d_z);
    for ((o, d), r) in drec_n[..hu].iter_mut().zip(d_n.iter()).zip(r) {
        *o = d * r;
    }
}

/// [`pass1_row`] for tanh and sigmoid, inlined into the multiversioned kernel.
#[inline(always)]
fn pass1_row_tanh_sigmoid_imp(
    gates: [&[f32]; 4],
    grads: [&mut [f32]; 3],
    inputs: [&[f32]; 2],
    dh_prev: &mut [f32],
    drec: &mut [f32],
) {
    let (da, dr) = (|y: f32| 1.0 - y * y, |y: f32| y * (1.0 - y));
    pass1_row(gates, grads, inputs, dh_prev, drec, da, dr);
}

crate::kernels::simd::multiversion!(
    /// [`pass1_row`] for tanh and sigmoid (vectorised). One row per call, as
    /// for the LSTM: the gradients of all rows interleave in one buffer, and
    /// a loop over every row left the compiler's overlap check failing.
    fn pass1_row_tanh_sigmoid(
        gates: [&[f32]; 4],
        grads: [&mut [f32]; 3],
        inputs: [&[f32]; 2],
        dh_prev: &mut [f32],
        drec: &mut [f32],
    ) => pass1_row_tanh_sigmoid_imp
);

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
            // n_pre = x W_in + b_in + r * (h W_hn + b_hn), or + (r * h) W_hn.
            let (r, add): (&[f32], &[f32]) = if reset_after {
                (r, extra)
            } else {
                (&[], &s[2 * hu..])
            };
            let (h_prev, h) = (
                &io.h_prev[b * hu..(b + 1) * hu],
                &mut io.h[b * hu..(b + 1) * hu],
            );
            output_row(n, h, [&xw[2 * hu..], r, add, z, h_prev], act);
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
            self.pass1(&mut io, |p| {
                let inputs = [p.dh, p.h_prev];
                pass1_row_tanh_sigmoid(p.gates, p.grads, inputs, p.dh_prev, p.drec)
            });
        } else {
            let da = |y| act.derivative_from_output(y);
            let dr = |y| ract.derivative_from_output(y);
            self.pass1(&mut io, |p| {
                let inputs = [p.dh, p.h_prev];
                pass1_row(p.gates, p.grads, inputs, p.dh_prev, p.drec, da, dr)
            });
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
