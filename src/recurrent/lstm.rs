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
use crate::kernels::act::{sigmoid_fast, tanh_fast, Activation};
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
    /// Gate gradients of one backward step over the gates in `io.cache`, and
    /// `io.dc_prev`. `da` and `dr` are the derivatives of the activation and
    /// the recurrent activation expressed through their outputs.
    #[inline(always)]
    fn gate_grads(
        &self,
        io: &mut StepBackward<'_>,
        da: impl Fn(f32) -> f32,
        dr: impl Fn(f32) -> f32,
    ) {
        let hu = self.core.config.units;
        let cache = &mut io.cache[..io.batch * 5 * hu];
        let row = |gates: [&mut [f32]; 4], ac: &[f32], inputs: [&[f32]; 3], dc_prev: &mut [f32]| {
            gate_grads_row(gates, ac, inputs, dc_prev, &da, &dr)
        };
        gate_grads_rows(hu, cache, io.dh, io.dc, io.c_prev, io.dc_prev, row);
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

    fn gates_in_cache(&self) -> bool {
        true
    }

    fn step(&self, io: StepForward<'_>) {
        let hu = self.core.config.units;
        let (act, ract) = (
            self.core.config.activation,
            self.core.config.recurrent_activation,
        );
        let (gw, cw) = (4 * hu, 5 * hu);
        // The gates are summed in the cache: xw (already there when the driver
        // wrote it, both biases folded in) plus h_rec W_hh^T.
        if !io.xw.is_empty() {
            for (row, xw) in io.cache.chunks_exact_mut(cw).zip(io.xw.chunks_exact(gw)) {
                row[..gw].copy_from_slice(xw);
            }
        }
        self.core
            .add_recurrent_product(io.h_rec, hu, io.batch, io.cache, cw);
        let cache = &mut io.cache[..io.batch * cw];
        if (act, ract) == (Activation::Tanh, Activation::Sigmoid) {
            forward_tanh_sigmoid(hu, io.c_prev, cache, io.c, io.h);
            return;
        }
        let (act_slice, ract_slice) = (
            |s: &mut [f32]| act.apply_slice(s),
            |s: &mut [f32]| ract.apply_slice(s),
        );
        forward_rows(hu, io.c_prev, cache, io.c, io.h, act_slice, ract_slice);
    }

    fn step_backward(&self, mut io: StepBackward<'_>) {
        let (act, ract) = (
            self.core.config.activation,
            self.core.config.recurrent_activation,
        );
        let hu = self.core.config.units;
        let (gw, cw) = (4 * hu, 5 * hu);
        // The default activations have a vectorised kernel.
        if (act, ract) == (Activation::Tanh, Activation::Sigmoid) {
            let cache = &mut io.cache[..io.batch * cw];
            let row = gate_grads_row_tanh_sigmoid;
            gate_grads_rows(hu, cache, io.dh, io.dc, io.c_prev, io.dc_prev, row);
        } else {
            self.gate_grads(
                &mut io,
                |y| act.derivative_from_output(y),
                |y| ract.derivative_from_output(y),
            );
        }
        // The gate gradients stay in the cache unless the caller wants them apart.
        let (d, ld): (&[f32], usize) = if io.dxw.is_empty() {
            (io.cache, cw)
        } else {
            for (d, row) in io.dxw.chunks_exact_mut(gw).zip(io.cache.chunks_exact(cw)) {
                d.copy_from_slice(&row[..gw]);
            }
            (io.dxw, gw)
        };
        self.core
            .recurrent_input_grad(d, ld, io.batch, 0, gw, io.dh_rec, false);
        io.dh_prev.iter_mut().for_each(|v| *v = 0.0);
    }

    fn accumulate_recurrent_grads(
        &mut self,
        h_rec_all: &[f32],
        cache_all: &[f32],
        drec_all: &[f32],
        n: usize,
    ) {
        let h_units = self.core.config.units;
        // The gate gradients are the recurrent ones (both biases folded).
        let (d, ld) = if drec_all.is_empty() {
            (cache_all, 5 * h_units)
        } else {
            (drec_all, 4 * h_units)
        };
        self.core
            .accumulate_recurrent(h_rec_all, h_units, d, ld, n, 0, 4 * h_units, false);
    }
}

