use gated::bench::{build_model, BenchConfig};
use gated::train::loss::{bce_logits, sparse_categorical_ce};
use gated::train::{Adam, Algorithm, Optimizer};
use gated::{Rng, Tensor};
use std::time::Instant;

fn main() {
    gated::memory::request_huge_pages();
    gated::memory::retain_freed_memory();
    let cfg = match std::env::args().nth(1).as_deref() {
        Some("A") => BenchConfig::A,
        Some("C") => BenchConfig::C,
        Some("D") => BenchConfig::D,
        _ => BenchConfig::B,
    };
    gated::kernels::gemm::set_threads(2);
    let mut m = build_model(cfg, 1).unwrap();
    let mut opt = Optimizer::new(Algorithm::Adam(Adam::torch_defaults())).unwrap();
    let (b, t) = cfg.dims();
    let mut rng = Rng::new(3);
    let x = match cfg {
        BenchConfig::D => Tensor::from_vec(
            &[b, t, 1024],
            (0..b * t * 1024).map(|_| rng.normal()).collect(),
        )
        .unwrap(),
        BenchConfig::C => {
            Tensor::from_vec(&[b, t], (0..b * t).map(|_| rng.below(65) as f32).collect()).unwrap()
        }
        _ => Tensor::from_vec(
            &[b, t],
            (0..b * t).map(|_| rng.below(20000) as f32).collect(),
        )
        .unwrap(),
    };
    let n: usize = std::env::var("N")
        .ok()
        .map(|s| s.parse().unwrap())
        .unwrap_or(40);
    let mut ts = vec![vec![]; 5];
    let mut body = || {
        for it in 0..n + 5 {
            let t0 = Instant::now();
            if it == 0 {
                m.zero_grad();
            }
            let t1 = Instant::now();
            let out = m.forward(x.clone(), true).unwrap();
            let t2 = Instant::now();
            let (_, d) = match cfg {
                BenchConfig::A => {
                    sparse_categorical_ce(&out, &Tensor::from_vec(&[b], vec![1.0; b]).unwrap())
                        .unwrap()
                }
                BenchConfig::C => sparse_categorical_ce(
                    &out,
                    &Tensor::from_vec(&[b, t], vec![1.0; b * t]).unwrap(),
                )
                .unwrap(),
                BenchConfig::D => (
                    0.0,
                    Tensor::from_vec(out.shape(), vec![1.0; out.len()]).unwrap(),
                ),
                _ => bce_logits(&out, &Tensor::from_vec(&[b, 1], vec![1.0; b]).unwrap()).unwrap(),
            };
            let t3 = Instant::now();
            m.backward(d).unwrap();
            let t4 = Instant::now();
            opt.step_and_zero_grad(&mut m.params_mut()).unwrap();
            let t5 = Instant::now();
            if it >= 5 {
                for (k, (a, c)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)]
                    .iter()
                    .enumerate()
                {
                    ts[k].push((*c - *a).as_secs_f64() * 1e3);
                }
            }
        }
    };
    if std::env::var_os("INWORKER").is_some() {
        rayon::scope(|_| body());
    } else {
        body();
    }
    for (name, mut v) in ["zero", "fwd", "loss", "bwd", "adam"].into_iter().zip(ts) {
        v.sort_by(f64::total_cmp);
        println!("{name:5} median {:.3} ms  min {:.3}", v[v.len() / 2], v[0]);
    }
}
