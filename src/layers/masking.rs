//! `Masking`: marks time steps whose features all equal `mask_value` as
//! padding. Input `[B, T, F]`; output is the input with masked steps zeroed
//! and a mask `[B, T]` (1.0 = real step). More generally the mask has the
//! input's shape without its last axis.

use super::{check_d_output, no_cache, Flow, Layer, Shape};
use crate::tensor::Tensor;
use crate::{Error, Result};

#[derive(Debug)]
struct Cache {
    shape: Vec<usize>,
    steps: Vec<f32>,
}

/// Keras's `Masking` layer.
#[derive(Debug)]
pub struct Masking {
    name: String,
    mask_value: f32,
    cache: Option<Cache>,
}

impl Masking {
    /// Masks steps whose features all equal `mask_value` (Keras default 0.0).
    pub fn new(name: impl Into<String>, mask_value: f32) -> Self {
        Masking {
            name: name.into(),
            mask_value,
            cache: None,
        }
    }

    /// The padding value.
    pub fn mask_value(&self) -> f32 {
        self.mask_value
    }
}

impl Layer for Masking {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        "Masking"
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        Ok(input.to_vec())
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let mut x = input.x;
        let shape = x.shape().to_vec();
        let f = match shape.last() {
            Some(&f) if shape.len() >= 2 && f > 0 => f,
            _ => {
                return Err(Error::shape(
                    format!("layer {} (Masking) input", self.name),
                    "[batch, time, features] with features > 0",
                    &shape,
                ))
            }
        };
        let mv = self.mask_value;
        let mut steps = Vec::with_capacity(x.len() / f);
        for row in x.data_mut().chunks_exact_mut(f) {
            // NaN != mask_value, so a NaN feature keeps its step, as in Keras.
            let keep = row.iter().any(|&v| v != mv);
            if !keep {
                row.iter_mut().for_each(|v| *v = 0.0);
            }
            steps.push(if keep { 1.0 } else { 0.0 });
        }
        let mask = Tensor::from_vec(&shape[..shape.len() - 1], steps.clone())?;
        if training {
            self.cache = Some(Cache { shape, steps });
        }
        Ok(Flow {
            x,
            mask: Some(mask),
        })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, "Masking"))?;
        check_d_output(&self.name, "Masking", &cache.shape, &d_output)?;
        let f = cache.shape.last().copied().unwrap_or(1).max(1);
        let mut dx = d_output;
        for (row, &m) in dx.data_mut().chunks_exact_mut(f).zip(&cache.steps) {
            row.iter_mut().for_each(|v| *v *= m);
        }
        Ok(dx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{check_layer, randn, InputCheck};
    use crate::rng::Rng;

    /// `[2, 4, 3]` input where steps (0, 1), (1, 0) and (1, 3) equal `mv`
    /// everywhere and step (0, 2) equals it in all but one feature.
    fn input(mv: f32) -> Tensor {
        let mut d = randn(&mut Rng::new(6), 24);
        for s in [1, 4, 7] {
            d[s * 3..s * 3 + 3].iter_mut().for_each(|v| *v = mv);
        }
        d[6] = mv;
        d[7] = mv;
        Tensor::from_vec(&[2, 4, 3], d).unwrap()
    }

    #[test]
    fn masks_steps_where_all_features_match() {
        for mv in [0.0, -1.0] {
            let mut m = Masking::new("masking_1", mv);
            let out = m.forward(Flow::new(input(mv)), false).unwrap();
            let mask = out.mask.unwrap();
            assert_eq!(mask.shape(), &[2, 4]);
            assert_eq!(mask.data(), &[1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0][..]);
            assert!(out.x.data()[3..6].iter().all(|&v| v == 0.0));
            assert_eq!(&out.x.data()[6..9], &input(mv).data()[6..9]);
        }
        assert_eq!(Masking::new("m", 0.0).type_name(), "Masking");
    }

    #[test]
    fn gradcheck_away_from_the_mask_boundary() {
        let mut m = Masking::new("masking_1", -1.0);
        // A finite difference at a masked step crosses the mask boundary, so it
        // is only meaningful for real steps; masked steps must get exactly 0.
        let real: Vec<bool> = (0..24).map(|i| ![1, 4, 7].contains(&(i / 3))).collect();
        let dx = check_layer(&mut m, input(-1.0), |_| {}, InputCheck::Only(real.clone()));
        for (i, g) in dx.data().iter().enumerate() {
            assert_eq!(*g == 0.0, !real[i], "element {i}");
        }
    }

    #[test]
    fn errors() {
        let mut m = Masking::new("m", 0.0);
        assert!(m.backward(Tensor::zeros(&[1, 2, 3])).is_err());
        assert!(m.forward(Flow::new(Tensor::zeros(&[4])), true).is_err());
        m.forward(Flow::new(Tensor::zeros(&[1, 2, 3])), true)
            .unwrap();
        assert!(m.backward(Tensor::zeros(&[1, 3, 2])).is_err());
    }
}
