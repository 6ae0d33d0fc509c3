//! One sgemm entry point. Every matrix product in gated goes through [`sgemm`]
//! (or [`sgemm_bias`] when a bias row is added, [`sgemm_packed`] for a
//! right-hand side packed once), so the backend can be swapped and measured in
//! one place.
//!
//! Backends, chosen per call: a single row times a transposed matrix (every
//! layer at batch 1, as in generation) is a set of dot products over the
//! weights' rows (`super::gemv`, any CPU); on CPUs with AVX-512 F, the
//! blocked kernel of `super::blocked` (hand-written, split over [`threads`]
//! threads, results independent of the thread count); for the remaining
//! small products, and on every other CPU, the pure-Rust `gemm` crate
//! (AVX2/scalar kernels, which need no copying). `GATED_NO_BLOCKED=1` turns the blocked kernel off for
//! comparisons.

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

/// The thread count products may use here: the one set by [`set_threads`],
/// capped inside [`with_thread_cap`].
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed).min(THREAD_CAP.get()).max(1)
}

thread_local! {
    static THREAD_CAP: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Runs `f` with the products on this thread limited to `cap` threads: for
/// work that is already split across the threads (the recurrent layers' row
/// blocks).
pub fn with_thread_cap<R>(cap: usize, f: impl FnOnce() -> R) -> R {
    let before = THREAD_CAP.replace(cap.max(1));
    let r = f();
    THREAD_CAP.set(before);
    r
}

/// Blocked products below this many multiply-adds run on one thread: for the
/// small per-step recurrent products (B's 32 x 512 x 128), waking a second
/// thread costs more than it saves.
pub const PARALLEL_MIN_MACS: usize = 1 << 23;

/// Threads for a blocked product of `m x n x k` (see [`PARALLEL_MIN_MACS`]).
#[cfg(target_arch = "x86_64")]
fn blocked_threads(m: usize, n: usize, k: usize) -> usize {
    if m * n * k >= PARALLEL_MIN_MACS {
        threads()
    } else {
        1
    }
}

/// The same for the `gemm` crate's products (on CPUs without AVX-512 they
/// include the large ones).
const CRATE_PARALLEL_MIN_MACS: usize = 1 << 20;

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
    let ab = Operands {
        ta,
        tb,
        a,
        lda,
        b,
        ldb,
    };
    product(m, n, k, alpha, ab, beta, None, c, ldc);
}

/// `C = op(A) * op(B) + bias`, with the row `bias` (`n` values) added to every
/// row of C: a layer's `x W^T + b`. The blocked kernel adds the bias as it
/// stores C, saving a pass over the output. Panics as [`sgemm`] does, and
/// when `bias` is shorter than `n`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_bias(
    ta: Trans,
    tb: Trans,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    bias: &[f32],
    c: &mut [f32],
    ldc: usize,
) {
    assert!(bias.len() >= n, "sgemm_bias: bias too short");
    let ab = Operands {
        ta,
        tb,
        a,
        lda,
        b,
        ldb,
    };
    product(m, n, k, 1.0, ab, 0.0, Some(&bias[..n]), c, ldc);
}

/// The left and right operands of a product and how they are stored.
#[derive(Clone, Copy)]
struct Operands<'a> {
    ta: Trans,
    tb: Trans,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    ldb: usize,
}

