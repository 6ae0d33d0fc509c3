use gated::kernels::gemm::{set_threads, sgemm, sgemm_packed, with_thread_cap, PackedB, Trans};
use std::time::Instant;
fn main() {
    gated::memory::request_huge_pages();
    set_threads(2);
    gated::threads::in_pool(|| {
        for (name, m, n, k, ta, tb) in [
            ("proj NT", 2560usize, 512usize, 128usize, Trans::N, Trans::T),
            ("dW TN", 512, 128, 2560, Trans::T, Trans::N),
            ("dX NN", 2560, 128, 512, Trans::N, Trans::N),
        ] {
            let a = vec![0.5f32; m * k];
            let b = vec![0.25f32; k * n];
            let mut c = vec![0.0f32; m * n];
            let lda = if ta == Trans::N { k } else { m };
            let ldb = if tb == Trans::N { n } else { k };
            let mut best = f64::MAX;
            let mut all = vec![];
            for _ in 0..200 {
                let t = Instant::now();
                sgemm(ta, tb, m, n, k, 1.0, &a, lda, &b, ldb, 1.0, &mut c, n);
                let e = t.elapsed().as_secs_f64();
                best = best.min(e);
                all.push(e);
            }
            all.sort_by(f64::total_cmp);
            let f = 2.0 * (m * n * k) as f64 / 1e9;
            println!(
                "{name} {m}x{n}x{k}: median {:.3} ms {:6.1} GF/s  best {:6.1}",
                all[100] * 1e3,
                f / all[100],
                f / best
            );
        }
        for (name, n, k) in [("step fwd", 512usize, 128usize), ("step bwd", 128, 512)] {
            let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32).collect();
            let mut p = PackedB::default();
            p.pack(Trans::N, k, n, &b, n);
            let a = vec![0.5f32; 16 * k];
            let steps = 80;
            let mut best = f64::MAX;
            for _ in 0..50 {
                let t = Instant::now();
                rayon::join(
                    || {
                        with_thread_cap(1, || {
                            let mut c = vec![0.0f32; 16 * n];
                            for _ in 0..steps {
                                sgemm_packed(16, &a, k, &p, false, &mut c, n);
                            }
                        })
                    },
                    || {
                        with_thread_cap(1, || {
                            let mut c = vec![0.0f32; 16 * n];
                            for _ in 0..steps {
                                sgemm_packed(16, &a, k, &p, false, &mut c, n);
                            }
                        })
                    },
                );
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!("{name} 16x{n}x{k} x{steps} steps on both threads: best {:.3} ms, {:.1} GF/s per thread", best * 1e3, 2.0 * (16 * n * k * steps) as f64 / best / 1e9);
        }
    });
}
