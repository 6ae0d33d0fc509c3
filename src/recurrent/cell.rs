//! The [`Cell`] trait: what a recurrence must provide so that the one RNN driver
//! ([`super::Rnn`]) can run it forward and backward through time, and
//! [`CellCore`], the weights and projections every built-in cell shares.
//!
//! A cell sees one time step of a batch; the driver owns the loop over time,
//! masking, dropout, direction, stacking and the whole-sequence GEMMs.

use super::config::CellConfig;
use crate::kernels::gemm::{sgemm, sgemm_bias, sgemm_packed, PackedB, Trans};
use crate::params::{Params, SlotId};
use crate::rng::Rng;
use crate::Result;
use std::borrow::Cow;

/// Buffers of one forward step. `B` = batch, `H` = units, `GW` = gate width.
pub struct StepForward<'a> {
    /// Rows in the batch.
    pub batch: usize,
    /// Input projection of this step, bias included: `[B, GW]`; empty when
    /// the driver already wrote it into the cache (see [`Cell::gates_in_cache`]).
    pub xw: &'a [f32],
    /// The recurrent input, h_prev after recurrent dropout: `[B, H]`.
    pub h_rec: &'a [f32],
    /// The previous hidden state: `[B, H]`.
    pub h_prev: &'a [f32],
    /// The previous cell state `[B, H]` (empty for cells without one).
    pub c_prev: &'a [f32],
    /// The new hidden state, written: `[B, H]`.
    pub h: &'a mut [f32],
    /// The new cell state, written (empty for cells without one).
    pub c: &'a mut [f32],
    /// What the backward pass will need, written: `[B, cache_width]`. With
    /// an empty `xw`, its first GW columns hold the input projection on entry
    /// ([`Cell::gates_in_cache`]).
    pub cache: &'a mut [f32],
    /// Scratch space of `[B, GW]`.
    pub scratch: &'a mut [f32],
}

/// Buffers of one backward step.
pub struct StepBackward<'a> {
    /// Rows in the batch.
    pub batch: usize,
    /// d(loss)/d(h) of this step's output state: `[B, H]`.
    pub dh: &'a [f32],
    /// d(loss)/d(c) of this step's cell state (empty for cells without one).
    pub dc: &'a [f32],
    /// The forward step's recurrent input: `[B, H]`.
    pub h_rec: &'a [f32],
    /// The forward step's previous hidden state: `[B, H]`.
    pub h_prev: &'a [f32],
    /// The forward step's previous cell state (empty for cells without one).
    pub c_prev: &'a [f32],
    /// The forward step's new hidden state: `[B, H]`.
    pub h: &'a [f32],
    /// The forward step's cache: `[B, cache_width]` (overwritten with the
    /// gate gradients when `dxw` is empty, see [`Cell::gates_in_cache`]).
    pub cache: &'a mut [f32],
    /// Written: d(loss)/d(input projection) `[B, GW]`; empty when the cell
    /// writes it over the gates in its cache instead.
    pub dxw: &'a mut [f32],
    /// Written when [`Cell::separate_recurrent_grad`]: d(loss)/d(recurrent
    /// pre-activations) `[B, GW]`; otherwise empty (it equals `dxw`).
    pub drec: &'a mut [f32],
    /// Written (overwritten): the direct part of d(loss)/d(h_prev), not through `h_rec`.
    pub dh_prev: &'a mut [f32],
    /// Written (overwritten): d(loss)/d(c_prev) (empty for cells without one).
    pub dc_prev: &'a mut [f32],
    /// Written (overwritten): d(loss)/d(h_rec).
    pub dh_rec: &'a mut [f32],
    /// Scratch space of `[B, GW]`.
    pub scratch: &'a mut [f32],
}

