//! `Conv3d`: Keras's `Conv3D` with strides 1, channels-last input
//! `[B, D, H, W, C]`, `same` or `valid` padding and a fused activation,
//! `y = act(W * x + b)`. PyTorch layout: `weight` `[f, c, kd, kh, kw]`, `bias` `[f]`
//! (Keras's kernel `(kd, kh, kw, c, f)` is `weight` permuted). Forward and backward
//! are im2col over all samples plus one GEMM each.

use super::im2col::Geom;
use super::{fill_conv_weight, out_dim, Padding};
use crate::kernels::gemm::{sgemm, Trans};
use crate::layers::{check_d_output, no_cache, Flow, Layer, Shape};
use crate::params::{Params, SlotId};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Activation, Error, Initializer, Result};

const TYPE: &str = "Conv3D";

/// Arguments of [`Conv3d`], named and defaulted as in Keras.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv3dConfig {
    /// Output channels f.
    pub filters: usize,
    /// Kernel `(kd, kh, kw)`.
    pub kernel_size: (usize, usize, usize),
    /// Padding (Keras default: valid).
    pub padding: Padding,
    /// Fused activation (Keras default: linear).
    pub activation: Activation,
    /// Initialiser of `weight` (default glorot_uniform with conv fans).
    pub kernel_initializer: Initializer,
    /// Initialiser of `bias` (default zeros).
    pub bias_initializer: Initializer,
}

impl Conv3dConfig {
    /// Keras defaults: valid padding, linear activation, glorot_uniform, zero bias.
    pub fn new(filters: usize, kernel_size: (usize, usize, usize)) -> Self {
        Conv3dConfig {
            filters,
            kernel_size,
            padding: Padding::Valid,
            activation: Activation::Linear,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
        }
    }

    /// Sets the padding.
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the activation.
    pub fn activation(mut self, act: Activation) -> Self {
        self.activation = act;
        self
    }
}

#[derive(Debug)]
struct Cache {
    geom: Geom,
    x: Tensor,
    /// Activated output (for the activation's derivative).
    y: Vec<f32>,
    out_shape: Vec<usize>,
}

/// Keras's `Conv3D` (strides 1, dilation 1).
#[derive(Debug)]
pub struct Conv3d {
    name: String,
    in_channels: usize,
    config: Conv3dConfig,
    params: Params,
    weight: SlotId,
    bias: SlotId,
    cache: Option<Cache>,
}

