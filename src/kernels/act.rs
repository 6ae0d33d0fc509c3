//! Activation functions with derivatives written in terms of the *output*
//! `y = f(x)`, which is what the recurrent cells cache for BPTT.

use crate::{Error, Result};

/// A pointwise activation. Names follow Keras.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid 1/(1+e^-x).
    Sigmoid,
    /// Keras 2's piecewise-linear sigmoid: clip(0.2x + 0.5, 0, 1).
    HardSigmoid,
    /// max(0, x).
    Relu,
    /// x / (1 + |x|).
    Softsign,
    /// The identity.
    Linear,
}

impl Activation {
    /// All names accepted by [`Activation::parse`].
    pub const NAMES: &'static [&'static str] = &[
        "tanh",
        "sigmoid",
        "hard_sigmoid",
        "relu",
        "softsign",
        "linear",
    ];

    /// Parses a Keras activation name.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "hard_sigmoid" => Activation::HardSigmoid,
            "relu" => Activation::Relu,
            "softsign" => Activation::Softsign,
            "linear" | "identity" | "none" => Activation::Linear,
            _ => {
                return Err(Error::invalid(
                    "activation",
                    format!(
                        "unknown activation {name:?}; known: {}",
                        Self::NAMES.join(", ")
                    ),
                ))
            }
        })
    }

    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::Relu => "relu",
            Activation::Softsign => "softsign",
            Activation::Linear => "linear",
        }
    }

    /// f(x).
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => sigmoid(x),
            Activation::HardSigmoid => (0.2 * x + 0.5).clamp(0.0, 1.0),
            Activation::Relu => x.max(0.0),
            Activation::Softsign => x / (1.0 + x.abs()),
            Activation::Linear => x,
        }
    }

    /// f'(x) expressed through y = f(x).
    #[inline]
    pub fn derivative_from_output(self, y: f32) -> f32 {
        match self {
            Activation::Tanh => 1.0 - y * y,
            Activation::Sigmoid => y * (1.0 - y),
            Activation::HardSigmoid => {
                if y > 0.0 && y < 1.0 {
                    0.2
                } else {
                    0.0
                }
            }
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Softsign => {
                let t = 1.0 - y.abs();
                t * t
            }
            Activation::Linear => 1.0,
        }
    }

    /// Applies f in place.
    pub fn apply_slice(self, xs: &mut [f32]) {
        for x in xs {
            *x = self.apply(*x);
        }
    }
}

/// Logistic sigmoid, stable for large |x|.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        let all = [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::HardSigmoid,
            Activation::Relu,
            Activation::Softsign,
            Activation::Linear,
        ];
        for act in all {
            for &x in &[-3.1f32, -1.3, -0.4, 0.3, 0.9, 2.2, 4.0] {
                let h = 1e-3f64;
                let f = |v: f64| act.apply(v as f32) as f64;
                let fd = (f(x as f64 + h) - f(x as f64 - h)) / (2.0 * h);
                let an = act.derivative_from_output(act.apply(x)) as f64;
                assert!(
                    (fd - an).abs() < 2e-3,
                    "{act:?} at {x}: fd {fd} analytic {an}"
                );
            }
            assert_eq!(Activation::parse(act.name()).unwrap(), act);
        }
        assert!(Activation::parse("swishy")
            .unwrap_err()
            .to_string()
            .contains("softsign"));
    }
}
