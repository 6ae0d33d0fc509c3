//! Helpers shared by `predict` and `eval`: loading a model, reading inputs,
//! batched inference.

use gated::io::npy::{decode_data, parse_header, Dtype};
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

/// Reads an .npy file, checking its dtype against the model's input: an int32
/// model takes integer (or bool) arrays only.
pub fn read_inputs(path: &Path, model: &Sequential) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let header = parse_header(&bytes, path)?;
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
    let x = decode_data(&header, &bytes[header.data_offset..], path)?;
    let want = model.input_shape_with_batch();
    let ok = x.rank() == want.len()
        && want
            .iter()
            .zip(x.shape())
            .all(|(w, &g)| w.is_none_or(|w| w == g));
    if !ok {
        return Err(Error::file(
            path,
            format!(
                "shape {:?}, but the model takes {} (batch first)",
                x.shape(),
                gated::model::format_shape(&want)
            ),
        ));
    }
    // An empty axis means no samples, or samples with no values (a valid
    // array like [2^40, 0, 1] would otherwise run 2^40 empty samples).
    if let Some(axis) = x.shape().iter().position(|&d| d == 0) {
        let what = if axis == 0 {
            "holds no samples".to_string()
        } else {
            format!("has an empty axis {axis}, so its samples hold no values")
        };
        return Err(Error::file(path, format!("shape {:?} {what}", x.shape())));
    }
    Ok(x)
}

/// Batched inference, shared with the Python binding.
pub use gated::model::predict_batched;
