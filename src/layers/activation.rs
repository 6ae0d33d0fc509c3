//! `Activation`: a parameter-free layer applying softmax (over the last axis)
//! or one of the pointwise [`Activation`] functions.

use super::{check_d_output, no_cache, Flow, Layer, Shape};
use crate::tensor::Tensor;
use crate::{Activation, Error, Result};

/// The function an [`ActivationLayer`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationKind {
    /// Softmax over the last axis, computed stably (the row maximum is subtracted).
    Softmax,
    /// A pointwise function.
    Pointwise(Activation),
}

impl ActivationKind {
    /// Parses a Keras name: `softmax` or any name [`Activation::parse`] accepts.
    pub fn parse(name: &str) -> Result<Self> {
        if name == "softmax" {
            return Ok(ActivationKind::Softmax);
        }
        Activation::parse(name)
            .map(ActivationKind::Pointwise)
            .map_err(|_| {
                Error::invalid(
                    "activation",
                    format!(
                        "unknown activation {name:?}; known: softmax, {}",
                        Activation::NAMES.join(", ")
                    ),
                )
            })
    }

    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            ActivationKind::Softmax => "softmax",
            ActivationKind::Pointwise(a) => a.name(),
        }
    }
}

impl From<Activation> for ActivationKind {
    fn from(a: Activation) -> Self {
        ActivationKind::Pointwise(a)
    }
}

/// Keras's `Activation` layer.
#[derive(Debug)]
pub struct ActivationLayer {
    name: String,
    kind: ActivationKind,
    /// The output of the last training forward.
    cache: Option<Tensor>,
}

impl ActivationLayer {
    /// A layer applying `kind` (an [`ActivationKind`] or an [`Activation`]).
    pub fn new(name: impl Into<String>, kind: impl Into<ActivationKind>) -> Self {
        ActivationLayer {
            name: name.into(),
            kind: kind.into(),
            cache: None,
        }
    }

    /// A layer applying the function called `activation` (e.g. `"softmax"`).
    pub fn from_name(name: impl Into<String>, activation: &str) -> Result<Self> {
        Ok(Self::new(name, ActivationKind::parse(activation)?))
    }

    /// The function applied.
    pub fn kind(&self) -> ActivationKind {
        self.kind
    }
}

/// Softmax of every last-axis row of `data` (rows of length `n`), in place.
fn softmax_rows(data: &mut [f32], n: usize) {
    for row in data.chunks_exact_mut(n) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

impl Layer for ActivationLayer {
    fn name(&self) -> &str {
        &self.name
    }

    fn activation_kind(&self) -> Option<ActivationKind> {
        Some(self.kind)
    }

    fn type_name(&self) -> &'static str {
        "Activation"
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        Ok(input.to_vec())
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let Flow { mut x, mask } = input;
        match self.kind {
            ActivationKind::Softmax => {
                let n = x.shape().last().copied().unwrap_or(0);
                if x.rank() == 0 || n == 0 {
                    return Err(Error::shape(
                        format!("layer {} (Activation softmax) input", self.name),
                        "a tensor with a non-empty last axis",
                        x.shape(),
                    ));
                }
                softmax_rows(x.data_mut(), n);
            }
            ActivationKind::Pointwise(a) => a.apply_slice(x.data_mut()),
        }
        if training {
            self.cache = Some(x.clone());
        }
        Ok(Flow { x, mask })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let y = self
            .cache
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, "Activation"))?;
        check_d_output(&self.name, "Activation", y.shape(), &d_output)?;
        let mut dx = d_output;
        match self.kind {
            ActivationKind::Softmax => {
                // dx = y * (dy - <dy, y>) per row: the softmax Jacobian J = diag(y) - y y^T
                // (symmetric) times dy.
                let n = y.shape().last().copied().unwrap_or(1);
                for (d, yr) in dx
                    .data_mut()
                    .chunks_exact_mut(n)
                    .zip(y.data().chunks_exact(n))
                {
                    let s: f32 = d.iter().zip(yr).map(|(a, b)| a * b).sum();
                    d.iter_mut()
                        .zip(yr)
                        .for_each(|(dv, &yv)| *dv = yv * (*dv - s));
                }
            }
            ActivationKind::Pointwise(a) => dx
                .data_mut()
                .iter_mut()
                .zip(y.data())
                .for_each(|(dv, &yv)| *dv *= a.derivative_from_output(yv)),
        }
        Ok(dx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{check_layer, randn, InputCheck};
    use crate::rng::Rng;

    #[test]
    fn softmax_rows_sum_to_one_and_stable() {
        let mut l = ActivationLayer::from_name("activation_1", "softmax").unwrap();
        let x = Tensor::from_vec(&[2, 3], vec![1000.0, 1001.0, 1002.0, -5.0, 0.0, 5.0]).unwrap();
        let y = l.forward(Flow::new(x), false).unwrap().x;
        assert!(y.data().iter().all(|v| v.is_finite()));
        let e = [(-2.0f32).exp(), (-1.0f32).exp(), 1.0];
        let s: f32 = e.iter().sum();
        for (got, ei) in y.data().iter().zip(e) {
            assert!((got - ei / s).abs() < 1e-6);
        }
        assert!((y.data()[3..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(l.type_name(), "Activation");
        assert_eq!(
            l.output_shape(&[None, Some(5)]).unwrap(),
            vec![None, Some(5)]
        );
    }

    #[test]
    fn gradcheck_softmax_2d_and_3d() {
        let mut rng = Rng::new(8);
        let mut l = ActivationLayer::new("a", ActivationKind::Softmax);
        for shape in [&[4, 5][..], &[2, 3, 4][..]] {
            let n = shape.iter().product();
            let x = Tensor::from_vec(shape, randn(&mut rng, n)).unwrap();
            check_layer(&mut l, x, |_| {}, InputCheck::All);
        }
    }

    #[test]
    fn gradcheck_every_pointwise_activation() {
        let mut rng = Rng::new(9);
        for a in [
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Softsign,
            Activation::Relu,
            Activation::Linear,
            Activation::HardSigmoid,
        ] {
            let mut l = ActivationLayer::new("a", a);
            // Spread over [-4, 4] but keep away from the kinks of relu (0) and
            // hard_sigmoid (+-2.5), where a central difference is meaningless.
            let data: Vec<f32> = (0..30)
                .map(|_| {
                    let v = rng.uniform(-4.0, 4.0);
                    if v.abs() < 0.1 || (v.abs() - 2.5).abs() < 0.1 {
                        v + 0.3
                    } else {
                        v
                    }
                })
                .collect();
            let x = Tensor::from_vec(&[2, 3, 5], data).unwrap();
            let dx = check_layer(&mut l, x, |_| {}, InputCheck::All);
            if a == Activation::Relu {
                assert!(dx.data().contains(&0.0));
            }
        }
    }

    #[test]
    fn errors() {
        let msg = ActivationLayer::from_name("a", "swish")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("softmax") && msg.contains("tanh"), "{msg}");
        let mut l = ActivationLayer::new("a", Activation::Tanh);
        assert!(l.backward(Tensor::zeros(&[1, 2])).is_err());
        l.forward(Flow::new(Tensor::zeros(&[1, 2])), true).unwrap();
        assert!(l.backward(Tensor::zeros(&[2, 1])).is_err());
        let mut s = ActivationLayer::new("s", ActivationKind::Softmax);
        assert!(s.forward(Flow::new(Tensor::zeros(&[2, 0])), true).is_err());
        assert_eq!(ActivationKind::parse("relu").unwrap().name(), "relu");
    }
}
