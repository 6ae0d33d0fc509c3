//! Metrics: accuracies, perplexity, bits per character, mean absolute error.
//!
//! Predictions are `[N, C]` or `[B, T, C]` (classes last; any rank >= 2);
//! scores may be logits or probabilities, since only their order matters.

use super::loss::class_indices;
use crate::{Error, Result, Tensor};

/// Index of the largest score; the first one on ties (as `argmax` in PyTorch
/// and Keras). NaN scores are never chosen unless all are NaN.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || (row[best].is_nan() && !v.is_nan()) {
            best = i;
        }
    }
    best
}

/// (positions, classes) of a prediction `[.., C]`.
fn class_dims(context: &str, pred: &Tensor) -> Result<(usize, usize)> {
    match pred.shape().last() {
        Some(&c) if pred.rank() >= 2 && c > 0 && !pred.is_empty() => Ok((pred.len() / c, c)),
        _ => Err(Error::shape(
            format!("{context}: predictions"),
            "non-empty [N, C] or [B, T, C]",
            pred.shape(),
        )),
    }
}

/// Reads sparse labels for `pred` (shape of `pred` minus the class dimension,
/// or that with a trailing 1) into class indices.
fn sparse_labels(context: &str, pred: &Tensor, labels: &Tensor) -> Result<Vec<usize>> {
    let (_, classes) = class_dims(context, pred)?;
    let lead = &pred.shape()[..pred.rank() - 1];
    let with_one: Vec<usize> = lead.iter().copied().chain([1]).collect();
    if labels.shape() != lead && labels.shape() != with_one.as_slice() {
        return Err(Error::shape(
            format!("{context}: labels"),
            lead,
            labels.shape(),
        ));
    }
    class_indices(context, labels, lead, classes)
}

/// Fraction of positions whose argmax matches the target. The target is
/// either one-hot (or probabilities) of the prediction's shape, compared by
/// argmax (Keras's `categorical_accuracy`), or integer labels with the
/// prediction's shape minus the class dimension (`sparse_categorical_accuracy`).
pub fn accuracy(pred: &Tensor, target: &Tensor) -> Result<f32> {
    const NAME: &str = "accuracy";
    let (positions, classes) = class_dims(NAME, pred)?;
    let rows = pred.data().chunks_exact(classes);
    let correct = if target.shape() == pred.shape() {
        rows.zip(target.data().chunks_exact(classes))
            .filter(|(p, t)| argmax(p) == argmax(t))
            .count()
    } else {
        let labels = sparse_labels(NAME, pred, target)?;
        rows.zip(labels).filter(|(p, l)| argmax(p) == *l).count()
    };
    Ok(correct as f32 / positions as f32)
}

/// Fraction of positions whose label is among the `k` highest scores (Keras's
/// `sparse_top_k_categorical_accuracy`; ties straddling the boundary count as
/// inside, as `tf.math.in_top_k`). A non-finite score of the label is a miss.
pub fn top_k_accuracy(pred: &Tensor, labels: &Tensor, k: usize) -> Result<f32> {
    const NAME: &str = "top_k_accuracy";
    if k == 0 {
        return Err(Error::invalid("k", "0 must be at least 1"));
    }
    let (positions, classes) = class_dims(NAME, pred)?;
    let labels = sparse_labels(NAME, pred, labels)?;
    let hits = pred
        .data()
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, l)| {
            let s = row[*l];
            s.is_finite() && row.iter().filter(|&&v| v > s).count() < k
        })
        .count();
    Ok(hits as f32 / positions as f32)
}

/// Fraction of elements where the thresholded prediction equals the target
/// (targets > 0.5 count as 1). The threshold is 0.5 on probabilities or 0 on
/// logits (`from_logits`); a prediction is 1 when strictly above it, as Keras.
pub fn binary_accuracy(pred: &Tensor, target: &Tensor, from_logits: bool) -> Result<f32> {
    if pred.shape() != target.shape() || pred.is_empty() {
        return Err(Error::shape(
            "binary_accuracy: target must have the prediction's non-empty shape",
            pred.shape(),
            target.shape(),
        ));
    }
    let threshold = if from_logits { 0.0 } else { 0.5 };
    let correct = pred
        .data()
        .iter()
        .zip(target.data())
        .filter(|(&p, &t)| (p > threshold) == (t > 0.5))
        .count();
    Ok(correct as f32 / pred.len() as f32)
}

