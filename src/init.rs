//! Weight initialisers, drawn from the project's seeded [`Rng`].
//!
//! Shapes are in PyTorch's layout `[fan_out, fan_in]` (a Keras kernel is the
//! transpose), so Glorot's fans are `shape[0]` and `shape[1]`.

use crate::rng::Rng;
use crate::{Error, Result};

/// How to fill a weight tensor.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initializer {
    /// Xavier/Glorot uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)). Keras's kernel default.
    GlorotUniform,
    /// Xavier/Glorot normal: N(0, 2 / (fan_in + fan_out)), truncated at two standard deviations as Keras does.
    GlorotNormal,
    /// A (semi-)orthogonal matrix, Keras's recurrent-kernel default (Saxe et al., 2014).
    Orthogonal,
    /// U(low, high).
    Uniform {
        /// Lower bound.
        low: f32,
        /// Upper bound.
        high: f32,
    },
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// PyTorch's RNN and Linear default: U(-1/sqrt(n), 1/sqrt(n)), with n the hidden
    /// size for recurrent layers and fan_in for Linear; the layer supplies n.
    TorchDefault,
}

impl Initializer {
    /// Names accepted by [`Initializer::parse`].
    pub const NAMES: &'static [&'static str] = &[
        "glorot_uniform",
        "glorot_normal",
        "orthogonal",
        "uniform",
        "zeros",
        "ones",
        "torch_default",
    ];

    /// Parses a Keras initialiser name (`xavier_*` accepted as aliases). `uniform`
    /// is Keras's RandomUniform default, U(-0.05, 0.05).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "glorot_uniform" | "xavier_uniform" => Initializer::GlorotUniform,
            "glorot_normal" | "xavier_normal" => Initializer::GlorotNormal,
            "orthogonal" => Initializer::Orthogonal,
            "uniform" | "random_uniform" => Initializer::Uniform {
                low: -0.05,
                high: 0.05,
            },
            "zeros" => Initializer::Zeros,
            "ones" => Initializer::Ones,
            "torch_default" | "pytorch" => Initializer::TorchDefault,
            _ => {
                return Err(Error::invalid(
                    "initializer",
                    format!(
                        "unknown initializer {name:?}; known: {}",
                        Self::NAMES.join(", ")
                    ),
                ))
            }
        })
    }

    /// Fills `out` (a `[rows, cols]` matrix, or a vector when `cols == 1`).
    /// `torch_n` is the n of [`Initializer::TorchDefault`].
    pub fn fill(&self, out: &mut [f32], rows: usize, cols: usize, torch_n: usize, rng: &mut Rng) {
        debug_assert_eq!(out.len(), rows * cols);
        match *self {
            Initializer::GlorotUniform => {
                let l = (6.0 / (rows + cols) as f32).sqrt();
                out.iter_mut().for_each(|v| *v = rng.uniform(-l, l));
            }
            Initializer::GlorotNormal => {
                // Keras truncates at 2 sd and rescales by 0.8796 to keep the variance.
                let sd = (2.0 / (rows + cols) as f32).sqrt() / 0.879_625_7;
                for v in out.iter_mut() {
                    *v = loop {
                        let z = rng.normal();
                        if z.abs() <= 2.0 {
                            break z * sd;
                        }
                    };
                }
            }
            Initializer::Orthogonal => orthogonal(out, rows, cols, rng),
            Initializer::Uniform { low, high } => {
                out.iter_mut().for_each(|v| *v = rng.uniform(low, high))
            }
            Initializer::Zeros => out.iter_mut().for_each(|v| *v = 0.0),
            Initializer::Ones => out.iter_mut().for_each(|v| *v = 1.0),
            Initializer::TorchDefault => {
                let l = 1.0 / (torch_n.max(1) as f32).sqrt();
                out.iter_mut().for_each(|v| *v = rng.uniform(-l, l));
            }
        }
    }
}

/// Fills a `rows x cols` matrix whose columns (if rows >= cols) or rows (otherwise)
/// are orthonormal: QR of a Gaussian matrix with the signs of R's diagonal folded
/// into Q, as Keras's Orthogonal does. QR by modified Gram-Schmidt, applied twice.
fn orthogonal(out: &mut [f32], rows: usize, cols: usize, rng: &mut Rng) {
    let (n, k) = if rows >= cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    // k vectors of length n, stored as columns of a k x n row-major array.
    let mut q: Vec<f64> = (0..n * k).map(|_| rng.normal() as f64).collect();
    for j in 0..k {
        for _ in 0..2 {
            for p in 0..j {
                let dot: f64 = (0..n).map(|i| q[j * n + i] * q[p * n + i]).sum();
                for i in 0..n {
                    q[j * n + i] -= dot * q[p * n + i];
                }
            }
        }
        let norm: f64 = (0..n)
            .map(|i| q[j * n + i] * q[j * n + i])
            .sum::<f64>()
            .sqrt();
        let norm = if norm > 0.0 { norm } else { 1.0 };
        for i in 0..n {
            q[j * n + i] /= norm;
        }
    }
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = if rows >= cols {
                q[c * n + r]
            } else {
                q[r * n + c]
            } as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_is_orthonormal_both_ways() {
        for &(rows, cols) in &[(12, 3), (3, 12), (8, 8)] {
            let mut w = vec![0.0; rows * cols];
            Initializer::Orthogonal.fill(&mut w, rows, cols, 0, &mut Rng::new(5));
            let (n, k, stride_v, stride_i) = if rows >= cols {
                (rows, cols, 1, cols)
            } else {
                (cols, rows, cols, 1)
            };
            for a in 0..k {
                for b in 0..k {
                    let dot: f32 = (0..n)
                        .map(|i| w[a * stride_v + i * stride_i] * w[b * stride_v + i * stride_i])
                        .sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "{rows}x{cols} ({a},{b}) {dot}");
                }
            }
        }
    }

    #[test]
    fn glorot_bounds_and_spread() {
        let mut w = vec![0.0; 64 * 32];
        Initializer::GlorotUniform.fill(&mut w, 64, 32, 0, &mut Rng::new(1));
        let l = (6.0f32 / 96.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= l));
        assert!(w.iter().any(|v| v.abs() > 0.9 * l));
        Initializer::GlorotNormal.fill(&mut w, 64, 32, 0, &mut Rng::new(1));
        let var: f32 = w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32;
        assert!((var - 2.0 / 96.0).abs() < 0.1 * 2.0 / 96.0, "{var}");
        Initializer::TorchDefault.fill(&mut w, 64, 32, 16, &mut Rng::new(1));
        assert!(w.iter().all(|v| v.abs() <= 0.25));
    }

    #[test]
    fn same_seed_same_weights_and_unknown_name() {
        let mut a = vec![0.0; 20];
        let mut b = vec![0.0; 20];
        Initializer::Orthogonal.fill(&mut a, 5, 4, 0, &mut Rng::new(9));
        Initializer::Orthogonal.fill(&mut b, 5, 4, 0, &mut Rng::new(9));
        assert_eq!(a, b);
        let e = Initializer::parse("he_magic").unwrap_err().to_string();
        assert!(e.contains("he_magic") && e.contains("orthogonal"));
    }
}