/// The gate gradients of one backward step over every row of the batch,
/// written over the gates i, f, g, o of the cache `[B, 5H]` (i, f, g, o,
/// act(c)), and `dc_prev [B, H]`, from `dh`, `dc` and `c_prev` `[B, H]`:
/// `row` does one row (see [`gate_grads_row`]).
#[inline(always)]
fn gate_grads_rows(
    units: usize,
    cache: &mut [f32],
    dh: &[f32],
    dc: &[f32],
    c_prev: &[f32],
    dc_prev: &mut [f32],
    mut row: impl FnMut([&mut [f32]; 4], &[f32], [&[f32]; 3], &mut [f32]),
) {
    let hu = units;
    let rows = dh
        .chunks_exact(hu)
        .zip(dc.chunks_exact(hu))
        .zip(c_prev.chunks_exact(hu))
        .zip(cache.chunks_exact_mut(5 * hu))
        .zip(dc_prev.chunks_exact_mut(hu));
    for ((((dh, dc), c_prev), cache_row), dc_prev) in rows {
        let (i, rest) = cache_row.split_at_mut(hu);
        let (f, rest) = rest.split_at_mut(hu);
        let (g, rest) = rest.split_at_mut(hu);
        let (o, ac) = rest.split_at_mut(hu);
        row([i, f, g, o], ac, [dh, dc, c_prev], dc_prev);
    }
}

/// One row of [`gate_grads_rows`]: the gates `[i, f, g, o]` (each `[H]`)
/// written over with their gradients, and `dc_prev`, from `act(c)` and
/// `[dh, dc, c_prev]`. `da` and `dr` are the derivatives of the activation
/// and the recurrent activation through their outputs.
#[inline(always)]
fn gate_grads_row(
    [i, f, g, o]: [&mut [f32]; 4],
    ac: &[f32],
    [dh, dc, c_prev]: [&[f32]; 3],
    dc_prev: &mut [f32],
    da: impl Fn(f32) -> f32,
    dr: impl Fn(f32) -> f32,
) {
    let hu = ac.len();
    // Equal lengths, stated once, so that the loop needs no bounds checks.
    let (i, f, g, o) = (&mut i[..hu], &mut f[..hu], &mut g[..hu], &mut o[..hu]);
    let (dh, dc, c_prev, dc_prev) = (&dh[..hu], &dc[..hu], &c_prev[..hu], &mut dc_prev[..hu]);
    for j in 0..hu {
        let (iv, fv, gv, ov) = (i[j], f[j], g[j], o[j]);
        let dct = dc[j] + dh[j] * ov * da(ac[j]);
        i[j] = dct * gv * dr(iv);
        f[j] = dct * c_prev[j] * dr(fv);
        g[j] = dct * iv * da(gv);
        o[j] = dh[j] * ac[j] * dr(ov);
        dc_prev[j] = dct * fv;
    }
}

/// [`gate_grads_row`] for tanh and sigmoid, inlined into the multiversioned
/// kernel below so that the loop vectorises.
#[inline(always)]
fn gate_grads_row_tanh_sigmoid_imp(
    gates: [&mut [f32]; 4],
    ac: &[f32],
    inputs: [&[f32]; 3],
    dc_prev: &mut [f32],
) {
    let (da, dr) = (|y: f32| 1.0 - y * y, |y: f32| y * (1.0 - y));
    gate_grads_row(gates, ac, inputs, dc_prev, da, dr);
}

crate::kernels::simd::multiversion!(
    /// [`gate_grads_row`] for tanh and sigmoid (vectorised). One row per call:
    /// over a whole step, the compiler hoisted its check that the four gates
    /// do not overlap out of the row loop, where it always failed (the gates
    /// of all rows interleave), and ran the scalar loop.
    fn gate_grads_row_tanh_sigmoid(
        gates: [&mut [f32]; 4],
        ac: &[f32],
        inputs: [&[f32]; 3],
        dc_prev: &mut [f32],
    ) => gate_grads_row_tanh_sigmoid_imp
);

/// One forward step's pointwise part over every row of the batch: the summed
/// gates (first 4H columns of each cache row `[B, 5H]`) activated in place
/// (`ract` on i, f and o, `act` on g), `c = f c_prev + i g`, `act(c)` into the
/// cache's last H columns and `h = o act(c)`. `act` and `ract` apply an
/// activation to a slice.
#[inline(always)]
fn forward_rows(
    units: usize,
    c_prev: &[f32],
    cache: &mut [f32],
    c: &mut [f32],
    h: &mut [f32],
    act: impl Fn(&mut [f32]),
    ract: impl Fn(&mut [f32]),
) {
    let hu = units;
    let rows = c_prev
        .chunks_exact(hu)
        .zip(cache.chunks_exact_mut(5 * hu))
        .zip(c.chunks_exact_mut(hu).zip(h.chunks_exact_mut(hu)));
    for ((c_prev, cache), (c, h)) in rows {
        let (gates, ac) = cache.split_at_mut(4 * hu);
        let (sig, rest) = gates.split_at_mut(2 * hu);
        let (g, o) = rest.split_at_mut(hu);
        ract(sig);
        act(g);
        ract(o);
        let (i, f) = sig.split_at(hu);
        let (g, o, ac, c_prev) = (&g[..hu], &o[..hu], &mut ac[..hu], &c_prev[..hu]);
        let (c, h) = (&mut c[..hu], &mut h[..hu]);
        for j in 0..hu {
            c[j] = f[j] * c_prev[j] + i[j] * g[j];
        }
        ac.copy_from_slice(c);
        act(ac);
        for j in 0..hu {
            h[j] = o[j] * ac[j];
        }
    }
}

