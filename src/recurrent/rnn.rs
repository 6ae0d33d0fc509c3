//! The one RNN driver: runs a stack of one or more cells over a sequence, forward
//! and backward through time (Keras's `RNN(cell)` and `RNN(StackedRNNCells)`).
//!
//! Forward: the input projection of all time steps of the first cell is one
//! GEMM (or, for token rows of a small table, one GEMM over the table and a
//! gather: see [`super::tokens`]); each step then does the recurrent product
//! and the fused gate maths. An LSTM keeps its gates in its cache
//! ([`Cell::gates_in_cache`]): the projection is written there, the step
//! completes the gates in place, and backward overwrites them with their
//! gradients, so neither direction needs a buffer of its own.
//! Cells above the first are interleaved per step (StackedRNNCells). Backward
//! (BPTT) walks the steps in reverse storing the gate gradients, then computes
//! every weight gradient and the input gradient as whole-sequence GEMMs.
//!
//! Layout: batch-first `[B, T, F]` outside; inside, time-major `[T, B, F]` per
//! block of batch rows, the blocks running on separate threads (see [`super::rows`]).
//! Masking, `go_backwards` and dropout follow Keras (see the crate docs).

use super::build_cell;
use super::cell::Cell;
use super::config::CellConfig;
use super::pool::BufferPool;
use super::rows::{self, RowLayout};
use super::time_loop::{
    backward_block, copy_masked, forward_block, BackwardBlock, CellGradRows, CellRows, ForwardBlock,
};
use super::tokens::{sum_rows_by_token, TokenTape};
use crate::kernels::rows::gather_rows;
use crate::layers::{Flow, Layer, Shape, TokenRows};
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
    /// d(loss)/d(input) `[B, T, I]`; empty after a pass given token rows
    /// (see [`Layer::forward_tokens`]), whose table gradient is kept instead.
    pub dx: Tensor,
    /// d(loss)/d(initial state) of every cell.
    pub d_initial: Vec<CellState>,
}

/// Per-cell forward record kept for BPTT. Per-step buffers are in the inside
/// order (row blocks, then time; see [`super::rows`]); masks are batch-first.
#[derive(Debug, Clone)]
struct CellTape {
    /// The cell's inputs after dropout `[T*B, I]`.
    xs: Vec<f32>,
    /// Input dropout mask `[B, I]` (already scaled by 1/(1-p)).
    in_mask: Option<Vec<f32>>,
    /// Recurrent dropout mask `[B, H]`.
    rec_mask: Option<Vec<f32>>,
    /// Hidden states `[(T+1)*B*H]`, each block's initial states first.
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
    layout: RowLayout,
    /// The first cell's input as token rows, when the pass was given them.
    tokens: Option<TokenTape>,
    /// The mask in the inside order (processing order), if any.
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
    /// Row blocks of every pass, instead of [`rows::block_count`]'s choice (tests).
    row_blocks: Option<usize>,
    /// Large buffers of earlier passes, reused.
    pool: BufferPool,
    /// d(loss)/d(table) of the last backward of a pass given token rows.
    table_grad: Option<Tensor>,
}

