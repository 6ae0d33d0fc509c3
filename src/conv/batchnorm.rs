//! `BatchNormalization` over the last (channel) axis of an input of any rank >= 2
//! (Ioffe & Szegedy, 2015), with Keras's defaults `momentum = 0.99`, `epsilon = 1e-3`.
//!
//! Training: every channel is normalised with the mean and (biased) variance of
//! its values over all leading axes, `y = gamma * (x - mean) / sqrt(var + eps) + beta`,
//! and the moving statistics move towards the batch's:
//! `moving = momentum * moving + (1 - momentum) * batch`, the variance Bessel-corrected
//! (`n / (n - 1)`) as Keras's fused kernel and PyTorch do. Inference uses the
//! moving statistics. PyTorch names: `weight` (gamma) and `bias` (beta) are
//! trainable; `running_mean` and `running_var` sit in a second, non-trainable
//! group, so `summary()` counts `4C` parameters of which `2C` are non-trainable.

use crate::layers::{check_d_output, no_cache, Flow, Layer, Shape};
use crate::params::Params;
use crate::tensor::Tensor;
use crate::{Error, Result};

const TYPE: &str = "BatchNormalization";

/// Arguments of [`BatchNormalization`], defaulted as in Keras.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Weight of the old moving statistics in each update (Keras: 0.99; PyTorch's
    /// `momentum` is `1 - this`).
    pub momentum: f32,
    /// Added to the variance before the square root (Keras: 1e-3).
    pub epsilon: f32,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            momentum: 0.99,
            epsilon: 1e-3,
        }
    }
}

#[derive(Debug)]
struct Cache {
    shape: Vec<usize>,
    /// Normalised inputs.
    xhat: Vec<f32>,
    /// 1 / sqrt(var + eps) per channel.
    inv_std: Vec<f32>,
}

/// Keras's `BatchNormalization(axis=-1)`.
#[derive(Debug)]
pub struct BatchNormalization {
    name: String,
    channels: usize,
    config: BatchNormConfig,
    /// `weight` (gamma, ones) and `bias` (beta, zeros).
    params: Params,
    /// `running_mean` (zeros) and `running_var` (ones), not trainable.
    stats: Params,
    cache: Option<Cache>,
}

impl BatchNormalization {
    /// Builds the layer for `channels` features on the last axis. Errors when
    /// `channels` is zero, `momentum` is outside [0, 1] or `epsilon` is not positive.
    pub fn new(name: impl Into<String>, channels: usize, config: BatchNormConfig) -> Result<Self> {
        let name = name.into();
        if channels == 0 {
            return Err(Error::invalid(
                "BatchNormalization channels",
                format!("layer {name}: the channel count must be positive"),
            ));
        }
        if !(0.0..=1.0).contains(&config.momentum) {
            return Err(Error::invalid(
                "momentum",
                format!(
                    "layer {name}: momentum must be in [0, 1], got {}",
                    config.momentum
                ),
            ));
        }
        if config.epsilon.is_nan() || config.epsilon <= 0.0 {
            return Err(Error::invalid(
                "epsilon",
                format!(
                    "layer {name}: epsilon must be positive, got {}",
                    config.epsilon
                ),
            ));
        }
        let mut params = Params::new();
        let gamma = params.try_add("weight", &[channels])?;
        params.try_add("bias", &[channels])?;
        params.value_mut(gamma).iter_mut().for_each(|v| *v = 1.0);
        let mut stats = Params::new();
        stats.try_add("running_mean", &[channels])?;
        let var = stats.try_add("running_var", &[channels])?;
        stats.value_mut(var).iter_mut().for_each(|v| *v = 1.0);
        stats.set_trainable(false);
        Ok(BatchNormalization {
            name,
            channels,
            config,
            params,
            stats,
            cache: None,
        })
    }

    /// Channels on the last axis.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The configuration.
    pub fn config(&self) -> BatchNormConfig {
        self.config
    }

