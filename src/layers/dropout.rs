//! `Dropout`: inverted dropout. In training each element is kept with
//! probability `1 - rate` and scaled by `1 / (1 - rate)`; at inference the layer
//! is the identity. Masks come from the layer's own seeded [`Rng`], so they are
//! reproducible; [`Dropout::reseed`] fixes the next mask (for tests).

use super::{check_d_output, no_cache, Flow, Layer, Shape};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Arguments of [`Dropout`], named as in Keras.
#[derive(Debug, Clone, PartialEq)]
pub struct DropoutConfig {
    /// Fraction of the units to drop, in `[0, 1)`.
    pub rate: f32,
    /// Seed of the layer's mask generator; `None` forks one from the `rng`
    /// given to [`Dropout::new`].
    pub seed: Option<u64>,
}

impl DropoutConfig {
    /// Dropout with `rate` and no fixed seed.
    pub fn new(rate: f32) -> Self {
        DropoutConfig { rate, seed: None }
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

#[derive(Debug)]
struct Cache {
    shape: Vec<usize>,
    /// Per-element factor (0 or 1/(1-rate)); `None` when rate is 0.
    mask: Option<Vec<f32>>,
}

/// Keras's `Dropout` layer.
#[derive(Debug)]
pub struct Dropout {
    name: String,
    rate: f32,
    rng: Rng,
    cache: Option<Cache>,
}

impl Dropout {
    /// Builds the layer; errors unless `0 <= rate < 1`.
    pub fn new(name: impl Into<String>, config: DropoutConfig, rng: &mut Rng) -> Result<Self> {
        let name = name.into();
        // Written so that NaN fails too.
        if !(config.rate >= 0.0 && config.rate < 1.0) {
            return Err(Error::invalid(
                "dropout rate",
                format!("layer {name}: rate {} is outside [0, 1)", config.rate),
            ));
        }
        let rng = match config.seed {
            Some(s) => Rng::new(s),
            None => rng.fork(),
        };
        Ok(Dropout {
            name,
            rate: config.rate,
            rng,
            cache: None,
        })
    }

    /// The drop rate.
    pub fn rate(&self) -> f32 {
        self.rate
    }

    /// Restarts the mask generator from `seed`: the next training forward on
    /// an input of the same size draws the same mask as after any earlier
    /// `reseed(seed)`.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// The mask factors (0 or `1/(1-rate)`) of the last training forward, if
    /// one has run and `rate > 0`.
    pub fn last_mask(&self) -> Option<&[f32]> {
        self.cache.as_ref().and_then(|c| c.mask.as_deref())
    }
}

impl Layer for Dropout {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        "Dropout"
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        Ok(input.to_vec())
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        if !training {
            return Ok(input);
        }
        let Flow { mut x, mask } = input;
        let factors = if self.rate > 0.0 {
            let scale = 1.0 / (1.0 - self.rate);
            // Branch-free: a coin flip per value defeats the branch predictor.
            let m: Vec<f32> = (0..x.len())
                .map(|_| f32::from(u8::from(self.rng.next_f32() >= self.rate)) * scale)
                .collect();
            x.data_mut().iter_mut().zip(&m).for_each(|(v, f)| *v *= f);
            Some(m)
        } else {
            None
        };
        self.cache = Some(Cache {
            shape: x.shape().to_vec(),
            mask: factors,
        });
        Ok(Flow { x, mask })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, "Dropout"))?;
        check_d_output(&self.name, "Dropout", &cache.shape, &d_output)?;
        let mut dx = d_output;
        if let Some(m) = &cache.mask {
            dx.data_mut().iter_mut().zip(m).for_each(|(v, f)| *v *= f);
        }
        Ok(dx)
    }

    fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{check_layer, randt, InputCheck};

    #[test]
    fn gradcheck_with_fixed_mask() {
        let mut d = Dropout::new("dropout_1", DropoutConfig::new(0.5), &mut Rng::new(0)).unwrap();
        let x = randt(&mut Rng::new(4), &[3, 4, 5]);
        let dx = check_layer(&mut d, x, |l| l.reseed(17), InputCheck::All);
        let m = d.last_mask().unwrap();
        assert!(m.iter().all(|&f| f == 0.0 || f == 2.0));
        assert!(m.contains(&0.0) && m.contains(&2.0));
        // Dropped units get no gradient.
        for (g, f) in dx.data().iter().zip(m) {
            assert_eq!(*g == 0.0, *f == 0.0);
        }
    }

    #[test]
    fn inverted_scaling_inference_identity_and_reproducibility() {
        let cfg = DropoutConfig::new(0.25).seed(7);
        let mut a = Dropout::new("a", cfg.clone(), &mut Rng::new(0)).unwrap();
        let mut b = Dropout::new("b", cfg, &mut Rng::new(1)).unwrap();
        let x = Tensor::from_vec(&[100, 100], vec![1.0; 10_000]).unwrap();
        let ya = a.forward(Flow::new(x.clone()), true).unwrap().x;
        let yb = b.forward(Flow::new(x.clone()), true).unwrap().x;
        assert_eq!(ya, yb);
        // The mean is preserved in expectation.
        let mean = ya.data().iter().sum::<f32>() / 10_000.0;
        assert!((mean - 1.0).abs() < 0.05, "{mean}");
        let kept = ya.data().iter().filter(|&&v| v != 0.0).count();
        assert!((7_300..7_700).contains(&kept), "{kept}");
        assert!(ya
            .data()
            .iter()
            .all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        // A second draw differs; inference is the identity.
        let y2 = a.forward(Flow::new(x.clone()), true).unwrap().x;
        assert_ne!(y2, ya);
        assert_eq!(a.forward(Flow::new(x.clone()), false).unwrap().x, x);
        // Unseeded layers fork distinct generators from the model rng.
        let mut rng = Rng::new(3);
        let mut c = Dropout::new("c", DropoutConfig::new(0.5), &mut rng).unwrap();
        let mut d = Dropout::new("d", DropoutConfig::new(0.5), &mut rng).unwrap();
        assert_ne!(
            c.forward(Flow::new(x.clone()), true).unwrap().x,
            d.forward(Flow::new(x), true).unwrap().x
        );
    }

    #[test]
    fn bad_rate_and_backward_errors() {
        for rate in [-0.1, 1.0, 1.5, f32::NAN] {
            let msg = Dropout::new("dropout_2", DropoutConfig::new(rate), &mut Rng::new(0))
                .unwrap_err()
                .to_string();
            assert!(msg.contains("dropout_2") && msg.contains("[0, 1)"), "{msg}");
        }
        let mut d = Dropout::new("d", DropoutConfig::new(0.0), &mut Rng::new(0)).unwrap();
        assert!(d.backward(Tensor::zeros(&[2])).is_err());
        let x = Tensor::from_vec(&[2], vec![1.0, 2.0]).unwrap();
        assert_eq!(d.forward(Flow::new(x.clone()), true).unwrap().x, x);
        assert!(d.backward(Tensor::zeros(&[3])).is_err());
        assert_eq!(d.backward(x.clone()).unwrap(), x);
    }
}
