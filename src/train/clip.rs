//! Gradient clipping over a model's trainable gradients, and a finiteness check.

use crate::{Error, Params, Result};

/// Calls `f` on the gradient of every trainable slot of every group.
fn for_trainable_grads(groups: &mut [&mut Params], mut f: impl FnMut(&mut [f32])) {
    for p in groups.iter_mut() {
        let ranges: Vec<_> = p
            .slots()
            .iter()
            .filter(|s| s.trainable)
            .map(|s| s.range())
            .collect();
        for r in ranges {
            f(&mut p.grads[r]);
        }
    }
}

/// Scales all trainable gradients so that their global L2 norm is at most
/// `max_norm`, exactly as `torch.nn.utils.clip_grad_norm_`: with `total` the
/// norm over every trainable gradient of every group, `coef = max_norm /
/// (total + 1e-6)`, and the gradients are multiplied by `coef` only when
/// `coef < 1`. This is the rule `Δw ← Δw · Δmax / |Δw|` for `|Δw| > Δmax`.
/// Returns the norm before clipping. When that norm is NaN or infinite the
/// gradients are left as they are (PyTorch would multiply them by NaN); check
/// the returned norm or [`grads_finite`]. Frozen slots are neither counted nor
/// changed.
/// `max_norm` must be finite and > 0.
pub fn clip_grad_norm(groups: &mut [&mut Params], max_norm: f32) -> Result<f32> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::invalid(
            "max_norm",
            format!("{max_norm} must be a finite value > 0"),
        ));
    }
    let mut sum_sq = 0.0f64;
    for_trainable_grads(groups, |g| {
        sum_sq += g.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
    });
    let total = sum_sq.sqrt() as f32;
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for_trainable_grads(groups, |g| g.iter_mut().for_each(|v| *v *= coef));
    }
    Ok(total)
}

/// Clamps every trainable gradient into `[-clip, clip]`, as
/// `torch.nn.utils.clip_grad_value_` (Keras's `clipvalue`). `clip` must be
/// finite and >= 0. NaN gradients stay NaN.
pub fn clip_grad_value(groups: &mut [&mut Params], clip: f32) -> Result<()> {
    if !(clip.is_finite() && clip >= 0.0) {
        return Err(Error::invalid(
            "clip value",
            format!("{clip} must be a finite value >= 0"),
        ));
    }
    for_trainable_grads(groups, |g| {
        g.iter_mut().for_each(|v| {
            if *v > clip {
                *v = clip;
            } else if *v < -clip {
                *v = -clip;
            }
        })
    });
    Ok(())
}

/// True when every trainable gradient is finite (no NaN or infinity).
pub fn grads_finite(groups: &[&mut Params]) -> bool {
    groups.iter().all(|p| p.grads_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(grads: &[f32], trainable: bool) -> Params {
        let mut p = Params::new();
        p.add("w", &[grads.len()]);
        p.grads.copy_from_slice(grads);
        p.set_trainable(trainable);
        p
    }

    #[test]
    fn norm_clips_trainable_only_and_returns_pre_clip_norm() {
        let mut a = group(&[3.0, 0.0], true);
        let mut b = group(&[0.0, 4.0], true);
        let mut f = group(&[100.0], false);
        let n = clip_grad_norm(&mut [&mut a, &mut f, &mut b], 1.0).unwrap();
        assert_eq!(n, 5.0);
        let c = 1.0 / (5.0 + 1e-6);
        assert_eq!(a.grads, vec![3.0 * c, 0.0]);
        assert_eq!(b.grads, vec![0.0, 4.0 * c]);
        assert_eq!(f.grads, vec![100.0]);
        // Under the limit: untouched.
        let n = clip_grad_norm(&mut [&mut a, &mut b], 10.0).unwrap();
        assert!((n - 1.0).abs() < 1e-6);
        assert_eq!(a.grads, vec![3.0 * c, 0.0]);
        assert!(clip_grad_norm(&mut [&mut a], 0.0).is_err());
        assert!(clip_grad_norm(&mut [&mut a], f32::NAN).is_err());
    }

    #[test]
    fn value_clamps_and_finite_check() {
        let mut a = group(&[3.0, -0.5, -7.0], true);
        let mut f = group(&[f32::NAN], false);
        clip_grad_value(&mut [&mut a, &mut f], 1.0).unwrap();
        assert_eq!(a.grads, vec![1.0, -0.5, -1.0]);
        assert!(f.grads[0].is_nan());
        assert!(grads_finite(&[&mut a, &mut f]));
        a.grads[1] = f32::INFINITY;
        assert!(!grads_finite(&[&mut a, &mut f]));
        assert!(clip_grad_value(&mut [&mut a], -1.0).is_err());
    }
}
