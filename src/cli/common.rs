//! Helpers shared by `predict` and `eval`: loading a model, reading inputs
//! in batches, batched inference.

use gated::io::npy::Dtype;
use gated::io::npy_stream::NpyReader;
use gated::model::dir::{load_model_dir, load_spec_text};
use gated::model::spec::load_spec;
use gated::model::{load_weights, Sequential};
use gated::{Error, Result, Tensor};
use std::path::Path;

/// A model directory, or (with `weights`) a directory or spec file plus a
/// safetensors state dict.
pub fn load_model(model: &Path, weights: Option<&Path>) -> Result<Sequential> {
    match weights {
        None => Ok(load_model_dir(model)?.model),
        Some(w) => {
            let mut m = if model.is_dir() {
                load_spec_text(model)?.0
            } else {
                load_spec(model, 0)?.model
            };
            load_weights(&mut m, w)?;
            Ok(m)
        }
    }
}

/// Opens an .npy file of inputs for reading in batches, checking from its
/// header (before any data is read) its dtype against the model's input (an
/// int32 model takes integer arrays only), its shape, and that it holds
/// values.
pub fn open_inputs(path: &Path, model: &Sequential) -> Result<NpyReader> {
    let x = NpyReader::open(path)?;
    let header = x.header();
    if model.input().integer && !matches!(header.dtype, Dtype::Int(_) | Dtype::UInt(_)) {
        return Err(Error::file(
            path,
            format!(
                "dtype '{}', but the model takes integer token ids ([input] dtype = \"int32\"); \
                 save them with x.astype(np.int32)",
                header.descr
            ),
        ));
    }
    let shape = x.shape();
    let want = model.input_shape_with_batch();
    let ok = shape.len() == want.len()
        && want
            .iter()
            .zip(shape)
            .all(|(w, &g)| w.is_none_or(|w| w == g));
    if !ok {
        return Err(Error::file(
            path,
            format!(
                "shape {shape:?}, but the model takes {} (batch first)",
                gated::model::format_shape(&want)
            ),
        ));
    }
    // An empty axis means no samples, or samples with no values (a valid
    // array like [2^40, 0, 1] would otherwise run 2^40 empty samples).
    if let Some(axis) = shape.iter().position(|&d| d == 0) {
        let what = if axis == 0 {
            "holds no samples".to_string()
        } else {
            format!("has an empty axis {axis}, so its samples hold no values")
        };
        return Err(Error::file(path, format!("shape {shape:?} {what}")));
    }
    Ok(x)
}

/// Runs the model over the inputs `x`, `batch_size` samples at a time
/// (inference mode), reading each batch from the file just before it runs
/// and handing its outputs to `each` with the index of its first sample, so
/// that memory does not grow with the number of samples. Every batch's
/// outputs must have the shape of the first's past the batch axis.
pub fn for_each_batch(
    model: &mut Sequential,
    x: &mut NpyReader,
    batch_size: usize,
    x_path: &Path,
    mut each: impl FnMut(usize, &Tensor) -> Result<()>,
) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::invalid("--batch-size", "must be at least 1"));
    }
    let n = x.rows();
    model.reset_states();
    let mut tail: Option<Vec<usize>> = None;
    for start in (0..n).step_by(batch_size) {
        let b = batch_size.min(n - start);
        let at = |e: Error| Error::file(x_path, format!("samples {start}..{}: {e}", start + b));
        let chunk = x.read_rows(b)?;
        let y = model.forward(chunk, false).map_err(at)?;
        let this = y.shape().get(1..).unwrap_or(&[]);
        match &tail {
            Some(t) if t.as_slice() != this => {
                return Err(at(Error::invalid(
                    "outputs",
                    format!("shape {this:?} per sample, earlier batches gave {t:?}"),
                )))
            }
            Some(_) => {}
            None => tail = Some(this.to_vec()),
        }
        each(start, &y)?;
    }
    Ok(())
}

/// Runs the model over all of `x` (see [`for_each_batch`]) and returns the
/// outputs, `[N, ...]`.
pub fn predict_all(
    model: &mut Sequential,
    x: &mut NpyReader,
    batch_size: usize,
    x_path: &Path,
) -> Result<Tensor> {
    let n = x.rows();
    let mut out: Vec<f32> = Vec::new();
    let mut tail = Vec::new();
    for_each_batch(model, x, batch_size, x_path, |_, y| {
        tail = y.shape().get(1..).unwrap_or(&[]).to_vec();
        out.try_reserve(y.len()).map_err(|_| {
            Error::invalid(
                "outputs",
                format!("not enough memory to hold the outputs of {n} samples"),
            )
        })?;
        out.extend_from_slice(y.data());
        Ok(())
    })?;
    let mut shape = vec![n];
    shape.extend(tail);
    Tensor::from_vec(&shape, out)
}
