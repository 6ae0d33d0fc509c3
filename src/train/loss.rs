//! Losses with PyTorch's default `mean` reduction. Each returns the loss and
//! d(loss)/d(prediction), the tensor that starts the backward pass.
//!
//! Sums are accumulated in f64 and the results rounded to f32 once, so they
//! agree with PyTorch's f32 kernels to a few units in the last place.

use crate::{Error, Result, Tensor};

/// Floor on `p (1 - p)` in the gradient of [`bce_probs`], as PyTorch's `EPSILON`.
const BCE_EPS: f64 = 1e-12;
/// PyTorch's `BCELoss` clamps each log term at this value.
const LOG_FLOOR: f64 = -100.0;

/// A loss function, chosen by its Keras name.
///
/// Cross-entropies are fused with the final activation: categorical and sparse
/// categorical cross-entropy take logits (the softmax is applied inside, as
/// `torch.nn.CrossEntropyLoss` does), and binary cross-entropy takes logits when
/// `from_logits` is set and probabilities otherwise (Keras's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Binary cross-entropy (`binary_crossentropy`); see [`bce_logits`] and [`bce_probs`].
    BinaryCrossEntropy {
        /// The predictions are logits rather than probabilities.
        from_logits: bool,
    },
    /// Softmax cross-entropy against one-hot or probability targets; see [`categorical_ce`].
    CategoricalCrossEntropy,
    /// Softmax cross-entropy against integer class labels; see [`sparse_categorical_ce`].
    SparseCategoricalCrossEntropy,
    /// Mean squared error; see [`mse`].
    MeanSquaredError,
    /// Mean absolute error; see [`mae`].
    MeanAbsoluteError,
}

/// The names [`Loss::parse`] accepts.
pub const LOSS_NAMES: &[&str] = &[
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mse",
    "mean_squared_error",
    "mae",
    "mean_absolute_error",
];

impl Loss {
    /// The loss for a Keras name: `binary_crossentropy` (from probabilities;
    /// see [`Loss::with_from_logits`]), `categorical_crossentropy`,
    /// `sparse_categorical_crossentropy`, `mse`/`mean_squared_error`,
    /// `mae`/`mean_absolute_error`. Case is ignored.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "binary_crossentropy" => Loss::BinaryCrossEntropy { from_logits: false },
            "categorical_crossentropy" => Loss::CategoricalCrossEntropy,
            "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossEntropy,
            "mse" | "mean_squared_error" => Loss::MeanSquaredError,
            "mae" | "mean_absolute_error" => Loss::MeanAbsoluteError,
            _ => {
                return Err(Error::invalid(
                    "loss",
                    format!("unknown loss {name:?}; known: {}", LOSS_NAMES.join(", ")),
                ))
            }
        })
    }

    /// The same loss with binary cross-entropy reading logits (`true`) or
    /// probabilities (`false`). Other losses are returned unchanged.
    pub fn with_from_logits(self, from_logits: bool) -> Self {
        match self {
            Loss::BinaryCrossEntropy { .. } => Loss::BinaryCrossEntropy { from_logits },
            other => other,
        }
    }

    /// Whether the loss expects logits: true for the softmax cross-entropies and
    /// for binary cross-entropy with `from_logits`.
    pub fn from_logits(self) -> bool {
        match self {
            Loss::BinaryCrossEntropy { from_logits } => from_logits,
            Loss::CategoricalCrossEntropy | Loss::SparseCategoricalCrossEntropy => true,
            Loss::MeanSquaredError | Loss::MeanAbsoluteError => false,
        }
    }

    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            Loss::BinaryCrossEntropy { .. } => "binary_crossentropy",
            Loss::CategoricalCrossEntropy => "categorical_crossentropy",
            Loss::SparseCategoricalCrossEntropy => "sparse_categorical_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
        }
    }

    /// The mean loss of `pred` against `target` and d(loss)/d(pred).
    pub fn compute(self, pred: &Tensor, target: &Tensor) -> Result<(f32, Tensor)> {
        match self {
            Loss::BinaryCrossEntropy { from_logits: true } => bce_logits(pred, target),
            Loss::BinaryCrossEntropy { from_logits: false } => bce_probs(pred, target),
            Loss::CategoricalCrossEntropy => categorical_ce(pred, target),
            Loss::SparseCategoricalCrossEntropy => sparse_categorical_ce(pred, target),
            Loss::MeanSquaredError => mse(pred, target),
            Loss::MeanAbsoluteError => mae(pred, target),
        }
    }
}

