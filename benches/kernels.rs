//! Micro-benchmarks of the kernels the benchmark configurations spend their time
//! in: the GEMM shapes of the recurrent layers and the fused gate maths.
//!
//! Run with `cargo bench --bench kernels` (add `-- --threads 1` to keep divan
//! itself on one thread).

use gated::kernels::act::{sigmoid_slice, tanh_slice};
use gated::kernels::gemm::{set_threads, sgemm, sgemm_packed, PackedB, Trans};
use gated::kernels::simd::set_simd_enabled;
use gated::recurrent::{Cell, CellConfig, CellKind, GruCell, LstmCell, StepBackward, StepForward};
use gated::Rng;

fn main() {
    divan::main();
}

fn rand(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.normal()).collect()
}

/// (m, n, k): per-step recurrent product of B (32x128 by 128x512), the input
/// projection of B (3200x128 by 128x512), the per-step product of C (32x512 by
/// 512x2048), C's second-layer input projection (3200x512 by 512x2048), D's
/// per-step product (64x1024 by 1024x4096) and D's input projection
/// (3200x1024 by 1024x4096).
const SHAPES: [(usize, usize, usize); 6] = [
    (32, 512, 128),
    (3200, 512, 128),
    (32, 2048, 512),
    (3200, 2048, 512),
    (64, 4096, 1024),
    (3200, 4096, 1024),
];

/// The per-step recurrent products with the weights packed once, as the
/// recurrent layers run them.
const STEP_SHAPES: [(usize, usize, usize); 3] = [(32, 512, 128), (32, 2048, 512), (64, 4096, 1024)];

#[divan::bench(args = STEP_SHAPES, consts = [1, 2])]
fn gemm_packed_step<const THREADS: usize>(
    bencher: divan::Bencher,
    (m, n, k): (usize, usize, usize),
) {
    set_threads(THREADS);
    let a = rand(m * k, 1);
    let w = rand(n * k, 2);
    let mut packed = PackedB::default();
    packed.pack(Trans::T, k, n, &w, k);
    let mut c = vec![0.0; m * n];
    bencher
        .counter(divan::counter::ItemsCount::new(2 * m * n * k))
        .bench_local(|| {
            sgemm_packed(m, &a, k, &packed, false, &mut c, n);
            divan::black_box(&c);
        });
    set_threads(1);
}

#[divan::bench(args = SHAPES, consts = [1, 2])]
fn gemm_nt<const THREADS: usize>(bencher: divan::Bencher, (m, n, k): (usize, usize, usize)) {
    set_threads(THREADS);
    let a = rand(m * k, 1);
    let w = rand(n * k, 2); // weight [n, k], used transposed as in the layers
    let mut c = vec![0.0; m * n];
    bencher
        .counter(divan::counter::ItemsCount::new(2 * m * n * k))
        .bench_local(|| {
            sgemm(
                Trans::N,
                Trans::T,
                m,
                n,
                k,
                1.0,
                &a,
                k,
                &w,
                k,
                0.0,
                &mut c,
                n,
            );
            divan::black_box(&c);
        });
    set_threads(1);
}

#[divan::bench(args = [true, false])]
fn sigmoid_4096(bencher: divan::Bencher, simd: bool) {
    set_simd_enabled(simd);
    let x = rand(4096, 3);
    let mut y = x.clone();
    bencher.bench_local(|| {
        y.copy_from_slice(&x);
        sigmoid_slice(&mut y);
        divan::black_box(&y);
    });
    set_simd_enabled(true);
}

#[divan::bench(args = [true, false])]
fn tanh_4096(bencher: divan::Bencher, simd: bool) {
    set_simd_enabled(simd);
    let x = rand(4096, 4);
    let mut y = x.clone();
    bencher.bench_local(|| {
        y.copy_from_slice(&x);
        tanh_slice(&mut y);
        divan::black_box(&y);
    });
    set_simd_enabled(true);
}

/// The buffers of one step at batch 32, 128 units, with random inputs.
struct StepBuffers {
    xw: Vec<f32>,
    h_prev: Vec<f32>,
    c_prev: Vec<f32>,
    h: Vec<f32>,
    c: Vec<f32>,
    cache: Vec<f32>,
    scratch: Vec<f32>,
}

impl StepBuffers {
    fn new(cell: &dyn Cell) -> StepBuffers {
        let (b, h, gw, cw) = (32, 128, cell.config().gate_width(), cell.cache_width());
        let c_prev = if cell.state_count() == 2 {
            rand(b * h, 7)
        } else {
            Vec::new()
        };
        StepBuffers {
            xw: rand(b * gw, 5),
            h_prev: rand(b * h, 6),
            c: vec![0.0; c_prev.len()],
            c_prev,
            h: vec![0.0; b * h],
            cache: vec![0.0; b * cw],
            scratch: vec![0.0; b * gw],
        }
    }

