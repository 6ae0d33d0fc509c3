//! One training step, the only one: the fit loop ([`fit`](super::fit())),
//! char-LM training ([`charlm`](super::charlm)), `gated bench` and the demo
//! all call [`train_step`], so what the benchmark times is what users run.
//!
//! A step: forward in training mode, the loss, a check that it is finite,
//! backward, a check that every trainable gradient is finite, clipping (by
//! value, then by global norm), the optimizer's update with the gradients
//! cleared behind it. A non-finite loss or gradient stops the step with
//! [`Error::NonFinite`] before any weight changes.
//!
//! The model's gradients must be zero on entry (call
//! [`Sequential::zero_grad`] once before the first step; every step leaves
//! them zero). State the model carries between batches (a stateful
//! recurrent layer's, as in char-LM training) is the model's own: the step
//! neither resets nor reads it.
//!
//! ```
//! use gated::layers::{Dense, DenseConfig};
//! use gated::model::{InputSpec, Sequential};
//! use gated::train::step::{train_step, Clip, Targets};
//! use gated::train::{Loss, Optimizer};
//! use gated::{Rng, Tensor};
//!
//! # fn main() -> gated::Result<()> {
//! let mut model = Sequential::new("line", InputSpec { shape: vec![Some(1)], integer: false });
//! model.add(Box::new(Dense::new("dense", 1, DenseConfig::new(1), &mut Rng::new(0))?))?;
//! let x = Tensor::from_vec(&[4, 1], vec![-1.0, 0.0, 1.0, 2.0])?;
//! let y = Tensor::from_vec(&[4, 1], vec![-3.0, -1.0, 1.0, 3.0])?;
//! let mut opt = Optimizer::parse("sgd", 0.1)?;
//! let target = Targets::new(&model, Loss::MeanSquaredError, &y);
//! let clip = Clip::norm(5.0);
//! model.zero_grad();
//! let first = train_step(&mut model, &mut opt, x.clone(), &target, clip, 1)?;
//! let second = train_step(&mut model, &mut opt, x, &target, clip, 2)?;
//! assert!(second.loss < first.loss);
//! # Ok(())
//! # }
//! ```

use super::clip::{clip_grad_norm, clip_grad_value};
use super::loss::Loss;
use super::optim::Optimizer;
use crate::model::Sequential;
use crate::{Error, Result, Tensor};

/// Gradient clipping of a step; none by default.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Clip {
    /// Clamp every gradient element to `[-v, v]` first (Keras `clipvalue`,
    /// PyTorch `clip_grad_value_`).
    pub value: Option<f32>,
    /// Then rescale the gradients whose global L2 norm exceeds this (Keras
    /// `global_clipnorm`, PyTorch `clip_grad_norm_`).
    pub norm: Option<f32>,
}

impl Clip {
    /// Global-norm clipping at `max_norm` only.
    pub fn norm(max_norm: f32) -> Self {
        Clip {
            value: None,
            norm: Some(max_norm),
        }
    }
}

/// What a step minimises: a loss on the model's output. `Sync` so that the
/// step can run on a worker thread of the pool.
pub trait Objective: Sync {
    /// Whether the model's last layer is left out of the forward and
    /// backward passes, being fused into the loss (see
    /// [`Sequential::loss_head`]). False unless said otherwise.
    fn skip_last(&self) -> bool {
        false
    }

    /// The loss of `pred` (a scalar) and its gradient with respect to `pred`.
    fn loss(&self, pred: &Tensor) -> Result<(f32, Tensor)>;
}

/// Any function of the prediction returning the loss and its gradient is an
/// objective (the demo's masked Reber loss, the benchmark's sum).
impl<F: Fn(&Tensor) -> Result<(f32, Tensor)> + Sync> Objective for F {
    fn loss(&self, pred: &Tensor) -> Result<(f32, Tensor)> {
        self(pred)
    }
}

/// A [`Loss`] against targets, with the model's final softmax or sigmoid
/// fused into it as Keras does (see [`Sequential::loss_head`]).
#[derive(Debug, Clone, Copy)]
pub struct Targets<'a> {
    loss: Loss,
    skip_last: bool,
    target: &'a Tensor,
}

impl<'a> Targets<'a> {
    /// `loss` of `model`'s output against `target`.
    pub fn new(model: &Sequential, loss: Loss, target: &'a Tensor) -> Self {
        let (loss, skip_last) = model.loss_head(loss);
        Targets {
            loss,
            skip_last,
            target,
        }
    }

    /// The loss applied (the fused form when the last layer is skipped).
    pub fn applied_loss(&self) -> Loss {
        self.loss
    }
}

impl Objective for Targets<'_> {
    fn skip_last(&self) -> bool {
        self.skip_last
    }

    fn loss(&self, pred: &Tensor) -> Result<(f32, Tensor)> {
        self.loss.compute(pred, self.target)
    }
}

/// The outcome of a step.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// The batch loss (before the update).
    pub loss: f32,
    /// The model's output (the last layer's input when the objective skips
    /// it), for metrics.
    pub pred: Tensor,
}

/// One optimisation step of `model` on the batch `x` (see the [module
/// docs](self)); `step` (1-based) names the step in a non-finite error.
///
/// The whole step runs on one worker of the thread pool
/// ([`in_pool`](crate::threads::in_pool)), so that its parallel regions (the
/// passes, the finite check, the update) start from a worker rather than
/// handing each over from the calling thread.
pub fn train_step(
    model: &mut Sequential,
    optimizer: &mut Optimizer,
    x: Tensor,
    objective: &dyn Objective,
    clip: Clip,
    step: u64,
) -> Result<StepOutput> {
    crate::threads::in_pool(|| step_here(model, optimizer, x, objective, clip, step))
}

