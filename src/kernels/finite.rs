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
pub(crate) const INF_BITS: u32 = 0x7f80_0000;

/// The largest `bits & ABS_MASK` of `v` (0 when empty), inlined into the
/// caller: for a kernel that checks what it just wrote.
#[inline(always)]
pub(crate) fn max_abs_bits_inline(v: &[f32]) -> u32 {
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
    /// The largest `bits & ABS_MASK` of `v` (0 when empty); see [`max_abs_bits_inline`].
    fn max_abs_bits(v: &[f32]) -> u32 => max_abs_bits_inline
);

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
}