/// `C = alpha op(A) op(B) + beta C (+ bias)`: the body of [`sgemm`] and
/// [`sgemm_bias`].
#[allow(clippy::too_many_arguments)]
fn product(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    ab: Operands<'_>,
    beta: f32,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    let Operands {
        ta,
        tb,
        a,
        lda,
        b,
        ldb,
    } = ab;
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "sgemm: C too short"
    );
    let row_times_transposed = m == 1 && ta == Trans::N && tb == Trans::T;
    let blocked = k > 0 && alpha != 0.0 && !row_times_transposed && use_blocked(m, n, k);
    // Outside the blocked kernel the bias is written first and the product
    // added to it.
    let beta = match bias {
        Some(bias) if !blocked => {
            for row in c.chunks_mut(ldc).take(m) {
                for (v, &b) in row[..n].iter_mut().zip(bias) {
                    *v = if beta == 0.0 { b } else { b + beta * *v };
                }
            }
            1.0
        }
        _ => beta,
    };
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

    if row_times_transposed {
        // One row times a transposed matrix: dot products with B's rows.
        super::gemv::gemv_rows(n, k, alpha, a, b, ldb, beta, c);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if blocked {
        use super::blocked::{gemm, BSource, Out, View};
        let t = blocked_threads(m, n, k);
        // SAFETY: use_blocked checked for AVX-512; the asserts above bound every
        // element addressed through the strides; `c` is uniquely borrowed.
        unsafe {
            gemm(
                m,
                n,
                k,
                alpha,
                View::new(a.as_ptr(), lda, ta),
                BSource::Strided(View::new(b.as_ptr(), ldb, tb)),
                Out {
                    ptr: c.as_mut_ptr(),
                    ld: ldc,
                    beta,
                    bias: bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
                },
                t,
            )
        };
        return;
    }
    let par = if threads() > 1 && m * n * k >= CRATE_PARALLEL_MIN_MACS {
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

/// Whether the blocked AVX-512 kernel takes this product: the CPU has AVX-512
/// and the product is big enough to repay packing both operands. Tiny
/// products and the other single-row ones go to the `gemm` crate, which
/// handles them without copying.
#[cfg(target_arch = "x86_64")]
fn use_blocked(m: usize, n: usize, k: usize) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off = *OFF.get_or_init(|| std::env::var_os("GATED_NO_BLOCKED").is_some_and(|v| v != "0"));
    !off && m >= BLOCKED_MIN_ROWS
        && m * n * k >= BLOCKED_MIN_MACS
        && super::simd::level() == super::simd::Level::Avx512
}

/// Elsewhere there is no blocked kernel.
#[cfg(not(target_arch = "x86_64"))]
fn use_blocked(_m: usize, _n: usize, _k: usize) -> bool {
    false
}

/// See [`use_blocked`].
const BLOCKED_MIN_ROWS: usize = 4;
const BLOCKED_MIN_MACS: usize = 1 << 12;

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
    fn bias_is_added_once_on_every_path() {
        // Shapes for the gemv path (m = 1), the gemm crate (tiny), and the
        // blocked kernel with several depth blocks (k > 256: a bias added per
        // block would show), partial panels and more than one column block.
        let mut rng = Rng::new(9);
        for &(m, n, k) in &[(1, 70, 33), (2, 3, 4), (37, 100, 300), (20, 1100, 40)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
            let bias: Vec<f32> = (0..n).map(|_| 10.0 * rng.normal()).collect();
            let prod = naive(Trans::N, Trans::T, m, n, k, &a, &b);
            let ldc = n + 2;
            for simd in [true, false] {
                crate::kernels::simd::set_simd_enabled(simd);
                for threads in [1, 2] {
                    set_threads(threads);
                    let mut c = vec![f32::NAN; m * ldc];
                    sgemm_bias(
                        Trans::N,
                        Trans::T,
                        m,
                        n,
                        k,
                        &a,
                        k,
                        &b,
                        k,
                        &bias,
                        &mut c,
                        ldc,
                    );
                    for i in 0..m {
                        for j in 0..n {
                            let w = prod[i * n + j] + bias[j];
                            let g = c[i * ldc + j];
                            assert!(
                                (g - w).abs() < 1e-4 * (1.0 + w.abs()),
                                "{m}x{n}x{k} simd {simd} threads {threads} ({i},{j}): {g} vs {w}"
                            );
                        }
                        assert!(c[i * ldc + n].is_nan(), "padding written");
                    }
                }
            }
            set_threads(1);
            crate::kernels::simd::set_simd_enabled(true);
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

// Columns per panel of a [`PackedB`]: the blocked kernel's panel width.
use super::blocked::{AlignedBuf, NR};

/// A right-hand operand `op(B)` `[k, n]` packed once for many products with the
/// same matrix (the recurrent weights, used at every time step): panels of `NR`
/// columns, each stored k-major and zero-padded, 64-byte aligned, so the
/// kernel streams it with aligned full-width loads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackedB {
    k: usize,
    n: usize,
    data: AlignedBuf,
}

impl PackedB {
    /// Packs `op(B)` (`k x n`; `ldb` is the row stride of B as stored),
    /// reusing this allocation.
    pub fn pack(&mut self, tb: Trans, k: usize, n: usize, b: &[f32], ldb: usize) {
        self.k = k;
        self.n = n;
        // pack_b writes every float of the panels, padding included.
        self.data.resize_for_overwrite(n.div_ceil(NR) * k * NR);
        let view = super::blocked::View::new(b.as_ptr(), ldb, tb);
        let (rows, cols) = match tb {
            Trans::N => (k, n),
            Trans::T => (n, k),
        };
        assert!(
            rows == 0 || cols == 0 || (ldb >= cols && b.len() >= (rows - 1) * ldb + cols),
            "PackedB::pack: B too short"
        );
        // SAFETY: the assert bounds every element the view addresses.
        unsafe { super::pack::pack_b(view, 0, k, 0, n, self.data.as_mut_slice()) };
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
    if super::simd::level() == super::simd::Level::Avx512 && k > 0 {
        use super::blocked::{gemm, BSource, Out, View};
        let t = blocked_threads(m, n, k);
        // SAFETY: level() reports AVX-512 only when the CPU has it; the asserts
        // above and PackedB's invariant (data holds ceil(n/NR) * k * NR floats,
        // 64-byte aligned) bound every access the kernel makes.
        unsafe {
            gemm(
                m,
                n,
                k,
                1.0,
                View::new(a.as_ptr(), lda, Trans::N),
                BSource::Prepacked(b.data.as_slice().as_ptr()),
                Out {
                    ptr: c.as_mut_ptr(),
                    ld: ldc,
                    beta: if accumulate { 1.0 } else { 0.0 },
                    bias: std::ptr::null(),
                },
                t,
            )
        };
        return;
    }
    packed_portable(m, k, n, a, lda, b.data.as_slice(), accumulate, c, ldc);
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

#[cfg(test)]
mod packed_tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn packed_matches_sgemm_every_shape_and_level() {
        let mut rng = Rng::new(2);
        // One buffer, first filled with NaNs: every pack must overwrite the
        // values it uses (a stale NaN would poison the products; the padding
        // of a partial panel only meets masked-off columns).
        let mut p = PackedB::default();
        p.pack(Trans::N, 200, 600, &vec![f32::NAN; 200 * 600], 600);
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
