//! Copying GEMM operands into the panel layout the blocked kernel reads.
//!
//! Packing is pure data movement, but with narrow products (the recurrent
//! layers' weight gradients are `4H x 128`, `H = 128`) it is not small: done
//! one scalar at a time it was 6-7 % of benchmark B's profile (the kernel
//! itself 43 %). The two common layouts get vectorised paths: a transposed
//! operand (contiguous along the panel's short side) is copied in whole
//! register rows, and a transposed B (contiguous along k) is turned in 8 x 8
//! tiles in registers. The bodies are written
//! once and compiled for AVX-512, AVX2 and the baseline; the values are the
//! same bits on every path (pure copies and one multiplication each).

use super::blocked::{View, MR, NR};
#[cfg(target_arch = "x86_64")]
use super::simd::{level, Level};

crate::kernels::simd::multiversion!(
    /// Packs `op(B)[k0..k0+kc, j0..j0+nc]` into panels of `NR` columns, each
    /// `kc x NR`, zero-padding the last panel's missing columns.
    ///
    /// # Safety
    /// Every addressed element of `b` must be readable, and `dst` must hold
    /// `ceil(nc / NR) * kc * NR` floats.
    pub unsafe fn pack_b(b: View, k0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [f32]) => pack_b_imp
);

/// Floats between the starts of two packed A panels of depth `kc`: `kc x MR`
/// and one cache line more, so that the same row of consecutive panels falls
/// in consecutive L1 sets (unpadded, panels are 8 KiB apart and all share one
/// set, which [`pack_a`] writing every panel row by row would thrash).
pub fn a_panel_stride(kc: usize) -> usize {
    kc * MR + 16
}

crate::kernels::simd::multiversion!(
    /// Packs `alpha * op(A)[i0..i0+mc, k0..k0+kc]` into panels of `MR` rows,
    /// each `kc x MR` and [`a_panel_stride`] apart, zero-padding the last
    /// panel's missing rows.
    ///
    /// # Safety
    /// Every addressed element of `a` must be readable, and `dst` must hold
    /// `ceil(mc / MR) * a_panel_stride(kc)` floats.
    pub unsafe fn pack_a(
        a: View,
        alpha: f32,
        i0: usize,
        mc: usize,
        k0: usize,
        kc: usize,
        dst: &mut [f32],
    ) => pack_a_imp
);

/// The body of [`pack_b`].
#[inline(always)]
unsafe fn pack_b_imp(b: View, k0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [f32]) {
    if kc == 0 || nc == 0 {
        return;
    }
    for (p, panel) in dst.chunks_exact_mut(kc * NR).enumerate() {
        let jp = j0 + p * NR;
        if jp >= j0 + nc {
            break;
        }
        let cols = NR.min(j0 + nc - jp);
        if b.cs == 1 {
            // Rows of op(B) are contiguous: one copy per k step. A full panel
            // row has a constant length, so the copy is inlined as register
            // moves instead of a call to memcpy.
            for (kk, d) in panel.chunks_exact_mut(NR).enumerate() {
                let src = b.ptr.add((k0 + kk) * b.rs + jp);
                if cols == NR {
                    std::ptr::copy_nonoverlapping(src, d.as_mut_ptr(), NR);
                } else {
                    // A narrow last panel: a vectorised loop into a zeroed
                    // row, rather than memcpy and memset calls per k step.
                    let mut row = [0.0f32; NR];
                    for (c, r) in row[..cols].iter_mut().enumerate() {
                        *r = *src.add(c);
                    }
                    d.copy_from_slice(&row);
                }
            }
            continue;
        }
        if cols < NR {
            panel.fill(0.0);
        }
        let mut c = 0;
        // The 8 x 8 tiles need AVX (the AVX2 and AVX-512 builds of this body).
        #[cfg(target_arch = "x86_64")]
        if b.rs == 1 && level() != Level::Baseline {
            // Columns of op(B) are contiguous (a transposed row-major
            // matrix): turn 8 columns x 8 k steps at a time in registers.
            while c + 8 <= cols {
                let mut kk = 0;
                while kk + 8 <= kc {
                    let src = b.ptr.add((jp + c) * b.cs + k0 + kk);
                    transpose8x8(src, b.cs, panel.as_mut_ptr().add(kk * NR + c), NR);
                    kk += 8;
                }
                for kk in kk..kc {
                    for cc in c..c + 8 {
                        panel[kk * NR + cc] = *b.ptr.add((jp + cc) * b.cs + (k0 + kk) * b.rs);
                    }
                }
                c += 8;
            }
        }
        for c in c..cols {
            let col = b.ptr.add((jp + c) * b.cs + k0 * b.rs);
            for kk in 0..kc {
                panel[kk * NR + c] = *col.add(kk * b.rs);
            }
        }
    }
}

/// Writes the transpose of the 8 x 8 tile at `src` (rows `ld_src` apart)
/// to `dst` (rows `ld_dst` apart).
///
/// # Safety
/// AVX must be enabled in the caller; both tiles must be in bounds.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transpose8x8(src: *const f32, ld_src: usize, dst: *mut f32, ld_dst: usize) {
    use std::arch::x86_64::*;
    let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ld_src)));
    // Interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    let out = [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ];
    for (i, v) in out.into_iter().enumerate() {
        _mm256_storeu_ps(dst.add(i * ld_dst), v);
    }
}

/// How many k steps (source rows) ahead [`pack_a`] prefetches a transposed A.
const PACK_A_AHEAD: usize = 4;

