//! `Dense`: a fully connected layer on the last axis, `y = f(x W^T + b)`.
//!
//! Works on `[B, F]` and on `[B, T, F]` (any rank >= 2: leading axes are
//! flattened into rows). Slots use PyTorch's `nn.Linear` names and layout:
//! `weight` `[units, in]` (the transpose of Keras's kernel) and `bias` `[units]`.

use super::{check_d_output, no_cache, Flow, Layer, Shape};
use crate::kernels::gemm::{sgemm, Trans};
use crate::params::{Params, SlotId};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Activation, Error, Initializer, Result};

/// Arguments of [`Dense`], named and defaulted as in Keras.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseConfig {
    /// Number of output features.
    pub units: usize,
    /// Fused activation applied to the output (Keras default: linear).
    pub activation: Activation,
    /// Whether to add a bias.
    pub use_bias: bool,
    /// Initialiser of `weight` (Keras default: glorot_uniform).
    pub kernel_initializer: Initializer,
    /// Initialiser of `bias` (Keras default: zeros).
    pub bias_initializer: Initializer,
}

impl DenseConfig {
    /// Keras defaults: linear activation, bias, glorot_uniform kernel, zero bias.
    pub fn new(units: usize) -> Self {
        DenseConfig {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
        }
    }

    /// Sets the fused activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets `use_bias`.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Sets the kernel initialiser.
    pub fn kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// Sets the bias initialiser.
    pub fn bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    /// PyTorch's `nn.Linear` initialisation: weight and bias both
    /// U(-1/sqrt(in), 1/sqrt(in)).
    pub fn torch_default(self) -> Self {
        self.kernel_initializer(Initializer::TorchDefault)
            .bias_initializer(Initializer::TorchDefault)
    }
}

#[derive(Debug)]
struct Cache {
    x: Tensor,
    /// The activated output; only kept when the activation is not linear.
    y: Option<Vec<f32>>,
}

/// Keras's `Dense` layer (PyTorch's `nn.Linear` plus an optional activation).
#[derive(Debug)]
pub struct Dense {
    name: String,
    in_features: usize,
    units: usize,
    activation: Activation,
    params: Params,
    weight: SlotId,
    bias: Option<SlotId>,
    cache: Option<Cache>,
}

impl Dense {
    /// Builds a layer for inputs with `in_features` on the last axis and fills
    /// its weights from `rng`. Errors when `units` or `in_features` is zero.
    pub fn new(
        name: impl Into<String>,
        in_features: usize,
        config: DenseConfig,
        rng: &mut Rng,
    ) -> Result<Self> {
        let name = name.into();
        if config.units == 0 || in_features == 0 {
            return Err(Error::invalid(
                "Dense dimensions",
                format!(
                    "layer {name}: units ({}) and input features ({in_features}) must be positive",
                    config.units
                ),
            ));
        }
        let units = config.units;
        let mut params = Params::new();
        let weight = params.try_add("weight", &[units, in_features])?;
        config.kernel_initializer.fill(
            params.value_mut(weight),
            units,
            in_features,
            in_features,
            rng,
        );
        let bias = if config.use_bias {
            let b = params.try_add("bias", &[units])?;
            config
                .bias_initializer
                .fill(params.value_mut(b), units, 1, in_features, rng);
            Some(b)
        } else {
            None
        };
        Ok(Dense {
            name,
            in_features,
            units,
            activation: config.activation,
            params,
            weight,
            bias,
            cache: None,
        })
    }

    /// Number of output features.
    pub fn units(&self) -> usize {
        self.units
    }

    /// Number of input features.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// The fused activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Whether the layer has a bias.
    pub fn use_bias(&self) -> bool {
        self.bias.is_some()
    }

    fn input_error(&self, actual: impl std::fmt::Debug) -> Error {
        Error::shape(
            format!(
                "layer {} (Dense) input: last axis must hold {} features",
                self.name, self.in_features
            ),
            format!("[batch, ..., {}]", self.in_features),
            actual,
        )
    }
}

