//! Convolutional layers for video-like data: [`ConvLstm2d`] (Keras's
//! `ConvLSTM2D`), [`BatchNormalization`] and [`Conv3d`] — the pieces of Keras's
//! `conv_lstm.py` next-frame prediction example.
//!
//! All tensors are channels-last as in Keras: a movie is `[batch, time, height,
//! width, channels]`. Weights use PyTorch's names and layouts (`weight`
//! `[out, in, kd, kh, kw]`), parameter counts follow Keras. Every convolution is
//! an im2col copy followed by one [`sgemm`](crate::kernels::gemm::sgemm): the
//! rows of the column matrix are output positions, its columns the
//! `(in_channel, kd, kh, kw)` window in the weight's own order, so
//! `out[pos, f] = cols[pos, :] · weight[f, :]`.
//!
//! ```
//! use gated::conv::{ConvLstm2d, ConvLstm2dConfig, Padding};
//! use gated::layers::{Flow, Layer};
//! use gated::{Rng, Tensor};
//!
//! # fn main() -> gated::Result<()> {
//! // ConvLSTM2D(4, (3, 3), padding="same", return_sequences=True) on 1 channel.
//! let cfg = ConvLstm2dConfig::new(4, (3, 3)).padding(Padding::Same).return_sequences(true);
//! let mut layer = ConvLstm2d::new("conv_lst_m2d_1", 1, cfg, &mut Rng::new(7))?;
//! assert_eq!(layer.param_count(), 4 * 4 * (9 * (1 + 4) + 1)); // Keras's count
//! let movie = Tensor::zeros(&[2, 5, 8, 8, 1]); // [batch, time, h, w, channels]
//! let out = layer.forward(Flow::new(movie), true)?;
//! assert_eq!(out.x.shape(), &[2, 5, 8, 8, 4]);
//! let dx = layer.backward(Tensor::zeros(&[2, 5, 8, 8, 4]))?;
//! assert_eq!(dx.shape(), &[2, 5, 8, 8, 1]);
//! # Ok(())
//! # }
//! ```

pub mod batchnorm;
pub mod conv3d;
pub mod convlstm;
mod im2col;

pub use batchnorm::{BatchNormConfig, BatchNormalization};
pub use conv3d::{Conv3d, Conv3dConfig};
pub use convlstm::{ConvLstm2d, ConvLstm2dConfig};

use crate::init::Initializer;
use crate::rng::Rng;
use crate::{Error, Result};

/// Padding of a convolution (strides are always 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Zero padding so that the output has the input's size: `k - 1` zeros per
    /// axis, `(k - 1) / 2` of them before (TensorFlow's and PyTorch's split).
    Same,
    /// No padding: the output shrinks by `k - 1` per axis.
    Valid,
}

impl Padding {
    /// Parses Keras's `"same"` or `"valid"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "same" => Ok(Padding::Same),
            "valid" => Ok(Padding::Valid),
            _ => Err(Error::invalid(
                "padding",
                format!("unknown padding {name:?}; known: same, valid"),
            )),
        }
    }

    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
        }
    }

    /// Output length of one axis of length `n` under a kernel of length `k`;
    /// `None` when a valid convolution's kernel is longer than the axis.
    pub fn out_len(self, n: usize, k: usize) -> Option<usize> {
        match self {
            Padding::Same => Some(n),
            Padding::Valid => (n >= k).then(|| n - k + 1),
        }
    }

    /// Zeros before the first element of an axis under a kernel of length `k`.
    fn pad_before(self, k: usize) -> usize {
        match self {
            Padding::Same => (k - 1) / 2,
            Padding::Valid => 0,
        }
    }
}

/// Output shape of a known-or-`None` axis, for `output_shape`.
fn out_dim(padding: Padding, n: Option<usize>, k: usize) -> std::result::Result<Option<usize>, ()> {
    match n {
        None => Ok(None),
        Some(n) => padding.out_len(n, k).map(Some).ok_or(()),
    }
}

