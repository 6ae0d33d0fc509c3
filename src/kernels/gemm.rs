//! One sgemm entry point. Every matrix product in gated goes through [`sgemm`],
//! so the backend can be swapped and measured in one place. The backend is the
//! pure-Rust `gemm` crate (runtime-dispatched AVX-512/AVX2/scalar kernels).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether an operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trans {
    /// As stored.
    N,
    /// Transposed.
    T,
}

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets how many threads large products may use (1 = single-threaded).
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The thread count set by [`set_threads`].
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// Products below this many multiply-adds run on one thread: for the small
/// per-step recurrent products, waking a second thread costs more than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// `C = alpha * op(A) * op(B) + beta * C`, all row-major.
///
/// `op(A)` is `m x k`, `op(B)` is `k x n`, `C` is `m x n`. `lda`, `ldb`, `ldc`
/// are the row strides of the matrices *as stored*. With `beta == 0` the old
/// contents of `C` are ignored (NaNs included).
///
/// Panics if a slice is too short for the given sizes: that is a bug in gated,
/// never a consequence of user input, which is validated before it gets here.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    ta: Trans,
    tb: Trans,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "sgemm: C too short"
    );
    if k == 0 || alpha == 0.0 {
        scale_rows(c, m, n, ldc, beta);
        return;
    }
    // Row and column strides of op(A) and op(B), and the stored shapes.
    let (a_rs, a_cs, sa_rows, sa_cols) = match ta {
        Trans::N => (lda, 1, m, k),
        Trans::T => (1, lda, k, m),
    };
    let (b_rs, b_cs, sb_rows, sb_cols) = match tb {
        Trans::N => (ldb, 1, k, n),
        Trans::T => (1, ldb, n, k),
    };
    assert!(
        lda >= sa_cols && a.len() >= (sa_rows - 1) * lda + sa_cols,
        "sgemm: A too short"
    );
    assert!(
        ldb >= sb_cols && b.len() >= (sb_rows - 1) * ldb + sb_cols,
        "sgemm: B too short"
    );

    let par = if threads() > 1 && m * n * k >= PARALLEL_MIN_MACS {
        gemm::Parallelism::Rayon(threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above check that every element addressed through the
    // given strides lies inside its slice; `c` is uniquely borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            beta != 0.0,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            // The gemm crate computes dst = alpha * dst + beta * lhs * rhs.
            beta,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
}

fn scale_rows(c: &mut [f32], m: usize, n: usize, ldc: usize, beta: f32) {
    for row in c.chunks_mut(ldc).take(m) {
        for v in &mut row[..n] {
            *v = if beta == 0.0 { 0.0 } else { *v * beta };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn naive(ta: Trans, tb: Trans, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    let av = if ta == Trans::N {
                        a[i * k + p]
                    } else {
                        a[p * m + i]
                    };
                    let bv = if tb == Trans::N {
                        b[p * n + j]
                    } else {
                        b[j * k + p]
                    };
                    s += av as f64 * bv as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn all_transposes_alpha_beta_match_naive() {
        let mut rng = Rng::new(1);
        for &(m, n, k) in &[(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 48, 130)] {
            for ta in [Trans::N, Trans::T] {
                for tb in [Trans::N, Trans::T] {
                    let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
                    let c0: Vec<f32> = (0..m * n).map(|_| rng.normal()).collect();
                    let lda = if ta == Trans::N { k } else { m };
                    let ldb = if tb == Trans::N { n } else { k };
                    let want = naive(ta, tb, m, n, k, &a, &b);
                    let mut c = c0.clone();
                    sgemm(ta, tb, m, n, k, 0.5, &a, lda, &b, ldb, 2.0, &mut c, n);
                    for i in 0..m * n {
                        let w = 0.5 * want[i] + 2.0 * c0[i];
                        assert!(
                            (c[i] - w).abs() < 1e-4 * (1.0 + w.abs()),
                            "{ta:?}{tb:?} {m}x{n}x{k}"
                        );
                    }
                    let mut c = vec![f32::NAN; m * n];
                    sgemm(ta, tb, m, n, k, 1.0, &a, lda, &b, ldb, 0.0, &mut c, n);
                    for i in 0..m * n {
                        assert!((c[i] - want[i]).abs() < 1e-4 * (1.0 + want[i].abs()));
                    }
                }
            }
        }
    }

    #[test]
    fn strided_c_leaves_padding_alone() {
        let a = [1.0, 2.0, 3.0, 4.0]; // 2x2
        let b = [1.0, 0.0, 0.0, 1.0];
        let mut c = [9.0; 6]; // 2 rows, stride 3
        sgemm(
            Trans::N,
            Trans::N,
            2,
            2,
            2,
            1.0,
            &a,
            2,
            &b,
            2,
            0.0,
            &mut c,
            3,
        );
        assert_eq!(c, [1.0, 2.0, 9.0, 3.0, 4.0, 9.0]);
    }
}

/// Columns per panel of a [`PackedB`]: two AVX-512 registers.
const NR: usize = 32;

/// A right-hand operand `op(B)` `[k, n]` packed once for many products with the
/// same matrix (the recurrent weights, used at every time step): panels of 32
/// columns, each stored k-major and zero-padded, so the kernel streams it
/// with aligned-width loads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs `op(B)` (`k x n`; `ldb` is the row stride of B as stored),
    /// reusing this allocation.
    pub fn pack(&mut self, tb: Trans, k: usize, n: usize, b: &[f32], ldb: usize) {
        let panels = n.div_ceil(NR);
        self.k = k;
        self.n = n;
        self.data.clear();
        self.data.resize(panels * k * NR, 0.0);
        for p in 0..panels {
            let cols = NR.min(n - p * NR);
            let panel = &mut self.data[p * k * NR..(p + 1) * k * NR];
            for kk in 0..k {
                let dst = &mut panel[kk * NR..kk * NR + cols];
                for (c, d) in dst.iter_mut().enumerate() {
                    let j = p * NR + c;
                    *d = match tb {
                        Trans::N => b[kk * ldb + j],
                        Trans::T => b[j * ldb + kk],
                    };
                }
            }
        }
    }

    /// Rows of `op(B)`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of `op(B)`.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// `C = A * op(B) (+ C when accumulate)` with a packed `op(B)`: `A` is `m x k`
/// row-major with stride `lda`, `C` is `m x n` with stride `ldc`. Single-threaded:
/// meant for the small per-step products. Uses the AVX-512 kernel where the CPU
/// has it (see [`super::simd`]), portable loops otherwise.
///
/// Panics if a slice is too short (a bug in gated, never user input).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_packed(
    m: usize,
    a: &[f32],
    lda: usize,
    b: &PackedB,
    accumulate: bool,
    c: &mut [f32],
    ldc: usize,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        lda >= k && a.len() >= (m - 1) * lda + k,
        "sgemm_packed: A too short"
    );
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "sgemm_packed: C too short"
    );
    #[cfg(target_arch = "x86_64")]
    if super::simd::level() == super::simd::Level::Avx512 {
        // SAFETY: level() reports AVX-512 only when the CPU has it; the asserts
        // above and PackedB's invariant (data.len() == panels * k * NR) bound
        // every access the kernel makes.
        unsafe {
            avx512::gemm_packed(
                m,
                k,
                n,
                a.as_ptr(),
                lda,
                b.data.as_ptr(),
                accumulate,
                c.as_mut_ptr(),
                ldc,
            )
        };
        return;
    }
    packed_portable(m, k, n, a, lda, &b.data, accumulate, c, ldc);
}

#[allow(clippy::too_many_arguments)]
fn packed_portable(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    accumulate: bool,
    c: &mut [f32],
    ldc: usize,
) {
    for p in 0..n.div_ceil(NR) {
        let panel = &b[p * k * NR..(p + 1) * k * NR];
        let cols = NR.min(n - p * NR);
        for i in 0..m {
            let mut acc = [0.0f32; NR];
            let arow = &a[i * lda..i * lda + k];
            for (kk, &av) in arow.iter().enumerate() {
                let brow = &panel[kk * NR..(kk + 1) * NR];
                for (x, &bv) in acc.iter_mut().zip(brow) {
                    *x += av * bv;
                }
            }
            let crow = &mut c[i * ldc + p * NR..i * ldc + p * NR + cols];
            for (d, &v) in crow.iter_mut().zip(&acc) {
                *d = if accumulate { *d + v } else { v };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::NR;
    use std::arch::x86_64::*;

    /// Rows per register block.
    const MR: usize = 8;

    /// See `sgemm_packed`.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F; `a` must hold `m` rows of `k` floats at
    /// stride `lda`, `b` `ceil(n/32) * k * 32` floats, `c` `m` rows of `n` at
    /// stride `ldc`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gemm_packed(
        m: usize,
        k: usize,
        n: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        accumulate: bool,
        c: *mut f32,
        ldc: usize,
    ) {
        for p in 0..n.div_ceil(NR) {
            let cols = NR.min(n - p * NR);
            let lo: u16 = if cols >= 16 {
                0xFFFF
            } else {
                (1u16 << cols) - 1
            };
            let hi: u16 = if cols >= 32 {
                0xFFFF
            } else if cols > 16 {
                (1u16 << (cols - 16)) - 1
            } else {
                0
            };
            // SAFETY (all below): offsets stay inside the bounds the caller guarantees.
            let panel = b.add(p * k * NR);
            let cp = c.add(p * NR);
            let mut i = 0;
            while i < m {
                let rows = MR.min(m - i);
                let (ai, ci) = (a.add(i * lda), cp.add(i * ldc));
                match rows {
                    8 => block::<8>(k, ai, lda, panel, ci, ldc, lo, hi, accumulate),
                    7 => block::<7>(k, ai, lda, panel, ci, ldc, lo, hi, accumulate),
                    6 => block::<6>(k, ai, lda, panel, ci, ldc, lo, hi, accumulate),
                    5 => block::<5>(k, ai, lda, panel, ci, ldc, lo, hi, accumulate),
                    4 => block::<4>(k, ai, lda, panel, ci, ldc, lo, hi, accumulate),
                    3 => block::<3>(k, ai, lda, panel, ci, ldc, lo, hi, accumulate),
                    2 => block::<2>(k, ai, lda, panel, ci, ldc, lo, hi, accumulate),
                    _ => block::<1>(k, ai, lda, panel, ci, ldc, lo, hi, accumulate),
                }
                i += MR;
            }
        }
    }

    /// `R` rows of C times one 32-column panel, accumulators in registers.
    ///
    /// # Safety
    /// As `gemm_packed`, for rows `0..R` of `a`/`c` and one panel of `k * 32`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const R: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        panel: *const f32,
        c: *mut f32,
        ldc: usize,
        lo: u16,
        hi: u16,
        accumulate: bool,
    ) {
        let mut acc0 = [_mm512_setzero_ps(); R];
        let mut acc1 = [_mm512_setzero_ps(); R];
        for kk in 0..k {
            // SAFETY: kk < k, so the panel row and A's column kk are in bounds.
            let b0 = _mm512_loadu_ps(panel.add(kk * NR));
            let b1 = _mm512_loadu_ps(panel.add(kk * NR + 16));
            for r in 0..R {
                let av = _mm512_set1_ps(*a.add(r * lda + kk));
                acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
            }
        }
        for r in 0..R {
            // SAFETY: the masks cover only the panel's real columns of row r;
            // wrapping_add keeps the (masked-off) second half's address harmless.
            let p0 = c.add(r * ldc);
            let p1 = p0.wrapping_add(16);
            let (mut v0, mut v1) = (acc0[r], acc1[r]);
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(lo, p0));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(hi, p1));
            }
            _mm512_mask_storeu_ps(p0, lo, v0);
            _mm512_mask_storeu_ps(p1, hi, v1);
        }
    }
}

