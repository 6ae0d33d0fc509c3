//! The time loops of the RNN driver ([`super::Rnn`]): one row block's
//! forward steps and reverse (BPTT) steps, over that block's slices of the
//! driver's buffers (see [`super::rows`]). The driver prepares the buffers,
//! runs the blocks on their threads and does the whole-sequence GEMMs.

use super::cell::{Cell, StepBackward, StepForward};

/// `dst = src`, times a dropout mask of the same length when there is one.
pub(super) fn copy_masked(dst: &mut [f32], src: &[f32], mask: Option<&[f32]>) {
    match mask {
        Some(m) => dst
            .iter_mut()
            .zip(src)
            .zip(m)
            .for_each(|((d, s), m)| *d = s * m),
        None => dst.copy_from_slice(src),
    }
}

/// One row block's share of a cell's forward buffers (see [`super::rows`]).
pub(super) struct CellRows<'a> {
    pub(super) xs: &'a mut [f32],
    pub(super) h_rec: &'a mut [f32],
    pub(super) hs: &'a mut [f32],
    pub(super) cs: &'a mut [f32],
    pub(super) cache: &'a mut [f32],
    /// Whether `cache` has every step's rows (else one step's, reused).
    pub(super) all_steps: bool,
    pub(super) in_mask: Option<&'a [f32]>,
    pub(super) rec_mask: Option<&'a [f32]>,
}

/// One row block of the forward pass: its rows of every buffer.
pub(super) struct ForwardBlock<'a> {
    pub(super) rows: usize,
    pub(super) cells: Vec<CellRows<'a>>,
    /// The first cell's input projection, `[steps, rows, GW]`; empty when the
    /// driver wrote it into that cell's cache ([`Cell::gates_in_cache`]).
    pub(super) xw0: &'a [f32],
    pub(super) y: &'a mut [f32],
    pub(super) mask: Option<&'a [f32]>,
}

/// The forward time loop over one row block.
pub(super) fn forward_block(cells: &[Box<dyn Cell>], steps: usize, block: ForwardBlock<'_>) {
    let ForwardBlock {
        rows: batch,
        cells: mut tapes,
        xw0,
        y,
        mask,
    } = block;
    let top = cells.len() - 1;
    let max_gw = cells
        .iter()
        .map(|c| c.config().gate_width())
        .max()
        .unwrap_or(0);
    let mut scratch = vec![0.0; batch * max_gw];
    let mut xw_step = vec![0.0; batch * max_gw];
    for t in 0..steps {
        for (k, cell) in cells.iter().enumerate() {
            let (i, h, gw) = (cell.input_size(), cell.units(), cell.config().gate_width());
            let (bh, cw) = (batch * h, cell.cache_width());
            // This step's rows of the cell's cache (one step's, reused, when
            // the cache does not keep every step).
            let slot = if tapes[k].all_steps { t } else { 0 } * batch * cw;
            // Input projection of this step for cells above the first: into
            // the cache for a cell that keeps its gates there, else apart.
            let in_cache = k > 0 && cell.gates_in_cache();
            if k > 0 {
                let (below, this) = tapes.split_at_mut(k);
                let x_in = &below[k - 1].hs[(t + 1) * batch * i..][..batch * i];
                let this = &mut this[0];
                let xs_t = &mut this.xs[t * batch * i..][..batch * i];
                copy_masked(xs_t, x_in, this.in_mask);
                let (dst, ld) = if in_cache {
                    (&mut this.cache[slot..][..batch * cw], cw)
                } else {
                    (&mut xw_step[..batch * gw], gw)
                };
                let fold = !cell.separate_recurrent_grad();
                cell.core().project_input(xs_t, batch, dst, ld, fold);
            }
            let tape = &mut tapes[k];
            if let Some(m) = tape.rec_mask {
                let h_prev = &tape.hs[t * bh..][..bh];
                let dst = &mut tape.h_rec[t * bh..][..bh];
                for ((d, &hp), &mv) in dst.iter_mut().zip(h_prev).zip(m) {
                    *d = hp * mv;
                }
            }
            let (hs_prev, hs_next) = tape.hs.split_at_mut((t + 1) * bh);
            let h_prev = &hs_prev[t * bh..];
            let h_next = &mut hs_next[..bh];
            let (c_prev, c_next): (&[f32], &mut [f32]) = if tape.cs.is_empty() {
                (&[], &mut [])
            } else {
                let (a, b) = tape.cs.split_at_mut((t + 1) * bh);
                (&a[t * bh..], &mut b[..bh])
            };
            let h_rec: &[f32] = if tape.h_rec.is_empty() {
                h_prev
            } else {
                &tape.h_rec[t * bh..][..bh]
            };
            let xw: &[f32] = if k == 0 {
                xw0.get(t * batch * gw..(t + 1) * batch * gw)
                    .unwrap_or_default()
            } else if in_cache {
                &[]
            } else {
                &xw_step[..batch * gw]
            };
            cell.step(StepForward {
                batch,
                xw,
                h_rec,
                h_prev,
                c_prev,
                h: h_next,
                c: c_next,
                cache: &mut tape.cache[slot..][..batch * cw],
                scratch: &mut scratch[..batch * gw],
            });
            // Masked rows keep their state.
            if let Some(m) = mask {
                for b in 0..batch {
                    if m[t * batch + b] == 0.0 {
                        h_next[b * h..][..h].copy_from_slice(&h_prev[b * h..][..h]);
                        if !c_next.is_empty() {
                            c_next[b * h..][..h].copy_from_slice(&c_prev[b * h..][..h]);
                        }
                    }
                }
            }
            if k == top {
                for b in 0..batch {
                    let live = mask.is_none_or(|m| m[t * batch + b] != 0.0);
                    let dst = t * bh + b * h;
                    if live {
                        y[dst..dst + h].copy_from_slice(&h_next[b * h..][..h]);
                    } else if t > 0 {
                        y.copy_within(dst - bh..dst - bh + h, dst);
                    } else {
                        y[dst..dst + h].fill(0.0);
                    }
                }
            }
        }
    }
}

