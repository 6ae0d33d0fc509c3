//! Copies of table rows picked by id, and sums back into them: an embedding's
//! lookup and its gradient, and the gather of a projected token table. The
//! rows are scattered over a table often too big for the caches (B's is
//! 10 MB), so each copy waits on memory: rows a few ids ahead are
//! prefetched, and large copies are shared between two threads.

use super::finite::{max_abs_bits_inline, INF_BITS};
use super::gemm::threads;

/// Below this many copied or summed values the work stays on one thread.
const PARALLEL_MIN: usize = 1 << 16;

/// How many ids ahead the table rows are prefetched. Probe (2,560 random rows
/// of 128 floats from a 10 MB table, best of 30): 580 us without, 464-491 us
/// at 4, 8 or 16 ahead.
const AHEAD: usize = 4;

/// Asks for the cache lines of `len` floats from `start` now (prefetching
/// never faults, so any address will do).
#[inline(always)]
fn prefetch_span(start: *const f32, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = start as *const i8;
        for line in (0..len * std::mem::size_of::<f32>()).step_by(64) {
            // SAFETY: a prefetch only hints the cache; it reads nothing.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}

/// `out[r] = table[ids[r]]` for rows of `width` values, rows of `out`
/// `ld_out` floats apart (its other columns are left as they are).
///
/// # Panics
/// If an id is out of the table or `out` is too short; callers check ids first.
pub(crate) fn gather_rows(
    table: &[f32],
    width: usize,
    ids: &[usize],
    out: &mut [f32],
    ld_out: usize,
) {
    gather_into(table, width, ids, out, ld_out, |dst, src| {
        dst[..width].copy_from_slice(src)
    });
}

/// `[table[ids[0]], table[ids[1]], ...]` as a new `[ids.len(), width]`
/// buffer, written once without being cleared first (clearing B's 1.3 MB
/// embedding output cost as much as a tenth of the lookup).
///
/// # Panics
/// If an id is out of the table; callers check ids first.
pub(crate) fn gather_rows_new(table: &[f32], width: usize, ids: &[usize]) -> Vec<f32> {
    let len = ids.len() * width;
    let mut out = Vec::with_capacity(len);
    if len == 0 {
        return out;
    }
    gather_into(
        table,
        width,
        ids,
        &mut out.spare_capacity_mut()[..len],
        width,
        |dst, src| {
            dst.write_copy_of_slice(src);
        },
    );
    // SAFETY: `gather_into` wrote one full row of `width` values for each of
    // the `ids.len()` ids (rows `width` apart), so all `len` values are
    // initialised; a bad id panics before this line.
    unsafe { out.set_len(len) };
    out
}

/// The row loop of the gathers: `write(row r of out, table row ids[r])`,
/// rows of `out` `ld_out` elements apart, prefetching table rows a few ids
/// ahead, split between two threads when large.
fn gather_into<T: Send>(
    table: &[f32],
    width: usize,
    ids: &[usize],
    out: &mut [T],
    ld_out: usize,
    write: impl Fn(&mut [T], &[f32]) + Sync,
) {
    let copy = |out: &mut [T], ids: &[usize]| {
        for (r, (dst, &v)) in out.chunks_mut(ld_out).zip(ids).enumerate() {
            if let Some(&next) = ids.get(r + AHEAD) {
                prefetch_span(table.as_ptr().wrapping_add(next * width), width);
            }
            write(dst, &table[v * width..][..width]);
        }
    };
    let n = ids.len();
    if threads() < 2 || n * width < PARALLEL_MIN {
        copy(out, ids);
        return;
    }
    let (ids_lo, ids_hi) = ids.split_at(n / 2);
    let (lo, hi) = out.split_at_mut(n / 2 * ld_out);
    rayon::join(|| copy(lo, ids_lo), || copy(hi, ids_hi));
}

/// `table[ids[r]] += rows[r]` for rows of `width` values `ld_rows` floats
/// apart, in row order (so the same sums for any thread count: two threads
/// split the columns). Returns whether every value it wrote is finite: each
/// row is checked right after its sum, while in L1, and a NaN or infinity
/// stays one under later sums, so this is exact for the final rows (an
/// embedding's gradient needs no second pass to be checked).
///
/// # Panics
/// If an id is out of the table (callers check ids first).
pub(crate) fn scatter_add_rows(
    table: &mut [f32],
    width: usize,
    ids: &[usize],
    rows: &[f32],
    ld_rows: usize,
) -> bool {
    // Rows are `width` values each; the last one needs no padding after it.
    let whole_rows = match rows.len().checked_sub(width) {
        Some(rest) => rest / ld_rows.max(1) + 1,
        None => 0,
    };
    let n = ids.len().min(whole_rows);
    let rows_of = |cols: std::ops::Range<usize>| {
        rows.chunks(ld_rows.max(1))
            .take(n)
            .map(move |row| &row[cols.clone()])
    };
    if threads() < 2 || n * width < PARALLEL_MIN || width < 32 {
        let mut max = 0;
        for (r, (row, &v)) in rows_of(0..width).zip(ids).enumerate() {
            if let Some(&next) = ids.get(r + AHEAD) {
                prefetch_span(table.as_ptr().wrapping_add(next * width), width);
            }
            let dst = &mut table[v * width..][..width];
            dst.iter_mut().zip(row).for_each(|(t, x)| *t += x);
            max = max.max(max_abs_bits_inline(dst));
        }
        return max < INF_BITS;
    }
    assert!(
        ids[..n].iter().all(|&v| (v + 1) * width <= table.len()),
        "scatter_add_rows: an id is out of the table"
    );
    // Halves on whole cache lines, so the threads never write the same line.
    let mid = (width / 2).next_multiple_of(16).min(width);
    let base = TablePtr(table.as_mut_ptr());
    let add = |cols: std::ops::Range<usize>| {
        let w = cols.len();
        let mut max = 0;
        for (r, (row, &v)) in rows_of(cols.clone()).zip(ids).enumerate() {
            if let Some(&next) = ids.get(r + AHEAD) {
                prefetch_span(base.at(next * width + cols.start), w);
            }
            // SAFETY: every id was checked against the table's length above,
            // and the two calls write disjoint column ranges of a row, so the
            // slices of the two threads never overlap.
            let dst = unsafe { std::slice::from_raw_parts_mut(base.at(v * width + cols.start), w) };
            dst.iter_mut().zip(row).for_each(|(t, x)| *t += x);
            max = max.max(max_abs_bits_inline(dst));
        }
        max
    };
    let (lo, hi) = rayon::join(|| add(0..mid), || add(mid..width));
    lo.max(hi) < INF_BITS
}

/// The table both column halves of [`scatter_add_rows`] write to, each
/// through slices of its own columns.
struct TablePtr(*mut f32);

// SAFETY: shared only by the two halves of `scatter_add_rows`, which write
// disjoint elements and finish before the table's borrow ends.
unsafe impl Sync for TablePtr {}

impl TablePtr {
    /// The address of element `i` (the halves capture the whole wrapper,
    /// not its raw pointer).
    fn at(&self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::set_threads;
    use crate::rng::Rng;

    #[test]
    fn gather_and_scatter_match_the_definition_for_any_thread_count() {
        let mut rng = Rng::new(9);
        // Large enough for the two-thread paths, with an odd width.
        let (vocab, width, n, ld) = (7, 1003, 301, 1010);
        let table: Vec<f32> = (0..vocab * width).map(|_| rng.normal()).collect();
        let ids: Vec<usize> = (0..n).map(|r| (r * 5 + r / 3) % vocab).collect();
        let rows: Vec<f32> = (0..n * width).map(|_| rng.normal()).collect();
        let mut runs = Vec::new();
        for t in [1, 2] {
            set_threads(t);
            let mut gathered = vec![f32::NAN; n * ld];
            gather_rows(&table, width, &ids, &mut gathered, ld);
            let mut summed = table.clone();
            scatter_add_rows(&mut summed, width, &ids, &rows, width);
            let fresh = gather_rows_new(&table, width, &ids);
            runs.push((gathered, summed, fresh));
        }
        set_threads(1);
        assert_eq!(runs[0].1, runs[1].1, "thread counts give different sums");
        for (gathered, _, fresh) in &runs {
            assert_eq!(fresh.len(), n * width);
            for r in 0..n {
                let v = ids[r];
                assert_eq!(&gathered[r * ld..][..width], &table[v * width..][..width]);
                assert_eq!(&fresh[r * width..][..width], &table[v * width..][..width]);
                assert!(gathered[r * ld + width..(r + 1) * ld]
                    .iter()
                    .all(|x| x.is_nan()));
            }
        }
        assert!(gather_rows_new(&table, 0, &ids).is_empty());
        // The finite flag, on both paths: one huge value twice overflows.
        for t in [1, 2] {
            set_threads(t);
            let mut summed = table.clone();
            assert!(scatter_add_rows(&mut summed, width, &ids, &rows, width));
            let mut big = rows.clone();
            big[5 * width + 999] = f32::MAX;
            let again = (6..n).find(|&r| ids[r] == ids[5]).unwrap();
            big[again * width + 999] = f32::MAX; // the same id
            let mut summed = table.clone();
            assert!(!scatter_add_rows(&mut summed, width, &ids, &big, width));
            assert!(!scatter_add_rows(
                &mut summed[..width],
                width,
                &[0],
                &[f32::NAN; 1003],
                width
            ));
        }
        set_threads(1);
        assert!(gather_rows_new(&table, width, &[]).is_empty());
        let summed = &runs[0].1;
        for v in 0..vocab {
            for j in 0..width {
                let mut want = table[v * width + j];
                for r in (0..n).filter(|&r| ids[r] == v) {
                    want += rows[r * width + j];
                }
                assert_eq!(summed[v * width + j], want, "row {v} column {j}");
            }
        }
    }
}
