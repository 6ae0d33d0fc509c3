//! `Embedding`: a lookup table from integer token ids to dense vectors.
//!
//! Shapes: input `[B, T]` (any rank of ids works) carried as exact f32 values,
//! output `[B, T, output_dim]`. The weight is one slot `weight`
//! `[input_dim, output_dim]`, PyTorch's `nn.Embedding` layout (which is also
//! Keras's `embeddings` matrix, untransposed).

use super::{check_d_output, format_index, no_cache, Flow, Layer, Shape, TokenRows};
use crate::kernels::rows::{gather_rows_new, scatter_add_rows};
use crate::params::{Params, SlotId};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Initializer, Result};

/// Arguments of [`Embedding`], named and defaulted as in Keras.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingConfig {
    /// Vocabulary size: ids must lie in `[0, input_dim)`.
    pub input_dim: usize,
    /// Length of each embedding vector.
    pub output_dim: usize,
    /// How to fill the table. Keras's default is `uniform(-0.05, 0.05)`;
    /// [`Initializer::TorchDefault`] means PyTorch's `nn.Embedding` default, N(0, 1).
    pub embeddings_initializer: Initializer,
    /// Emit a mask that is 0.0 where the id is 0 (padding) and 1.0 elsewhere.
    pub mask_zero: bool,
    /// Whether the table is updated by training (`false` freezes the slot).
    pub trainable: bool,
}

impl EmbeddingConfig {
    /// Keras defaults: uniform(-0.05, 0.05), no mask, trainable.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        EmbeddingConfig {
            input_dim,
            output_dim,
            embeddings_initializer: Initializer::Uniform {
                low: -0.05,
                high: 0.05,
            },
            mask_zero: false,
            trainable: true,
        }
    }

    /// Sets the initialiser.
    pub fn embeddings_initializer(mut self, init: Initializer) -> Self {
        self.embeddings_initializer = init;
        self
    }

    /// PyTorch's `nn.Embedding` initialisation, N(0, 1).
    pub fn torch_default(self) -> Self {
        self.embeddings_initializer(Initializer::TorchDefault)
    }

    /// Sets `mask_zero`.
    pub fn mask_zero(mut self, mask_zero: bool) -> Self {
        self.mask_zero = mask_zero;
        self
    }

    /// Sets `trainable`.
    pub fn trainable(mut self, trainable: bool) -> Self {
        self.trainable = trainable;
        self
    }
}

/// Token rows are offered when the vocabulary is at most this fraction of a
/// batch's ids: projecting the table then costs at most a quarter of
/// projecting every token (see [`Layer::token_rows`]).
const TOKEN_ROWS_MAX_VOCAB_SHARE: usize = 4;

#[derive(Debug)]
struct Cache {
    shape: Vec<usize>,
    ids: Vec<usize>,
    /// After a backward pass that added into the rows of `ids` only (not a
    /// whole table's gradient): whether every value it wrote is finite.
    scattered_finite: Option<bool>,
}

/// Keras's `Embedding` layer (PyTorch's `nn.Embedding`).
#[derive(Debug)]
pub struct Embedding {
    name: String,
    input_dim: usize,
    output_dim: usize,
    mask_zero: bool,
    params: Params,
    weight: SlotId,
    cache: Option<Cache>,
}

impl Embedding {
    /// Builds the layer and fills its table from `rng`. Errors when either
    /// dimension is zero.
    pub fn new(name: impl Into<String>, config: EmbeddingConfig, rng: &mut Rng) -> Result<Self> {
        let name = name.into();
        if config.input_dim == 0 || config.output_dim == 0 {
            return Err(Error::invalid(
                "Embedding dimensions",
                format!(
                    "layer {name}: input_dim ({}) and output_dim ({}) must be positive",
                    config.input_dim, config.output_dim
                ),
            ));
        }
        let (v, d) = (config.input_dim, config.output_dim);
        let mut params = Params::new();
        let weight = params.try_add("weight", &[v, d])?;
        let w = params.value_mut(weight);
        match config.embeddings_initializer {
            Initializer::TorchDefault => w.iter_mut().for_each(|x| *x = rng.normal()),
            init => init.fill(w, v, d, d, rng),
        }
        params.set_trainable(config.trainable);
        Ok(Embedding {
            name,
            input_dim: v,
            output_dim: d,
            mask_zero: config.mask_zero,
            params,
            weight,
            cache: None,
        })
    }

