//! Checks of the values of training data before the first step, so that a bad
//! label is reported by its sample index when the data is read, not by its
//! position in a shuffled batch when (and if) that batch runs.

use super::Loss;
use crate::{Error, Result, Tensor};

/// Sample index and the position inside the sample of flat index `i` of `t`.
fn locate(t: &Tensor, i: usize) -> String {
    let per = t.shape()[1..].iter().product::<usize>().max(1);
    let (sample, within) = (i / per, i % per);
    if per == 1 {
        format!("sample {sample}")
    } else {
        format!("sample {sample} (value {within} of its {per})")
    }
}

/// Every input value is finite (a NaN in x makes every loss NaN).
pub fn check_inputs_finite(x: &Tensor) -> Result<()> {
    match x.data().iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::invalid(
            "x",
            format!("{} is {}; inputs must be finite", locate(x, i), x.data()[i]),
        )),
    }
}

/// The targets suit `loss`: class ids in `0..classes` for
/// sparse_categorical_crossentropy, values in [0, 1] for the binary and
/// categorical cross-entropies, finite values everywhere.
pub fn check_targets(y: &Tensor, loss: Loss, classes: Option<usize>) -> Result<()> {
    let bad = |i: usize, what: String| {
        Err(Error::invalid(
            "y",
            format!("{} is {}: {what}", locate(y, i), y.data()[i]),
        ))
    };
    for (i, &v) in y.data().iter().enumerate() {
        if !v.is_finite() {
            return bad(i, "targets must be finite".into());
        }
        match loss {
            Loss::SparseCategoricalCrossEntropy => {
                let in_range = classes.is_none_or(|c| (v as usize) < c);
                if v < 0.0 || v.fract() != 0.0 || !in_range {
                    let range = classes.map_or(String::new(), |c| format!(" in 0..{c}"));
                    return bad(
                        i,
                        format!(
                            "sparse_categorical_crossentropy needs integer class ids{range} \
                             (the model's last layer has that many units)"
                        ),
                    );
                }
            }
            Loss::BinaryCrossEntropy { .. } | Loss::CategoricalCrossEntropy
                if !(0.0..=1.0).contains(&v) =>
            {
                return bad(i, format!("{} needs targets in [0, 1]", loss.name()));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }

    #[test]
    fn bad_labels_are_named_by_sample_index() {
        let sparse = Loss::SparseCategoricalCrossEntropy;
        check_targets(&t(&[3], &[0.0, 2.0, 1.0]), sparse, Some(3)).unwrap();
        let e = check_targets(&t(&[3], &[0.0, 3.0, 1.0]), sparse, Some(3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sample 1 is 3") && e.contains("0..3"), "{e}");
        let e = check_targets(&t(&[2, 2], &[0.0, 1.0, 1.5, 0.0]), sparse, Some(3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sample 1 (value 0 of its 2) is 1.5"), "{e}");
        let bce = Loss::BinaryCrossEntropy { from_logits: false };
        let e = check_targets(&t(&[2], &[1.0, 2.0]), bce, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sample 1 is 2") && e.contains("[0, 1]"), "{e}");
        let e = check_targets(&t(&[2], &[1.0, f32::NAN]), Loss::MeanSquaredError, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sample 1 is NaN"), "{e}");
        let e = check_inputs_finite(&t(&[2, 2], &[0.0, 1.0, f32::INFINITY, 0.0]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sample 1 (value 0 of its 2) is inf"), "{e}");
    }
}
