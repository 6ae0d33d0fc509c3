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
