//! The fast paths must not change the numbers: the SIMD kernels against the
//! baseline fallback, and one GEMM thread against two, on a whole LSTM/GRU
//! forward and backward pass. One test function, because both switches are
//! process-wide.

use gated::kernels::gemm::set_threads;
use gated::kernels::simd::set_simd_enabled;
use gated::recurrent::{Gru, Lstm, Rnn};
use gated::{Rng, Tensor};

/// Output, input gradient and weight gradients of one training pass.
fn run(mut layer: Rnn, x: &Tensor) -> Vec<f32> {
    let out = layer.forward_seq(x, None, None, true).unwrap();
    let d = Tensor::from_vec(
        out.output.shape(),
        (0..out.output.len())
            .map(|i| ((i % 7) as f32 - 3.0) * 0.1)
            .collect(),
    )
    .unwrap();
    let g = layer.backward_seq(&d, None).unwrap();
    let mut all = out.output.into_vec();
    all.extend_from_slice(g.dx.data());
    for p in gated::Layer::params(&layer) {
        all.extend_from_slice(&p.grads);
    }
    all
}

fn layers() -> Vec<Rnn> {
    vec![
        Lstm::new(64, 256)
            .return_sequences(true)
            .torch_like()
            .seed(3)
            .build()
            .unwrap(),
        Gru::new(64, 256)
            .return_sequences(true)
            .torch_like()
            .seed(4)
            .build()
            .unwrap(),
    ]
}

fn assert_close(what: &str, a: &[f32], b: &[f32], rel: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let tol = rel * y.abs().max(1e-1);
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn simd_fallback_and_thread_counts_agree() {
    let mut rng = Rng::new(7);
    // 32 x 20 x 64: the whole-sequence products (640 x 1024 x 64 and larger)
    // are above the threshold where two threads are used.
    let x = Tensor::from_vec(
        &[32, 20, 64],
        (0..32 * 20 * 64).map(|_| rng.normal()).collect(),
    )
    .unwrap();
    for k in 0..layers().len() {
        set_threads(1);
        set_simd_enabled(true);
        let base = run(layers().remove(k), &x);
        set_simd_enabled(false);
        let fallback = run(layers().remove(k), &x);
        set_simd_enabled(true);
        // The AVX-512 kernels use fused multiply-adds (one rounding), the
        // fallback separate ones; over BPTT's sums that differs by ~1e-5.
        assert_close("simd vs fallback", &fallback, &base, 1e-4);
        set_threads(2);
        let two = run(layers().remove(k), &x);
        set_threads(1);
        assert_close("2 threads vs 1", &two, &base, 1e-5);
    }
}