/// The body of [`pack_a`].
#[inline(always)]
unsafe fn pack_a_imp(
    a: View,
    alpha: f32,
    i0: usize,
    mc: usize,
    k0: usize,
    kc: usize,
    dst: &mut [f32],
) {
    if mc == 0 || kc == 0 {
        return;
    }
    let panels = mc.div_ceil(MR);
    let stride = a_panel_stride(kc);
    let dst = &mut dst[..panels * stride];
    if !mc.is_multiple_of(MR) {
        // Rows past the end of A read as zeros.
        dst[(panels - 1) * stride..].fill(0.0);
    }
    let full = mc / MR;
    let rest = mc - full * MR;
    if a.rs == 1 {
        // op(A) is a transposed matrix: source row `k` holds element `k` of
        // every row of the block, contiguously. Each source row is read once,
        // front to back (the lines of a row are fetched together), and its
        // pieces of `MR` go to every panel. A later row is prefetched: rows
        // are a whole gate row apart (2 KiB and more).
        let row_bytes = mc * std::mem::size_of::<f32>();
        for kk in 0..kc {
            let src = a.ptr.add((k0 + kk) * a.cs + i0);
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                let ahead = src.wrapping_add(PACK_A_AHEAD * a.cs) as *const i8;
                for line in (0..row_bytes).step_by(64) {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line));
                }
            }
            for p in 0..full {
                let mut v = std::ptr::read_unaligned(src.add(p * MR) as *const [f32; MR]);
                v.iter_mut().for_each(|x| *x *= alpha);
                dst[p * stride + kk * MR..][..MR].copy_from_slice(&v);
            }
            for r in 0..rest {
                dst[full * stride + kk * MR + r] = alpha * *src.add(full * MR + r);
            }
        }
    } else {
        for i in 0..mc {
            let (p, r) = (i / MR, i % MR);
            let row = a.ptr.add((i0 + i) * a.rs + k0 * a.cs);
            let panel = &mut dst[p * stride..][..kc * MR];
            for kk in 0..kc {
                panel[kk * MR + r] = alpha * *row.add(kk * a.cs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::Trans;
    use crate::kernels::simd::set_simd_enabled;
    use crate::rng::Rng;

    /// Element `(kk, c)` of panel-packed B, or of panel-packed A with
    /// `(kk, r)`: `width` is NR or MR.
    fn packed_at(dst: &[f32], kc: usize, width: usize, kk: usize, c: usize) -> f32 {
        dst[(c / width) * kc * width + kk * width + c % width]
    }

    /// Both transposes, blocks that start inside the matrix, partial panels
    /// and partial 8 x 8 tiles: every packed value is the source value (or
    /// alpha times it), the padding is zero, and every SIMD level gives the
    /// same bits.
    #[test]
    fn packing_matches_the_definition_on_every_path() {
        let mut rng = Rng::new(21);
        let (rows, cols) = (70, 131);
        let m: Vec<f32> = (0..rows * cols).map(|_| rng.normal()).collect();
        let mut results = Vec::new();
        for simd in [true, false] {
            set_simd_enabled(simd);
            let mut out = Vec::new();
            for t in [Trans::N, Trans::T] {
                let v = View::new(m.as_ptr(), cols, t);
                let (k_all, n_all) = if t == Trans::N {
                    (rows, cols)
                } else {
                    (cols, rows)
                };
                for &(k0, kc, j0, nc) in &[(0, k_all, 0, n_all), (3, 17, 5, 50), (8, 24, 48, 9)] {
                    let panels = nc.div_ceil(NR);
                    let mut dst = vec![f32::NAN; panels * kc * NR];
                    // SAFETY: the block lies inside `m`, `dst` holds its panels.
                    unsafe { pack_b(v, k0, kc, j0, nc, &mut dst) };
                    for kk in 0..kc {
                        for c in 0..panels * NR {
                            let want = if c < nc {
                                let (i, j) = (k0 + kk, j0 + c);
                                if t == Trans::N {
                                    m[i * cols + j]
                                } else {
                                    m[j * cols + i]
                                }
                            } else {
                                0.0
                            };
                            assert_eq!(
                                packed_at(&dst, kc, NR, kk, c),
                                want,
                                "B {t:?} {k0} {kc} {j0} {nc}"
                            );
                        }
                    }
                    out.push(dst);
                }
                let (m_all, k_all) = if t == Trans::N {
                    (rows, cols)
                } else {
                    (cols, rows)
                };
                for &(i0, mc, k0, kc, alpha) in &[(0, m_all, 0, k_all, 1.0), (5, 19, 2, 30, -0.5)] {
                    let panels = mc.div_ceil(MR);
                    let stride = a_panel_stride(kc);
                    let mut dst = vec![f32::NAN; panels * stride];
                    // SAFETY: as above.
                    unsafe { pack_a(v, alpha, i0, mc, k0, kc, &mut dst) };
                    for kk in 0..kc {
                        for r in 0..panels * MR {
                            let want = if r < mc {
                                let (i, j) = (i0 + r, k0 + kk);
                                alpha
                                    * if t == Trans::N {
                                        m[i * cols + j]
                                    } else {
                                        m[j * cols + i]
                                    }
                            } else {
                                0.0
                            };
                            let got = dst[(r / MR) * stride + kk * MR + r % MR];
                            assert_eq!(got, want, "A {t:?} {i0} {mc}");
                        }
                    }
                    out.push(dst);
                }
            }
            results.push(out);
        }
        set_simd_enabled(true);
        assert_eq!(results[0].len(), results[1].len());
        for (x, y) in results[0].iter().zip(&results[1]) {
            assert!(x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()));
        }
    }
}