    /// Vocabulary size.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Embedding length.
    pub fn output_dim(&self) -> usize {
        self.output_dim
    }

    /// Whether id 0 is masked.
    pub fn mask_zero(&self) -> bool {
        self.mask_zero
    }

    /// Whether the table is trainable.
    pub fn trainable(&self) -> bool {
        self.params.slots()[self.weight].trainable
    }

    /// Freezes (`false`) or unfreezes the table.
    pub fn set_trainable(&mut self, trainable: bool) {
        self.params.set_trainable(trainable);
    }

    /// The table, `[input_dim, output_dim]` row-major.
    pub fn weight(&self) -> &[f32] {
        self.params.value(self.weight)
    }

    /// Loads a pretrained `[input_dim, output_dim]` matrix (e.g. GloVe vectors).
    pub fn set_weights(&mut self, matrix: &Tensor) -> Result<()> {
        if matrix.shape() != [self.input_dim, self.output_dim] {
            return Err(Error::shape(
                format!("layer {} (Embedding) set_weights", self.name),
                [self.input_dim, self.output_dim],
                matrix.shape(),
            ));
        }
        self.params
            .value_mut(self.weight)
            .copy_from_slice(matrix.data());
        Ok(())
    }

    /// Converts the f32 ids to indices, naming the first bad one.
    fn ids(&self, x: &Tensor) -> Result<Vec<usize>> {
        x.data()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && (v as usize) < self.input_dim
                {
                    Ok(v as usize)
                } else {
                    Err(Error::invalid(
                        "token id",
                        format!(
                            "layer {} (Embedding): id {v} at position {} is not an integer in [0, {}) (input_dim = {})",
                            self.name,
                            format_index(i, x.shape()),
                            self.input_dim,
                            self.input_dim
                        ),
                    ))
                }
            })
            .collect()
    }
}