/// Fills a convolution weight `[out, in, k...]` (`ksize` = product of the kernel
/// dimensions) with Keras's fans: fan_in = in * ksize, fan_out = out * ksize.
/// Orthogonal treats the weight as an `[out, in * ksize]` matrix.
fn fill_conv_weight(
    init: Initializer,
    out: &mut [f32],
    out_ch: usize,
    in_ch: usize,
    ksize: usize,
    rng: &mut Rng,
) {
    let fans = ((out_ch + in_ch) * ksize) as f32;
    match init {
        Initializer::GlorotUniform => {
            let l = (6.0 / fans).sqrt();
            Initializer::Uniform { low: -l, high: l }.fill(out, out_ch, in_ch * ksize, 0, rng);
        }
        Initializer::GlorotNormal => {
            // Glorot normal of the [out, in*ksize] matrix, rescaled to the conv fans.
            Initializer::GlorotNormal.fill(out, out_ch, in_ch * ksize, 0, rng);
            let scale = ((out_ch + in_ch * ksize) as f32 / fans).sqrt();
            out.iter_mut().for_each(|v| *v *= scale);
        }
        other => other.fill(out, out_ch, in_ch * ksize, in_ch * ksize, rng),
    }
}

/// An inverted-dropout mask: 0 with probability `rate`, else `1 / (1 - rate)`.
fn dropout_mask(rng: &mut Rng, len: usize, rate: f32) -> Vec<f32> {
    let keep = 1.0 / (1.0 - rate);
    (0..len)
        .map(|_| if rng.next_f32() < rate { 0.0 } else { keep })
        .collect()
}

/// Checks a rate in [0, 1).
fn check_rate(layer: &str, what: &str, rate: f32) -> Result<()> {
    if !(0.0..1.0).contains(&rate) {
        return Err(Error::invalid(
            what,
            format!("layer {layer}: {what} must be in [0, 1), got {rate}"),
        ));
    }
    Ok(())
}

/// `[b, t, rest]` batch-major -> `[t, b, rest]` time-major; with `reverse`,
/// time step `s` of the result is step `t - 1 - s` of the source.
fn to_time_major(src: &[f32], b: usize, t: usize, rest: usize, reverse: bool) -> Vec<f32> {
    let mut out = vec![0.0f32; src.len()];
    for s in 0..t {
        let st = if reverse { t - 1 - s } else { s };
        for bi in 0..b {
            let from = (bi * t + st) * rest;
            let to = (s * b + bi) * rest;
            out[to..to + rest].copy_from_slice(&src[from..from + rest]);
        }
    }
    out
}

/// The inverse of [`to_time_major`]: `[t, b, rest]` -> `[b, t, rest]`.
fn from_time_major(src: &[f32], b: usize, t: usize, rest: usize, reverse: bool) -> Vec<f32> {
    let mut out = vec![0.0f32; src.len()];
    for s in 0..t {
        let st = if reverse { t - 1 - s } else { s };
        for bi in 0..b {
            let from = (s * b + bi) * rest;
            let to = (bi * t + st) * rest;
            out[to..to + rest].copy_from_slice(&src[from..from + rest]);
        }
    }
    out
}

/// Reads a spec's `kernel_size`: `n` positive integers, or one integer for all
/// axes (as Keras accepts); `default` when absent. The error says what was given.
pub(crate) fn kernel_size_arg(
    value: Option<&serde_json::Value>,
    n: usize,
    default: usize,
) -> std::result::Result<Vec<usize>, String> {
    let positive = |v: &serde_json::Value| v.as_u64().filter(|&k| k > 0).map(|k| k as usize);
    match value {
        None => Ok(vec![default; n]),
        Some(serde_json::Value::Array(items)) if items.len() == n => items
            .iter()
            .map(|v| positive(v).ok_or(()))
            .collect::<std::result::Result<Vec<_>, ()>>()
            .map_err(|_| {
                format!(
                    "`kernel_size` must hold {n} positive integers, got {}",
                    serde_json::Value::Array(items.clone())
                )
            }),
        Some(v) => positive(v).map(|k| vec![k; n]).ok_or_else(|| {
            format!("`kernel_size` must be {n} positive integers (or one), got {v}")
        }),
    }
}

/// Reads a spec's `padding` (`"same"` or `"valid"`, default valid as in Keras).
pub(crate) fn padding_arg(value: Option<&str>) -> std::result::Result<Padding, String> {
    value.map_or(Ok(Padding::Valid), |s| {
        Padding::parse(s).map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod testutil;
