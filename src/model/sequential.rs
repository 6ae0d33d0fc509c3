//! A Sequential model: layers applied one after another, with explicit forward
//! and backward passes.

use std::collections::HashSet;

use crate::kernels::act::Activation;
use crate::layers::{ActivationKind, Flow, Layer, Shape};
use crate::params::Params;
use crate::tensor::Tensor;
use crate::train::Loss;
use crate::{Error, Result};

/// The model's input: per-sample shape (no batch) and element type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// Per-sample shape; `None` for a variable length.
    pub shape: Vec<Option<usize>>,
    /// `true` for integer token ids (int32), `false` for float32 features.
    pub integer: bool,
}

/// Layers applied in order.
#[derive(Debug)]
pub struct Sequential {
    name: String,
    input: InputSpec,
    layers: Vec<Box<dyn Layer>>,
    /// What [`Sequential::add`] needs about the layers so far, so that adding
    /// a layer costs the same however many came before (a spec of 20,000
    /// layers was quadratic without it). `None` after `layers_mut` or
    /// `set_stateful` hand out the layers, which may then have changed.
    tail: Option<Tail>,
}

/// The output shape and the set of names of the layers so far.
#[derive(Debug, Clone)]
struct Tail {
    shape: Shape,
    names: HashSet<String>,
}

impl Sequential {
    /// An empty model taking `input`.
    pub fn new(name: &str, input: InputSpec) -> Self {
        Sequential {
            name: name.to_string(),
            input,
            layers: Vec::new(),
            tail: None,
        }
    }

    /// The model name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The input description.
    pub fn input(&self) -> &InputSpec {
        &self.input
    }