/// A recurrence the RNN driver can run. Implemented by [`super::SimpleRnnCell`],
/// [`super::LstmCell`] and [`super::GruCell`].
pub trait Cell: Send + Sync + std::fmt::Debug {
    /// The shared weights and options.
    fn core(&self) -> &CellCore;
    /// The shared weights and options, mutable.
    fn core_mut(&mut self) -> &mut CellCore;
    /// 1 for cells with only h, 2 for cells with h and c.
    fn state_count(&self) -> usize;
    /// Floats cached per batch row per step for the backward pass.
    fn cache_width(&self) -> usize;
    /// Whether the recurrent pre-activation gradients differ from the input ones.
    fn separate_recurrent_grad(&self) -> bool;
    /// Whether the cell keeps its gates in the first GW columns of each cache
    /// row. The driver then writes the whole sequence's input projection
    /// straight into the cache (a step gets an empty `xw`, adds the recurrent
    /// product there and activates the gates in place), and a backward step
    /// given an empty `dxw` writes its gate gradients over the gates: the
    /// driver reads them from the cache, rows `cache_width` apart. This saves
    /// a separate `[T*B, GW]` buffer each way, and the store misses of filling it.
    fn gates_in_cache(&self) -> bool {
        false
    }
    /// One forward step.
    fn step(&self, io: StepForward<'_>);
    /// One backward step.
    fn step_backward(&self, io: StepBackward<'_>);
    /// After the backward loop: adds d(loss)/d(weight_hh) and d(loss)/d(bias_hh)
    /// from the recurrent inputs `h_rec_all [N, H]`, the caches `[N, cache_width]`
    /// and the recurrent gradients `drec_all [N, GW]` of all N = T*B rows
    /// (empty when they are the gate gradients kept in the caches).
    fn accumulate_recurrent_grads(
        &mut self,
        h_rec_all: &[f32],
        cache_all: &[f32],
        drec_all: &[f32],
        n: usize,
    );

    /// The options.
    fn config(&self) -> &CellConfig {
        &self.core().config
    }
    /// Hidden units.
    fn units(&self) -> usize {
        self.core().config.units
    }
    /// Input features.
    fn input_size(&self) -> usize {
        self.core().config.input_size
    }
}

/// Weights and options shared by the built-in cells, in PyTorch's layout:
/// `weight_ih [GW, I]`, `weight_hh [GW, H]`, `bias_ih [GW]`, `bias_hh [GW]`.
#[derive(Debug, Clone)]
pub struct CellCore {
    /// The options the cell was built with.
    pub config: CellConfig,
    /// The weights and their gradients.
    pub params: Params,
    /// Slot of `weight_ih`.
    pub w_ih: SlotId,
    /// Slot of `weight_hh`.
    pub w_hh: SlotId,
    /// Slot of `bias_ih` (Keras's single bias when there is one bias).
    pub b_ih: Option<SlotId>,
    /// Slot of `bias_hh` (two-bias layouts only).
    pub b_hh: Option<SlotId>,
    /// `weight_hh` packed for the per-step products (see [`CellCore::prepare_packs`]).
    packs: RecurrentPacks,
}

/// `weight_hh` packed for the per-step products: transposed for the forward
/// `h W_hh^T`, as stored for the backward `d W_hh`. Kept across calls so the
/// buffers are reused; only valid between `prepare_packs` and `clear_packs`.
#[derive(Debug, Clone, Default)]
struct RecurrentPacks {
    fwd: PackedB,
    bwd: PackedB,
    fwd_ok: bool,
    bwd_ok: bool,
    /// `bias_ih + bias_hh`, the bias of an input projection that folds both.
    bias_sum: Vec<f32>,
    bias_sum_ok: bool,
}

/// `GATED_NO_PACK=1` turns the packed per-step kernel off (for comparisons).
fn packing_disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("GATED_NO_PACK").is_some_and(|v| v != "0"))
}

/// Per-step products below this many multiply-adds are not worth packing.
const PACKED_MIN_MACS: usize = 1 << 16;

/// From this many multiply-adds per step (batch x H x GW) the forward and
/// backward copies of the recurrent weights are packed on two threads.
const PARALLEL_PACK_MACS: usize = 1 << 24;

