//! The AVX-512 GEMM behind [`super::gemm::sgemm`] and
//! [`super::gemm::sgemm_packed`] on CPUs that have it.
//!
//! The classic blocked scheme (Goto & van de Geijn, "Anatomy of high-performance
//! matrix multiplication", 2008): `op(B)` is copied in `KC x NC` blocks into
//! panels of [`NR`] columns, `op(A)` in `MC x KC` blocks into panels of [`MR`]
//! rows (a row-major `op(A)` is read in place instead), and an `MR x NR`
//! register-blocked kernel multiplies one A panel by one B panel with all 24
//! accumulators in registers; each A panel sweeps the whole B block before the
//! next is taken (A panel in L1, B block in L2). The work is split between
//! threads by whole column panels (or row panels when C is tall and narrow), so
//! every element of C is summed in the same order whatever the thread count:
//! results do not depend on it.

use super::gemm::Trans;
use super::pack::{a_panel_stride, pack_a, pack_b};
#[cfg(target_arch = "x86_64")]
use std::cell::RefCell;

/// Columns per B panel: three AVX-512 registers.
pub const NR: usize = 48;
/// Rows per A panel.
pub const MR: usize = 8;
/// Depth of one packed block: an A micro-panel (`MR x KC`, 8 KiB) stays in
/// L1 while the kernel sweeps the B panels of the block.
const KC: usize = 256;
/// Rows of A per packed block (192 KiB, kept in L2).
const MC: usize = 192;
/// Columns of B per packed block: `KC x NC` (528 KiB) stays in L2 (1 MiB per
/// core here) while every A micro-panel of the block passes over it.
/// Measured against 1536 columns with the loops the other way round (B
/// micro-panel outer), three alternating rounds, best of 15 each, on
/// 3200 x 4096 x 1024: +6 to +11 % on two threads, +11 to +60 % on one.
/// Eleven panels rather than ten: 512 columns (each thread's share of C's and
/// D's weight-gradient products) fit one block, so a packed A is packed once
/// instead of twice (three alternating rounds: C's step -12 %, -7 %, +5 %;
/// D's -4 %, 0 %, -3 %).
const NC: usize = 48 * 11;

/// A 64-byte aligned, reusable f32 buffer: packed panels are read with full
/// register-width loads, which must not straddle cache lines.
#[derive(Debug, Default)]
pub struct AlignedBuf {
    raw: Vec<f32>,
    offset: usize,
    len: usize,
}

impl Clone for AlignedBuf {
    fn clone(&self) -> Self {
        let mut b = AlignedBuf::default();
        b.resize_zeroed(self.len);
        b.as_mut_slice().copy_from_slice(self.as_slice());
        b
    }
}

impl PartialEq for AlignedBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl AlignedBuf {
    /// Makes the buffer `len` zeros long, reusing the allocation.
    pub fn resize_zeroed(&mut self, len: usize) {
        self.raw.clear();
        self.raw.resize(len + 16, 0.0);
        let addr = self.raw.as_ptr() as usize;
        self.offset = (64 - addr % 64) % 64 / 4;
        self.len = len;
    }

    /// Makes the buffer `len` floats long for a caller that writes all of
    /// them: the allocation is reused as it is, stale contents and all.
    pub fn resize_for_overwrite(&mut self, len: usize) {
        if self.offset + len <= self.raw.len() {
            self.len = len;
        } else {
            self.resize_zeroed(len);
        }
    }