/// Errors unless `pred` and `target` have the same shape and are not empty.
fn same_shape(loss: &str, pred: &Tensor, target: &Tensor) -> Result<()> {
    if pred.shape() != target.shape() {
        return Err(Error::shape(
            format!("{loss}: target must have the prediction's shape"),
            pred.shape(),
            target.shape(),
        ));
    }
    if pred.is_empty() {
        return Err(Error::invalid(
            loss,
            format!("empty prediction of shape {:?}", pred.shape()),
        ));
    }
    Ok(())
}

/// Applies `f(pred, target) -> (loss_i, dloss_i/dpred_i)` element-wise and
/// takes the mean.
fn elementwise(
    pred: &Tensor,
    target: &Tensor,
    f: impl Fn(f64, f64) -> (f64, f64),
) -> Result<(f32, Tensor)> {
    let n = pred.len() as f64;
    let mut sum = 0.0f64;
    let mut grad = Vec::with_capacity(pred.len());
    for (&p, &t) in pred.data().iter().zip(target.data()) {
        let (l, g) = f(p as f64, t as f64);
        sum += l;
        grad.push((g / n) as f32);
    }
    Ok(((sum / n) as f32, Tensor::from_vec(pred.shape(), grad)?))
}

/// Binary cross-entropy on logits, stable for any magnitude, as
/// `torch.nn.BCEWithLogitsLoss`: `max(x,0) - x*y + ln(1 + e^-|x|)`, mean over all
/// elements; the gradient is `(sigmoid(x) - y) / n`. Targets may be soft.
pub fn bce_logits(logits: &Tensor, target: &Tensor) -> Result<(f32, Tensor)> {
    same_shape("binary_crossentropy (from logits)", logits, target)?;
    elementwise(logits, target, |x, y| {
        let loss = x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
        let sig = if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        };
        (loss, sig - y)
    })
}

/// Binary cross-entropy on probabilities, as `torch.nn.BCELoss`: each log term is
/// clamped at -100, so a probability of exactly 0 or 1 gives a finite loss; the
/// gradient is `(p - y) / max(p (1 - p), 1e-12) / n`. Probabilities outside
/// [0, 1] are an error naming the value and its position.
pub fn bce_probs(probs: &Tensor, target: &Tensor) -> Result<(f32, Tensor)> {
    const NAME: &str = "binary_crossentropy";
    same_shape(NAME, probs, target)?;
    if let Some((i, p)) = probs
        .data()
        .iter()
        .enumerate()
        .find(|(_, p)| **p < 0.0 || **p > 1.0)
    {
        return Err(Error::invalid(
            NAME,
            format!(
                "prediction {p} at flat index {i} is not a probability in [0, 1] \
                 (pass logits with from_logits = true)"
            ),
        ));
    }
    elementwise(probs, target, |p, y| {
        let log_p = p.ln().max(LOG_FLOOR);
        let log_1mp = (-p).ln_1p().max(LOG_FLOOR);
        let loss = -(y * log_p + (1.0 - y) * log_1mp);
        let grad = (p - y) / (p * (1.0 - p)).max(BCE_EPS);
        (loss, grad)
    })
}

/// Mean squared error `mean((p - y)^2)`; gradient `2 (p - y) / n`.
pub fn mse(pred: &Tensor, target: &Tensor) -> Result<(f32, Tensor)> {
    same_shape("mean_squared_error", pred, target)?;
    elementwise(pred, target, |p, y| {
        let d = p - y;
        (d * d, 2.0 * d)
    })
}

/// Mean absolute error `mean(|p - y|)`; gradient `sign(p - y) / n`, zero where
/// `p == y` as in PyTorch.
pub fn mae(pred: &Tensor, target: &Tensor) -> Result<(f32, Tensor)> {
    same_shape("mean_absolute_error", pred, target)?;
    elementwise(pred, target, |p, y| {
        let d = p - y;
        let s = if d > 0.0 {
            1.0
        } else if d < 0.0 {
            -1.0
        } else {
            0.0
        };
        (d.abs(), s)
    })
}

/// Splits a logits shape `[.., C]` into (positions, C), erroring on rank 0 or C = 0.
fn class_dims(loss: &str, logits: &Tensor) -> Result<(usize, usize)> {
    let shape = logits.shape();
    let classes = match shape.last() {
        Some(&c) if shape.len() >= 2 && c > 0 => c,
        _ => {
            return Err(Error::shape(
                format!("{loss}: logits"),
                "[N, C] or [B, T, C] with C > 0",
                shape,
            ))
        }
    };
    let positions = logits.len() / classes;
    if positions == 0 {
        return Err(Error::invalid(
            loss,
            format!("empty logits of shape {shape:?}"),
        ));
    }
    Ok((positions, classes))
}