impl CellCore {
    /// Creates and initialises the weights. `suffix` completes PyTorch's names,
    /// e.g. `_l0` or `_l1_reverse`.
    pub fn new(config: CellConfig, suffix: &str, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let (i, h, gw) = (config.input_size, config.units, config.gate_width());
        let mut params = Params::new();
        let w_ih = params.try_add(&format!("weight_ih{suffix}"), &[gw, i])?;
        let w_hh = params.try_add(&format!("weight_hh{suffix}"), &[gw, h])?;
        let b_ih = config
            .use_bias
            .then(|| params.try_add(&format!("bias_ih{suffix}"), &[gw]))
            .transpose()?;
        let b_hh = config
            .has_bias_hh()
            .then(|| params.try_add(&format!("bias_hh{suffix}"), &[gw]))
            .transpose()?;
        config
            .kernel_initializer
            .fill(params.value_mut(w_ih), gw, i, h, rng);
        // Keras draws the recurrent kernel as one [H, GW] matrix; ours is its transpose.
        config
            .recurrent_initializer
            .fill(params.value_mut(w_hh), gw, h, h, rng);
        for b in [b_ih, b_hh].into_iter().flatten() {
            config
                .bias_initializer
                .fill(params.value_mut(b), gw, 1, h, rng);
        }
        if config.unit_forget_bias && config.kind == super::CellKind::Lstm {
            if let Some(b) = b_ih {
                params.value_mut(b)[h..2 * h]
                    .iter_mut()
                    .for_each(|v| *v = 1.0);
            }
            if let Some(b) = b_hh {
                params.value_mut(b)[h..2 * h]
                    .iter_mut()
                    .for_each(|v| *v = 0.0);
            }
        }
        Ok(CellCore {
            config,
            params,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            packs: RecurrentPacks::default(),
        })
    }

    /// Packs `weight_hh` for a pass over `steps` steps of `batch` rows (and for
    /// its backward pass when `backward`), where that pays: more than one step,
    /// and per-step products big enough to repay the copy.
    /// Call after any change to the weights and before the steps.
    pub fn prepare_packs(&mut self, batch: usize, steps: usize, backward: bool) {
        let (h, gw) = (self.config.units, self.config.gate_width());
        let macs = batch * h * gw;
        self.clear_packs();
        if let (Some(bi), Some(bh)) = (self.b_ih, self.b_hh) {
            let (bi, bh) = (self.params.value(bi), self.params.value(bh));
            let sum = &mut self.packs.bias_sum;
            sum.clear();
            sum.extend(summed(bi, bh));
            self.packs.bias_sum_ok = true;
        }
        if steps < 2 || macs < PACKED_MIN_MACS || packing_disabled() {
            return;
        }
        let w = &self.params.values[self.params.slots()[self.w_hh].range()];
        let (fwd, bwd) = (&mut self.packs.fwd, &mut self.packs.bwd);
        let mut pack_fwd = || fwd.pack(Trans::T, h, gw, w, h);
        let mut pack_bwd = || bwd.pack(Trans::N, gw, h, w, h);
        // The two copies are independent: one per thread when both are
        // wanted and big (C's 512-unit layers: 1M values each).
        if backward && macs >= PARALLEL_PACK_MACS && crate::kernels::gemm::threads() > 1 {
            rayon::join(pack_fwd, pack_bwd);
        } else {
            pack_fwd();
            if backward {
                pack_bwd();
            }
        }
        self.packs.fwd_ok = true;
        self.packs.bwd_ok = backward;
    }

    /// Marks the packed weights stale (they are then not used until the next
    /// [`CellCore::prepare_packs`]); the buffers are kept.
    pub fn clear_packs(&mut self) {
        self.packs.fwd_ok = false;
        self.packs.bwd_ok = false;
        self.packs.bias_sum_ok = false;
    }

