//! Single-row products `c = alpha * a op(B) + beta * c` where `op(B) = B^T`
//! and B's rows are contiguous: every recurrent and dense layer at batch 1
//! (generation). Each output is one dot product streaming one row of the
//! weights, the rows split between threads; a general GEMM would copy (pack)
//! the weights first, or walk them with a stride.

/// Products below this many multiply-adds stay on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// `c[j] = alpha * dot(a[..k], b[j * ldb..][..k]) + beta * c[j]` for `j < n`
/// (`beta == 0` ignores the old `c`). Results do not depend on the thread
/// count: each output is summed by one thread in a fixed order.
#[allow(clippy::too_many_arguments)]
pub fn gemv_rows(
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
) {
    let threads = if n * k >= PARALLEL_MIN_MACS {
        super::gemm::threads().min(n)
    } else {
        1
    };
    let c = &mut c[..n];
    if threads <= 1 {
        rows(k, alpha, a, b, ldb, beta, c);
        return;
    }
    let chunk = n.div_ceil(threads);
    rayon::in_place_scope(|s| {
        let mut parts = c.chunks_mut(chunk).enumerate();
        let first = parts.next();
        for (t, part) in parts {
            let b = &b[t * chunk * ldb..];
            s.spawn(move |_| rows(k, alpha, a, b, ldb, beta, part));
        }
        if let Some((_, part)) = first {
            rows(k, alpha, a, b, ldb, beta, part);
        }
    });
}

crate::kernels::simd::multiversion!(
    /// [`gemv_rows`] for the rows of `c`, on this thread.
    fn rows(k: usize, alpha: f32, a: &[f32], b: &[f32], ldb: usize, beta: f32, c: &mut [f32])
        => rows_impl
);

#[inline(always)]
fn rows_impl(k: usize, alpha: f32, a: &[f32], b: &[f32], ldb: usize, beta: f32, c: &mut [f32]) {
    let a = &a[..k];
    for (j, cj) in c.iter_mut().enumerate() {
        let d = alpha * dot(a, &b[j * ldb..][..k]);
        *cj = if beta == 0.0 { d } else { d + beta * *cj };
    }
}

/// `sum_i x[i] y[i]` with 64 independent partial sums (four AVX-512
/// registers' worth), added up in a fixed order.
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    const LANES: usize = 64;
    let mut acc = [0.0f32; LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for i in 0..LANES {
            acc[i] += xs[i] * ys[i];
        }
    }
    let mut tail = 0.0f32;
    for (a, b) in xr.iter().zip(yr) {
        tail += a * b;
    }
    // Pairwise, so that the reduction vectorises too.
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0] + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn matches_f64_dot_products_for_any_thread_count() {
        let mut rng = Rng::new(4);
        for &(n, k, ldb) in &[(1, 1, 1), (5, 63, 70), (2048, 512, 512), (65, 130, 131)] {
            let a: Vec<f32> = (0..k).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..n * ldb).map(|_| rng.normal()).collect();
            let c0: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
            for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                let want: Vec<f64> = (0..n)
                    .map(|j| {
                        let d: f64 = (0..k).map(|p| a[p] as f64 * b[j * ldb + p] as f64).sum();
                        alpha as f64 * d + beta as f64 * c0[j] as f64
                    })
                    .collect();
                for simd in [true, false] {
                    crate::kernels::simd::set_simd_enabled(simd);
                    let mut runs = Vec::new();
                    for threads in [1, 2, 3] {
                        crate::kernels::gemm::set_threads(threads);
                        let mut c = c0.clone();
                        gemv_rows(n, k, alpha, &a, &b, ldb, beta, &mut c);
                        runs.push(c);
                    }
                    crate::kernels::gemm::set_threads(1);
                    for (g, w) in runs[0].iter().zip(&want) {
                        let err = (*g as f64 - w).abs();
                        assert!(err <= 1e-4 * (1.0 + w.abs()), "{n}x{k} simd {simd}");
                    }
                    assert!(runs.iter().all(|r| r == &runs[0]), "thread counts differ");
                }
                crate::kernels::simd::set_simd_enabled(true);
            }
        }
    }
}
