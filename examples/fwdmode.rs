use gated::bench::{build_model, BenchConfig};
use gated::{Rng, Tensor};
use std::time::Instant;
fn main() {
    gated::memory::request_huge_pages();
    gated::memory::retain_freed_memory();
    gated::kernels::gemm::set_threads(2);
    let cfg = match std::env::args().nth(1).as_deref() {
        Some("C") => BenchConfig::C,
        _ => BenchConfig::B,
    };
    let vocab = if matches!(cfg, BenchConfig::C) {
        65
    } else {
        20000
    };
    let mut m = build_model(cfg, 1).unwrap();
    let (b, t) = cfg.dims();
    let mut rng = Rng::new(3);
    let x = Tensor::from_vec(
        &[b, t],
        (0..b * t).map(|_| rng.below(vocab) as f32).collect(),
    )
    .unwrap();
    gated::threads::in_pool(|| {
        let mut best = [f64::MAX; 2];
        let mut meds = [vec![], vec![]];
        for _ in 0..40 {
            for (i, tr) in [true, false].into_iter().enumerate() {
                let t0 = Instant::now();
                let out = m.forward(x.clone(), tr).unwrap();
                let e = t0.elapsed().as_secs_f64() * 1e3;
                std::hint::black_box(out);
                best[i] = best[i].min(e);
                meds[i].push(e);
            }
        }
        for v in meds.iter_mut() {
            v.sort_by(f64::total_cmp);
        }
        println!(
            "train fwd best {:.3} med {:.3} | infer fwd best {:.3} med {:.3}",
            best[0], meds[0][20], best[1], meds[1][20]
        );
    });
}