/// Natural log of the sum of exponentials of a row, computed stably in f64.
fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    if !max.is_finite() {
        return max;
    }
    let s: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    max + s.ln()
}

/// Softmax cross-entropy against one-hot or probability targets of the logits'
/// shape, as `torch.nn.CrossEntropyLoss` with probability targets:
/// `-sum_c y_c log softmax(x)_c`, mean over the positions (every index but the
/// last); gradient `(softmax(x) sum_c y_c - y) / positions`.
pub fn categorical_ce(logits: &Tensor, target: &Tensor) -> Result<(f32, Tensor)> {
    const NAME: &str = "categorical_crossentropy";
    let (positions, classes) = class_dims(NAME, logits)?;
    if logits.shape() != target.shape() {
        return Err(Error::shape(
            format!("{NAME}: one-hot or probability target must have the logits' shape"),
            logits.shape(),
            target.shape(),
        ));
    }
    let n = positions as f64;
    let mut sum = 0.0f64;
    let mut grad = vec![0.0f32; logits.len()];
    for ((x, y), g) in logits
        .data()
        .chunks_exact(classes)
        .zip(target.data().chunks_exact(classes))
        .zip(grad.chunks_exact_mut(classes))
    {
        let lse = log_sum_exp(x);
        let y_sum: f64 = y.iter().map(|&v| v as f64).sum();
        for c in 0..classes {
            let log_p = x[c] as f64 - lse;
            sum -= y[c] as f64 * log_p;
            g[c] = ((log_p.exp() * y_sum - y[c] as f64) / n) as f32;
        }
    }
    Ok(((sum / n) as f32, Tensor::from_vec(logits.shape(), grad)?))
}

/// Softmax cross-entropy against integer class labels, as
/// `torch.nn.CrossEntropyLoss` with class-index targets. `logits` is `[N, C]` or
/// `[B, T, C]` (any rank >= 2, classes last); `labels` holds one class index per
/// position, stored as an exact f32, with the logits' shape minus the last
/// dimension (a trailing dimension of 1 is also accepted, as Keras allows).
/// The loss is the mean over all N (or B*T) positions; the gradient is
/// `(softmax(x) - onehot(label)) / positions`. A label that is not an integer in
/// `0..C` is an error naming the label, its position and C.
pub fn sparse_categorical_ce(logits: &Tensor, labels: &Tensor) -> Result<(f32, Tensor)> {
    const NAME: &str = "sparse_categorical_crossentropy";
    let (positions, classes) = class_dims(NAME, logits)?;
    let lead = &logits.shape()[..logits.rank() - 1];
    let with_one: Vec<usize> = lead.iter().copied().chain([1]).collect();
    if labels.shape() != lead && labels.shape() != with_one.as_slice() {
        return Err(Error::shape(
            format!("{NAME}: labels must have the logits' shape without the class dimension"),
            lead,
            labels.shape(),
        ));
    }
    let ids = class_indices(NAME, labels, lead, classes)?;
    let n = positions as f64;
    let mut sum = 0.0f64;
    let mut grad = vec![0.0f32; logits.len()];
    let mut exps = Vec::with_capacity(classes);
    for ((x, &label), g) in logits
        .data()
        .chunks_exact(classes)
        .zip(&ids)
        .zip(grad.chunks_exact_mut(classes))
    {
        // One exponential per logit: softmax = exp(x - max) / their sum.
        let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        exps.clear();
        exps.extend(x.iter().map(|&v| (v as f64 - max).exp()));
        // A non-finite maximum (an infinite or NaN logit) is passed on as the
        // log-sum-exp, as `log_sum_exp` does.
        let (lse, total) = if max.is_finite() {
            let total: f64 = exps.iter().sum();
            (max + total.ln(), total)
        } else {
            (max, 1.0)
        };
        sum += lse - x[label] as f64;
        for (c, (g, &e)) in g.iter_mut().zip(&exps).enumerate() {
            let onehot = if c == label { 1.0 } else { 0.0 };
            *g = ((e / total - onehot) / n) as f32;
        }
    }
    Ok(((sum / n) as f32, Tensor::from_vec(logits.shape(), grad)?))
}

/// Reads labels stored as f32 into class indices, erroring on any value that is
/// not an integer in `0..classes`. `lead` is the shape of the positions, used to
/// name the position of a bad label.
pub(crate) fn class_indices(
    context: &str,
    labels: &Tensor,
    lead: &[usize],
    classes: usize,
) -> Result<Vec<usize>> {
    labels
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && v >= 0.0 && (v as f64) < classes as f64 {
                Ok(v as usize)
            } else {
                Err(Error::invalid(
                    context,
                    format!(
                        "label {v} at position {:?} is not a class index in 0..{classes} \
                         (C = {classes})",
                        unravel(i, lead)
                    ),
                ))
            }
        })
        .collect()
}

