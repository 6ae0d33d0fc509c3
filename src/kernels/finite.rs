//! Whether a buffer holds only finite values: the check every training step
//! makes on its gradients before they reach the weights. B's embedding
//! gradient alone is 2.56M values, so the check runs at memory speed: the
//! largest magnitude's bits, a reduction that vectorises (no early exit), on
//! as many threads as the products use for a large buffer.

use super::gemm::threads;

/// Buffers below this many values are checked on one thread.
const PARALLEL_MIN: usize = 1 << 18;

/// Bits of a float without its sign; NaN and infinities have all exponent
/// bits set, so they compare at or above [`INF_BITS`].
const ABS_MASK: u32 = 0x7fff_ffff;
const INF_BITS: u32 = 0x7f80_0000;

#[inline(always)]
fn max_abs_bits_imp(v: &[f32]) -> u32 {
    let mut acc = [0u32; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a = (*a).max(x.to_bits() & ABS_MASK);
        }
    }
    let tail = chunks.remainder().iter().map(|x| x.to_bits() & ABS_MASK);
    acc.into_iter().chain(tail).max().unwrap_or(0)
}

super::simd::multiversion!(
    /// The largest `bits & ABS_MASK` of `v` (0 when empty); see [`max_abs_bits_imp`].
    fn max_abs_bits(v: &[f32]) -> u32 => max_abs_bits_imp
);

#[inline(always)]
fn rows_max_abs_bits_imp(table: &[f32], width: usize, ids: &[usize]) -> u32 {
    ids.iter()
        .map(|&i| max_abs_bits_imp(&table[i * width..(i + 1) * width]))
        .max()
        .unwrap_or(0)
}

super::simd::multiversion!(
    /// [`max_abs_bits`] over the rows `ids` of a table of rows of `width`.
    fn rows_max_abs_bits(table: &[f32], width: usize, ids: &[usize]) -> u32 => rows_max_abs_bits_imp
);

/// True when no value in the rows `ids` of `table` (rows of `width` values)
/// is NaN or infinite: an embedding's gradient after a scatter into those
/// rows only.
///
/// # Panics
/// If an id addresses a row outside `table` (callers pass checked ids).
pub fn rows_finite(table: &[f32], width: usize, ids: &[usize]) -> bool {
    let t = threads().min(ids.len() * width / PARALLEL_MIN).max(1);
    if t < 2 {
        return rows_max_abs_bits(table, width, ids) < INF_BITS;
    }
    let part = ids.len().div_ceil(t);
    let mut maxima = vec![0u32; t];
    rayon::in_place_scope(|s| {
        for (m, c) in maxima.iter_mut().zip(ids.chunks(part)) {
            s.spawn(move |_| *m = rows_max_abs_bits(table, width, c));
        }
    });
    maxima.into_iter().all(|m| m < INF_BITS)
}

/// True when no value of `v` is NaN or infinite.
pub fn all_finite(v: &[f32]) -> bool {
    let t = threads().min(v.len() / PARALLEL_MIN).max(1);
    if t < 2 {
        return max_abs_bits(v) < INF_BITS;
    }
    let part = v.len().div_ceil(t);
    let mut maxima = vec![0u32; t];
    rayon::in_place_scope(|s| {
        for (m, c) in maxima.iter_mut().zip(v.chunks(part)) {
            s.spawn(move |_| *m = max_abs_bits(c));
        }
    });
    maxima.into_iter().all(|m| m < INF_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_one_bad_value_anywhere_on_any_level_and_thread_count() {
        let n = 3 * PARALLEL_MIN + 5;
        let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - 1e5) * 1e30).collect();
        v.iter_mut().for_each(|x| *x = x.clamp(-f32::MAX, f32::MAX));
        for simd in [true, false] {
            crate::kernels::simd::set_simd_enabled(simd);
            for t in [1, 2, 3] {
                crate::kernels::gemm::set_threads(t);
                assert!(all_finite(&v), "simd {simd} threads {t}");
                assert!(all_finite(&[]) && all_finite(&[f32::MAX, -0.0, f32::MIN_POSITIVE]));
                for at in [0, 7, 16, PARALLEL_MIN + 3, n - 1] {
                    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
                        let keep = v[at];
                        v[at] = bad;
                        assert!(!all_finite(&v), "{bad} at {at}, simd {simd} threads {t}");
                        assert!(!all_finite(&v[at..=at]));
                        v[at] = keep;
                    }
                }
            }
        }
        crate::kernels::gemm::set_threads(1);
        crate::kernels::simd::set_simd_enabled(true);
    }

    #[test]
    fn rows_finite_reads_exactly_the_rows_given() {
        let (rows, width) = (5000, 100);
        let mut table = vec![1.5f32; rows * width];
        let ids: Vec<usize> = (0..rows).step_by(2).chain([3, 3]).collect();
        for t in [1, 2, 3] {
            crate::kernels::gemm::set_threads(t);
            assert!(rows_finite(&table, width, &ids) && rows_finite(&table, width, &[]));
            table[7 * width + 99] = f32::NAN; // row 7: not given
            assert!(rows_finite(&table, width, &ids), "threads {t}");
            table[3 * width] = f32::NEG_INFINITY; // row 3: given
            assert!(!rows_finite(&table, width, &ids), "threads {t}");
            table[3 * width] = 1.5;
            table[4998 * width + 50] = f32::INFINITY; // the last row given
            assert!(!rows_finite(&table, width, &ids), "threads {t}");
            table[4998 * width + 50] = 1.5;
        }
        crate::kernels::gemm::set_threads(1);
    }
}