    /// `xw [n, GW] = x [n, I] W_ih^T + bias_ih (+ bias_hh when `fold_bias_hh`)`,
    /// rows of `xw` `ld_xw` floats apart.
    pub fn project_input(
        &self,
        x: &[f32],
        n: usize,
        xw: &mut [f32],
        ld_xw: usize,
        fold_bias_hh: bool,
    ) {
        let (i, gw) = (self.config.input_size, self.config.gate_width());
        let w = self.params.value(self.w_ih);
        let hh = if fold_bias_hh { self.b_hh } else { None };
        let bias: Cow<'_, [f32]> = match (self.b_ih, hh) {
            (Some(_), Some(_)) if self.packs.bias_sum_ok => Cow::Borrowed(&self.packs.bias_sum),
            (Some(bi), Some(bh)) => {
                let (bi, bh) = (self.params.value(bi), self.params.value(bh));
                Cow::Owned(summed(bi, bh).collect())
            }
            (Some(b), None) | (None, Some(b)) => Cow::Borrowed(self.params.value(b)),
            (None, None) => {
                sgemm(
                    Trans::N,
                    Trans::T,
                    n,
                    gw,
                    i,
                    1.0,
                    x,
                    i,
                    w,
                    i,
                    0.0,
                    xw,
                    ld_xw,
                );
                return;
            }
        };
        sgemm_bias(Trans::N, Trans::T, n, gw, i, x, i, w, i, &bias, xw, ld_xw);
    }

    /// `out [n, GW] += h [n, H] W_hh^T` over all gate rows; `h` and `out` have
    /// row strides `ld_h` and `ld_out`.
    pub fn add_recurrent_product(
        &self,
        h: &[f32],
        ld_h: usize,
        n: usize,
        out: &mut [f32],
        ld_out: usize,
    ) {
        let (units, gw) = (self.config.units, self.config.gate_width());
        if self.packs.fwd_ok {
            sgemm_packed(n, h, ld_h, &self.packs.fwd, true, out, ld_out);
        } else {
            let w = self.params.value(self.w_hh);
            sgemm(
                Trans::N,
                Trans::T,
                n,
                gw,
                units,
                1.0,
                h,
                ld_h,
                w,
                units,
                1.0,
                out,
                ld_out,
            );
        }
    }

    /// `out [n, cols] = h [n, H] W_hh[rows]^T (+ bias_hh[rows])` for the gate
    /// rows `first_row..first_row + cols` of `weight_hh`; `h` has row stride `ld_h`.
    #[allow(clippy::too_many_arguments)]
    pub fn project_recurrent(
        &self,
        h: &[f32],
        ld_h: usize,
        n: usize,
        first_row: usize,
        cols: usize,
        out: &mut [f32],
        ld_out: usize,
        add_bias_hh: bool,
    ) {
        let units = self.config.units;
        if self.packs.fwd_ok && first_row == 0 && cols == self.config.gate_width() {
            sgemm_packed(n, h, ld_h, &self.packs.fwd, false, out, ld_out);
        } else {
            let w = &self.params.value(self.w_hh)[first_row * units..];
            sgemm(
                Trans::N,
                Trans::T,
                n,
                cols,
                units,
                1.0,
                h,
                ld_h,
                w,
                units,
                0.0,
                out,
                ld_out,
            );
        }
        if let (true, Some(b)) = (add_bias_hh, self.b_hh) {
            let bias = &self.params.value(b)[first_row..first_row + cols];
            for row in out.chunks_mut(ld_out).take(n) {
                row[..cols].iter_mut().zip(bias).for_each(|(v, b)| *v += b);
            }
        }
    }

    /// `dh [n, H] (+)= d [n, cols] W_hh[rows]` for gate rows starting at `first_row`.
    #[allow(clippy::too_many_arguments)]
    pub fn recurrent_input_grad(
        &self,
        d: &[f32],
        ld_d: usize,
        n: usize,
        first_row: usize,
        cols: usize,
        dh: &mut [f32],
        accumulate: bool,
    ) {
        let units = self.config.units;
        if self.packs.bwd_ok && first_row == 0 && cols == self.config.gate_width() {
            sgemm_packed(n, d, ld_d, &self.packs.bwd, accumulate, dh, units);
            return;
        }
        let w = &self.params.value(self.w_hh)[first_row * units..];
        let beta = if accumulate { 1.0 } else { 0.0 };
        sgemm(
            Trans::N,
            Trans::N,
            n,
            units,
            cols,
            1.0,
            d,
            ld_d,
            w,
            units,
            beta,
            dh,
            units,
        );
    }

    /// `dx [n, I] = dxw [n, GW] W_ih`, rows of `dxw` `ld_dxw` floats apart.
    pub fn input_grad(&self, dxw: &[f32], ld_dxw: usize, n: usize, dx: &mut [f32]) {
        let (i, gw) = (self.config.input_size, self.config.gate_width());
        let w = self.params.value(self.w_ih);
        sgemm(
            Trans::N,
            Trans::N,
            n,
            i,
            gw,
            1.0,
            dxw,
            ld_dxw,
            w,
            i,
            0.0,
            dx,
            i,
        );
    }

    /// `d weight_ih += dxw^T x`, `d bias_ih += sum_rows dxw` (and `d bias_hh` too
    /// when it was folded into the input projection); rows of `dxw` `ld_dxw` apart.
    pub fn accumulate_input_grads(
        &mut self,
        x: &[f32],
        dxw: &[f32],
        ld_dxw: usize,
        n: usize,
        bias_hh_folded: bool,
    ) {
        let (i, gw) = (self.config.input_size, self.config.gate_width());
        let r = self.params.slots()[self.w_ih].range();
        sgemm(
            Trans::T,
            Trans::N,
            gw,
            i,
            n,
            1.0,
            dxw,
            ld_dxw,
            x,
            i,
            1.0,
            &mut self.params.grads[r],
            i,
        );
        let hh = if bias_hh_folded { self.b_hh } else { None };
        if self.b_ih.is_none() && hh.is_none() {
            return;
        }
        // One pass over the gate gradients serves both biases.
        let sums = column_sums(dxw, ld_dxw, n, 0, gw);
        for b in [self.b_ih, hh].into_iter().flatten() {
            let g = self.params.grad_mut(b);
            g.iter_mut().zip(&sums).for_each(|(g, s)| *g += s);
        }
    }

    /// `d weight_hh[rows] += d^T h`, and `d bias_hh[rows] += sum_rows d` when
    /// `bias` — for gate rows `first_row..first_row + cols`; `d` has row stride `ld_d`,
    /// `h` has row stride `ld_h`.
    #[allow(clippy::too_many_arguments)]
    pub fn accumulate_recurrent(
        &mut self,
        h: &[f32],
        ld_h: usize,
        d: &[f32],
        ld_d: usize,
        n: usize,
        first_row: usize,
        cols: usize,
        bias: bool,
    ) {
        let units = self.config.units;
        let r = self.params.slots()[self.w_hh].range();
        let g = &mut self.params.grads[r][first_row * units..];
        sgemm(
            Trans::T,
            Trans::N,
            cols,
            units,
            n,
            1.0,
            d,
            ld_d,
            h,
            ld_h,
            1.0,
            g,
            units,
        );
        if let (true, Some(b)) = (bias, self.b_hh) {
            let gb = &mut self.params.grad_mut(b)[first_row..first_row + cols];
            add_column_sums(d, ld_d, n, 0, cols, gb);
        }
    }
}