/// The multi-index of flat index `i` in a row-major `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            idx[k] = i % d;
            i /= d;
        }
    }
    idx
}

/// Softmax of one row in place, stable (the maximum is subtracted first).
/// A row with a non-finite maximum is filled with NaN.
pub fn softmax_row(row: &mut [f32]) {
    let lse = log_sum_exp(row);
    for v in row.iter_mut() {
        *v = (*v as f64 - lse).exp() as f32;
    }
}

/// Row-wise softmax over the last dimension of a tensor of rank >= 1, as used to
/// turn a model's logits into probabilities for prediction.
pub fn softmax(logits: &Tensor) -> Result<Tensor> {
    let classes = match logits.shape().last() {
        Some(&c) if c > 0 => c,
        _ => {
            return Err(Error::shape(
                "softmax: input",
                "a tensor with a non-empty last dimension",
                logits.shape(),
            ))
        }
    };
    let mut out = logits.clone();
    out.data_mut()
        .chunks_exact_mut(classes)
        .for_each(softmax_row);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }

    #[test]
    fn parse_names_and_unknown() {
        assert_eq!(Loss::parse("mse").unwrap(), Loss::MeanSquaredError);
        assert_eq!(
            Loss::parse("Mean_Absolute_Error").unwrap(),
            Loss::MeanAbsoluteError
        );
        let bce = Loss::parse("binary_crossentropy").unwrap();
        assert!(!bce.from_logits());
        assert!(bce.with_from_logits(true).from_logits());
        let err = Loss::parse("hinge").unwrap_err().to_string();
        assert!(err.contains("hinge") && err.contains("sparse_categorical_crossentropy"));
    }

    #[test]
    fn sparse_label_out_of_range_names_label_position_and_classes() {
        let logits = Tensor::zeros(&[2, 3, 4]);
        let labels = t(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 7.0, 0.0]);
        let err = sparse_categorical_ce(&logits, &labels)
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 7"), "{err}");
        assert!(err.contains("[1, 1]"), "{err}");
        assert!(err.contains("C = 4"), "{err}");
        let labels = t(&[2, 3], &[0.0, 1.5, 2.0, 3.0, 1.0, 0.0]);
        let err = sparse_categorical_ce(&logits, &labels)
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 1.5") && err.contains("[0, 1]"), "{err}");
        let labels = t(&[2, 3], &[0.0, -1.0, 2.0, 3.0, 1.0, 0.0]);
        assert!(sparse_categorical_ce(&logits, &labels).is_err());
    }

    #[test]
    fn sparse_accepts_trailing_one_and_rejects_bad_shapes() {
        let logits = t(&[2, 2], &[0.0, 0.0, 1.0, 1.0]);
        let (l, _) = sparse_categorical_ce(&logits, &t(&[2, 1], &[0.0, 1.0])).unwrap();
        assert!((l - std::f32::consts::LN_2).abs() < 1e-6);
        let err = sparse_categorical_ce(&logits, &t(&[3], &[0.0, 1.0, 0.0]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[2]") && err.contains("[3]"), "{err}");
    }

    #[test]
    fn shape_mismatch_names_both_shapes() {
        let err = mse(&Tensor::zeros(&[2, 3]), &Tensor::zeros(&[3, 2]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
        assert!(categorical_ce(&Tensor::zeros(&[2, 3]), &Tensor::zeros(&[2, 4])).is_err());
        assert!(mse(&Tensor::zeros(&[0]), &Tensor::zeros(&[0])).is_err());
    }

    #[test]
    fn bce_rejects_non_probabilities() {
        let err = bce_probs(&t(&[2], &[0.5, 1.5]), &t(&[2], &[0.0, 1.0]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1.5") && err.contains("index 1"), "{err}");
    }

    #[test]
    fn bce_logits_is_stable_for_huge_logits() {
        let (l, g) = bce_logits(&t(&[2], &[1000.0, -1000.0]), &t(&[2], &[0.0, 1.0])).unwrap();
        assert!((l - 1000.0).abs() < 1e-3);
        assert_eq!(g.data(), &[0.5, -0.5]);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let s = softmax(&t(&[2, 3], &[1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0])).unwrap();
        let d = s.data();
        assert!((d[0] + d[1] + d[2] - 1.0).abs() < 1e-6);
        assert!((d[2] - 0.665_240_96).abs() < 1e-6);
        assert!(d[3..].iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-6));
        assert!(softmax(&Tensor::zeros(&[2, 0])).is_err());
    }
}