/// One row block's share of a cell's backward buffers: its gradients
/// (written) and its part of the forward record.
pub(super) struct CellGradRows<'a> {
    /// The gate gradients `[steps, rows, GW]`; empty when the cell writes
    /// them into its cache ([`Cell::gates_in_cache`]).
    pub(super) dxw: &'a mut [f32],
    pub(super) drec: &'a mut [f32],
    /// The running d(loss)/d(h) and d(loss)/d(c), `[rows, H]`.
    pub(super) dh: &'a mut [f32],
    pub(super) dc: &'a mut [f32],
    pub(super) hs: &'a [f32],
    pub(super) cs: &'a [f32],
    pub(super) h_rec: &'a [f32],
    pub(super) cache: &'a mut [f32],
    pub(super) in_mask: Option<&'a [f32]>,
    pub(super) rec_mask: Option<&'a [f32]>,
}

/// One row block of the backward pass.
pub(super) struct BackwardBlock<'a> {
    pub(super) rows: usize,
    pub(super) cells: Vec<CellGradRows<'a>>,
    /// The output gradient, `[steps, rows, H]`; or `[rows, H]` for the last
    /// step only when `dy_last_only` (the other steps' being zero).
    pub(super) dy: &'a [f32],
    pub(super) dy_last_only: bool,
    pub(super) mask: Option<&'a [f32]>,
}