fn inverted_dropout_mask(rng: &mut Rng, len: usize, rate: f32) -> Vec<f32> {
    let keep = 1.0 - rate;
    // Branch-free: a coin flip per value defeats the branch predictor.
    (0..len)
        .map(|_| f32::from(u8::from(rng.next_f32() < keep)) * (1.0 / keep))
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
            row_blocks: None,
            pool: BufferPool::default(),
            table_grad: None,
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

    /// The row blocks of a pass over `batch` rows (see [`super::rows`]).
    fn row_layout(&self, batch: usize, steps: usize) -> RowLayout {
        let blocks = self.row_blocks.unwrap_or_else(|| rows::block_count(batch));
        RowLayout::new(batch, steps, blocks)
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
        crate::threads::in_pool(|| self.forward_seq_here(x, mask, initial, training, None))
    }

    /// [`Rnn::forward_seq`] on the calling thread; `tokens`, when given and
    /// usable, are the rows of `x` (see [`super::tokens`]).
    fn forward_seq_here(
        &mut self,
        x: &Tensor,
        mask: Option<&Tensor>,
        initial: Option<&[CellState]>,
        training: bool,
        tokens: Option<TokenRows>,
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
        if let Some(old) = self.tape.take() {
            self.recycle(old);
        }
        let layout = self.row_layout(batch, steps);
        let n = batch * steps;
        let rev = self.options.go_backwards;
        let src_t = |t: usize| if rev { steps - 1 - t } else { t };

        // Per-cell records, with dropout masks drawn in cell order.
        let mut tapes = Vec::with_capacity(self.cells.len());
        for (k, cell) in self.cells.iter().enumerate() {
            let (i, h, cfg) = (cell.input_size(), cell.units(), cell.config());
            let in_mask = (training && cfg.dropout > 0.0)
                .then(|| inverted_dropout_mask(&mut self.rng, batch * i, cfg.dropout));
            let rec_mask = (training && cfg.recurrent_dropout > 0.0)
                .then(|| inverted_dropout_mask(&mut self.rng, batch * h, cfg.recurrent_dropout));
            // Every buffer is written in full before it is read: the steps
            // write the states after the first, and the first is set here.
            let has_c = cell.state_count() == 2;
            let mut hs = self.pool.take_uninit((steps + 1) * batch * h);
            let mut cs = self.pool.take_uninit(if has_c { hs.len() } else { 0 });
            for b in 0..batch {
                let r = layout.state_row(0, b) * h..layout.state_row(0, b) * h + h;
                let init_h = initial.map(|init| &init[k].h.data()[b * h..][..h]);
                let init_c = initial.and_then(|init| init[k].c.as_ref());
                match init_h {
                    Some(v) => hs[r.clone()].copy_from_slice(v),
                    None => hs[r.clone()].fill(0.0),
                }
                if has_c {
                    match init_c {
                        Some(c) => cs[r].copy_from_slice(&c.data()[b * h..][..h]),
                        None => cs[r].fill(0.0),
                    }
                }
            }
            let h_rec_len = if rec_mask.is_some() { n * h } else { 0 };
            // Inference keeps no tape: one step's cache is reused, unless the
            // first cell's cache holds the input projection of every step.
            let all_steps = training || (k == 0 && cell.gates_in_cache());
            let cache_len = if all_steps { n } else { batch } * cell.cache_width();
            tapes.push(CellTape {
                xs: self.pool.take_uninit(if k == 0 { 0 } else { n * i }),
                h_rec: self.pool.take_uninit(h_rec_len),
                in_mask,
                rec_mask,
                hs,
                cs,
                cache: self.pool.take_uninit(cache_len),
            });
        }

        // Token rows stand for the input unless input dropout changes the rows,
        // and only when they are the input's rows: otherwise the plain pass runs.
        let in0 = self.input_size();
        let tokens = tokens.filter(|t| tapes[0].in_mask.is_none() && t.describes(x.data(), in0));
        let token_tape = tokens.map(|t| {
            let mut row_ids = vec![0; n];
            for b in 0..batch {
                for t_ in 0..steps {
                    row_ids[layout.row(t_, b)] = t.ids[b * steps + src_t(t_)];
                }
            }
            TokenTape {
                row_ids,
                vocab: t.vocab(),
                table: t.table,
            }
        });
        // Otherwise the inputs in the inside order, the first cell's input
        // dropout applied.
        if token_tape.is_none() {
            let mut xs0 = self.pool.take_uninit(n * in0);
            for b in 0..batch {
                for t in 0..steps {
                    let src = &x.data()[(b * steps + src_t(t)) * in0..][..in0];
                    let dst = &mut xs0[layout.row(t, b) * in0..][..in0];
                    let mask = tapes[0].in_mask.as_deref().map(|m| &m[b * in0..][..in0]);
                    copy_masked(dst, src, mask);
                }
            }
            tapes[0].xs = xs0;
        }
        let mask_rows: Option<Vec<f32>> = mask.map(|m| {
            let mut out = vec![0.0; n];
            for b in 0..batch {
                for t in 0..steps {
                    let live = m.data()[b * steps + src_t(t)] != 0.0;
                    out[layout.row(t, b)] = if live { 1.0 } else { 0.0 };
                }
            }
            out
        });

        // The first cell's input projection for all steps: one GEMM (of the
        // table's rows, gathered, for token rows), written into the cell's
        // cache when it takes it there (rows `cache_width` apart), else into `xw0`.
        let gw0 = self.cells[0].config().gate_width();
        let in_cache = self.cells[0].gates_in_cache();
        let mut xw0 = self.pool.take_uninit(if in_cache { 0 } else { n * gw0 });
        let tape0 = &mut tapes[0];
        let (dst0, ld0) = if in_cache {
            (&mut tape0.cache, self.cells[0].cache_width())
        } else {
            (&mut xw0, gw0)
        };
        let fold0 = !self.cells[0].separate_recurrent_grad();
        let core0 = self.cells[0].core();
        match &token_tape {
            Some(tok) => {
                let mut projected = self.pool.take_uninit(tok.vocab * gw0);
                core0.project_input(&tok.table, tok.vocab, &mut projected, gw0, fold0);
                gather_rows(&projected, gw0, &tok.row_ids, dst0, ld0);
                self.pool.give(projected);
            }
            None => core0.project_input(&tape0.xs, n, dst0, ld0, fold0),
        }

        // The time loop, one row block per thread.
        let h_top = self.units();
        let mut y = self.pool.take_uninit(n * h_top);
        let mut blocks: Vec<ForwardBlock<'_>> = layout
            .split_mut(&mut y, steps * h_top)
            .into_iter()
            .enumerate()
            .map(|(p, y)| ForwardBlock {
                rows: layout.blocks[p].len(),
                cells: Vec::with_capacity(tapes.len()),
                xw0: layout.part(&xw0, p, steps * gw0),
                y,
                mask: mask_rows.as_deref().map(|m| layout.part(m, p, steps)),
            })
            .collect();
        for (cell, tape) in self.cells.iter().zip(tapes.iter_mut()) {
            let (i, h, cw) = (cell.input_size(), cell.units(), cell.cache_width());
            let cache_steps = if tape.cache.len() == n * cw { steps } else { 1 };
            let CellTape {
                xs,
                in_mask,
                rec_mask,
                hs,
                cs,
                h_rec,
                cache,
            } = tape;
            let mut xs = layout.split_mut(xs, steps * i).into_iter();
            let mut h_rec = layout.split_mut(h_rec, steps * h).into_iter();
            let mut hs = layout.split_mut(hs, (steps + 1) * h).into_iter();
            let mut cs = layout.split_mut(cs, (steps + 1) * h).into_iter();
            let mut cache = layout.split_mut(cache, cache_steps * cw).into_iter();
            for (p, block) in blocks.iter_mut().enumerate() {
                block.cells.push(CellRows {
                    xs: xs.next().unwrap_or_default(),
                    h_rec: h_rec.next().unwrap_or_default(),
                    hs: hs.next().unwrap_or_default(),
                    cs: cs.next().unwrap_or_default(),
                    cache: cache.next().unwrap_or_default(),
                    all_steps: cache_steps == steps,
                    in_mask: in_mask.as_deref().map(|m| layout.part(m, p, i)),
                    rec_mask: rec_mask.as_deref().map(|m| layout.part(m, p, h)),
                });
            }
        }
        let cells = &self.cells;
        rows::run_blocks(blocks, |block| forward_block(cells, steps, block));

        // Final states and the output, back in batch-first order.
        let states: Vec<CellState> = self
            .cells
            .iter()
            .zip(&tapes)
            .map(|(cell, tape)| {
                let h = cell.units();
                let last = |buf: &[f32]| {
                    let mut out = vec![0.0; batch * h];
                    for (b, row) in out.chunks_exact_mut(h).enumerate() {
                        row.copy_from_slice(&buf[layout.state_row(steps, b) * h..][..h]);
                    }
                    Tensor::from_vec(&[batch, h], out).unwrap_or_default()
                };
                CellState {
                    h: last(&tape.hs),
                    c: (!tape.cs.is_empty()).then(|| last(&tape.cs)),
                }
            })
            .collect();
        let output = if self.options.return_sequences {
            // Filled in batch-first order, row by row (no clearing pass first).
            let mut out = Vec::with_capacity(n * h_top);
            for b in 0..batch {
                for t in 0..steps {
                    out.extend_from_slice(&y[layout.row(t, b) * h_top..][..h_top]);
                }
            }
            Tensor::from_vec(&[batch, steps, h_top], out)?
        } else {
            let mut out = vec![0.0; batch * h_top];
            for (b, row) in out.chunks_exact_mut(h_top).enumerate() {
                row.copy_from_slice(&y[layout.row(steps - 1, b) * h_top..][..h_top]);
            }
            Tensor::from_vec(&[batch, h_top], out)?
        };
        if self.options.stateful {
            self.carried = Some(states.clone());
        }
        if !training {
            self.cells
                .iter_mut()
                .for_each(|c| c.core_mut().clear_packs());
        }
        self.pool.give(xw0);
        self.pool.give(y);
        let tape = Tape {
            layout,
            tokens: token_tape,
            mask: mask_rows,
            cells: tapes,
        };
        if training {
            self.tape = Some(tape);
        } else {
            self.recycle(tape);
        }
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
        crate::threads::in_pool(|| self.backward_seq_here(d_output, d_states))
    }

    /// [`Rnn::backward_seq`] on the calling thread.
    fn backward_seq_here(
        &mut self,
        d_output: &Tensor,
        d_states: Option<&[CellState]>,
    ) -> Result<RnnGrads> {
        let name = self.name.clone();
        let mut tape = self.tape.take().ok_or_else(|| {
            Error::invalid(
                "backward",
                format!("{name}: backward called without a training forward pass"),
            )
        })?;
        let layout = &tape.layout;
        let (batch, steps) = (layout.batch, layout.steps);
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
        // Output gradient in the inside order: every step's, or (without
        // return_sequences) only the last step's `[B, H]` rows, the others
        // being zero (clearing and reading them was ~1 % of B's step).
        let rows_per_block_row = if self.options.return_sequences {
            steps
        } else {
            1
        };
        let mut dy = self.pool.take_uninit(batch * rows_per_block_row * h_top);
        for b in 0..batch {
            if self.options.return_sequences {
                for t in 0..steps {
                    dy[layout.row(t, b) * h_top..][..h_top]
                        .copy_from_slice(&d_output.data()[(b * steps + t) * h_top..][..h_top]);
                }
            } else {
                dy[b * h_top..][..h_top].copy_from_slice(&d_output.data()[b * h_top..][..h_top]);
            }
        }

        // Running gradients of each cell's state, batch-first `[B, H]`, from
        // `d_states`; after the loop they are those of the initial states.
        let mut dh: Vec<Vec<f32>> = Vec::with_capacity(self.cells.len());
        let mut dc: Vec<Vec<f32>> = Vec::with_capacity(self.cells.len());
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
        // Gate gradients: every step writes its rows (over the gates in the
        // cache for cells that keep them there).
        let mut dxw: Vec<Vec<f32>> = Vec::with_capacity(self.cells.len());
        let mut drec: Vec<Vec<f32>> = Vec::with_capacity(self.cells.len());
        for c in &self.cells {
            let len = n * c.config().gate_width();
            dxw.push(
                self.pool
                    .take_uninit(if c.gates_in_cache() { 0 } else { len }),
            );
            let separate = c.separate_recurrent_grad();
            drec.push(self.pool.take_uninit(if separate { len } else { 0 }));
        }

        // The reverse time loop, one row block per thread.
        let mut blocks: Vec<BackwardBlock<'_>> = (0..layout.blocks.len())
            .map(|p| BackwardBlock {
                rows: layout.blocks[p].len(),
                cells: Vec::with_capacity(self.cells.len()),
                dy: layout.part(&dy, p, rows_per_block_row * h_top),
                dy_last_only: !self.options.return_sequences,
                mask: tape.mask.as_deref().map(|m| layout.part(m, p, steps)),
            })
            .collect();
        let grads = dxw
            .iter_mut()
            .zip(drec.iter_mut())
            .zip(dh.iter_mut().zip(&mut dc));
        for ((cell, ct), ((dxw_k, drec_k), (dh_k, dc_k))) in
            self.cells.iter().zip(&mut tape.cells).zip(grads)
        {
            let (i, h, gw, cw) = (
                cell.input_size(),
                cell.units(),
                cell.config().gate_width(),
                cell.cache_width(),
            );
            let mut dxw_k = layout.split_mut(dxw_k, steps * gw).into_iter();
            let mut drec_k = layout.split_mut(drec_k, steps * gw).into_iter();
            let mut dh_k = layout.split_mut(dh_k, h).into_iter();
            let mut dc_k = layout.split_mut(dc_k, h).into_iter();
            let mut cache_k = layout.split_mut(&mut ct.cache, steps * cw).into_iter();
            for (p, block) in blocks.iter_mut().enumerate() {
                block.cells.push(CellGradRows {
                    dxw: dxw_k.next().unwrap_or_default(),
                    drec: drec_k.next().unwrap_or_default(),
                    dh: dh_k.next().unwrap_or_default(),
                    dc: dc_k.next().unwrap_or_default(),
                    hs: layout.part(&ct.hs, p, (steps + 1) * h),
                    cs: layout.part(&ct.cs, p, (steps + 1) * h),
                    h_rec: layout.part(&ct.h_rec, p, steps * h),
                    cache: cache_k.next().unwrap_or_default(),
                    in_mask: ct.in_mask.as_deref().map(|m| layout.part(m, p, i)),
                    rec_mask: ct.rec_mask.as_deref().map(|m| layout.part(m, p, h)),
                });
            }
        }
        let cells = &self.cells;
        rows::run_blocks(blocks, |block| backward_block(cells, steps, block));

        // Where each cell's gate gradients are, and their row stride.
        let gate_grads: Vec<(&[f32], usize)> = self
            .cells
            .iter()
            .zip(&tape.cells)
            .zip(&dxw)
            .map(|((cell, ct), d)| {
                if cell.gates_in_cache() {
                    (ct.cache.as_slice(), cell.cache_width())
                } else {
                    (d.as_slice(), cell.config().gate_width())
                }
            })
            .collect();
        // Token rows: the first cell's gate gradients summed per token.
        let token_sums = tape.tokens.as_ref().map(|tok| {
            let gw0 = self.cells[0].config().gate_width();
            let mut sums = self.pool.take_uninit(tok.vocab * gw0);
            let (d0, ld0) = gate_grads[0];
            sum_rows_by_token(d0, gw0, ld0, &tok.row_ids, &mut sums);
            sums
        });
        // Whole-sequence weight gradients (the recurrent ones per row block:
        // each block's states are contiguous).
        for (k, cell) in self.cells.iter_mut().enumerate() {
            cell.core_mut().clear_packs();
            let ct = &tape.cells[k];
            let (h, gw, cw) = (cell.units(), cell.config().gate_width(), cell.cache_width());
            let folded = !cell.separate_recurrent_grad();
            match (k, &tape.tokens, &token_sums) {
                (0, Some(tok), Some(sums)) => cell
                    .core_mut()
                    .accumulate_input_grads(&tok.table, sums, gw, tok.vocab, folded),
                _ => {
                    let (d, ld) = gate_grads[k];
                    cell.core_mut()
                        .accumulate_input_grads(&ct.xs, d, ld, n, folded)
                }
            }
            // The recurrent gradients: apart, or the gate gradients (left
            // empty when those are in the cache, where the cell reads them).
            let drec_all: &[f32] = if !drec[k].is_empty() {
                &drec[k]
            } else {
                &dxw[k]
            };
            for (p, r) in layout.blocks.iter().enumerate() {
                let rows = r.len() * steps;
                let h_rec = if ct.h_rec.is_empty() {
                    &layout.part(&ct.hs, p, (steps + 1) * h)[..rows * h]
                } else {
                    layout.part(&ct.h_rec, p, steps * h)
                };
                cell.accumulate_recurrent_grads(
                    h_rec,
                    layout.part(&ct.cache, p, steps * cw),
                    layout.part(drec_all, p, steps * gw),
                    rows,
                );
            }
        }
        // Input gradient: one GEMM, then back to batch-first order. Zeros
        // without any work when the input is data: a sixth of the step's arithmetic.
        let in0 = self.input_size();
        self.table_grad = None;
        let dx = match (&tape.tokens, token_sums) {
            (Some(tok), Some(sums)) if self.input_grad_needed => {
                // The table's gradient instead, for the layer that gave the rows.
                let mut dt = vec![0.0; tok.vocab * in0];
                let gw0 = self.cells[0].config().gate_width();
                self.cells[0]
                    .core()
                    .input_grad(&sums, gw0, tok.vocab, &mut dt);
                self.table_grad = Some(Tensor::from_vec(&[tok.vocab, in0], dt)?);
                self.pool.give(sums);
                Tensor::default()
            }
            (_, sums) => {
                sums.into_iter().for_each(|s| self.pool.give(s));
                if self.input_grad_needed {
                    let (d0, ld0) = gate_grads[0];
                    let dx = self.input_grad_batch_first(&tape, d0, ld0);
                    Tensor::from_vec(&[batch, steps, in0], dx)?
                } else {
                    Tensor::zeros(&[batch, steps, in0])
                }
            }
        };
        self.pool.give(dy);
        dxw.into_iter().chain(drec).for_each(|v| self.pool.give(v));
        self.recycle(tape);
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
        Ok(RnnGrads { dx, d_initial })
    }

    /// d(loss)/d(input) `[B, T, I]` from the first cell's gate gradients
    /// `dxw` (inside order, rows `ld` apart), with the input dropout mask applied.
    fn input_grad_batch_first(&mut self, tape: &Tape, dxw: &[f32], ld: usize) -> Vec<f32> {
        let layout = &tape.layout;
        let (batch, steps, in0) = (layout.batch, layout.steps, self.input_size());
        let n = batch * steps;
        let mut dxs = self.pool.take_uninit(n * in0);
        self.cells[0].core().input_grad(dxw, ld, n, &mut dxs);
        let in_mask = tape.cells[0].in_mask.as_deref();
        // Filled in batch-first order, row by row (no clearing pass first).
        let mut dx = Vec::with_capacity(n * in0);
        for b in 0..batch {
            let mask = in_mask.map(|m| &m[b * in0..][..in0]);
            for st in 0..steps {
                let t = if self.options.go_backwards {
                    steps - 1 - st
                } else {
                    st
                };
                let src = &dxs[layout.row(t, b) * in0..][..in0];
                match mask {
                    Some(m) => dx.extend(src.iter().zip(m).map(|(s, m)| s * m)),
                    None => dx.extend_from_slice(src),
                }
            }
        }
        self.pool.give(dxs);
        dx
    }

    /// The layer's forward pass on a [`Flow`], with token rows if given.
    fn forward_flow(
        &mut self,
        input: Flow,
        training: bool,
        tokens: Option<TokenRows>,
    ) -> Result<Flow> {
        let (x, mask) = (&input.x, input.mask.as_ref());
        let out =
            crate::threads::in_pool(|| self.forward_seq_here(x, mask, None, training, tokens))?;
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

    /// Keeps a pass's large buffers for the next one.
    fn recycle(&mut self, tape: Tape) {
        for ct in tape.cells {
            for v in [ct.xs, ct.hs, ct.cs, ct.h_rec, ct.cache] {
                self.pool.give(v);
            }
        }
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
        self.forward_flow(input, training, None)
    }

    fn takes_token_rows(&self) -> bool {
        true
    }

    fn forward_tokens(&mut self, input: Flow, tokens: TokenRows, training: bool) -> Result<Flow> {
        self.forward_flow(input, training, Some(tokens))
    }

    fn take_table_grad(&mut self) -> Option<Tensor> {
        self.table_grad.take()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recurrent::StackedRnnCells;

    fn random(rng: &mut Rng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|_| rng.normal()).collect()).unwrap()
    }

    fn states(rng: &mut Rng, layer: &Rnn, batch: usize) -> Vec<CellState> {
        layer
            .cells()
            .iter()
            .map(|c| CellState {
                h: random(rng, &[batch, c.units()]),
                c: (c.state_count() == 2).then(|| random(rng, &[batch, c.units()])),
            })
            .collect()
    }

    /// Everything a training pass produces, flattened.
    fn pass(layer: &mut Rnn, batch: usize, steps: usize) -> Vec<f32> {
        let mut rng = Rng::new(5);
        let x = random(&mut rng, &[batch, steps, layer.input_size()]);
        // Padding: a leading masked step, a row masked throughout, scattered gaps.
        let mask = Tensor::from_vec(
            &[batch, steps],
            (0..batch * steps)
                .map(|i| {
                    let (b, t) = (i / steps, i % steps);
                    if b == 3 || (b + t) % 5 == 0 {
                        0.0
                    } else {
                        1.0
                    }
                })
                .collect(),
        )
        .unwrap();
        let init = states(&mut rng, layer, batch);
        let d_states = states(&mut rng, layer, batch);
        let out = layer
            .forward_seq(&x, Some(&mask), Some(&init), true)
            .unwrap();
        let d = random(&mut rng, out.output.shape());
        let g = layer.backward_seq(&d, Some(&d_states)).unwrap();
        let mut all = out.output.into_vec();
        for s in out.states.iter().chain(&g.d_initial) {
            all.extend_from_slice(s.h.data());
            all.extend_from_slice(s.c.as_ref().map_or(&[][..], |c| c.data()));
        }
        all.extend_from_slice(g.dx.data());
        for c in layer.cells() {
            all.extend_from_slice(&c.core().params.grads);
        }
        all
    }

    /// A training and an inference pass with large values, then the
    /// gradients cleared.
    fn dirty(layer: &mut Rnn, batch: usize, steps: usize) {
        let mut rng = Rng::new(11);
        let x = random(&mut rng, &[batch, steps, layer.input_size()]);
        let x = Tensor::from_vec(x.shape(), x.data().iter().map(|v| v * 1e3).collect()).unwrap();
        let out = layer.forward_seq(&x, None, None, true).unwrap();
        let d = Tensor::from_vec(out.output.shape(), vec![1e3; out.output.len()]).unwrap();
        layer.backward_seq(&d, None).unwrap();
        layer.forward_seq(&x, None, None, false).unwrap();
        for c in layer.cells_mut() {
            c.core_mut().params.zero_grad();
        }
    }

    #[test]
    fn row_blocks_and_reused_buffers_do_not_change_results() {
        let stacks = [
            vec![
                CellConfig::lstm(5, 8).dropout(0.2, 0.3),
                CellConfig::gru(8, 6).dropout(0.1, 0.2),
            ],
            vec![CellConfig::simple_rnn(5, 7)],
            vec![CellConfig::gru(5, 9).torch_like()],
        ];
        for configs in stacks {
            for (backwards, sequences) in [(false, true), (true, false)] {
                let build = |blocks: usize| {
                    let mut layer = StackedRnnCells::new(configs.clone())
                        .go_backwards(backwards)
                        .return_sequences(sequences)
                        .seed(9)
                        .build()
                        .unwrap();
                    layer.row_blocks = Some(blocks);
                    layer
                };
                let base = pass(&mut build(1), 20, 6);
                for blocks in [2, 3] {
                    // Earlier passes of other shapes leave stale values in the
                    // reused buffers: they must not leak into this one.
                    let mut layer = build(blocks);
                    let masks = layer.rng.clone();
                    dirty(&mut layer, 24, 7);
                    dirty(&mut layer, 12, 3);
                    layer.rng = masks;
                    let split = pass(&mut layer, 20, 6);
                    assert_eq!(base.len(), split.len());
                    for (i, (a, b)) in split.iter().zip(&base).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                            "{configs:?} blocks {blocks} [{i}]: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
