//! How the RNN driver lays out and splits the batch rows.
//!
//! Batch rows never interact in a recurrence, so the batch can be cut into
//! blocks that run their whole time loop on separate threads with no
//! synchronisation per step. For small layers (B's LSTM(128): a 32 x 128 x 512
//! product per step) that is the only way to use the second core: one product
//! is too small to split, and the steps are sequential.
//!
//! Inside the driver every per-row buffer is block-major, then time-major:
//! block `p` (batch rows `lo..hi`) holds `[T, hi - lo, F]` after the blocks
//! before it, so each block is one contiguous slice (safe to hand to a thread)
//! and the whole-sequence GEMMs still see one `[T*B, F]` matrix. With one
//! block this is the plain time-major layout `[T, B, F]`.

use crate::kernels::gemm;
use std::ops::Range;

/// Rows per block are kept to whole multiples of the GEMM kernel's row panel.
const ROW_QUANTUM: usize = 8;

/// The batch rows, split into blocks, of a pass over `steps` steps.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RowLayout {
    pub batch: usize,
    pub steps: usize,
    pub blocks: Vec<Range<usize>>,
}

impl RowLayout {
    /// `batch` rows in `parts` blocks of whole [`ROW_QUANTUM`]s (fewer blocks
    /// when the batch is too small for that).
    pub fn new(batch: usize, steps: usize, parts: usize) -> RowLayout {
        let quanta = batch.div_ceil(ROW_QUANTUM);
        let parts = parts.clamp(1, quanta.max(1));
        let bound = |p: usize| (quanta * p / parts * ROW_QUANTUM).min(batch);
        RowLayout {
            batch,
            steps,
            blocks: (0..parts).map(|p| bound(p)..bound(p + 1)).collect(),
        }
    }

    fn block_of(&self, b: usize) -> &Range<usize> {
        self.blocks
            .iter()
            .find(|r| r.contains(&b))
            .unwrap_or(&self.blocks[0])
    }

    /// Row of `(t, b)` in a buffer of `steps` slabs per block.
    pub fn row(&self, t: usize, b: usize) -> usize {
        let r = self.block_of(b);
        r.start * self.steps + t * r.len() + (b - r.start)
    }

    /// Row of `(t, b)` in a state buffer (`steps + 1` slabs per block, the
    /// initial state first).
    pub fn state_row(&self, t: usize, b: usize) -> usize {
        let r = self.block_of(b);
        r.start * (self.steps + 1) + t * r.len() + (b - r.start)
    }

    /// `buf` cut into one mutable slice per block, `per_row` floats per batch
    /// row (an empty `buf` gives empty slices).
    pub fn split_mut<'a>(&self, buf: &'a mut [f32], per_row: usize) -> Vec<&'a mut [f32]> {
        if buf.is_empty() {
            return self
                .blocks
                .iter()
                .map(|_| <&mut [f32]>::default())
                .collect();
        }
        let mut out = Vec::with_capacity(self.blocks.len());
        let mut rest = buf;
        for r in &self.blocks {
            let (head, tail) = rest.split_at_mut(r.len() * per_row);
            out.push(head);
            rest = tail;
        }
        out
    }

    /// Block `p` of `buf`, `per_row` floats per batch row (empty if `buf` is).
    pub fn part<'a>(&self, buf: &'a [f32], p: usize, per_row: usize) -> &'a [f32] {
        if buf.is_empty() {
            return buf;
        }
        let r = &self.blocks[p];
        &buf[r.start * per_row..r.end * per_row]
    }
}

/// Blocks of a pass, when the batch has at least [`MIN_BLOCK_ROWS`] rows per block.
const BLOCKS: usize = 2;
const MIN_BLOCK_ROWS: usize = 8;

/// Blocks for a pass over `batch` rows. Fixed rather than one per thread so
/// that results do not depend on the thread count (one thread runs the blocks
/// in turn; more than two share the products of each block). Measured on 2
/// cores (two alternating rounds): C's step -17 %, B's -11 %, B-GRU's -20 %,
/// D's -3 %; on one thread B and C unchanged within the noise. `GATED_RNN_BLOCKS=n` overrides it (for measurements).
pub(super) fn block_count(batch: usize) -> usize {
    static FORCED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let forced = *FORCED.get_or_init(|| {
        std::env::var("GATED_RNN_BLOCKS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    match forced {
        Some(n) => n.max(1),
        None if batch >= BLOCKS * MIN_BLOCK_ROWS => BLOCKS,
        None => 1,
    }
}

/// Runs `f` on every block, the blocks spread over the [`gemm::threads`]
/// threads and each block's products sharing its share of them.
pub(super) fn run_blocks<P: Send>(blocks: Vec<P>, f: impl Fn(P) + Sync) {
    let threads = gemm::threads();
    if blocks.len() < 2 || threads < 2 {
        blocks.into_iter().for_each(f);
        return;
    }
    let cap = (threads / blocks.len()).max(1);
    let mut blocks = blocks.into_iter();
    let first = blocks.next();
    let f = &f;
    rayon::in_place_scope(|s| {
        for p in blocks {
            s.spawn(move |_| gemm::with_thread_cap(cap, || f(p)));
        }
        if let Some(p) = first {
            gemm::with_thread_cap(cap, || f(p));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_whole_quanta_and_cover_the_batch() {
        assert_eq!(RowLayout::new(32, 3, 2).blocks, vec![0..16, 16..32]);
        assert_eq!(RowLayout::new(20, 3, 2).blocks, vec![0..8, 8..20]);
        assert_eq!(RowLayout::new(12, 3, 2).blocks, vec![0..8, 8..12]);
        assert_eq!(RowLayout::new(5, 3, 4).blocks, vec![0..5]);
        assert_eq!(RowLayout::new(64, 3, 3).blocks, vec![0..16, 16..40, 40..64]);
    }

    #[test]
    fn rows_are_a_permutation_block_major_then_time_major() {
        let l = RowLayout::new(20, 3, 2);
        let mut seen = [false; 60];
        for t in 0..3 {
            for b in 0..20 {
                seen[l.row(t, b)] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(l.row(0, 8), 24);
        assert_eq!(l.row(1, 9), 24 + 12 + 1);
        assert_eq!(l.state_row(3, 19), 32 + 3 * 12 + 11);
        assert_eq!(RowLayout::new(4, 5, 1).row(2, 3), 11);
    }

    #[test]
    fn split_gives_each_block_its_rows() {
        let l = RowLayout::new(20, 1, 2);
        let mut buf: Vec<f32> = (0..40).map(|v| v as f32).collect();
        let parts = l.split_mut(&mut buf, 2);
        assert_eq!(parts[0].len(), 16);
        assert_eq!(parts[1][0], 16.0);
        assert_eq!(l.part(&buf, 1, 2).len(), 24);
        assert!(l.split_mut(&mut [], 2).iter().all(|p| p.is_empty()));
    }
}