/// [`forward_rows`] for tanh and sigmoid, inlined into the multiversioned
/// kernel below so that the loops vectorise.
#[inline(always)]
fn forward_tanh_sigmoid_imp(
    units: usize,
    c_prev: &[f32],
    cache: &mut [f32],
    c: &mut [f32],
    h: &mut [f32],
) {
    let tanh = |s: &mut [f32]| s.iter_mut().for_each(|v| *v = tanh_fast(*v));
    let sigmoid = |s: &mut [f32]| s.iter_mut().for_each(|v| *v = sigmoid_fast(*v));
    forward_rows(units, c_prev, cache, c, h, tanh, sigmoid);
}

crate::kernels::simd::multiversion!(
    /// The pointwise part of an LSTM step with tanh and sigmoid (vectorised):
    /// the summed gates in the cache activated in place, `c`, `act(c)` and `h`.
    fn forward_tanh_sigmoid(
        units: usize,
        c_prev: &[f32],
        cache: &mut [f32],
        c: &mut [f32],
        h: &mut [f32],
    ) => forward_tanh_sigmoid_imp
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::set_simd_enabled;

    fn random(rng: &mut Rng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len).map(|_| rng.uniform(lo, hi)).collect()
    }

    /// The vectorised forward kernel gives the bits of the generic step's
    /// loops (activations through `apply_slice`), on every instruction set.
    #[test]
    fn forward_kernel_matches_the_generic_loops() {
        let mut rng = Rng::new(5);
        let (batch, hu) = (3, 37);
        let pre = random(&mut rng, batch * 4 * hu, -4.0, 4.0);
        let xw = random(&mut rng, batch * 4 * hu, -4.0, 4.0);
        let c_prev = random(&mut rng, batch * hu, -2.0, 2.0);
        let mut summed = vec![f32::NAN; batch * 5 * hu];
        let mut want_cache = vec![0.0; batch * 5 * hu];
        let mut want_c = vec![0.0; batch * hu];
        let mut want_h = vec![0.0; batch * hu];
        for b in 0..batch {
            let cache = &mut want_cache[b * 5 * hu..][..5 * hu];
            for j in 0..4 * hu {
                cache[j] = pre[b * 4 * hu + j] + xw[b * 4 * hu + j];
            }
            summed[b * 5 * hu..][..4 * hu].copy_from_slice(&cache[..4 * hu]);
            Activation::Sigmoid.apply_slice(&mut cache[..2 * hu]);
            Activation::Tanh.apply_slice(&mut cache[2 * hu..3 * hu]);
            Activation::Sigmoid.apply_slice(&mut cache[3 * hu..4 * hu]);
            for j in 0..hu {
                let c = cache[hu + j] * c_prev[b * hu + j] + cache[j] * cache[2 * hu + j];
                want_c[b * hu + j] = c;
                cache[4 * hu + j] = c;
            }
            Activation::Tanh.apply_slice(&mut cache[4 * hu..]);
            for j in 0..hu {
                want_h[b * hu + j] = cache[3 * hu + j] * cache[4 * hu + j];
            }
        }
        for simd in [true, false] {
            set_simd_enabled(simd);
            let mut cache = summed.clone();
            let mut c = vec![f32::NAN; batch * hu];
            let mut h = vec![f32::NAN; batch * hu];
            forward_tanh_sigmoid(hu, &c_prev, &mut cache, &mut c, &mut h);
            assert_eq!(cache, want_cache, "simd {simd}");
            assert_eq!((&c, &h), (&want_c, &want_h), "simd {simd}");
        }
        set_simd_enabled(true);
    }

    /// The vectorised backward kernel gives the bits of the generic
    /// `gate_grads` with tanh and sigmoid, on every instruction set.
    #[test]
    fn backward_kernel_matches_the_generic_gate_grads() {
        let mut rng = Rng::new(6);
        let (batch, hu) = (3, 37);
        let config = CellConfig::new(CellKind::Lstm, 4, hu);
        let cell = LstmCell::new(config, "", &mut rng).unwrap();
        let cache = random(&mut rng, batch * 5 * hu, -1.0, 1.0);
        let mut want_cache = cache.clone();
        let dh = random(&mut rng, batch * hu, -1.0, 1.0);
        let dc = random(&mut rng, batch * hu, -1.0, 1.0);
        let c_prev = random(&mut rng, batch * hu, -2.0, 2.0);
        let states = vec![0.0; batch * hu];
        let mut want_dc_prev = vec![0.0; batch * hu];
        let (mut dh_prev, mut dh_rec) = (vec![0.0; batch * hu], vec![0.0; batch * hu]);
        let mut scratch = vec![0.0; batch * 4 * hu];
        let mut io = StepBackward {
            batch,
            dh: &dh,
            dc: &dc,
            h_rec: &states,
            h_prev: &states,
            c_prev: &c_prev,
            h: &states,
            cache: &mut want_cache,
            dxw: &mut [],
            drec: &mut [],
            dh_prev: &mut dh_prev,
            dc_prev: &mut want_dc_prev,
            dh_rec: &mut dh_rec,
            scratch: &mut scratch,
        };
        cell.gate_grads(&mut io, |y| 1.0 - y * y, |y| y * (1.0 - y));
        for simd in [true, false] {
            set_simd_enabled(simd);
            let mut got = cache.clone();
            let mut dc_prev = vec![f32::NAN; batch * hu];
            let row = gate_grads_row_tanh_sigmoid;
            gate_grads_rows(hu, &mut got, &dh, &dc, &c_prev, &mut dc_prev, row);
            assert_eq!(got, want_cache, "simd {simd}");
            assert_eq!(dc_prev, want_dc_prev, "simd {simd}");
        }
        set_simd_enabled(true);
    }

    /// A caller that hands the step its own `xw` and `dxw` buffers gets the
    /// same results as the driver, which keeps both in the cache.
    #[test]
    fn separate_buffers_give_the_results_of_the_cache() {
        let mut rng = Rng::new(8);
        let (batch, hu) = (3, 5);
        let (gw, cw) = (4 * hu, 5 * hu);
        let cell = LstmCell::new(CellConfig::new(CellKind::Lstm, 4, hu), "", &mut rng).unwrap();
        let xw = random(&mut rng, batch * gw, -1.0, 1.0);
        let h_prev = random(&mut rng, batch * hu, -1.0, 1.0);
        let c_prev = random(&mut rng, batch * hu, -1.0, 1.0);
        let dh = random(&mut rng, batch * hu, -1.0, 1.0);
        let dc = random(&mut rng, batch * hu, -1.0, 1.0);
        let mut runs = Vec::new();
        for apart in [true, false] {
            let mut cache = vec![f32::NAN; batch * cw];
            if !apart {
                for (row, x) in cache.chunks_exact_mut(cw).zip(xw.chunks_exact(gw)) {
                    row[..gw].copy_from_slice(x);
                }
            }
            let (mut h, mut c) = (vec![0.0; batch * hu], vec![0.0; batch * hu]);
            let mut scratch = vec![0.0; batch * gw];
            cell.step(StepForward {
                batch,
                xw: if apart { &xw } else { &[] },
                h_rec: &h_prev,
                h_prev: &h_prev,
                c_prev: &c_prev,
                h: &mut h,
                c: &mut c,
                cache: &mut cache,
                scratch: &mut scratch,
            });
            let mut dxw = vec![0.0; if apart { batch * gw } else { 0 }];
            let (mut dh_prev, mut dc_prev, mut dh_rec) = (
                vec![0.0; batch * hu],
                vec![0.0; batch * hu],
                vec![0.0; batch * hu],
            );
            cell.step_backward(StepBackward {
                batch,
                dh: &dh,
                dc: &dc,
                h_rec: &h_prev,
                h_prev: &h_prev,
                c_prev: &c_prev,
                h: &h,
                cache: &mut cache,
                dxw: &mut dxw,
                drec: &mut [],
                dh_prev: &mut dh_prev,
                dc_prev: &mut dc_prev,
                dh_rec: &mut dh_rec,
                scratch: &mut scratch,
            });
            let gates: Vec<f32> = if apart {
                dxw
            } else {
                cache
                    .chunks_exact(cw)
                    .flat_map(|r| r[..gw].to_vec())
                    .collect()
            };
            runs.push((h, c, gates, dc_prev, dh_rec));
        }
        assert_eq!(runs[0], runs[1]);
    }
}
