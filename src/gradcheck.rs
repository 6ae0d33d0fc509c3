//! Finite-difference gradient checking, used by every layer's tests.
//!
//! The loss is `sum(output * upstream)` for a fixed random `upstream`, so the
//! analytic gradient is whatever the backward pass returns for `upstream`.
//! Central differences in f32 are noisy, so tolerances are loose; exact
//! agreement is the job of the PyTorch parity tests.

/// Central-difference estimate of d(loss)/d(values) for every element that
/// `values` exposes. `loss` re-runs the model on the current state.
pub fn numeric_grad<S>(
    state: &mut S,
    values: impl Fn(&mut S) -> &mut [f32],
    mut loss: impl FnMut(&mut S) -> f64,
    eps: f32,
) -> Vec<f64> {
    let n = values(state).len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let orig = values(state)[i];
        values(state)[i] = orig + eps;
        let plus = loss(state);
        values(state)[i] = orig - eps;
        let minus = loss(state);
        values(state)[i] = orig;
        out.push((plus - minus) / (2.0 * eps as f64));
    }
    out
}

/// `sum(a * b)` in f64.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Errors with the worst offending index unless every analytic value is within
/// `atol + rtol * |numeric|` of the numeric one.
pub fn compare(
    what: &str,
    analytic: &[f32],
    numeric: &[f64],
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    if analytic.len() != numeric.len() {
        return Err(format!(
            "{what}: {} analytic vs {} numeric values",
            analytic.len(),
            numeric.len()
        ));
    }
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
        let excess = (a as f64 - n).abs() - (atol + rtol * n.abs());
        if excess > 0.0 && worst.is_none_or(|(_, w)| excess > w) {
            worst = Some((i, excess));
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _)) => Err(format!(
            "{what}[{i}]: analytic {} vs numeric {} (atol {atol}, rtol {rtol})",
            analytic[i], numeric[i]
        )),
    }
}

/// Default tolerances for f32 central differences with `EPS`.
pub const EPS: f32 = 5e-3;
/// Absolute tolerance paired with [`EPS`].
pub const ATOL: f64 = 2e-3;
/// Relative tolerance paired with [`EPS`].
pub const RTOL: f64 = 2e-2;