    /// Keras's name for the input layer.
    pub fn input_name(&self) -> &'static str {
        "input_1"
    }

    /// The input shape with the batch dimension (`None`) in front.
    pub fn input_shape_with_batch(&self) -> Shape {
        std::iter::once(None)
            .chain(self.input.shape.iter().copied())
            .collect()
    }

    /// Appends a layer after checking that it accepts the current output shape
    /// and that its name is new; the error names both layers and the shape.
    /// Takes constant time apart from the layer's own shape check.
    pub fn add(&mut self, layer: Box<dyn Layer>) -> Result<()> {
        let tail = match self.tail.take() {
            Some(t) => t,
            None => self.compute_tail()?,
        };
        let tail = self.tail.insert(tail);
        let out = match layer.output_shape(&tail.shape) {
            Ok(out) => out,
            Err(e) => {
                let after = self.layers.last().map_or("the input".to_string(), |l| {
                    format!("{} ({})", l.name(), l.type_name())
                });
                return Err(Error::invalid(
                    "model",
                    format!(
                        "layer {} ({}) cannot follow {after}, whose output shape is {}: {e}",
                        layer.name(),
                        layer.type_name(),
                        super::format_shape(&tail.shape)
                    ),
                ));
            }
        };
        if tail.names.contains(layer.name()) {
            return Err(Error::invalid(
                "model",
                format!("two layers are named {:?}", layer.name()),
            ));
        }
        tail.names.insert(layer.name().to_string());
        tail.shape = out;
        self.layers.push(layer);
        Ok(())
    }

    /// The output shape and names of the layers, computed from scratch.
    fn compute_tail(&self) -> Result<Tail> {
        Ok(Tail {
            shape: self.output_shape_uncached()?,
            names: self.layers.iter().map(|l| l.name().to_string()).collect(),
        })
    }

    /// The layers in order.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers in order, mutable.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        self.tail = None;
        &mut self.layers
    }

    /// Output shape of every layer, batch first.
    pub fn layer_output_shapes(&self) -> Result<Vec<Shape>> {
        let mut shape = self.input_shape_with_batch();
        let mut out = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            shape = l.output_shape(&shape)?;
            out.push(shape.clone());
        }
        Ok(out)
    }

    /// The model's output shape, batch first.
    pub fn output_shape(&self) -> Result<Shape> {
        match &self.tail {
            Some(t) => Ok(t.shape.clone()),
            None => self.output_shape_uncached(),
        }
    }

    fn output_shape_uncached(&self) -> Result<Shape> {
        Ok(self
            .layer_output_shapes()?
            .pop()
            .unwrap_or_else(|| self.input_shape_with_batch()))
    }

    /// Checks a batch against the input spec: rank, fixed dimensions, and for
    /// integer inputs that every value is a non-negative integer.
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        let want = self.input_shape_with_batch();
        let ok = x.rank() == want.len()
            && want
                .iter()
                .zip(x.shape())
                .all(|(w, &g)| w.is_none_or(|w| w == g));
        if !ok {
            return Err(Error::shape(
                format!("{} input", self.name),
                super::format_shape(&want),
                x.shape(),
            ));
        }
        if self.input.integer {
            if let Some((i, v)) = x
                .data()
                .iter()
                .enumerate()
                .find(|(_, v)| v.fract() != 0.0 || **v < 0.0 || !v.is_finite())
            {
                return Err(Error::invalid(
                    "input",
                    format!("element {i} is {v}, but the model takes integer token ids"),
                ));
            }
        }
        Ok(())
    }

    /// Forward pass through every layer.
    pub fn forward(&mut self, x: Tensor, training: bool) -> Result<Tensor> {
        self.forward_head(x, training, false)
    }

    /// Backward pass for the last training forward; accumulates every layer's
    /// parameter gradients.
    pub fn backward(&mut self, d_output: Tensor) -> Result<()> {
        self.backward_head(d_output, false)
    }

    /// How `loss` should be applied to this model's output. When the model ends
    /// in a softmax `Activation` layer and the loss is a (sparse) categorical
    /// cross-entropy, or in a sigmoid layer and the loss is binary cross-entropy
    /// on probabilities, the last layer is fused into the loss: the loss then
    /// works on its input (logits), which is what Keras does internally and is
    /// numerically stable. Returns the loss to apply and whether the last layer
    /// is skipped.
    pub fn loss_head(&self, loss: Loss) -> (Loss, bool) {
        let last = self.layers.last().and_then(|l| l.activation_kind());
        match (last, loss) {
            (
                Some(ActivationKind::Softmax),
                Loss::CategoricalCrossEntropy | Loss::SparseCategoricalCrossEntropy,
            ) => (loss, true),
            (
                Some(ActivationKind::Pointwise(Activation::Sigmoid)),
                Loss::BinaryCrossEntropy { from_logits: false },
            ) => (Loss::BinaryCrossEntropy { from_logits: true }, true),
            _ => (loss, false),
        }
    }

    /// Forward pass that stops before the last layer when `skip_last` (see [`Sequential::loss_head`]).
    pub fn forward_head(&mut self, x: Tensor, training: bool, skip_last: bool) -> Result<Tensor> {
        crate::threads::in_pool(|| self.forward_head_here(x, training, skip_last))
    }

    /// [`Sequential::forward_head`] on the calling thread.
    fn forward_head_here(&mut self, x: Tensor, training: bool, skip_last: bool) -> Result<Tensor> {
        self.check_input(&x)?;
        let n = self.layers.len() - usize::from(skip_last && !self.layers.is_empty());
        let mut flow = Flow::new(x);
        // Token rows an embedding offers go to the layer after it when that
        // layer can use them (see `Layer::token_rows`).
        let mut tokens = None;
        for i in 0..n {
            let next_takes = i + 1 < n && self.layers[i + 1].takes_token_rows();
            let l = &mut self.layers[i];
            let offered = if next_takes {
                l.token_rows(&flow.x)
            } else {
                None
            };
            flow = match tokens.take() {
                Some(t) => l.forward_tokens(flow, t, training)?,
                None => l.forward(flow, training)?,
            };
            tokens = offered;
        }
        Ok(flow.x)
    }

    /// Backward pass matching [`Sequential::forward_head`].
    pub fn backward_head(&mut self, d_output: Tensor, skip_last: bool) -> Result<()> {
        crate::threads::in_pool(|| self.backward_head_here(d_output, skip_last))
    }

    /// [`Sequential::backward_head`] on the calling thread.
    fn backward_head_here(&mut self, d_output: Tensor, skip_last: bool) -> Result<()> {
        let n = self.layers.len() - usize::from(skip_last && !self.layers.is_empty());
        // A layer's input gradient is needed only when a trainable layer lies
        // before it; the first ones (on data, or after a frozen embedding) skip it.
        let mut trainable_before = false;
        for l in &mut self.layers[..n] {
            l.set_input_grad_needed(trainable_before);
            trainable_before |= l
                .params()
                .iter()
                .any(|p| p.slots().iter().any(|s| s.trainable));
        }
        let mut d = d_output;
        // A layer that used token rows hands the table's gradient to the
        // layer that offered them, in place of an input gradient.
        let mut table_grad = None;
        for l in self.layers[..n].iter_mut().rev() {
            d = match table_grad.take() {
                Some(g) => l.backward_table(g)?,
                None => l.backward(d)?,
            };
            table_grad = l.take_table_grad();
        }
        Ok(())
    }

    /// Makes every recurrent layer carry its state between calls (or stop doing so).
    pub fn set_stateful(&mut self, stateful: bool) {
        self.tail = None;
        self.layers
            .iter_mut()
            .for_each(|l| l.set_stateful(stateful));
    }

    /// Clears stateful layers' carried states.
    pub fn reset_states(&mut self) {
        self.layers.iter_mut().for_each(|l| l.reset_states());
    }

    /// Every parameter group, layer by layer.
    pub fn params(&self) -> Vec<&Params> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }

    /// Every parameter group, mutable.
    pub fn params_mut(&mut self) -> Vec<&mut Params> {
        self.layers
            .iter_mut()
            .flat_map(|l| l.params_mut())
            .collect()
    }

    /// True when no trainable gradient is NaN or infinite, the gradients
    /// having been zero before the last backward pass (see
    /// [`Layer::grads_finite`]).
    pub fn grads_finite(&self) -> bool {
        self.layers.iter().all(|l| l.grads_finite())
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self) {
        crate::threads::in_pool(|| self.params_mut().into_iter().for_each(Params::zero_grad));
    }

    /// (total, trainable) parameter counts, Keras's way.
    pub fn param_counts(&self) -> (usize, usize) {
        let ps = self.params();
        (
            ps.iter().map(|p| p.len()).sum(),
            ps.iter().map(|p| p.trainable_len()).sum(),
        )
    }

    /// Named weights as `<layer name>.<PyTorch parameter name>`, e.g. `lstm_1.weight_ih_l0`.
    pub fn named_weights(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut out = Vec::new();
        for l in &self.layers {
            for p in l.params() {
                for s in p.slots() {
                    out.push((
                        format!("{}.{}", l.name(), s.name),
                        s.shape.clone(),
                        &p.values[s.range()],
                    ));
                }
            }
        }
        out
    }

    /// Sets one weight by its `<layer>.<param>` name, checking the shape.
    pub fn set_weight(&mut self, name: &str, shape: &[usize], data: &[f32]) -> Result<()> {
        let (layer, param) = name.split_once('.').ok_or_else(|| {
            Error::invalid(
                "weight name",
                format!("{name:?} is not <layer>.<parameter>"),
            )
        })?;
        let l = self
            .layers
            .iter_mut()
            .find(|l| l.name() == layer)
            .ok_or_else(|| {
                Error::invalid(
                    "weight name",
                    format!("{name:?}: the model has no layer {layer:?}"),
                )
            })?;
        for p in l.params_mut() {
            if p.find(param).is_some() {
                return p.set(param, shape, data);
            }
        }
        Err(Error::invalid(
            "weight name",
            format!("{name:?}: layer {layer} has no parameter {param:?}"),
        ))
    }

    /// Keras's summary table.
    pub fn summary(&self) -> String {
        super::summary::summary(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Flow;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A pass-through layer that counts the shape checks made on it.
    #[derive(Debug)]
    struct Counting {
        name: String,
        calls: Arc<AtomicUsize>,
    }

    impl Layer for Counting {
        fn name(&self) -> &str {
            &self.name
        }
        fn type_name(&self) -> &'static str {
            "Counting"
        }
        fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            Ok(input.to_vec())
        }
        fn forward(&mut self, input: Flow, _training: bool) -> Result<Flow> {
            Ok(input)
        }
        fn backward(&mut self, d_output: Tensor) -> Result<Tensor> {
            Ok(d_output)
        }
    }

    fn model() -> Sequential {
        Sequential::new(
            "m",
            InputSpec {
                shape: vec![Some(3)],
                integer: false,
            },
        )
    }

    /// Adding n layers must check n shapes, not n^2/2 (the walk over all
    /// earlier layers that made a 20,000-layer spec take 25 s).
    #[test]
    fn adding_a_layer_does_not_revisit_the_earlier_ones() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut m = model();
        let n = 1000;
        for i in 0..n {
            let layer = Counting {
                name: format!("c{i}"),
                calls: calls.clone(),
            };
            m.add(Box::new(layer)).unwrap();
        }
        assert_eq!(calls.load(Ordering::Relaxed), n);
        assert_eq!(m.output_shape().unwrap(), vec![None, Some(3)]);
        assert_eq!(calls.load(Ordering::Relaxed), n);

        // Handing out the layers forgets what add knew; the next add
        // recomputes it once and still refuses a repeated name.
        let _ = m.layers_mut();
        let dup = Counting {
            name: "c7".into(),
            calls: calls.clone(),
        };
        let e = m.add(Box::new(dup)).unwrap_err().to_string();
        assert!(e.contains("two layers are named \"c7\""), "{e}");
        assert_eq!(calls.load(Ordering::Relaxed), 2 * n + 1);
    }
}