/// The reverse time loop over one row block: gate gradients of every step and
/// the running state gradients.
pub(super) fn backward_block(cells: &[Box<dyn Cell>], steps: usize, block: BackwardBlock<'_>) {
    let BackwardBlock {
        rows: batch,
        cells: mut g,
        dy,
        dy_last_only,
        mask,
    } = block;
    let cells_n = cells.len();
    let top = cells_n - 1;
    let h_top = cells[top].units();
    let max_h = cells.iter().map(|c| c.units()).max().unwrap_or(0);
    let max_gw = cells
        .iter()
        .map(|c| c.config().gate_width())
        .max()
        .unwrap_or(0);
    let max_i = cells.iter().map(|c| c.input_size()).max().unwrap_or(0);
    let (mut dh_prev, mut dc_prev, mut dh_rec) = (
        vec![0.0; batch * max_h],
        vec![0.0; batch * max_h],
        vec![0.0; batch * max_h],
    );
    let (mut pass_h, mut pass_c) = (vec![0.0; batch * max_h], vec![0.0; batch * max_h]);
    let mut scratch = vec![0.0; batch * max_gw];
    let mut dxin = vec![0.0; batch * max_i];
    let mut carry = vec![0.0; batch * h_top];
    let live = |t: usize, b: usize| mask.is_none_or(|m| m[t * batch + b] != 0.0);

    for t in (0..steps).rev() {
        // Output gradient; at a masked step it flows to the previous output.
        let dy_t = match (dy_last_only, t + 1 == steps) {
            (false, _) => Some(&dy[t * batch * h_top..][..batch * h_top]),
            (true, true) => Some(&dy[..batch * h_top]),
            (true, false) => None,
        };
        // With no output gradient this step and no mask, the carry is zero
        // and there is nothing to add.
        if dy_t.is_some() || mask.is_some() {
            for b in 0..batch {
                let c = &mut carry[b * h_top..][..h_top];
                let dyb = dy_t.map(|d| &d[b * h_top..][..h_top]);
                if live(t, b) {
                    let d = &mut g[top].dh[b * h_top..][..h_top];
                    match dyb {
                        Some(dyb) => {
                            for j in 0..h_top {
                                d[j] += dyb[j] + c[j];
                                c[j] = 0.0;
                            }
                        }
                        None => {
                            for j in 0..h_top {
                                d[j] += c[j];
                                c[j] = 0.0;
                            }
                        }
                    }
                } else if let Some(dyb) = dyb {
                    c.iter_mut().zip(dyb).for_each(|(c, g)| *c += g);
                }
            }
        }
        for k in (0..cells_n).rev() {
            let cell = &cells[k];
            let (i, h, gw, cw) = (
                cell.input_size(),
                cell.units(),
                cell.config().gate_width(),
                cell.cache_width(),
            );
            let bh = batch * h;
            let has_c = cell.state_count() == 2;
            let gk = &mut g[k];
            // Masked rows: the state passed straight through this step.
            if mask.is_some() {
                for b in 0..batch {
                    let r = b * h..(b + 1) * h;
                    if live(t, b) {
                        pass_h[r.clone()].iter_mut().for_each(|v| *v = 0.0);
                        pass_c[r].iter_mut().for_each(|v| *v = 0.0);
                    } else {
                        pass_h[r.clone()].copy_from_slice(&gk.dh[r.clone()]);
                        gk.dh[r.clone()].iter_mut().for_each(|v| *v = 0.0);
                        if has_c {
                            pass_c[r.clone()].copy_from_slice(&gk.dc[r.clone()]);
                            gk.dc[r].iter_mut().for_each(|v| *v = 0.0);
                        }
                    }
                }
            }
            let h_prev = &gk.hs[t * bh..][..bh];
            let h_rec = if gk.h_rec.is_empty() {
                h_prev
            } else {
                &gk.h_rec[t * bh..][..bh]
            };
            let (c_prev, dc_prev_s): (&[f32], &mut [f32]) = if has_c {
                (&gk.cs[t * bh..][..bh], &mut dc_prev[..bh])
            } else {
                (&[], &mut [])
            };
            let drec_t: &mut [f32] = if gk.drec.is_empty() {
                &mut []
            } else {
                &mut gk.drec[t * batch * gw..][..batch * gw]
            };
            let dxw_t: &mut [f32] = if gk.dxw.is_empty() {
                &mut []
            } else {
                &mut gk.dxw[t * batch * gw..][..batch * gw]
            };
            cell.step_backward(StepBackward {
                batch,
                dh: gk.dh,
                dc: gk.dc,
                h_rec,
                h_prev,
                c_prev,
                h: &gk.hs[(t + 1) * bh..][..bh],
                cache: &mut gk.cache[t * batch * cw..][..batch * cw],
                dxw: dxw_t,
                drec: drec_t,
                dh_prev: &mut dh_prev[..bh],
                dc_prev: dc_prev_s,
                dh_rec: &mut dh_rec[..bh],
                scratch: &mut scratch[..batch * gw],
            });
            // New running gradients w.r.t. the state before this step (one
            // loop per case, so that each is a plain vector loop).
            let dh = &mut gk.dh[..bh];
            let (dh_prev, dh_rec) = (&dh_prev[..bh], &dh_rec[..bh]);
            match gk.rec_mask {
                Some(m) => {
                    for (((d, &p), &r), &m) in dh.iter_mut().zip(dh_prev).zip(dh_rec).zip(m) {
                        *d = p + r * m;
                    }
                }
                None => {
                    for ((d, &p), &r) in dh.iter_mut().zip(dh_prev).zip(dh_rec) {
                        *d = p + r;
                    }
                }
            }
            if mask.is_some() {
                dh.iter_mut().zip(&pass_h[..bh]).for_each(|(d, p)| *d += p);
            }
            if has_c {
                let dc = &mut gk.dc[..bh];
                dc.copy_from_slice(&dc_prev[..bh]);
                if mask.is_some() {
                    dc.iter_mut().zip(&pass_c[..bh]).for_each(|(d, p)| *d += p);
                }
            }
            // Into the output of the cell below at this step.
            if k > 0 {
                let d_in = &mut dxin[..batch * i];
                let (d, ld) = if gk.dxw.is_empty() {
                    (&gk.cache[t * batch * cw..][..batch * cw], cw)
                } else {
                    (&gk.dxw[t * batch * gw..][..batch * gw], gw)
                };
                cell.core().input_grad(d, ld, batch, d_in);
                if let Some(m) = gk.in_mask {
                    d_in.iter_mut().zip(m).for_each(|(d, m)| *d *= m);
                }
                g[k - 1]
                    .dh
                    .iter_mut()
                    .zip(d_in.iter())
                    .for_each(|(a, b)| *a += b);
            }
        }
    }
}