impl Layer for Embedding {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        "Embedding"
    }

    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        if input.is_empty() {
            return Err(Error::shape(
                format!("layer {} (Embedding) input", self.name),
                "[batch, time]",
                input,
            ));
        }
        let mut out = input.to_vec();
        out.push(Some(self.output_dim));
        Ok(out)
    }

    fn forward(&mut self, input: Flow, training: bool) -> Result<Flow> {
        let x = input.x;
        if x.rank() == 0 {
            return Err(Error::shape(
                format!("layer {} (Embedding) input", self.name),
                "[batch, time]",
                x.shape(),
            ));
        }
        let ids = self.ids(&x)?;
        let d = self.output_dim;
        let w = self.params.value(self.weight);
        let out = gather_rows_new(w, d, &ids);
        let mut shape = x.shape().to_vec();
        shape.push(d);
        let y = Tensor::from_vec(&shape, out)?;
        let mask = if self.mask_zero {
            let m = ids
                .iter()
                .map(|&i| if i != 0 { 1.0 } else { 0.0 })
                .collect();
            Some(Tensor::from_vec(x.shape(), m)?)
        } else {
            None
        };
        if training {
            self.cache = Some(Cache {
                shape: x.shape().to_vec(),
                ids,
                scattered_finite: None,
            });
        }
        Ok(Flow { x: y, mask })
    }

    fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, "Embedding"))?;
        let d = self.output_dim;
        let mut out_shape = cache.shape.clone();
        out_shape.push(d);
        check_d_output(&self.name, "Embedding", &out_shape, &d_output)?;
        let mut finite = true;
        if self.params.slots()[self.weight].trainable {
            let g = self.params.grad_mut(self.weight);
            finite = scatter_add_rows(g, d, &cache.ids, d_output.data(), d);
        }
        let shape = cache.shape.clone();
        if let Some(c) = &mut self.cache {
            c.scattered_finite = Some(finite);
        }
        Ok(Tensor::zeros(&shape))
    }

    fn token_rows(&self, input: &Tensor) -> Option<TokenRows> {
        if input.rank() == 0 || self.input_dim * TOKEN_ROWS_MAX_VOCAB_SHARE > input.len() {
            return None;
        }
        Some(TokenRows {
            ids: self.ids(input).ok()?,
            table: self.weight().to_vec(),
            dim: self.output_dim,
        })
    }

    fn backward_table(&mut self, d_table: Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| no_cache(&self.name, "Embedding"))?;
        let want = [self.input_dim, self.output_dim];
        check_d_output(&self.name, "Embedding", &want, &d_table)?;
        if self.params.slots()[self.weight].trainable {
            let g = self.params.grad_mut(self.weight);
            g.iter_mut().zip(d_table.data()).for_each(|(g, d)| *g += d);
        }
        let shape = cache.shape.clone();
        if let Some(c) = &mut self.cache {
            c.scattered_finite = None;
        }
        Ok(Tensor::zeros(&shape))
    }

    /// After a backward pass that scattered into the rows of its ids, what
    /// the scatter saw as it wrote them: the rest of the table is as it was,
    /// zero (B's table is 2.56M values; no second pass over it). Otherwise
    /// the whole table is read.
    fn grads_finite(&self) -> bool {
        let slot = &self.params.slots()[self.weight];
        if !slot.trainable {
            return true;
        }
        match self.cache.as_ref().and_then(|c| c.scattered_finite) {
            Some(finite) => finite,
            None => crate::kernels::finite::all_finite(&self.params.grads[slot.range()]),
        }
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
    use crate::layers::testutil::{check_layer, InputCheck};

    fn layer(mask_zero: bool) -> Embedding {
        Embedding::new(
            "embedding_1",
            EmbeddingConfig::new(7, 3).mask_zero(mask_zero),
            &mut Rng::new(3),
        )
        .unwrap()
    }

    #[test]
    fn lookup_mask_and_shape() {
        let mut e = layer(true);
        let x = Tensor::from_vec(&[2, 3], vec![1.0, 0.0, 6.0, 6.0, 2.0, 0.0]).unwrap();
        let out = e.forward(Flow::new(x), false).unwrap();
        assert_eq!(out.x.shape(), &[2, 3, 3]);
        let w = e.weight().to_vec();
        assert_eq!(&out.x.data()[0..3], &w[3..6]);
        assert_eq!(&out.x.data()[6..9], &w[18..21]);
        assert_eq!(
            out.mask.unwrap().data(),
            &[1.0, 0.0, 1.0, 1.0, 1.0, 0.0][..]
        );
        assert!(w.iter().all(|v| v.abs() <= 0.05));
        assert_eq!(
            e.output_shape(&[None, Some(3)]).unwrap(),
            vec![None, Some(3), Some(3)]
        );
        assert_eq!(e.type_name(), "Embedding");
    }

    #[test]
    fn bad_ids_name_id_position_and_input_dim() {
        let mut e = layer(false);
        for (bad, shown) in [(7.0, "7"), (-1.0, "-1"), (2.5, "2.5"), (f32::NAN, "NaN")] {
            let x = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, bad]).unwrap();
            let msg = e.forward(Flow::new(x), true).unwrap_err().to_string();
            assert!(msg.contains(&format!("id {shown} ")), "{msg}");
            assert!(msg.contains("[1, 1]"), "{msg}");
            assert!(msg.contains("input_dim = 7"), "{msg}");
        }
    }

    #[test]
    fn gradient_with_repeated_ids() {
        let mut e = layer(false);
        // Id 4 appears three times, id 0 twice, id 5 never.
        let x = Tensor::from_vec(&[2, 4], vec![4.0, 0.0, 4.0, 1.0, 0.0, 4.0, 6.0, 2.0]).unwrap();
        check_layer(&mut e, x, |_| {}, InputCheck::Skip);
        let g = e.params.grad(e.weight);
        assert!(g[15..18].iter().all(|&v| v == 0.0), "unused id has no grad");
        assert!(g[12..15].iter().any(|&v| v != 0.0));
    }

    #[test]
    fn gradients_accumulate_across_calls() {
        let mut e = layer(false);
        let x = Tensor::from_vec(&[1, 2], vec![2.0, 2.0]).unwrap();
        e.forward(Flow::new(x), true).unwrap();
        let up = Tensor::from_vec(&[1, 2, 3], vec![1.0, 2.0, 3.0, 0.5, 0.5, 0.5]).unwrap();
        e.backward(up.clone()).unwrap();
        e.backward(up).unwrap();
        assert_eq!(&e.params()[0].grad(0)[6..9], &[3.0, 5.0, 7.0]);
    }

    #[test]
    fn finite_check_is_what_the_scatter_wrote_or_the_whole_table() {
        let mut e = layer(false);
        let x = Tensor::from_vec(&[1, 2], vec![2.0, 5.0]).unwrap();
        e.forward(Flow::new(x), true).unwrap();
        assert!(e.grads_finite());
        let up = Tensor::from_vec(&[1, 2, 3], vec![1.0, f32::MAX, 1.0, 0.5, 0.5, 0.5]).unwrap();
        e.backward(up.clone()).unwrap();
        assert!(e.grads_finite());
        // Row 2 sums to infinity: found.
        e.backward(up).unwrap();
        assert!(!e.grads_finite());
        let nan = Tensor::from_vec(&[1, 2, 3], vec![0.0, 0.0, 0.0, 0.0, f32::NAN, 0.0]).unwrap();
        e.params.grads.fill(0.0);
        e.backward(nan).unwrap();
        assert!(!e.grads_finite(), "a NaN scattered into row 5");
        // Rows the scatter did not write are taken to be zero, as a step
        // leaves them...
        e.params.grads.fill(0.0);
        e.backward(Tensor::zeros(&[1, 2, 3])).unwrap();
        e.params.grads[1] = f32::NAN;
        assert!(e.grads_finite(), "row 0 was not scattered into");
        // ...but after a forward without backward, or a table gradient, all are read.
        let x = Tensor::from_vec(&[1, 2], vec![2.0, 5.0]).unwrap();
        e.forward(Flow::new(x), true).unwrap();
        assert!(!e.grads_finite());
        e.params.grads[1] = 0.0;
        assert!(e.grads_finite());
        let mut table = Tensor::zeros(&[7, 3]);
        table.data_mut()[0] = f32::INFINITY;
        e.backward_table(table).unwrap();
        assert!(!e.grads_finite());
    }

    #[test]
    fn lecture_embedding_counts_and_shape() {
        // Embedding(400001, 50), frozen pretrained vectors: 20,000,050 parameters.
        let e = Embedding::new(
            "embedding_1",
            EmbeddingConfig::new(400_001, 50).trainable(false),
            &mut Rng::new(0),
        )
        .unwrap();
        assert_eq!(e.params()[0].len(), 20_000_050);
        assert_eq!(e.params()[0].trainable_len(), 0);
        assert_eq!(
            e.output_shape(&[None, Some(10)]).unwrap(),
            vec![None, Some(10), Some(50)]
        );
    }

    #[test]
    fn backward_returns_zeros_and_errors() {
        let mut e = layer(false);
        assert!(e
            .backward(Tensor::zeros(&[1, 1, 3]))
            .unwrap_err()
            .to_string()
            .contains("without a preceding forward"));
        let x = Tensor::from_vec(&[1, 2], vec![1.0, 2.0]).unwrap();
        e.forward(Flow::new(x), true).unwrap();
        let msg = e
            .backward(Tensor::zeros(&[1, 2, 4]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("[1, 2, 3]") && msg.contains("[1, 2, 4]"),
            "{msg}"
        );
        let dx = e.backward(Tensor::zeros(&[1, 2, 3])).unwrap();
        assert_eq!(dx, Tensor::zeros(&[1, 2]));
    }

    #[test]
    fn frozen_set_weights_and_torch_init() {
        let mut e = Embedding::new(
            "emb",
            EmbeddingConfig::new(4, 2).trainable(false),
            &mut Rng::new(1),
        )
        .unwrap();
        assert!(!e.trainable());
        assert_eq!(e.params()[0].trainable_len(), 0);
        let m = Tensor::from_vec(&[4, 2], (0..8).map(|v| v as f32).collect()).unwrap();
        e.set_weights(&m).unwrap();
        assert_eq!(e.weight(), m.data());
        let err = e
            .set_weights(&Tensor::zeros(&[2, 4]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[4, 2]") && err.contains("[2, 4]"), "{err}");
        let x = Tensor::from_vec(&[1, 2], vec![3.0, 1.0]).unwrap();
        e.forward(Flow::new(x), true).unwrap();
        e.backward(Tensor::from_vec(&[1, 2, 2], vec![1.0; 4]).unwrap())
            .unwrap();
        assert!(e.params()[0].grads.iter().all(|&g| g == 0.0));

        let t = Embedding::new(
            "emb",
            EmbeddingConfig::new(100, 50).torch_default(),
            &mut Rng::new(1),
        )
        .unwrap();
        let var = t.weight().iter().map(|v| v * v).sum::<f32>() / 5000.0;
        assert!((var - 1.0).abs() < 0.1, "{var}");
        assert!(Embedding::new("e", EmbeddingConfig::new(0, 2), &mut Rng::new(0)).is_err());
    }
}