    /// One forward step of `cell` over the buffers.
    fn forward(&mut self, cell: &dyn Cell) {
        cell.step(StepForward {
            batch: 32,
            xw: &self.xw,
            h_rec: &self.h_prev,
            h_prev: &self.h_prev,
            c_prev: &self.c_prev,
            h: &mut self.h,
            c: &mut self.c,
            cache: &mut self.cache,
            scratch: &mut self.scratch,
        });
    }
}

/// One forward step (recurrent GEMM + fused gate maths) at batch 32, 128 units.
fn cell_step(bencher: divan::Bencher, cell: &dyn Cell) {
    set_threads(1);
    let mut bufs = StepBuffers::new(cell);
    bencher.bench_local(|| {
        bufs.forward(cell);
        divan::black_box(&bufs.h);
    });
}

#[divan::bench]
fn lstm_step_b32_h128(bencher: divan::Bencher) {
    let cfg = CellConfig::new(CellKind::Lstm, 128, 128).torch_like();
    let cell = LstmCell::new(cfg, "_l0", &mut Rng::new(8)).unwrap();
    cell_step(bencher, &cell);
}

/// One backward step of the LSTM at batch 32, 128 units: the gate gradients
/// (written over the forward gates in the cache, as the RNN driver runs it)
/// and the recurrent input gradient. Each sample starts from the forward
/// cache of one step, copied outside the timing.
#[divan::bench]
fn lstm_step_backward_b32_h128(bencher: divan::Bencher) {
    set_threads(1);
    let cfg = CellConfig::new(CellKind::Lstm, 128, 128).torch_like();
    let cell = LstmCell::new(cfg, "_l0", &mut Rng::new(8)).unwrap();
    let (b, h) = (32, 128);
    let mut bufs = StepBuffers::new(&cell);
    bufs.forward(&cell);
    let StepBuffers {
        h_prev,
        c_prev,
        h: hn,
        cache,
        mut scratch,
        ..
    } = bufs;
    let (dh, dc) = (rand(b * h, 9), rand(b * h, 10));
    let (mut dh_prev, mut dc_prev, mut dh_rec) =
        (vec![0.0; b * h], vec![0.0; b * h], vec![0.0; b * h]);
    bencher
        .with_inputs(|| cache.clone())
        .bench_local_refs(|step_cache| {
            cell.step_backward(StepBackward {
                batch: b,
                dh: &dh,
                dc: &dc,
                h_rec: &h_prev,
                h_prev: &h_prev,
                c_prev: &c_prev,
                h: &hn,
                cache: step_cache,
                dxw: &mut [],
                drec: &mut [],
                dh_prev: &mut dh_prev,
                dc_prev: &mut dc_prev,
                dh_rec: &mut dh_rec,
                scratch: &mut scratch,
            });
            divan::black_box(&dh_rec);
        });
}

#[divan::bench]
fn gru_step_b32_h128(bencher: divan::Bencher) {
    let cfg = CellConfig::new(CellKind::Gru, 128, 128).torch_like();
    let cell = GruCell::new(cfg, "_l0", &mut Rng::new(9)).unwrap();
    cell_step(bencher, &cell);
}

/// Adam's step on B's embedding table (20,000 x 128 values, 2% of the rows
/// with a gradient) with fresh moments, and after 800 steps in which most
/// rows had no gradient: their first moments have decayed below the smallest
/// normal float, where the CPU's arithmetic takes a slow path unless the
/// optimizer flushes them to zero (it does; PyTorch's default does not).
#[divan::bench(args = [0, 800], sample_count = 20)]
fn adam_step_embedding_table(bencher: divan::Bencher, idle_steps: usize) {
    use gated::train::{Adam, Algorithm, Optimizer};
    set_threads(2);
    let (rows, dim) = (20_000, 128);
    let mut p = gated::Params::new();
    p.add("weight", &[rows, dim]);
    p.values.copy_from_slice(&rand(rows * dim, 11));
    let mut opt = Optimizer::new(Algorithm::Adam(Adam::torch_defaults())).unwrap();
    let touch = |p: &mut gated::Params| {
        for r in (0..rows).step_by(50) {
            p.grads[r * dim..(r + 1) * dim].fill(1e-3);
        }
    };
    p.grads.fill(1e-3);
    opt.step_and_zero_grad(&mut [&mut p]).unwrap();
    for _ in 0..idle_steps {
        touch(&mut p);
        opt.step_and_zero_grad(&mut [&mut p]).unwrap();
    }
    bencher.bench_local(|| {
        touch(&mut p);
        opt.step_and_zero_grad(&mut [&mut p]).unwrap();
    });
}