/// `out[j] += sum_r m[r, first + j]` for `j < cols`, over `n` rows of stride `ld`.
pub(crate) fn add_column_sums(
    m: &[f32],
    ld: usize,
    n: usize,
    first: usize,
    cols: usize,
    out: &mut [f32],
) {
    let sums = column_sums(m, ld, n, first, cols);
    out[..cols].iter_mut().zip(&sums).for_each(|(o, s)| *o += s);
}

/// `a + b` value by value (the two biases of a folded input projection).
fn summed<'a>(a: &'a [f32], b: &'a [f32]) -> impl Iterator<Item = f32> + 'a {
    a.iter().zip(b).map(|(x, y)| x + y)
}

/// `out[j] += m[r, first + j]` over `n` rows of stride `ld`, row by row.
#[inline(always)]
fn add_rows_imp(out: &mut [f32], m: &[f32], ld: usize, n: usize, first: usize) {
    for row in m.chunks(ld).take(n) {
        let row = &row[first..][..out.len()];
        out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
    }
}

crate::kernels::simd::multiversion!(
    /// See [`add_rows_imp`] (vectorised: the baseline build adds four
    /// values at a time; B's bias gradients sum 2,560 rows of 512).
    fn add_rows(out: &mut [f32], m: &[f32], ld: usize, n: usize, first: usize) => add_rows_imp
);

