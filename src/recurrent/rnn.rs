//! The one RNN driver: runs a stack of one or more cells over a sequence, forward
//! and backward through time (Keras's `RNN(cell)` and `RNN(StackedRNNCells)`).
//!
//! Forward: the input projection of all time steps of the first cell is one
//! GEMM; each step then does the recurrent product and the fused gate maths.
//! Cells above the first are interleaved per step (StackedRNNCells). Backward
//! (BPTT) walks the steps in reverse storing the gate gradients, then computes
//! every weight gradient and the input gradient as whole-sequence GEMMs.
//!
//! Layout: batch-first `[B, T, F]` outside, time-major `[T, B, F]` inside.
//! Masking, `go_backwards` and dropout follow Keras (see the crate docs).

use super::build_cell;
use super::cell::{Cell, StepBackward, StepForward};
use super::config::CellConfig;
use crate::layers::{Flow, Layer, Shape};
use crate::params::Params;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The state of one cell: `h [B, H]` and, for LSTM, `c [B, H]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CellState {
    /// Hidden state.
    pub h: Tensor,
    /// Cell state (LSTM only).
    pub c: Option<Tensor>,
}

/// Layer-level options (Keras's RNN arguments).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RnnOptions {
    /// Return the output of every step `[B, T, H]` rather than the last `[B, H]`.
    pub return_sequences: bool,
    /// Also return the final state(s) (see [`RnnOutput::states`]).
    pub return_state: bool,
    /// Process the sequence in reverse; outputs come back in reversed order.
    pub go_backwards: bool,
    /// Keep the final state as the next call's initial state until `reset_states`.
    pub stateful: bool,
}

/// What [`Rnn::forward_seq`] returns.
#[derive(Debug, Clone)]
pub struct RnnOutput {
    /// `[B, T, H]` with `return_sequences`, else `[B, H]`.
    pub output: Tensor,
    /// Final state of every cell, first cell first.
    pub states: Vec<CellState>,
}

/// What [`Rnn::backward_seq`] returns.
#[derive(Debug, Clone)]
pub struct RnnGrads {
    /// d(loss)/d(input) `[B, T, I]`.
    pub dx: Tensor,
    /// d(loss)/d(initial state) of every cell.
    pub d_initial: Vec<CellState>,
}

/// Per-cell forward record kept for BPTT.
#[derive(Debug, Clone)]
struct CellTape {
    /// The cell's inputs after dropout `[T*B, I]`.
    xs: Vec<f32>,
    /// Input dropout mask `[B, I]` (already scaled by 1/(1-p)).
    in_mask: Option<Vec<f32>>,
    /// Recurrent dropout mask `[B, H]`.
    rec_mask: Option<Vec<f32>>,
    /// Hidden states `[(T+1)*B*H]`, the initial one first.
    hs: Vec<f32>,
    /// Cell states like `hs`, or empty.
    cs: Vec<f32>,
    /// Recurrent inputs `[T*B*H]` when recurrent dropout is on, else empty (`hs` is used).
    h_rec: Vec<f32>,
    /// The cell's step caches `[T*B*cache_width]`.
    cache: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Tape {
    batch: usize,
    steps: usize,
    /// Time-major mask `[T*B]` (in processing order), if any.
    mask: Option<Vec<f32>>,
    cells: Vec<CellTape>,
}

/// A recurrent layer: one cell or a stack of cells run step by step.
#[derive(Debug)]
pub struct Rnn {
    name: String,
    cells: Vec<Box<dyn Cell>>,
    /// Layer options.
    pub options: RnnOptions,
    rng: Rng,
    carried: Option<Vec<CellState>>,
    tape: Option<Tape>,
    /// Whether `backward` must compute d(loss)/d(input) (see
    /// [`Layer::set_input_grad_needed`]).
    input_grad_needed: bool,
}

fn inverted_dropout_mask(rng: &mut Rng, len: usize, rate: f32) -> Vec<f32> {
    let keep = 1.0 - rate;
    (0..len)
        .map(|_| {
            if rng.next_f32() < keep {
                1.0 / keep
            } else {
                0.0
            }
        })
        .collect()
}

impl Rnn {
    /// A layer over `cells` (applied in order at every step). Consecutive cells
    /// must chain: each cell's input size is the previous one's units.
    pub fn from_cells(
        name: &str,
        cells: Vec<Box<dyn Cell>>,
        options: RnnOptions,
        seed: u64,
    ) -> Result<Self> {
        if cells.is_empty() {
            return Err(Error::invalid(
                "cells",
                format!("{name}: an RNN needs at least one cell"),
            ));
        }
        for k in 1..cells.len() {
            if cells[k].input_size() != cells[k - 1].units() {
                return Err(Error::shape(
                    format!("{name}: input of cell {k}"),
                    cells[k - 1].units(),
                    cells[k].input_size(),
                ));
            }
        }
        Ok(Rnn {
            name: name.to_string(),
            cells,
            options,
            rng: Rng::new(seed),
            carried: None,
            input_grad_needed: true,
            tape: None,
        })
    }

    /// A layer built from cell configs; weights drawn from `seed`. Cell k's
    /// weights are named with the suffix `_l{k}` (PyTorch's layer index).
    pub fn from_configs(
        name: &str,
        configs: &[CellConfig],
        options: RnnOptions,
        seed: u64,
    ) -> Result<Self> {
        let suffixes: Vec<String> = (0..configs.len()).map(|k| format!("_l{k}")).collect();
        Rnn::with_suffixes(name, configs, &suffixes, options, seed)
    }

    /// Like [`Rnn::from_configs`] with explicit weight-name suffixes, one per cell.
    pub fn with_suffixes(
        name: &str,
        configs: &[CellConfig],
        suffixes: &[String],
        options: RnnOptions,
        seed: u64,
    ) -> Result<Self> {
        let mut rng = Rng::new(seed);
        let cells = configs
            .iter()
            .zip(suffixes)
            .map(|(c, s)| build_cell(c.clone(), s, &mut rng))
            .collect::<Result<Vec<_>>>()?;
        Rnn::from_cells(name, cells, options, rng.next_u64())
    }

    /// The cells, first first.
    pub fn cells(&self) -> &[Box<dyn Cell>] {
        &self.cells
    }

    /// The cells, mutable (to set weights).
    pub fn cells_mut(&mut self) -> &mut [Box<dyn Cell>] {
        &mut self.cells
    }

    /// Units of the last cell (the output width).
    pub fn units(&self) -> usize {
        self.cells[self.cells.len() - 1].units()
    }

    /// Input features expected by the first cell.
    pub fn input_size(&self) -> usize {
        self.cells[0].input_size()
    }

    /// Reseeds the dropout-mask generator (for reproducible masks).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// Renames the layer.
    pub fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }

    /// Parameter count, Keras's way.
    pub fn param_count(&self) -> usize {
        self.cells.iter().map(|c| c.core().params.len()).sum()
    }

    fn check_input(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        initial: Option<&[CellState]>,
    ) -> Result<(usize, usize)> {
        let name = &self.name;
        x.expect_rank(3, &format!("{name} input [batch, time, features]"))?;
        let (b, t, f) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        if f != self.input_size() {
            return Err(Error::shape(
                format!("{name} input features"),
                self.input_size(),
                f,
            ));
        }
        if b == 0 || t == 0 {
            return Err(Error::invalid(
                "input",
                format!("{name}: empty batch or sequence, shape {:?}", x.shape()),
            ));
        }
        if let Some(m) = mask {
            if m.shape() != [b, t] {
                return Err(Error::shape(format!("{name} mask"), [b, t], m.shape()));
            }
        }
        if let Some(states) = initial {
            if states.len() != self.cells.len() {
                return Err(Error::shape(
                    format!("{name} initial states (one per cell)"),
                    self.cells.len(),
                    states.len(),
                ));
            }
            for (k, (s, cell)) in states.iter().zip(&self.cells).enumerate() {
                let want = [b, cell.units()];
                if s.h.shape() != want {
                    return Err(Error::shape(
                        format!("{name} initial h of cell {k}"),
                        want,
                        s.h.shape(),
                    ));
                }
                match (&s.c, cell.state_count()) {
                    (Some(c), 2) if c.shape() != want => {
                        return Err(Error::shape(
                            format!("{name} initial c of cell {k}"),
                            want,
                            c.shape(),
                        ))
                    }
                    (None, 2) => {
                        return Err(Error::invalid(
                            "initial_state",
                            format!("{name}: cell {k} is an LSTM and needs both h and c"),
                        ))
                    }
                    (Some(_), 1) => {
                        return Err(Error::invalid(
                            "initial_state",
                            format!("{name}: cell {k} has no cell state c"),
                        ))
                    }
                    _ => {}
                }
            }
        }
        Ok((b, t))
    }

    /// Runs the layer. `mask` is `[B, T]` (0.0 = padding), `initial` one state per
    /// cell (zeros, or the carried state when stateful, if `None`). In training
    /// mode, dropout is applied and the tape for [`Rnn::backward_seq`] is kept.
    pub fn forward_seq(
        &mut self,
        x: &Tensor,
        mask: Option<&Tensor>,
        initial: Option<&[CellState]>,
        training: bool,
    ) -> Result<RnnOutput> {
        let (batch, steps) = self.check_input(x, mask, initial)?;
        let carried = match (initial, &self.carried) {
            (None, Some(c)) if self.options.stateful && c[0].h.shape()[0] == batch => {
                Some(c.clone())
            }
            _ => None,
        };
        let initial = initial.or(carried.as_deref());
        for cell in self.cells.iter_mut() {
            cell.core_mut().prepare_packs(batch, steps, training);
        }
        let n = batch * steps;
        let rev = self.options.go_backwards;
        let src_t = |t: usize| if rev { steps - 1 - t } else { t };

        // Time-major inputs and mask, in processing order.
        let in0 = self.input_size();
        let mut xs0 = vec![0.0; n * in0];
        for t in 0..steps {
            for b in 0..batch {
                let src = &x.data()[(b * steps + src_t(t)) * in0..][..in0];
                xs0[(t * batch + b) * in0..][..in0].copy_from_slice(src);
            }
        }
        let mask_tm: Option<Vec<f32>> = mask.map(|m| {
            let mut out = vec![0.0; n];
            for t in 0..steps {
                for b in 0..batch {
                    out[t * batch + b] = if m.data()[b * steps + src_t(t)] != 0.0 {
                        1.0
                    } else {
                        0.0
                    };
                }
            }
            out
        });

        // Per-cell records, with dropout masks drawn in cell order.
        let mut tapes = Vec::with_capacity(self.cells.len());
        for (k, cell) in self.cells.iter().enumerate() {
            let (i, h, cfg) = (cell.input_size(), cell.units(), cell.config());
            let in_mask = (training && cfg.dropout > 0.0)
                .then(|| inverted_dropout_mask(&mut self.rng, batch * i, cfg.dropout));
            let rec_mask = (training && cfg.recurrent_dropout > 0.0)
                .then(|| inverted_dropout_mask(&mut self.rng, batch * h, cfg.recurrent_dropout));
            let mut hs = vec![0.0; (steps + 1) * batch * h];
            let mut cs = if cell.state_count() == 2 {
                vec![0.0; (steps + 1) * batch * h]
            } else {
                Vec::new()
            };
            if let Some(init) = initial {
                hs[..batch * h].copy_from_slice(init[k].h.data());
                if let Some(c) = &init[k].c {
                    cs[..batch * h].copy_from_slice(c.data());
                }
            }
            tapes.push(CellTape {
                xs: if k == 0 { Vec::new() } else { vec![0.0; n * i] },
                h_rec: if rec_mask.is_some() {
                    vec![0.0; n * h]
                } else {
                    Vec::new()
                },
                in_mask,
                rec_mask,
                hs,
                cs,
                // Inference keeps no tape: one step's cache is reused.
                cache: vec![0.0; if training { n } else { batch } * cell.cache_width()],
            });
        }
        if let Some(m) = &tapes[0].in_mask {
            for (r, row) in xs0.chunks_exact_mut(in0).enumerate() {
                let mrow = &m[(r % batch) * in0..][..in0];
                row.iter_mut().zip(mrow).for_each(|(v, m)| *v *= m);
            }
        }
        tapes[0].xs = xs0;

        // The first cell's input projection for all steps: one GEMM.
        let gw0 = self.cells[0].config().gate_width();
        let mut xw0 = vec![0.0; n * gw0];
        let fold0 = !self.cells[0].separate_recurrent_grad();
        self.cells[0]
            .core()
            .project_input(&tapes[0].xs, n, &mut xw0, fold0);

        let top = self.cells.len() - 1;
        let h_top = self.units();
        let mut y = vec![0.0; n * h_top];
        let max_gw = self
            .cells
            .iter()
            .map(|c| c.config().gate_width())
            .max()
            .unwrap_or(0);
        let mut scratch = vec![0.0; batch * max_gw];
        let mut xw_step = vec![0.0; batch * max_gw];

        for t in 0..steps {
            for k in 0..self.cells.len() {
                let cell = &self.cells[k];
                let (i, h, gw) = (cell.input_size(), cell.units(), cell.config().gate_width());
                let bh = batch * h;
                // Input projection of this step for cells above the first.
                if k > 0 {
                    let (below, this) = tapes.split_at_mut(k);
                    let x_in = &below[k - 1].hs[(t + 1) * batch * i..][..batch * i];
                    let xs_t = &mut this[0].xs[t * batch * i..][..batch * i];
                    xs_t.copy_from_slice(x_in);
                    if let Some(m) = &this[0].in_mask {
                        xs_t.iter_mut().zip(m).for_each(|(v, m)| *v *= m);
                    }
                    cell.core().project_input(
                        xs_t,
                        batch,
                        &mut xw_step[..batch * gw],
                        !cell.separate_recurrent_grad(),
                    );
                }
                let tape = &mut tapes[k];
                if let Some(m) = &tape.rec_mask {
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
                    &xw0[t * batch * gw..][..batch * gw]
                } else {
                    &xw_step[..batch * gw]
                };
                let cw = cell.cache_width();
                cell.step(StepForward {
                    batch,
                    xw,
                    h_rec,
                    h_prev,
                    c_prev,
                    h: h_next,
                    c: c_next,
                    cache: &mut tape.cache[if training { t } else { 0 } * batch * cw..]
                        [..batch * cw],
                    scratch: &mut scratch[..batch * gw],
                });
                // Masked rows keep their state.
                if let Some(m) = &mask_tm {
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
                        let live = mask_tm.as_ref().is_none_or(|m| m[t * batch + b] != 0.0);
                        let dst = t * bh + b * h;
                        if live {
                            y[dst..dst + h].copy_from_slice(&h_next[b * h..][..h]);
                        } else if t > 0 {
                            y.copy_within(dst - bh..dst - bh + h, dst);
                        }
                    }
                }
            }
        }

        let states: Vec<CellState> = self
            .cells
            .iter()
            .zip(&tapes)
            .map(|(cell, tape)| {
                let bh = batch * cell.units();
                let shape = [batch, cell.units()];
                CellState {
                    h: Tensor::from_vec(&shape, tape.hs[steps * bh..].to_vec()).unwrap_or_default(),
                    c: (!tape.cs.is_empty()).then(|| {
                        Tensor::from_vec(&shape, tape.cs[steps * bh..].to_vec()).unwrap_or_default()
                    }),
                }
            })
            .collect();
        let output = if self.options.return_sequences {
            let mut out = vec![0.0; n * h_top];
            for t in 0..steps {
                for b in 0..batch {
                    out[(b * steps + t) * h_top..][..h_top]
                        .copy_from_slice(&y[(t * batch + b) * h_top..][..h_top]);
                }
            }
            Tensor::from_vec(&[batch, steps, h_top], out)?
        } else {
            Tensor::from_vec(&[batch, h_top], y[(steps - 1) * batch * h_top..].to_vec())?
        };
        if self.options.stateful {
            self.carried = Some(states.clone());
        }
        if !training {
            self.cells
                .iter_mut()
                .for_each(|c| c.core_mut().clear_packs());
        }
        self.tape = training.then_some(Tape {
            batch,
            steps,
            mask: mask_tm,
            cells: tapes,
        });
        Ok(RnnOutput { output, states })
    }

    /// Backpropagates through time for the last training forward. `d_output` has
    /// the shape of the output; `d_states` (optional) are gradients of the final
    /// states. Parameter gradients are accumulated into each cell's `Params`.
    pub fn backward_seq(
        &mut self,
        d_output: &Tensor,
        d_states: Option<&[CellState]>,
    ) -> Result<RnnGrads> {
        let name = self.name.clone();
        let tape = self.tape.take().ok_or_else(|| {
            Error::invalid(
                "backward",
                format!("{name}: backward called without a training forward pass"),
            )
        })?;
        let (batch, steps) = (tape.batch, tape.steps);
        let n = batch * steps;
        let h_top = self.units();
        let want: Vec<usize> = if self.options.return_sequences {
            vec![batch, steps, h_top]
        } else {
            vec![batch, h_top]
        };
        if d_output.shape() != want.as_slice() {
            self.tape = Some(tape);
            return Err(Error::shape(
                format!("{name} output gradient"),
                want,
                d_output.shape(),
            ));
        }
        // Output gradient, time-major [T*B*H].
        let mut dy = vec![0.0; n * h_top];
        if self.options.return_sequences {
            for t in 0..steps {
                for b in 0..batch {
                    dy[(t * batch + b) * h_top..][..h_top]
                        .copy_from_slice(&d_output.data()[(b * steps + t) * h_top..][..h_top]);
                }
            }
        } else {
            dy[(steps - 1) * batch * h_top..].copy_from_slice(d_output.data());
        }

        let cells_n = self.cells.len();
        let mut dh: Vec<Vec<f32>> = Vec::with_capacity(cells_n);
        let mut dc: Vec<Vec<f32>> = Vec::with_capacity(cells_n);
        for (k, cell) in self.cells.iter().enumerate() {
            let bh = batch * cell.units();
            let mut h = vec![0.0; bh];
            let mut c = if cell.state_count() == 2 {
                vec![0.0; bh]
            } else {
                Vec::new()
            };
            if let Some(ds) = d_states.and_then(|s| s.get(k)) {
                if ds.h.len() == bh {
                    h.copy_from_slice(ds.h.data());
                }
                if let Some(g) = ds.c.as_ref().filter(|g| g.len() == c.len()) {
                    c.copy_from_slice(g.data());
                }
            }
            dh.push(h);
            dc.push(c);
        }
        let mut dxw: Vec<Vec<f32>> = self
            .cells
            .iter()
            .map(|c| vec![0.0; n * c.config().gate_width()])
            .collect();
        let mut drec: Vec<Vec<f32>> = self
            .cells
            .iter()
            .map(|c| {
                if c.separate_recurrent_grad() {
                    vec![0.0; n * c.config().gate_width()]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let max_h = self.cells.iter().map(|c| c.units()).max().unwrap_or(0);
        let max_gw = self
            .cells
            .iter()
            .map(|c| c.config().gate_width())
            .max()
            .unwrap_or(0);
        let max_i = self.cells.iter().map(|c| c.input_size()).max().unwrap_or(0);
        let (mut dh_prev, mut dc_prev, mut dh_rec) = (
            vec![0.0; batch * max_h],
            vec![0.0; batch * max_h],
            vec![0.0; batch * max_h],
        );
        let (mut pass_h, mut pass_c) = (vec![0.0; batch * max_h], vec![0.0; batch * max_h]);
        let mut scratch = vec![0.0; batch * max_gw];
        let mut dxin = vec![0.0; batch * max_i];
        let mut carry = vec![0.0; batch * h_top];
        let live = |t: usize, b: usize| tape.mask.as_ref().is_none_or(|m| m[t * batch + b] != 0.0);

        for t in (0..steps).rev() {
            // Output gradient; at a masked step it flows to the previous output.
            let top = cells_n - 1;
            for b in 0..batch {
                let g = &dy[(t * batch + b) * h_top..][..h_top];
                let c = &mut carry[b * h_top..][..h_top];
                if live(t, b) {
                    let d = &mut dh[top][b * h_top..][..h_top];
                    for j in 0..h_top {
                        d[j] += g[j] + c[j];
                        c[j] = 0.0;
                    }
                } else {
                    c.iter_mut().zip(g).for_each(|(c, g)| *c += g);
                }
            }
            for k in (0..cells_n).rev() {
                let cell = &self.cells[k];
                let ct = &tape.cells[k];
                let (i, h, gw, cw) = (
                    cell.input_size(),
                    cell.units(),
                    cell.config().gate_width(),
                    cell.cache_width(),
                );
                let bh = batch * h;
                let has_c = cell.state_count() == 2;
                // Masked rows: the state passed straight through this step.
                if tape.mask.is_some() {
                    for b in 0..batch {
                        let r = b * h..(b + 1) * h;
                        if live(t, b) {
                            pass_h[r.clone()].iter_mut().for_each(|v| *v = 0.0);
                            pass_c[r].iter_mut().for_each(|v| *v = 0.0);
                        } else {
                            pass_h[r.clone()].copy_from_slice(&dh[k][r.clone()]);
                            dh[k][r.clone()].iter_mut().for_each(|v| *v = 0.0);
                            if has_c {
                                pass_c[r.clone()].copy_from_slice(&dc[k][r.clone()]);
                                dc[k][r].iter_mut().for_each(|v| *v = 0.0);
                            }
                        }
                    }
                }
                let h_prev = &ct.hs[t * bh..][..bh];
                let h_rec = if ct.h_rec.is_empty() {
                    h_prev
                } else {
                    &ct.h_rec[t * bh..][..bh]
                };
                let (c_prev, dc_prev_s): (&[f32], &mut [f32]) = if has_c {
                    (&ct.cs[t * bh..][..bh], &mut dc_prev[..bh])
                } else {
                    (&[], &mut [])
                };
                let drec_t: &mut [f32] = if drec[k].is_empty() {
                    &mut []
                } else {
                    &mut drec[k][t * batch * gw..][..batch * gw]
                };
                cell.step_backward(StepBackward {
                    batch,
                    dh: &dh[k],
                    dc: &dc[k],
                    h_rec,
                    h_prev,
                    c_prev,
                    h: &ct.hs[(t + 1) * bh..][..bh],
                    cache: &ct.cache[t * batch * cw..][..batch * cw],
                    dxw: &mut dxw[k][t * batch * gw..][..batch * gw],
                    drec: drec_t,
                    dh_prev: &mut dh_prev[..bh],
                    dc_prev: dc_prev_s,
                    dh_rec: &mut dh_rec[..bh],
                    scratch: &mut scratch[..batch * gw],
                });
                // New running gradients w.r.t. the state before this step.
                let rec_mask = ct.rec_mask.as_deref();
                for idx in 0..bh {
                    let through_rec = dh_rec[idx] * rec_mask.map_or(1.0, |m| m[idx]);
                    dh[k][idx] = dh_prev[idx]
                        + through_rec
                        + if tape.mask.is_some() {
                            pass_h[idx]
                        } else {
                            0.0
                        };
                }
                if has_c {
                    for idx in 0..bh {
                        dc[k][idx] = dc_prev[idx]
                            + if tape.mask.is_some() {
                                pass_c[idx]
                            } else {
                                0.0
                            };
                    }
                }
                // Into the output of the cell below at this step.
                if k > 0 {
                    let d_in = &mut dxin[..batch * i];
                    cell.core()
                        .input_grad(&dxw[k][t * batch * gw..][..batch * gw], batch, d_in);
                    if let Some(m) = &ct.in_mask {
                        d_in.iter_mut().zip(m).for_each(|(d, m)| *d *= m);
                    }
                    dh[k - 1]
                        .iter_mut()
                        .zip(d_in.iter())
                        .for_each(|(a, b)| *a += b);
                }
            }
        }

        // Whole-sequence weight gradients.
        for (k, cell) in self.cells.iter_mut().enumerate() {
            cell.core_mut().clear_packs();
            let ct = &tape.cells[k];
            let bh = batch * cell.units();
            let folded = !cell.separate_recurrent_grad();
            cell.core_mut()
                .accumulate_input_grads(&ct.xs, &dxw[k], n, folded);
            let h_rec_all = if ct.h_rec.is_empty() {
                &ct.hs[..steps * bh]
            } else {
                &ct.h_rec[..]
            };
            let drec_all = if drec[k].is_empty() {
                &dxw[k]
            } else {
                &drec[k]
            };
            cell.accumulate_recurrent_grads(h_rec_all, &ct.cache, drec_all, n);
        }
        // Input gradient: one GEMM, then back to batch-first order. Zeros
        // without any work when the input is data: a sixth of the step's arithmetic.
        let in0 = self.input_size();
        let dx = if self.input_grad_needed {
            self.input_grad_batch_first(&tape, &dxw[0])
        } else {
            vec![0.0; n * in0]
        };
        let d_initial = self
            .cells
            .iter()
            .zip(dh.into_iter().zip(dc))
            .map(|(cell, (h, c))| {
                let shape = [batch, cell.units()];
                Ok(CellState {
                    h: Tensor::from_vec(&shape, h)?,
                    c: if c.is_empty() {
                        None
                    } else {
                        Some(Tensor::from_vec(&shape, c)?)
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RnnGrads {
            dx: Tensor::from_vec(&[batch, steps, in0], dx)?,
            d_initial,
        })
    }

    /// d(loss)/d(input) `[B, T, I]` from the first cell's gate gradients
    /// `dxw` (time-major), with the input dropout mask applied.
    fn input_grad_batch_first(&self, tape: &Tape, dxw: &[f32]) -> Vec<f32> {
        let (batch, steps, in0) = (tape.batch, tape.steps, self.input_size());
        let n = batch * steps;
        let mut dxs = vec![0.0; n * in0];
        self.cells[0].core().input_grad(dxw, n, &mut dxs);
        if let Some(m) = &tape.cells[0].in_mask {
            for (r, row) in dxs.chunks_exact_mut(in0).enumerate() {
                row.iter_mut()
                    .zip(&m[(r % batch) * in0..][..in0])
                    .for_each(|(d, m)| *d *= m);
            }
        }
        let mut dx = vec![0.0; n * in0];
        for t in 0..steps {
            let st = if self.options.go_backwards {
                steps - 1 - t
            } else {
                t
            };
            for b in 0..batch {
                dx[(b * steps + st) * in0..][..in0]
                    .copy_from_slice(&dxs[(t * batch + b) * in0..][..in0]);
            }
        }
        dx
    }
}

impl Layer for Rnn {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        if self.cells.len() == 1 {
            self.cells[0].config().kind.keras_name()
        } else {
            "RNN"
        }
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        if input.len() != 3 || input[2] != Some(self.input_size()) {
            return Err(Error::shape(
                format!("{} input", self.name),
                format!("(None, timesteps, {})", self.input_size()),
                input,
            ));
        }
        Ok(if self.options.return_sequences {
            vec![None, input[1], Some(self.units())]
        } else {
            vec![None, Some(self.units())]
        })
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let out = self.forward_seq(&input.x, input.mask.as_ref(), None, training)?;
        let mask = if self.options.return_sequences {
            input.mask
        } else {
            None
        };
        Ok(Flow {
            x: out.output,
            mask,
        })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        Ok(self.backward_seq(&d_output, None)?.dx)
    }

    fn set_input_grad_needed(&mut self, needed: bool) {
        self.input_grad_needed = needed;
    }

    fn params(&self) -> Vec<&Params> {
        self.cells.iter().map(|c| &c.core().params).collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Params> {
        self.cells
            .iter_mut()
            .map(|c| &mut c.core_mut().params)
            .collect()
    }

    fn reset_states(&mut self) {
        self.carried = None;
    }

    fn reseed(&mut self, seed: u64) {
        Rnn::reseed(self, seed);
    }

    fn set_stateful(&mut self, stateful: bool) {
        self.options.stateful = stateful;
        if !stateful {
            self.carried = None;
        }
    }
}
