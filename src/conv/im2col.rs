//! im2col / col2im for stride-1 3-D convolutions over channels-last samples
//! (2-D convolutions are the case of depth 1 and kernel depth 1).
//!
//! One sample is `[D, H, W, C]`. Its column matrix has one row per output
//! position `(od, oh, ow)` and one column per window element in PyTorch's weight
//! order `(c, a, b, e)` for kernel offsets `a < kd`, `b < kh`, `e < kw`:
//!
//! ```text
//! cols[(od*OH + oh)*OW + ow, ((c*kd + a)*kh + b)*kw + e]
//!     = x[od + a - pd, oh + b - ph, ow + e - pw, c]   (0 outside the sample)
//! ```

use super::Padding;

/// The geometry of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    /// Input spatial sizes `[D, H, W]`.
    pub input: [usize; 3],
    /// Input channels.
    pub channels: usize,
    /// Kernel sizes `[kd, kh, kw]`.
    pub kernel: [usize; 3],
    /// Zeros before each axis.
    pub pad: [usize; 3],
    /// Output spatial sizes.
    pub output: [usize; 3],
}

impl Geom {
    /// `None` when a valid convolution's kernel is longer than an axis.
    pub fn new(
        input: [usize; 3],
        channels: usize,
        kernel: [usize; 3],
        padding: Padding,
    ) -> Option<Geom> {
        let mut output = [0usize; 3];
        let mut pad = [0usize; 3];
        for d in 0..3 {
            output[d] = padding.out_len(input[d], kernel[d])?;
            pad[d] = padding.pad_before(kernel[d]);
        }
        Some(Geom {
            input,
            channels,
            kernel,
            pad,
            output,
        })
    }

    /// Elements of one input sample.
    pub fn in_len(&self) -> usize {
        self.input.iter().product::<usize>() * self.channels
    }

    /// Output positions per sample (rows of the column matrix).
    pub fn positions(&self) -> usize {
        self.output.iter().product()
    }

    /// Window elements (columns of the column matrix).
    pub fn window(&self) -> usize {
        self.kernel.iter().product::<usize>() * self.channels
    }

    /// Calls `f(col_row_offset, input_offset)` for every in-bounds pair; the
    /// caller copies or accumulates. Out-of-bounds window elements are skipped.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        let [d, h, w] = self.input;
        let [od, oh, ow] = self.output;
        let [kd, kh, kw] = self.kernel;
        let c_n = self.channels;
        let k_per_c = kd * kh * kw;
        let window = self.window();
        let mut row = 0usize;
        for z in 0..od {
            for y in 0..oh {
                for x in 0..ow {
                    let base = row * window;
                    for a in 0..kd {
                        let iz = z + a;
                        if iz < self.pad[0] || iz - self.pad[0] >= d {
                            continue;
                        }
                        let iz = iz - self.pad[0];
                        for b in 0..kh {
                            let iy = y + b;
                            if iy < self.pad[1] || iy - self.pad[1] >= h {
                                continue;
                            }
                            let iy = iy - self.pad[1];
                            for e in 0..kw {
                                let ix = x + e;
                                if ix < self.pad[2] || ix - self.pad[2] >= w {
                                    continue;
                                }
                                let ix = ix - self.pad[2];
                                let src = ((iz * h + iy) * w + ix) * c_n;
                                let k = (a * kh + b) * kw + e;
                                for c in 0..c_n {
                                    f(base + c * k_per_c + k, src + c);
                                }
                            }
                        }
                    }
                    row += 1;
                }
            }
        }
    }

    /// Writes the column matrix `[positions, window]` of one sample `x`.
    pub fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        debug_assert_eq!(x.len(), self.in_len());
        debug_assert_eq!(cols.len(), self.positions() * self.window());
        cols.iter_mut().for_each(|v| *v = 0.0);
        self.for_each(|ci, xi| cols[ci] = x[xi]);
    }

    /// Adds the column-matrix gradient `dcols` back onto the sample gradient `dx`.
    pub fn col2im(&self, dcols: &[f32], dx: &mut [f32]) {
        debug_assert_eq!(dx.len(), self.in_len());
        debug_assert_eq!(dcols.len(), self.positions() * self.window());
        self.for_each(|ci, xi| dx[xi] += dcols[ci]);
    }

    /// Column matrices of `n` consecutive samples, stacked: `[n * positions, window]`.
    pub fn im2col_many(&self, x: &[f32], n: usize) -> Vec<f32> {
        let (il, cl) = (self.in_len(), self.positions() * self.window());
        let mut cols = vec![0.0f32; n * cl];
        for s in 0..n {
            self.im2col(&x[s * il..(s + 1) * il], &mut cols[s * cl..(s + 1) * cl]);
        }
        cols
    }

    /// col2im of `n` stacked samples into `dx` (`n * in_len`, accumulated).
    pub fn col2im_many(&self, dcols: &[f32], n: usize, dx: &mut [f32]) {
        let (il, cl) = (self.in_len(), self.positions() * self.window());
        for s in 0..n {
            self.col2im(&dcols[s * cl..(s + 1) * cl], &mut dx[s * il..(s + 1) * il]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_and_valid_windows() {
        // 1 x 3 x 3 sample with 1 channel, values 1..9.
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let g = Geom::new([1, 3, 3], 1, [1, 3, 3], Padding::Same).unwrap();
        assert_eq!((g.positions(), g.window()), (9, 9));
        let mut cols = vec![0.0; 81];
        g.im2col(&x, &mut cols);
        // Window of the corner (0, 0): zeros above and left.
        assert_eq!(&cols[0..9], &[0., 0., 0., 0., 1., 2., 0., 4., 5.]);
        // Centre window is the whole sample.
        assert_eq!(&cols[4 * 9..5 * 9], &x[..]);
        let v = Geom::new([1, 3, 3], 1, [1, 2, 2], Padding::Valid).unwrap();
        assert_eq!(v.output, [1, 2, 2]);
        let mut cols = vec![0.0; 16];
        v.im2col(&x, &mut cols);
        assert_eq!(&cols[12..16], &[5., 6., 8., 9.]);
        assert!(Geom::new([1, 3, 3], 1, [1, 4, 3], Padding::Valid).is_none());
        // Even kernel, same padding: (k-1)/2 = 0 zeros before, 1 after.
        let e = Geom::new([1, 3, 3], 1, [1, 2, 2], Padding::Same).unwrap();
        assert_eq!((e.pad, e.output), ([0, 0, 0], [1, 3, 3]));
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), y> == <x, col2im(y)> for random x, y, two channels, 3-D.
        let g = Geom::new([3, 4, 2], 2, [2, 3, 2], Padding::Same).unwrap();
        let mut r = crate::rng::Rng::new(3);
        let x: Vec<f32> = (0..g.in_len()).map(|_| r.normal()).collect();
        let y: Vec<f32> = (0..g.positions() * g.window())
            .map(|_| r.normal())
            .collect();
        let mut cols = vec![0.0; y.len()];
        g.im2col(&x, &mut cols);
        let mut dx = vec![0.0; x.len()];
        g.col2im(&y, &mut dx);
        let a: f64 = cols.iter().zip(&y).map(|(a, b)| (*a * *b) as f64).sum();
        let b: f64 = x.iter().zip(&dx).map(|(a, b)| (*a * *b) as f64).sum();
        assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
}