/// Sums below this many values take one thread.
const PARALLEL_SUM_MIN: usize = 1 << 18;

/// `sum_r m[r, first + j]` for `j < cols`, over `n` rows of stride `ld`. Large
/// matrices are split by columns between two threads, so each column is summed
/// in the same order whatever the thread count.
fn column_sums(m: &[f32], ld: usize, n: usize, first: usize, cols: usize) -> Vec<f32> {
    let mut sums = vec![0.0; cols];
    let sum_into = |out: &mut [f32], from: usize| add_rows(out, m, ld, n, first + from);
    if crate::kernels::gemm::threads() < 2 || n * cols < PARALLEL_SUM_MIN {
        sum_into(&mut sums, 0);
    } else {
        let mid = (cols / 2).next_multiple_of(16).min(cols);
        let (lo, hi) = sums.split_at_mut(mid);
        rayon::join(|| sum_into(lo, 0), || sum_into(hi, mid));
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::set_threads;

    /// The forward and backward copies of the recurrent weights are the same
    /// whether they are packed one after the other or on two threads.
    #[test]
    fn packs_agree_for_any_thread_count() {
        let config = CellConfig::new(super::super::CellKind::Lstm, 8, 256);
        let mut core = CellCore::new(config, "", &mut Rng::new(4)).unwrap();
        let (batch, h, gw) = (64, 256, 1024);
        assert!(
            batch * h * gw >= PARALLEL_PACK_MACS,
            "the test must reach the parallel path"
        );
        let mut packs = Vec::new();
        for threads in [1, 2] {
            set_threads(threads);
            core.prepare_packs(batch, 10, true);
            assert!(core.packs.fwd_ok && core.packs.bwd_ok);
            packs.push((core.packs.fwd.clone(), core.packs.bwd.clone()));
            core.clear_packs();
        }
        set_threads(1);
        assert!(packs[0] == packs[1], "packed weights differ");
        core.prepare_packs(batch, 10, false);
        assert!(core.packs.fwd_ok && !core.packs.bwd_ok);
    }

    #[test]
    fn column_sums_agree_for_any_thread_count() {
        let mut rng = Rng::new(2);
        // Large enough for the two-thread split, with an odd column count
        // and a column offset inside a wider row.
        let (n, ld, first, cols) = (300, 1003, 2, 999);
        let m: Vec<f32> = (0..n * ld).map(|_| rng.normal()).collect();
        let mut runs = Vec::new();
        for threads in [1, 2] {
            set_threads(threads);
            let mut out = vec![1.0; cols];
            add_column_sums(&m, ld, n, first, cols, &mut out);
            runs.push(out);
        }
        set_threads(1);
        assert_eq!(runs[0], runs[1], "thread counts differ");
        for (j, &got) in runs[0].iter().enumerate() {
            let want: f64 = 1.0 + (0..n).map(|r| m[r * ld + first + j] as f64).sum::<f64>();
            assert!(
                (got as f64 - want).abs() < 1e-3,
                "column {j}: {got} vs {want}"
            );
        }
    }
}
