//! `TimeDistributed`: applies a layer to every time step independently by
//! folding the time axis into the batch, `[B, T, ...] -> [B*T, ...]`.
//!
//! The incoming mask `[B, T]` is passed through to the output unchanged; the
//! inner layer sees no mask, and any mask it emits is dropped.

use super::{check_d_output, no_cache, Flow, Layer, Shape};
use crate::params::Params;
use crate::tensor::Tensor;
use crate::{Error, Result};

#[derive(Debug)]
struct Cache {
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
}

/// Keras's `TimeDistributed` wrapper. Its parameters are the inner layer's.
#[derive(Debug)]
pub struct TimeDistributed {
    name: String,
    inner: Box<dyn Layer>,
    cache: Option<Cache>,
}

impl TimeDistributed {
    /// Wraps `inner`, e.g. `TimeDistributed::new("time_distributed_1", Box::new(dense))`.
    pub fn new(name: impl Into<String>, inner: Box<dyn Layer>) -> Self {
        TimeDistributed {
            name: name.into(),
            inner,
            cache: None,
        }
    }

    /// The wrapped layer.
    pub fn inner(&self) -> &dyn Layer {
        self.inner.as_ref()
    }

    /// The wrapped layer, mutable.
    pub fn inner_mut(&mut self) -> &mut dyn Layer {
        self.inner.as_mut()
    }

    fn rank_error(&self, actual: impl std::fmt::Debug) -> Error {
        Error::shape(
            format!("layer {} (TimeDistributed) input", self.name),
            "[batch, time, ...] (rank >= 3)",
            actual,
        )
    }
}

impl Layer for TimeDistributed {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        "TimeDistributed"
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        if input.len() < 3 {
            return Err(self.rank_error(input));
        }
        let rows = match (input[0], input[1]) {
            (Some(b), Some(t)) => Some(b * t),
            _ => None,
        };
        let mut inner_in = vec![rows];
        inner_in.extend_from_slice(&input[2..]);
        let inner_out = self.inner.output_shape(&inner_in)?;
        let mut out = vec![input[0], input[1]];
        out.extend_from_slice(inner_out.get(1..).unwrap_or(&[]));
        Ok(out)
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let Flow { x, mask } = input;
        let in_shape = x.shape().to_vec();
        if in_shape.len() < 3 {
            return Err(self.rank_error(&in_shape));
        }
        let (b, t) = (in_shape[0], in_shape[1]);
        let mut folded = vec![b * t];
        folded.extend_from_slice(&in_shape[2..]);
        let y = self
            .inner
            .forward(Flow::new(x.reshape(&folded)?), training)?
            .x;
        if y.rank() == 0 || y.shape()[0] != b * t {
            return Err(Error::shape(
                format!(
                    "layer {} (TimeDistributed): output of inner layer {}",
                    self.name,
                    self.inner.name()
                ),
                format!("[{}, ...]", b * t),
                y.shape(),
            ));
        }
        let mut out_shape = vec![b, t];
        out_shape.extend_from_slice(&y.shape()[1..]);
        if training {
            self.cache = Some(Cache {
                in_shape,
                out_shape: out_shape.clone(),
            });
        }
        Ok(Flow {
            x: y.reshape(&out_shape)?,
            mask,
        })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, "TimeDistributed"))?;
        check_d_output(&self.name, "TimeDistributed", &cache.out_shape, &d_output)?;
        let (b, t) = (cache.in_shape[0], cache.in_shape[1]);
        let mut folded = vec![b * t];
        folded.extend_from_slice(&cache.out_shape[2..]);
        let in_shape = cache.in_shape.clone();
        let dx = self.inner.backward(d_output.reshape(&folded)?)?;
        dx.reshape(&in_shape)
    }

    fn set_input_grad_needed(&mut self, needed: bool) {
        self.inner.set_input_grad_needed(needed);
    }

    fn params(&self) -> Vec<&Params> {
        self.inner.params()
    }

    fn params_mut(&mut self) -> Vec<&mut Params> {
        self.inner.params_mut()
    }

    fn reseed(&mut self, seed: u64) {
        self.inner.reseed(seed);
    }

    fn reset_states(&mut self) {
        self.inner.reset_states();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{check_layer, randt, InputCheck};
    use crate::layers::{ActivationLayer, Dense, DenseConfig};
    use crate::rng::Rng;
    use crate::Activation;

    fn td() -> TimeDistributed {
        let dense = Dense::new(
            "dense_1",
            4,
            DenseConfig::new(3)
                .activation(Activation::Tanh)
                .torch_default(),
            &mut Rng::new(2),
        )
        .unwrap();
        TimeDistributed::new("time_distributed_1", Box::new(dense))
    }

    #[test]
    fn gradcheck_time_distributed_dense() {
        let mut l = td();
        check_layer(
            &mut l,
            randt(&mut Rng::new(3), &[2, 3, 4]),
            |_| {},
            InputCheck::All,
        );
    }

    #[test]
    fn matches_inner_layer_per_step_and_shapes() {
        let mut l = td();
        let x = randt(&mut Rng::new(4), &[2, 3, 4]);
        let mask = Tensor::from_vec(&[2, 3], vec![1.0, 1.0, 0.0, 1.0, 0.0, 0.0]).unwrap();
        let out = l
            .forward(
                Flow {
                    x: x.clone(),
                    mask: Some(mask.clone()),
                },
                false,
            )
            .unwrap();
        assert_eq!(out.x.shape(), &[2, 3, 3]);
        assert_eq!(out.mask, Some(mask));
        // Step (1, 2) alone through the inner layer.
        let step = Tensor::from_vec(&[1, 4], x.data()[20..24].to_vec()).unwrap();
        let y = l.inner_mut().forward(Flow::new(step), false).unwrap().x;
        assert_eq!(y.data(), &out.x.data()[15..18]);
        assert_eq!(
            l.output_shape(&[None, Some(3), Some(4)]).unwrap(),
            vec![None, Some(3), Some(3)]
        );
        assert_eq!(l.type_name(), "TimeDistributed");
        assert_eq!(l.inner().type_name(), "Dense");
        assert_eq!(l.params()[0].len(), 15);
        assert_eq!(l.params_mut().len(), 1);
        // Softmax over the last axis of every step.
        let mut s = TimeDistributed::new(
            "td",
            Box::new(ActivationLayer::from_name("a", "softmax").unwrap()),
        );
        let y = s.forward(Flow::new(x), false).unwrap().x;
        for row in y.data().chunks(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn errors() {
        let mut l = td();
        assert!(l.backward(Tensor::zeros(&[2, 3, 3])).is_err());
        assert!(l.forward(Flow::new(Tensor::zeros(&[2, 4])), true).is_err());
        assert!(l.output_shape(&[None, Some(4)]).is_err());
        let msg = l
            .forward(Flow::new(Tensor::zeros(&[2, 3, 5])), true)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("dense_1") && msg.contains('5'), "{msg}");
        assert!(l.output_shape(&[None, Some(3), Some(5)]).is_err());
        l.forward(Flow::new(Tensor::zeros(&[2, 3, 4])), true)
            .unwrap();
        assert!(l.backward(Tensor::zeros(&[3, 2, 3])).is_err());
        assert_eq!(
            l.backward(Tensor::zeros(&[2, 3, 3])).unwrap().shape(),
            &[2, 3, 4]
        );
    }
}