impl Layer for Dense {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        "Dense"
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        match input.last() {
            Some(&Some(f)) if input.len() >= 2 && f == self.in_features => {
                let mut out = input.to_vec();
                if let Some(last) = out.last_mut() {
                    *last = Some(self.units);
                }
                Ok(out)
            }
            _ => Err(self.input_error(input)),
        }
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let Flow { x, mask } = input;
        let shape = x.shape().to_vec();
        if shape.len() < 2 || shape.last() != Some(&self.in_features) {
            return Err(self.input_error(&shape));
        }
        let (k, u) = (self.in_features, self.units);
        let rows = x.len() / k;
        // y[rows, u] = x[rows, k] * weight[u, k]^T
        let mut y = vec![0.0f32; rows * u];
        sgemm(
            Trans::N,
            Trans::T,
            rows,
            u,
            k,
            1.0,
            x.data(),
            k,
            self.params.value(self.weight),
            k,
            0.0,
            &mut y,
            u,
        );
        if let Some(b) = self.bias {
            let b = self.params.value(b);
            for row in y.chunks_exact_mut(u) {
                row.iter_mut().zip(b).for_each(|(v, bv)| *v += bv);
            }
        }
        self.activation.apply_slice(&mut y);
        if training {
            let y_cache = (self.activation != Activation::Linear).then(|| y.clone());
            self.cache = Some(Cache { x, y: y_cache });
        }
        let mut out_shape = shape;
        if let Some(last) = out_shape.last_mut() {
            *last = u;
        }
        Ok(Flow {
            x: Tensor::from_vec(&out_shape, y)?,
            mask,
        })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, "Dense"))?;
        let (k, u) = (self.in_features, self.units);
        let mut out_shape = cache.x.shape().to_vec();
        if let Some(last) = out_shape.last_mut() {
            *last = u;
        }
        check_d_output(&self.name, "Dense", &out_shape, &d_output)?;
        let rows = cache.x.len() / k;
        // dz = dy * f'(y)
        let mut dz = d_output.into_vec();
        if let Some(y) = &cache.y {
            let act = self.activation;
            dz.iter_mut()
                .zip(y)
                .for_each(|(d, &yv)| *d *= act.derivative_from_output(yv));
        }
        let w_trainable = self.params.slots()[self.weight].trainable;
        if w_trainable {
            // d_weight[u, k] += dz[rows, u]^T * x[rows, k]
            sgemm(
                Trans::T,
                Trans::N,
                u,
                k,
                rows,
                1.0,
                &dz,
                u,
                cache.x.data(),
                k,
                1.0,
                self.params.grad_mut(self.weight),
                k,
            );
        }
        if let Some(b) = self.bias {
            if self.params.slots()[b].trainable {
                let gb = self.params.grad_mut(b);
                for row in dz.chunks_exact(u) {
                    gb.iter_mut().zip(row).for_each(|(g, d)| *g += d);
                }
            }
        }
        // dx[rows, k] = dz[rows, u] * weight[u, k]
        let mut dx = vec![0.0f32; rows * k];
        sgemm(
            Trans::N,
            Trans::N,
            rows,
            k,
            u,
            1.0,
            &dz,
            u,
            self.params.value(self.weight),
            k,
            0.0,
            &mut dx,
            k,
        );
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
    use crate::layers::testutil::{check_layer, randt, InputCheck};

    fn dense(units: usize, input: usize, config: DenseConfig) -> Dense {
        let mut d = Dense::new("dense_1", input, config, &mut Rng::new(11)).unwrap();
        // Non-zero bias so that its gradient path is exercised.
        if let Some(b) = d.bias {
            let mut r = Rng::new(5);
            d.params
                .value_mut(b)
                .iter_mut()
                .for_each(|v| *v = r.uniform(-0.5, 0.5));
        }
        assert_eq!(d.units(), units);
        d
    }

    #[test]
    fn gradcheck_2d_and_3d_linear() {
        let mut rng = Rng::new(1);
        let mut d = dense(4, 5, DenseConfig::new(4));
        check_layer(&mut d, randt(&mut rng, &[3, 5]), |_| {}, InputCheck::All);
        check_layer(&mut d, randt(&mut rng, &[2, 3, 5]), |_| {}, InputCheck::All);
    }

    #[test]
    fn gradcheck_with_activations_and_without_bias() {
        let mut rng = Rng::new(2);
        for act in [Activation::Tanh, Activation::Sigmoid, Activation::Softsign] {
            let mut d = dense(3, 4, DenseConfig::new(3).activation(act));
            check_layer(&mut d, randt(&mut rng, &[2, 3, 4]), |_| {}, InputCheck::All);
        }
        let mut d = dense(
            3,
            4,
            DenseConfig::new(3)
                .use_bias(false)
                .activation(Activation::Tanh),
        );
        assert_eq!(d.params()[0].len(), 12);
        check_layer(&mut d, randt(&mut rng, &[5, 4]), |_| {}, InputCheck::All);
    }

    #[test]
    fn forward_matches_hand_computation_and_keeps_mask() {
        let mut d = Dense::new("d", 2, DenseConfig::new(1), &mut Rng::new(0)).unwrap();
        d.params.set("weight", &[1, 2], &[2.0, -1.0]).unwrap();
        d.params.set("bias", &[1], &[0.5]).unwrap();
        let x = Tensor::from_vec(&[2, 2], vec![1.0, 3.0, 4.0, 1.0]).unwrap();
        let mask = Tensor::from_vec(&[2], vec![1.0, 0.0]).unwrap();
        let out = d
            .forward(
                Flow {
                    x,
                    mask: Some(mask.clone()),
                },
                false,
            )
            .unwrap();
        assert_eq!(out.x.data(), &[-0.5, 7.5]);
        assert_eq!(out.mask, Some(mask));
    }

    #[test]
    fn wrong_feature_count_names_expected_and_actual() {
        let mut d = dense(5, 645 / 5 - 1, DenseConfig::new(5));
        assert_eq!(d.params()[0].len(), 645); // the lecture's dense_1
        let msg = d
            .forward(Flow::new(Tensor::zeros(&[2, 7])), true)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("128 features") && msg.contains("[2, 7]"),
            "{msg}"
        );
        let msg = d.output_shape(&[None, Some(7)]).unwrap_err().to_string();
        assert!(msg.contains("128") && msg.contains("Some(7)"), "{msg}");
        assert_eq!(
            d.output_shape(&[None, Some(10), Some(128)]).unwrap(),
            vec![None, Some(10), Some(5)]
        );
        assert!(d.backward(Tensor::zeros(&[2, 5])).is_err());
        d.forward(Flow::new(Tensor::zeros(&[2, 128])), true)
            .unwrap();
        let msg = d.backward(Tensor::zeros(&[2, 4])).unwrap_err().to_string();
        assert!(msg.contains("[2, 5]") && msg.contains("[2, 4]"), "{msg}");
        assert!(Dense::new("d", 0, DenseConfig::new(3), &mut Rng::new(0)).is_err());
    }

    #[test]
    fn parameter_gradients_accumulate() {
        let mut d = dense(3, 4, DenseConfig::new(3).activation(Activation::Tanh));
        let x = randt(&mut Rng::new(7), &[2, 4]);
        let up = randt(&mut Rng::new(8), &[2, 3]);
        d.forward(Flow::new(x), true).unwrap();
        d.backward(up.clone()).unwrap();
        let once = d.params()[0].grads.clone();
        assert!(once.iter().all(|g| *g != 0.0));
        d.backward(up).unwrap();
        for (twice, once) in d.params()[0].grads.iter().zip(&once) {
            assert!((twice - 2.0 * once).abs() < 1e-6);
        }
    }

    #[test]
    fn initialisers() {
        let d = Dense::new("d", 16, DenseConfig::new(8), &mut Rng::new(0)).unwrap();
        let l = (6.0f32 / 24.0).sqrt();
        let p = d.params()[0];
        assert!(p.value(0).iter().all(|v| v.abs() <= l));
        assert!(p.value(1).iter().all(|&v| v == 0.0));
        let t = Dense::new(
            "d",
            16,
            DenseConfig::new(8).torch_default(),
            &mut Rng::new(0),
        )
        .unwrap();
        let p = t.params()[0];
        assert!(p.values.iter().all(|v| v.abs() <= 0.25));
        assert!(p.value(1).iter().any(|&v| v != 0.0));
    }
}
