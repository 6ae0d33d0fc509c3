//! The first cell's input side when its input rows are token rows of a small
//! table (see [`crate::layers::TokenRows`]): a character model's embedding
//! has 65 rows against 3,200 tokens a batch.
//!
//! Every input row `x_r` is `table[id_r]`, so its projection `x_r W_ih^T + b`
//! is row `id_r` of the projected table, computed once per table row and
//! gathered. Backward, with `S[v]` the sum of the gate-gradient rows whose
//! token is `v`: the weight gradient `dxw^T x` is `S^T table`, the bias
//! gradient the column sums of `S`, and the table's gradient (what the
//! embedding's scatter of the input gradient would sum up) is `S W_ih`.
//! The same maths with the sums in another order; the three products shrink
//! from `n` rows to `vocab` rows (on C's first layer, 2.5 of 64 GFLOP a step).

use crate::kernels::rows::scatter_add_rows;

/// The token ids kept for the backward pass, in the pass's inside row order.
#[derive(Debug, Clone)]
pub(super) struct TokenTape {
    /// The id of every inside row.
    pub row_ids: Vec<usize>,
    /// The table `[vocab, input]` the rows came from.
    pub table: Vec<f32>,
    /// Rows of `table`.
    pub vocab: usize,
}

/// `sums[v] = sum of rows[r] with row_ids[r] == v`, rows of `width` values
/// `ld` floats apart, added in row order (so the same for any thread count;
/// two threads split the columns). `sums` holds `vocab * width` values and
/// is overwritten.
pub(super) fn sum_rows_by_token(
    rows: &[f32],
    width: usize,
    ld: usize,
    row_ids: &[usize],
    sums: &mut [f32],
) {
    sums.fill(0.0);
    scatter_add_rows(sums, width, row_ids, rows, ld);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::set_threads;
    use crate::rng::Rng;

    /// The per-token sums of rows `ld` floats apart (gate gradients kept in
    /// an LSTM's cache are 5H apart for 4H values) equal their definition,
    /// for 1 and 2 threads alike.
    #[test]
    fn sums_by_token_match_the_definition_for_any_thread_count() {
        let mut rng = Rng::new(9);
        // Large enough for the two-thread path, with an odd width.
        let (vocab, width, ld, n) = (7, 1003, 1010, 301);
        let row_ids: Vec<usize> = (0..n).map(|r| (r * 5 + r / 3) % vocab).collect();
        let rows: Vec<f32> = (0..n * ld).map(|_| rng.normal()).collect();
        let mut runs = Vec::new();
        for t in [1, 2] {
            set_threads(t);
            let mut sums = vec![f32::NAN; vocab * width];
            sum_rows_by_token(&rows, width, ld, &row_ids, &mut sums);
            runs.push(sums);
        }
        set_threads(1);
        assert_eq!(runs[0], runs[1], "thread counts differ");
        for v in 0..vocab {
            for j in 0..width {
                let mut want = 0.0f32;
                for r in (0..n).filter(|&r| row_ids[r] == v) {
                    want += rows[r * ld + j];
                }
                assert_eq!(runs[0][v * width + j], want, "token {v}, column {j}");
            }
        }
    }
}