impl Conv3d {
    /// Builds the layer for inputs with `in_channels` channels, weights from `rng`.
    pub fn new(
        name: impl Into<String>,
        in_channels: usize,
        config: Conv3dConfig,
        rng: &mut Rng,
    ) -> Result<Self> {
        let name = name.into();
        let (kd, kh, kw) = config.kernel_size;
        if config.filters == 0 || in_channels == 0 || kd == 0 || kh == 0 || kw == 0 {
            return Err(Error::invalid(
                "Conv3D dimensions",
                format!(
                    "layer {name}: filters ({}), input channels ({in_channels}) and kernel_size ({kd}, {kh}, {kw}) must be positive",
                    config.filters
                ),
            ));
        }
        let f = config.filters;
        let ks = kd * kh * kw;
        let mut params = Params::new();
        let weight = params.try_add("weight", &[f, in_channels, kd, kh, kw])?;
        let bias = params.try_add("bias", &[f])?;
        fill_conv_weight(
            config.kernel_initializer,
            params.value_mut(weight),
            f,
            in_channels,
            ks,
            rng,
        );
        config
            .bias_initializer
            .fill(params.value_mut(bias), f, 1, in_channels * ks, rng);
        Ok(Conv3d {
            name,
            in_channels,
            config,
            params,
            weight,
            bias,
            cache: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Conv3dConfig {
        &self.config
    }

    /// Input channels c.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    fn input_error(&self, actual: impl std::fmt::Debug) -> Error {
        let (kd, kh, kw) = self.config.kernel_size;
        Error::shape(
            format!(
                "layer {} ({TYPE}) input: a 5-D [batch, depth, height, width, channels] tensor with {} channels{}",
                self.name,
                self.in_channels,
                match self.config.padding {
                    Padding::Valid =>
                        format!(" and at least {kd}x{kh}x{kw} elements (valid padding)"),
                    Padding::Same => String::new(),
                }
            ),
            format!("[batch, depth, height, width, {}]", self.in_channels),
            actual,
        )
    }
}

impl Layer for Conv3d {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        if input.len() != 5 || input[4] != Some(self.in_channels) {
            return Err(self.input_error(input));
        }
        let (kd, kh, kw) = self.config.kernel_size;
        let pad = self.config.padding;
        let mut out = vec![input[0]];
        for (n, k) in input[1..4].iter().zip([kd, kh, kw]) {
            out.push(out_dim(pad, *n, k).map_err(|_| self.input_error(input))?);
        }
        out.push(Some(self.config.filters));
        Ok(out)
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let Flow { x, mask } = input;
        let shape = x.shape().to_vec();
        if shape.len() != 5 || shape[4] != self.in_channels {
            return Err(self.input_error(&shape));
        }
        let (kd, kh, kw) = self.config.kernel_size;
        let geom = Geom::new(
            [shape[1], shape[2], shape[3]],
            self.in_channels,
            [kd, kh, kw],
            self.config.padding,
        )
        .ok_or_else(|| self.input_error(&shape))?;
        let batch = shape[0];
        let f = self.config.filters;
        let (rows, k) = (batch * geom.positions(), geom.window());
        let cols = geom.im2col_many(x.data(), batch);
        // y[rows, f] = cols[rows, k] weight[f, k]^T + bias.
        let mut y = vec![0.0f32; rows * f];
        let bias = self.params.value(self.bias);
        for row in y.chunks_exact_mut(f) {
            row.copy_from_slice(bias);
        }
        sgemm(
            Trans::N,
            Trans::T,
            rows,
            f,
            k,
            1.0,
            &cols,
            k,
            self.params.value(self.weight),
            k,
            1.0,
            &mut y,
            f,
        );
        self.config.activation.apply_slice(&mut y);
        let [od, oh, ow] = geom.output;
        let out_shape = vec![batch, od, oh, ow, f];
        let out = Tensor::from_vec(&out_shape, y.clone())?;
        if training {
            self.cache = Some(Cache {
                geom,
                x,
                y,
                out_shape,
            });
        }
        Ok(Flow { x: out, mask })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, TYPE))?;
        check_d_output(&self.name, TYPE, &cache.out_shape, &d_output)?;
        let geom = cache.geom;
        let batch = cache.out_shape[0];
        let f = self.config.filters;
        let (rows, k) = (batch * geom.positions(), geom.window());
        let act = self.config.activation;
        let mut dz = d_output.into_vec();
        dz.iter_mut()
            .zip(&cache.y)
            .for_each(|(d, &y)| *d *= act.derivative_from_output(y));
        if self.params.slots()[self.weight].trainable {
            let cols = geom.im2col_many(cache.x.data(), batch);
            sgemm(
                Trans::T,
                Trans::N,
                f,
                k,
                rows,
                1.0,
                &dz,
                f,
                &cols,
                k,
                1.0,
                self.params.grad_mut(self.weight),
                k,
            );
        }
        if self.params.slots()[self.bias].trainable {
            let gb = self.params.grad_mut(self.bias);
            for row in dz.chunks_exact(f) {
                gb.iter_mut().zip(row).for_each(|(g, d)| *g += d);
            }
        }
        let mut dcols = vec![0.0f32; rows * k];
        sgemm(
            Trans::N,
            Trans::N,
            rows,
            k,
            f,
            1.0,
            &dz,
            f,
            self.params.value(self.weight),
            k,
            0.0,
            &mut dcols,
            k,
        );
        let mut dx = vec![0.0f32; cache.x.len()];
        geom.col2im_many(&dcols, batch, &mut dx);
        Tensor::from_vec(cache.x.shape(), dx)
    }

    fn params(&self) -> Vec<&Params> {
        vec![&self.params]
    }

    fn params_mut(&mut self) -> Vec<&mut Params> {
        vec![&mut self.params]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::testutil::{check_layer, randt};

    fn conv(c: usize, cfg: Conv3dConfig) -> Conv3d {
        let mut l = Conv3d::new("conv3d_1", c, cfg, &mut Rng::new(3)).unwrap();
        let mut r = Rng::new(4);
        let b = l.bias;
        l.params
            .value_mut(b)
            .iter_mut()
            .for_each(|v| *v = r.uniform(-0.5, 0.5));
        l
    }

    #[test]
    fn gradcheck_same_and_valid() {
        let cfg = Conv3dConfig::new(2, (3, 3, 3))
            .padding(Padding::Same)
            .activation(Activation::Sigmoid);
        let mut l = conv(2, cfg);
        check_layer(
            &mut l,
            randt(&mut Rng::new(1), &[2, 3, 4, 3, 2], 1.0),
            |_| {},
        );
        let cfg = Conv3dConfig::new(3, (2, 3, 2)).activation(Activation::Tanh);
        let mut l = conv(2, cfg);
        let x = randt(&mut Rng::new(2), &[2, 3, 4, 3, 2], 1.0);
        assert_eq!(
            l.forward(Flow::new(x.clone()), false).unwrap().x.shape(),
            &[2, 2, 2, 2, 3]
        );
        check_layer(&mut l, x, |_| {});
    }

    #[test]
    fn counts_shapes_and_errors() {
        let l = conv(40, Conv3dConfig::new(1, (3, 3, 3)).padding(Padding::Same));
        assert_eq!(l.params()[0].len(), 1081);
        assert_eq!(
            l.output_shape(&[None, None, Some(40), Some(40), Some(40)])
                .unwrap(),
            vec![None, None, Some(40), Some(40), Some(1)]
        );
        let mut v = conv(1, Conv3dConfig::new(1, (3, 3, 3)));
        let e = v
            .forward(Flow::new(Tensor::zeros(&[1, 2, 5, 5, 1])), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at least 3x3x3") && e.contains("[1, 2, 5, 5, 1]"),
            "{e}"
        );
        let e = v
            .forward(Flow::new(Tensor::zeros(&[1, 5, 5, 1])), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("5-D") && e.contains("[1, 5, 5, 1]"), "{e}");
        assert!(v
            .output_shape(&[None, Some(2), Some(5), Some(5), Some(1)])
            .is_err());
        assert!(v
            .output_shape(&[None, Some(3), Some(5), Some(5), Some(2)])
            .is_err());
    }
}