/// [`train_step`] on the calling thread.
fn step_here(
    model: &mut Sequential,
    optimizer: &mut Optimizer,
    x: Tensor,
    objective: &dyn Objective,
    clip: Clip,
    step: u64,
) -> Result<StepOutput> {
    let skip = objective.skip_last();
    let pred = model.forward_head(x, true, skip)?;
    let (loss, d_pred) = objective.loss(&pred)?;
    if !loss.is_finite() {
        return Err(Error::NonFinite {
            step,
            message: format!("the loss is {loss}"),
        });
    }
    model.backward_head(d_pred, skip)?;
    if !model.grads_finite() {
        return Err(Error::NonFinite {
            step,
            message: format!("{} (loss {loss})", first_bad_grad(model)),
        });
    }
    let mut groups = model.params_mut();
    if let Some(c) = clip.value {
        clip_grad_value(&mut groups, c)?;
    }
    if let Some(c) = clip.norm {
        clip_grad_norm(&mut groups, c)?;
    }
    // Leaves the gradients zero for the next step.
    optimizer.step_and_zero_grad(&mut groups)?;
    Ok(StepOutput { loss, pred })
}

/// Names the first non-finite gradient as `gradient <layer>.<param>[index] = value`.
fn first_bad_grad(model: &Sequential) -> String {
    for l in model.layers() {
        for p in l.params() {
            for s in p.slots().iter().filter(|s| s.trainable) {
                if let Some((i, g)) = p.grads[s.range()]
                    .iter()
                    .enumerate()
                    .find(|(_, g)| !g.is_finite())
                {
                    return format!("gradient {}.{}[{i}] = {g}", l.name(), s.name);
                }
            }
        }
    }
    "a gradient".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Dense, DenseConfig};
    use crate::model::InputSpec;
    use crate::Rng;

    fn line_model() -> Sequential {
        let mut m = Sequential::new(
            "line",
            InputSpec {
                shape: vec![Some(2)],
                integer: false,
            },
        );
        let d = Dense::new("dense", 2, DenseConfig::new(1), &mut Rng::new(1)).unwrap();
        m.add(Box::new(d)).unwrap();
        m
    }

    fn grads(m: &Sequential) -> Vec<f32> {
        m.params().iter().flat_map(|p| p.grads.clone()).collect()
    }

    fn values(m: &Sequential) -> Vec<f32> {
        m.params().iter().flat_map(|p| p.values.clone()).collect()
    }

    #[test]
    fn a_step_matches_the_steps_written_out_and_leaves_zero_gradients() {
        let x = Tensor::from_vec(&[3, 2], vec![1.0, 2.0, -1.0, 0.5, 3.0, -2.0]).unwrap();
        let y = Tensor::from_vec(&[3, 1], vec![10.0, -4.0, 7.0]).unwrap();
        let clip = Clip {
            value: Some(3.0),
            norm: Some(2.0),
        };
        let mut m = line_model();
        let mut opt = Optimizer::parse("adam", 0.1).unwrap();
        m.zero_grad();
        let target = Targets::new(&m, Loss::MeanSquaredError, &y);
        let out = train_step(&mut m, &mut opt, x.clone(), &target, clip, 1).unwrap();
        assert!(grads(&m).iter().all(|&g| g == 0.0));

        let mut want = line_model();
        let mut opt2 = Optimizer::parse("adam", 0.1).unwrap();
        want.zero_grad();
        let pred = want.forward(x, true).unwrap();
        let (loss, d) = Loss::MeanSquaredError.compute(&pred, &y).unwrap();
        want.backward(d).unwrap();
        let mut g = want.params_mut();
        clip_grad_value(&mut g, 3.0).unwrap();
        clip_grad_norm(&mut g, 2.0).unwrap();
        opt2.step(&mut g).unwrap();
        assert_eq!(out.loss.to_bits(), loss.to_bits());
        assert_eq!(out.pred.data(), pred.data());
        assert_eq!(values(&m), values(&want));
    }

    #[test]
    fn non_finite_loss_or_gradient_stops_before_the_weights_change() {
        let x = Tensor::from_vec(&[1, 2], vec![1.0, f32::INFINITY]).unwrap();
        let mut m = line_model();
        let before = values(&m);
        let mut opt = Optimizer::parse("sgd", 0.1).unwrap();
        let nan_loss = |p: &Tensor| Ok((f32::NAN, p.clone()));
        let e = train_step(&mut m, &mut opt, x.clone(), &nan_loss, Clip::default(), 7);
        assert!(
            matches!(&e, Err(Error::NonFinite { step: 7, message }) if message.contains("NaN")),
            "{e:?}"
        );
        // A finite loss whose gradient meets the infinite input.
        let finite = |p: &Tensor| Ok((0.5, Tensor::from_vec(p.shape(), vec![1.0; p.len()])?));
        let e = train_step(&mut m, &mut opt, x, &finite, Clip::norm(1.0), 8);
        assert!(
            matches!(&e, Err(Error::NonFinite { step: 8, message })
                if message.contains("gradient dense.") && message.contains("(loss 0.5)")),
            "{e:?}"
        );
        assert_eq!(values(&m), before);
    }
}