#[cfg(test)]
mod packed_tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn packed_matches_sgemm_every_shape_and_level() {
        let mut rng = Rng::new(2);
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 17, 5),
            (9, 40, 33),
            (32, 512, 128),
            (13, 65, 7),
        ] {
            for tb in [Trans::N, Trans::T] {
                let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
                let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
                let c0: Vec<f32> = (0..m * (n + 3)).map(|_| rng.normal()).collect();
                let ldb = if tb == Trans::N { n } else { k };
                let mut p = PackedB::default();
                p.pack(tb, k, n, &b, ldb);
                for acc in [false, true] {
                    let mut want = c0.clone();
                    let beta = if acc { 1.0 } else { 0.0 };
                    sgemm(
                        Trans::N,
                        tb,
                        m,
                        n,
                        k,
                        1.0,
                        &a,
                        k,
                        &b,
                        ldb,
                        beta,
                        &mut want,
                        n + 3,
                    );
                    for simd in [true, false] {
                        crate::kernels::simd::set_simd_enabled(simd);
                        let mut got = c0.clone();
                        sgemm_packed(m, &a, k, &p, acc, &mut got, n + 3);
                        for (g, w) in got.iter().zip(&want) {
                            assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "{m}x{n}x{k} {tb:?}");
                        }
                    }
                    crate::kernels::simd::set_simd_enabled(true);
                }
            }
        }
    }
}