    /// Grows the buffer to at least `len` floats without clearing it.
    fn reserve_len(&mut self, len: usize) {
        if self.len < len {
            self.resize_zeroed(len);
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.raw[self.offset..self.offset + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.raw[self.offset..self.offset + self.len]
    }
}

/// A read-only strided matrix: element `(i, j)` is at `ptr[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct View {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

impl View {
    /// `op(M)` of a row-major matrix stored with row stride `ld`.
    pub fn new(ptr: *const f32, ld: usize, t: Trans) -> View {
        match t {
            Trans::N => View { ptr, rs: ld, cs: 1 },
            Trans::T => View { ptr, rs: 1, cs: ld },
        }
    }
}

/// The right-hand operand: strided (packed block by block here) or packed
/// once by the caller into panels of `NR` columns over the full depth `k`.
#[derive(Clone, Copy)]
pub enum BSource {
    Strided(View),
    Prepacked(*const f32),
}

/// The output matrix and how to combine with its old contents.
#[derive(Clone, Copy)]
pub struct Out {
    pub ptr: *mut f32,
    pub ld: usize,
    /// `C = alpha A B + beta C`; `beta == 0` ignores the old contents.
    pub beta: f32,
    /// A row of `n` values added to every row of C (a layer's bias, fused
    /// into the stores instead of a pass of its own), or null for none.
    pub bias: *const f32,
}

// SAFETY: the pointers are only dereferenced inside `gemm`, whose caller
// guarantees they are valid for the whole call; the threads write disjoint
// parts of C.
unsafe impl Send for View {}
unsafe impl Sync for View {}
unsafe impl Send for BSource {}
unsafe impl Sync for BSource {}
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

#[cfg(target_arch = "x86_64")]
thread_local! {
    static BUFFERS: RefCell<(AlignedBuf, AlignedBuf)> = RefCell::new(Default::default());
}

/// `C = alpha op(A) op(B) + beta C` over `m x n x k`, on up to `threads`
/// threads.
#[cfg(target_arch = "x86_64")]
///
/// # Safety
/// The CPU must have AVX-512 F. `a` and `b` must address valid `m x k` and
/// `k x n` matrices (a prepacked `b` holds `ceil(n / NR) * k * NR` floats),
/// and `c` a valid, exclusively borrowed `m x n` matrix with row stride `c.ld`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: View,
    b: BSource,
    c: Out,
    threads: usize,
) {
    let n_panels = n.div_ceil(NR);
    let m_panels = m.div_ceil(MR);
    // Columns when there are enough panels to share evenly; rows when they
    // share more evenly (C's and B's 512 columns are 11 panels: 6 against
    // 5.5 is a 9 % longer wait). Probe, 2 threads, three alternating rounds:
    // 2048 x 512 x 3200 (A^T B) 184-196 GFLOP/s by rows against 174-180 by
    // columns; 512 x 2048 x 3200, 43 panels, stays better by columns.
    let uneven = |units: usize| (units.div_ceil(threads) * threads) as f64 / units as f64;
    let split_cols = n_panels >= m_panels
        || (n_panels >= 2 * threads && uneven(n_panels) <= uneven(m_panels) + 0.03);
    let parts = if split_cols { n_panels } else { m_panels }
        .min(threads)
        .max(1);
    if parts == 1 {
        // SAFETY: forwarded from the caller.
        return unsafe { gemm_part(0..m, 0..n, k, alpha, a, b, c) };
    }
    // Part t gets a balanced range of whole panels; computed per part so that
    // the per-step products allocate nothing.
    let (total, unit, len) = if split_cols {
        (n_panels, NR, n)
    } else {
        (m_panels, MR, m)
    };
    let run = |t: usize| {
        let lo = (total * t / parts * unit).min(len);
        let hi = (total * (t + 1) / parts * unit).min(len);
        let (rows, cols) = if split_cols {
            (0..m, lo..hi)
        } else {
            (lo..hi, 0..n)
        };
        // SAFETY: forwarded from the caller; the parts write disjoint blocks of C.
        unsafe { gemm_part(rows, cols, k, alpha, a, b, c) }
    };
    rayon::in_place_scope(|s| {
        for t in 1..parts {
            s.spawn(move |_| run(t));
        }
        run(0);
    });
}

#[cfg(target_arch = "x86_64")]
/// One thread's share: rows `rows` and columns `cols` (a multiple of `NR` from
/// column 0, so prepacked panels line up) of C.
///
/// # Safety
/// As [`gemm`].
unsafe fn gemm_part(
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    k: usize,
    alpha: f32,
    a: View,
    b: BSource,
    c: Out,
) {
    BUFFERS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (apack, bpack) = &mut *bufs;
        let mut jc = cols.start;
        while jc < cols.end {
            let nc = NC.min(cols.end - jc);
            let panels = nc.div_ceil(NR);
            let mut pc = 0;
            while pc < k {
                let kc = KC.min(k - pc);
                // Where panel p of this block starts and the distance between panels.
                let (bbase, bstride) = match b {
                    BSource::Strided(v) => {
                        bpack.reserve_len(panels * kc * NR);
                        pack_b(v, pc, kc, jc, nc, bpack.as_mut_slice());
                        (bpack.as_slice().as_ptr(), kc * NR)
                    }
                    BSource::Prepacked(p) => (p.add((jc / NR) * k * NR + pc * NR), k * NR),
                };
                // A prepacked B (the recurrent weights of the per-step products)
                // comes from L3 or memory: fetch it ahead of the hardware prefetcher.
                let prefetch = matches!(b, BSource::Prepacked(_));
                let (beta, bias) = if pc == 0 {
                    (c.beta, c.bias)
                } else {
                    (1.0, std::ptr::null())
                };
                let mut ic = rows.start;
                while ic < rows.end {
                    let mc = MC.min(rows.end - ic);
                    let a_panels = mc.div_ceil(MR);
                    // A row-major op(A) is read in place (the kernel broadcasts
                    // from its rows); copying it would cost as much as the
                    // product when C is narrow. Anything else is packed.
                    let direct = a.cs == 1 && alpha == 1.0;
                    let (ap, a_rs, a_panel) = if direct {
                        (a.ptr.add(ic * a.rs + pc), a.rs, MR * a.rs)
                    } else {
                        apack.reserve_len(a_panels * a_panel_stride(kc));
                        pack_a(a, alpha, ic, mc, pc, kc, apack.as_mut_slice());
                        (apack.as_slice().as_ptr(), 0, a_panel_stride(kc))
                    };
                    for ipn in 0..a_panels {
                        let i = ic + ipn * MR;
                        let nrows = MR.min(ic + mc - i);
                        let panel = ap.add(ipn * a_panel);
                        for jp in 0..panels {
                            let j = jc + jp * NR;
                            let ncols = NR.min(jc + nc - j);
                            let bp = bbase.add(jp * bstride);
                            let cp = c.ptr.add(i * c.ld + j);
                            let bias = if bias.is_null() { bias } else { bias.add(j) };
                            avx512::kernel(
                                kc, panel, a_rs, bp, cp, c.ld, nrows, ncols, beta, bias, prefetch,
                            );
                        }
                    }
                    ic += mc;
                }
                pc += kc;
            }
            jc += nc;
        }
    })
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    fn mask(cols: usize, from: usize) -> u16 {
        match cols.saturating_sub(from) {
            0 => 0,
            c if c >= 16 => 0xFFFF,
            c => (1u16 << c) - 1,
        }
    }

    /// `C[rows, cols] = A panel * B panel (+ bias) (+ beta C)` for one `MR x NR`
    /// block; `bias` (null for none) points at the block's first column.
    /// The A panel is packed (`kc x MR`, when `a_rs == 0`) or `rows` rows of a
    /// row-major matrix with row stride `a_rs`.
    ///
    /// # Safety
    /// AVX-512 F; `ap` holds the A panel, `bp` `kc * NR` floats; C's `rows x cols`
    /// block at `c` (stride `ldc`) is valid and exclusively ours. With
    /// `prefetch`, B is prefetched [`PREFETCH_STEPS`] k steps ahead (prefetches
    /// never fault, so past the panel's end is harmless).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn kernel(
        kc: usize,
        ap: *const f32,
        a_rs: usize,
        bp: *const f32,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        beta: f32,
        bias: *const f32,
        prefetch: bool,
    ) {
        let m = [mask(cols, 0), mask(cols, 16), mask(cols, 32)];
        // A full row panel against a narrow last column panel (128 columns are
        // two panels and 32 columns) skips the all-padding vectors: a third
        // fewer multiply-adds there. Only full row panels get the narrow
        // variants; partial ones are rare (one per product at most).
        macro_rules! dispatch {
            ($direct:literal, $pf:literal) => {
                match (rows, cols.div_ceil(16)) {
                    (8, 1) => block::<8, 1, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                    (8, 2) => block::<8, 2, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                    (8, _) => block::<8, 3, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                    (7, _) => block::<7, 3, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                    (6, _) => block::<6, 3, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                    (5, _) => block::<5, 3, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                    (4, _) => block::<4, 3, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                    (3, _) => block::<3, 3, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                    (2, _) => block::<2, 3, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                    _ => block::<1, 3, $direct, $pf>(kc, ap, a_rs, bp, c, ldc, m, beta, bias),
                }
            };
        }
        match (a_rs == 0, prefetch) {
            (true, false) => dispatch!(false, false),
            (true, true) => dispatch!(false, true),
            (false, false) => dispatch!(true, false),
            (false, true) => dispatch!(true, true),
        }
    }

    /// How far ahead (in k steps of one B panel) [`kernel`] prefetches B.
    /// Best of six alternating rounds, one core, huge pages: D's per-step
    /// products (32 x 4096 x 1024, 32 x 1024 x 4096) at 16 steps 71-74
    /// GFLOP/s against 66-69 without; C's (16 x 2048 x 512, 16 x 512 x 2048)
    /// -1 % to +5 %; a large product with B packed per block lost 5-6 %, so
    /// only a prepacked B is prefetched.
    const PREFETCH_STEPS: usize = 16;

    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const R: usize, const NV: usize, const DIRECT: bool, const PREFETCH: bool>(
        kc: usize,
        ap: *const f32,
        a_rs: usize,
        bp: *const f32,
        c: *mut f32,
        ldc: usize,
        m: [u16; 3],
        beta: f32,
        bias: *const f32,
    ) {
        // C's rows are far apart (a TLB page or more): fetch the block now so
        // that the misses overlap the multiply instead of stalling the stores.
        for r in 0..R {
            let row = c.wrapping_add(r * ldc) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(row);
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(64));
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(128));
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(188));
        }
        let mut acc = [[_mm512_setzero_ps(); NV]; R];
        let rows: [*const f32; R] = std::array::from_fn(|r| ap.wrapping_add(r * a_rs));
        let (mut a, mut b) = (ap, bp);
        for kk in 0..kc {
            if PREFETCH {
                let ahead = b.wrapping_add(PREFETCH_STEPS * NR) as *const i8;
                for v in 0..NV {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * v));
                }
            }
            // SAFETY: one k step of each panel, inside the bounds the caller gives.
            let bv: [__m512; NV] = std::array::from_fn(|v| _mm512_load_ps(b.add(16 * v)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = if DIRECT {
                    _mm512_set1_ps(*rows[r].add(kk))
                } else {
                    _mm512_set1_ps(*a.add(r))
                };
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = _mm512_fmadd_ps(av, bv, *acc);
                }
            }
            a = a.wrapping_add(MR);
            b = b.add(NR);
        }
        if !bias.is_null() {
            for (v, &mk) in m.iter().take(NV).enumerate() {
                // SAFETY: the mask covers only this block's real columns.
                let bv = _mm512_maskz_loadu_ps(mk, bias.wrapping_add(16 * v));
                for acc in acc.iter_mut() {
                    acc[v] = _mm512_add_ps(acc[v], bv);
                }
            }
        }
        let vbeta = _mm512_set1_ps(beta);
        for (r, acc) in acc.iter().enumerate() {
            let row = c.add(r * ldc);
            for (v, (&mk, &x)) in m.iter().zip(acc).enumerate() {
                if mk == 0 {
                    continue;
                }
                // SAFETY: the mask covers only this block's real columns.
                let p = row.wrapping_add(16 * v);
                let out = if beta == 0.0 {
                    x
                } else if beta == 1.0 {
                    _mm512_add_ps(x, _mm512_maskz_loadu_ps(mk, p))
                } else {
                    _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(mk, p), x)
                };
                _mm512_mask_storeu_ps(p, mk, out);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// `alpha op(A) op(B) + beta C0` in f64.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: View,
        b: View,
        beta: f32,
        c0: &[f32],
        ldc: usize,
    ) -> Vec<f32> {
        let mut out = c0.to_vec();
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    // SAFETY: the views address the test's own vectors in bounds.
                    let (x, y) = unsafe {
                        (
                            *a.ptr.add(i * a.rs + p * a.cs),
                            *b.ptr.add(p * b.rs + j * b.cs),
                        )
                    };
                    s += x as f64 * y as f64;
                }
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta as f64 * c0[i * ldc + j] as f64
                };
                out[i * ldc + j] = (alpha as f64 * s + old) as f32;
            }
        }
        out
    }

    fn has_avx512() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    /// Shapes that cross every blocking boundary (KC, MC, NC, the panel
    /// widths) and all four transpose combinations, with 1, 2 and 3 threads
    /// giving bit-identical results.
    #[test]
    fn blocked_matches_reference_across_block_edges_and_threads() {
        if !has_avx512() {
            return;
        }
        let mut rng = Rng::new(7);
        for &(m, n, k) in &[
            (4, 5, 3),
            (9, 49, 257),
            (200, 97, 300),
            (17, 1600, 40),
            (193, 60, 513),
            (24, 128, 70),
        ] {
            for (ta, tb) in [
                (Trans::N, Trans::N),
                (Trans::N, Trans::T),
                (Trans::T, Trans::N),
                (Trans::T, Trans::T),
            ] {
                let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
                let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
                let ldc = n + 5;
                let c0: Vec<f32> = (0..m * ldc).map(|_| rng.normal()).collect();
                let av = View::new(a.as_ptr(), if ta == Trans::N { k } else { m }, ta);
                let bv = View::new(b.as_ptr(), if tb == Trans::N { n } else { k }, tb);
                for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                    let want = reference(m, n, k, alpha, av, bv, beta, &c0, ldc);
                    let mut first: Option<Vec<f32>> = None;
                    for threads in [1, 2, 3] {
                        let mut c = c0.clone();
                        if beta == 0.0 {
                            // Old contents, NaN included, must be ignored.
                            for i in 0..m {
                                c[i * ldc..i * ldc + n].fill(f32::NAN);
                            }
                        }
                        let out = Out {
                            ptr: c.as_mut_ptr(),
                            ld: ldc,
                            beta,
                            bias: std::ptr::null(),
                        };
                        // SAFETY: AVX-512 checked; the views and C cover the shapes.
                        unsafe { gemm(m, n, k, alpha, av, BSource::Strided(bv), out, threads) };
                        for i in 0..m {
                            for j in 0..ldc {
                                let (g, w) = (c[i * ldc + j], want[i * ldc + j]);
                                assert!(
                                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                                    "{m}x{n}x{k} {ta:?}{tb:?} a{alpha} b{beta} t{threads} ({i},{j}): {g} vs {w}"
                                );
                            }
                        }
                        match &first {
                            None => first = Some(c),
                            Some(f) => assert!(
                                f.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()),
                                "thread count changed the bits: {m}x{n}x{k} t{threads}"
                            ),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn prepacked_equals_strided_bit_for_bit() {
        if !has_avx512() {
            return;
        }
        let mut rng = Rng::new(8);
        let (m, n, k) = (70, 1000, 600);
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect(); // [n, k], used transposed
        let bv = View::new(w.as_ptr(), k, Trans::T);
        let mut packed = AlignedBuf::default();
        packed.resize_zeroed(n.div_ceil(NR) * k * NR);
        // SAFETY: the view addresses `w` in bounds.
        unsafe { pack_b(bv, 0, k, 0, n, packed.as_mut_slice()) };
        let av = View::new(a.as_ptr(), k, Trans::N);
        let mut c1 = vec![0.0; m * n];
        let mut c2 = vec![0.0; m * n];
        for threads in [1, 2] {
            // SAFETY: AVX-512 checked; buffers cover the shapes.
            unsafe {
                gemm(
                    m,
                    n,
                    k,
                    1.0,
                    av,
                    BSource::Strided(bv),
                    Out {
                        ptr: c1.as_mut_ptr(),
                        ld: n,
                        beta: 0.0,
                        bias: std::ptr::null(),
                    },
                    threads,
                );
                gemm(
                    m,
                    n,
                    k,
                    1.0,
                    av,
                    BSource::Prepacked(packed.as_slice().as_ptr()),
                    Out {
                        ptr: c2.as_mut_ptr(),
                        ld: n,
                        beta: 0.0,
                        bias: std::ptr::null(),
                    },
                    threads,
                );
            }
            assert_eq!(c1, c2);
        }
    }

    #[test]
    fn aligned_buf_is_64_byte_aligned_and_zeroed() {
        let mut b = AlignedBuf::default();
        for len in [1, 17, 1000, 3] {
            b.resize_zeroed(len);
            assert_eq!(b.as_slice().as_ptr() as usize % 64, 0);
            assert!(b.as_slice().iter().all(|&v| v == 0.0));
            b.as_mut_slice().fill(1.0);
        }
        let c = b.clone();
        assert_eq!(c, b);
        assert_eq!(c.as_slice().as_ptr() as usize % 64, 0);
    }
}