/// Mean absolute error `mean(|p - y|)`.
pub fn mae(pred: &Tensor, target: &Tensor) -> Result<f32> {
    if pred.shape() != target.shape() || pred.is_empty() {
        return Err(Error::shape(
            "mae: target must have the prediction's non-empty shape",
            pred.shape(),
            target.shape(),
        ));
    }
    let sum: f64 = pred
        .data()
        .iter()
        .zip(target.data())
        .map(|(&p, &y)| (p as f64 - y as f64).abs())
        .sum();
    Ok((sum / pred.len() as f64) as f32)
}

/// Perplexity from a mean cross-entropy in nats: `exp(mean_ce)`.
pub fn perplexity(mean_ce: f32) -> f32 {
    (mean_ce as f64).exp() as f32
}

/// Bits per character from a mean cross-entropy in nats: `mean_ce / ln 2`.
pub fn bits_per_char(mean_ce: f32) -> f32 {
    (mean_ce as f64 / std::f64::consts::LN_2) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }

    #[test]
    fn accuracy_sparse_and_one_hot() {
        let p = t(
            &[4, 3],
            &[
                0.1, 0.7, 0.2, //
                0.5, 0.3, 0.2, //
                0.2, 0.2, 0.6, //
                0.4, 0.4, 0.2, // tie -> class 0
            ],
        );
        let labels = t(&[4], &[1.0, 1.0, 2.0, 0.0]);
        assert_eq!(accuracy(&p, &labels).unwrap(), 0.75);
        assert_eq!(
            accuracy(&p, &t(&[4, 1], &[1.0, 1.0, 2.0, 1.0])).unwrap(),
            0.5
        );
        let onehot = t(
            &[4, 3],
            &[
                0.0, 1.0, 0.0, //
                1.0, 0.0, 0.0, //
                0.0, 1.0, 0.0, //
                1.0, 0.0, 0.0,
            ],
        );
        assert_eq!(accuracy(&p, &onehot).unwrap(), 0.75);
        let err = accuracy(&p, &t(&[4], &[1.0, 1.0, 3.0, 0.0]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 3") && err.contains("[2]"), "{err}");
        assert!(accuracy(&p, &t(&[3], &[1.0, 1.0, 2.0])).is_err());
    }

    #[test]
    fn accuracy_on_sequences() {
        // [B=1, T=2, C=2]
        let p = t(&[1, 2, 2], &[1.0, 0.0, 0.0, 1.0]);
        assert_eq!(accuracy(&p, &t(&[1, 2], &[0.0, 0.0])).unwrap(), 0.5);
    }

    #[test]
    fn top_k() {
        let p = t(
            &[3, 4],
            &[
                0.1, 0.2, 0.3, 0.4, //
                0.4, 0.3, 0.2, 0.1, //
                0.25, 0.25, 0.25, 0.25,
            ],
        );
        let labels = t(&[3], &[1.0, 1.0, 3.0]);
        assert!((top_k_accuracy(&p, &labels, 1).unwrap() - 1.0 / 3.0).abs() < 1e-6);
        assert!((top_k_accuracy(&p, &labels, 2).unwrap() - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(top_k_accuracy(&p, &labels, 3).unwrap(), 1.0);
        assert!(top_k_accuracy(&p, &labels, 0).is_err());
    }

    #[test]
    fn binary() {
        let probs = t(&[4], &[0.9, 0.5, 0.2, 0.7]);
        let y = t(&[4], &[1.0, 1.0, 0.0, 0.0]);
        assert_eq!(binary_accuracy(&probs, &y, false).unwrap(), 0.5);
        let logits = t(&[4], &[2.0, 0.0, -1.0, -0.1]);
        assert_eq!(binary_accuracy(&logits, &y, true).unwrap(), 0.75);
        assert_eq!(
            binary_accuracy(&logits, &t(&[4], &[1.0, 0.0, 0.0, 0.0]), true).unwrap(),
            1.0
        );
        assert!(binary_accuracy(&logits, &t(&[2], &[1.0, 0.0]), true).is_err());
    }

    #[test]
    fn perplexity_bpc_mae() {
        let ce = (4.0f32).ln();
        assert!((perplexity(ce) - 4.0).abs() < 1e-5);
        assert!((bits_per_char(ce) - 2.0).abs() < 1e-6);
        assert_eq!(bits_per_char(0.0), 0.0);
        let m = mae(
            &t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]),
            &t(&[2, 2], &[0.0, 2.0, 5.0, 3.0]),
        )
        .unwrap();
        assert_eq!(m, 1.0);
    }

    #[test]
    fn argmax_ties_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.0, 1.0]), 2);
        assert_eq!(argmax(&[0.0, f32::NAN, 1.0]), 2);
    }
}