    /// The moving mean (`running_mean`).
    pub fn moving_mean(&self) -> &[f32] {
        self.stats.value(0)
    }

    /// The moving variance (`running_var`).
    pub fn moving_variance(&self) -> &[f32] {
        self.stats.value(1)
    }

    fn input_error(&self, actual: impl std::fmt::Debug) -> Error {
        Error::shape(
            format!(
                "layer {} ({TYPE}) input: last axis must hold {} channels",
                self.name, self.channels
            ),
            format!("[batch, ..., {}]", self.channels),
            actual,
        )
    }
}

impl Layer for BatchNormalization {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        if input.len() < 2 || input.last() != Some(&Some(self.channels)) {
            return Err(self.input_error(input));
        }
        Ok(input.to_vec())
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let Flow { x, mask } = input;
        let shape = x.shape().to_vec();
        if shape.len() < 2 || shape.last() != Some(&self.channels) || x.is_empty() {
            return Err(self.input_error(&shape));
        }
        let c_n = self.channels;
        let n = x.len() / c_n;
        let eps = self.config.epsilon;
        let (mean, var) = if training {
            let mut mean = vec![0.0f64; c_n];
            for row in x.data().chunks_exact(c_n) {
                mean.iter_mut().zip(row).for_each(|(m, v)| *m += *v as f64);
            }
            mean.iter_mut().for_each(|m| *m /= n as f64);
            let mut var = vec![0.0f64; c_n];
            for row in x.data().chunks_exact(c_n) {
                for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                    let d = *v as f64 - m;
                    *s += d * d;
                }
            }
            var.iter_mut().for_each(|v| *v /= n as f64);
            // Moving statistics, unbiased variance.
            let mom = self.config.momentum;
            let bessel = if n > 1 {
                n as f64 / (n - 1) as f64
            } else {
                1.0
            };
            let (rm, rv) = self.stats.values.split_at_mut(c_n);
            for ch in 0..c_n {
                rm[ch] = mom * rm[ch] + (1.0 - mom) * mean[ch] as f32;
                rv[ch] = mom * rv[ch] + (1.0 - mom) * (var[ch] * bessel) as f32;
            }
            (
                mean.iter().map(|&m| m as f32).collect::<Vec<_>>(),
                var.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            )
        } else {
            (self.moving_mean().to_vec(), self.moving_variance().to_vec())
        };
        let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let (gamma, beta) = self.params.values.split_at(c_n);
        let mut xhat = x.into_vec();
        let mut y = vec![0.0f32; xhat.len()];
        for (xr, yr) in xhat.chunks_exact_mut(c_n).zip(y.chunks_exact_mut(c_n)) {
            for ch in 0..c_n {
                let h = (xr[ch] - mean[ch]) * inv_std[ch];
                xr[ch] = h;
                yr[ch] = gamma[ch] * h + beta[ch];
            }
        }
        if training {
            self.cache = Some(Cache {
                shape: shape.clone(),
                xhat,
                inv_std,
            });
        }
        Ok(Flow {
            x: Tensor::from_vec(&shape, y)?,
            mask,
        })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, TYPE))?;
        check_d_output(&self.name, TYPE, &cache.shape, &d_output)?;
        let c_n = self.channels;
        let n = cache.xhat.len() / c_n;
        // Per channel: sum(dy) and sum(dy * xhat).
        let mut sum_dy = vec![0.0f64; c_n];
        let mut sum_dy_xhat = vec![0.0f64; c_n];
        for (dr, hr) in d_output
            .data()
            .chunks_exact(c_n)
            .zip(cache.xhat.chunks_exact(c_n))
        {
            for ch in 0..c_n {
                sum_dy[ch] += dr[ch] as f64;
                sum_dy_xhat[ch] += (dr[ch] * hr[ch]) as f64;
            }
        }
        if self.params.slots()[0].trainable {
            let g = self.params.grad_mut(0);
            g.iter_mut()
                .zip(&sum_dy_xhat)
                .for_each(|(g, s)| *g += *s as f32);
        }
        if self.params.slots()[1].trainable {
            let g = self.params.grad_mut(1);
            g.iter_mut().zip(&sum_dy).for_each(|(g, s)| *g += *s as f32);
        }
        // dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)).
        let gamma = self.params.value(0);
        let mean_dy: Vec<f32> = sum_dy.iter().map(|s| (s / n as f64) as f32).collect();
        let mean_dyx: Vec<f32> = sum_dy_xhat.iter().map(|s| (s / n as f64) as f32).collect();
        let mut dx = d_output.into_vec();
        for (dr, hr) in dx.chunks_exact_mut(c_n).zip(cache.xhat.chunks_exact(c_n)) {
            for ch in 0..c_n {
                dr[ch] =
                    gamma[ch] * cache.inv_std[ch] * (dr[ch] - mean_dy[ch] - hr[ch] * mean_dyx[ch]);
            }
        }
        Tensor::from_vec(&cache.shape, dx)
    }

    fn params(&self) -> Vec<&Params> {
        vec![&self.params, &self.stats]
    }

    fn params_mut(&mut self) -> Vec<&mut Params> {
        vec![&mut self.params, &mut self.stats]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::testutil::{check_layer, randt};
    use crate::rng::Rng;

    fn bn(c: usize) -> BatchNormalization {
        let mut l =
            BatchNormalization::new("batch_normalization_1", c, Default::default()).unwrap();
        let mut r = Rng::new(2);
        l.params
            .values
            .iter_mut()
            .for_each(|v| *v = r.uniform(0.5, 1.5));
        l
    }

    #[test]
    fn gradcheck_training_mode_any_rank() {
        let mut l = bn(3);
        check_layer(&mut l, randt(&mut Rng::new(1), &[4, 3], 1.0), |_| {});
        let mut l = bn(2);
        check_layer(
            &mut l,
            randt(&mut Rng::new(2), &[2, 2, 3, 2, 2], 1.0),
            |_| {},
        );
    }

    #[test]
    fn moving_statistics_and_inference() {
        let mut l = BatchNormalization::new("bn", 1, BatchNormConfig::default()).unwrap();
        let x = Tensor::from_vec(&[4, 1], vec![1.0, 2.0, 3.0, 6.0]).unwrap();
        let y = l.forward(Flow::new(x.clone()), true).unwrap().x;
        // mean 3, biased var 3.5, unbiased 14/3.
        let want = (1.0 - 3.0) / (3.5f32 + 1e-3).sqrt();
        assert!((y.data()[0] - want).abs() < 1e-6);
        assert!((l.moving_mean()[0] - 0.03).abs() < 1e-6);
        assert!((l.moving_variance()[0] - (0.99 + 0.01 * 14.0 / 3.0)).abs() < 1e-6);
        let y = l.forward(Flow::new(x), false).unwrap().x;
        let want = (1.0 - 0.03) / (l.moving_variance()[0] + 1e-3).sqrt();
        assert!((y.data()[0] - want).abs() < 1e-6);
        // 4C parameters, 2C of them trainable.
        let ps = l.params();
        assert_eq!(ps.iter().map(|p| p.len()).sum::<usize>(), 4);
        assert_eq!(ps.iter().map(|p| p.trainable_len()).sum::<usize>(), 2);
    }

    #[test]
    fn bad_inputs() {
        let mut l = bn(3);
        let e = l
            .forward(Flow::new(Tensor::zeros(&[2, 4])), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 channels") && e.contains("[2, 4]"), "{e}");
        assert!(l.output_shape(&[Some(3)]).is_err());
        assert!(l.backward(Tensor::zeros(&[2, 3])).is_err());
        assert!(BatchNormalization::new(
            "b",
            2,
            BatchNormConfig {
                momentum: 1.5,
                epsilon: 1e-3
            }
        )
        .is_err());
        assert!(BatchNormalization::new("b", 0, Default::default()).is_err());
    }
}
