//! Inference over many samples in batches (`gated predict`, the Python
//! binding's `predict`).

use std::path::Path;

use super::Sequential;
use crate::{Error, Result, Tensor};

/// Runs the model over `x` in batches of `batch_size` along the first axis
/// (inference mode) and concatenates the outputs.
pub fn predict_batched(
    model: &mut Sequential,
    x: &Tensor,
    batch_size: usize,
    x_path: &Path,
) -> Result<Tensor> {
    if batch_size == 0 {
        return Err(Error::invalid("--batch-size", "must be at least 1"));
    }
    let n = x.shape().first().copied().unwrap_or(0);
    if n == 0 {
        return Err(Error::file(
            x_path,
            "holds no samples (first dimension is 0)",
        ));
    }
    let per_sample = x.len() / n;
    model.reset_states();
    let mut out: Vec<f32> = Vec::new();
    let mut out_tail: Option<Vec<usize>> = None;
    for start in (0..n).step_by(batch_size) {
        let b = batch_size.min(n - start);
        let mut shape = x.shape().to_vec();
        shape[0] = b;
        let chunk = Tensor::from_vec(
            &shape,
            x.data()[start * per_sample..(start + b) * per_sample].to_vec(),
        )?;
        let y = model
            .forward(chunk, false)
            .map_err(|e| Error::file(x_path, format!("samples {start}..{}: {e}", start + b)))?;
        out_tail.get_or_insert_with(|| y.shape().get(1..).unwrap_or(&[]).to_vec());
        out.extend_from_slice(y.data());
    }
    let mut shape = vec![n];
    shape.extend(out_tail.unwrap_or_default());
    Tensor::from_vec(&shape, out)
}
