//! Named tensors in `.safetensors` files, the format PyTorch state dicts are
//! exchanged in. Saving writes F32; loading converts F32, F64, F16 and BF16
//! to f32.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::io::atomic::write_atomic;
use crate::io::npy::{bf16_to_f32, f16_to_f32};
use crate::{Error, Result, Tensor};

/// Tensors with their names, as loaded.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Saves named tensors as F32 to `path`, atomically. Names must be unique.
pub fn save_safetensors(path: impl AsRef<Path>, tensors: &[(&str, &Tensor)]) -> Result<()> {
    save_safetensors_with_metadata(path, tensors, &HashMap::new())
}

/// Like [`save_safetensors`], also storing `metadata` as the header's
/// `__metadata__` string map (omitted when empty).
pub fn save_safetensors_with_metadata(
    path: impl AsRef<Path>,
    tensors: &[(&str, &Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (i, (name, t)) in tensors.iter().enumerate() {
        if tensors[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::invalid(
                "safetensors tensor name",
                format!("'{name}' appears twice"),
            ));
        }
        let mut bytes = Vec::with_capacity(t.len() * 4);
        for v in t.data() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        buffers.push((name.to_string(), t.shape().to_vec(), bytes));
    }
    let mut views = Vec::with_capacity(buffers.len());
    for (name, shape, bytes) in &buffers {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| Error::file(path, format!("tensor '{name}': {e:?}")))?;
        views.push((name.as_str(), view));
    }
    let meta = (!metadata.is_empty()).then(|| metadata.clone());
    let bytes = safetensors::serialize(views, &meta)
        .map_err(|e| Error::file(path, format!("cannot serialise: {e:?}")))?;
    write_atomic(path, &bytes)
}

/// Loads every tensor of a `.safetensors` file as f32, sorted by name.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<NamedTensors> {
    Ok(load_safetensors_with_metadata(path)?.0)
}

/// Like [`load_safetensors`], also returning the header's `__metadata__`
/// string map (empty when absent).
pub fn load_safetensors_with_metadata(
    path: impl AsRef<Path>,
) -> Result<(NamedTensors, HashMap<String, String>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_safetensors(&bytes, path)
}

/// Decodes the bytes of a `.safetensors` file (as [`load_safetensors_with_metadata`]);
/// `path` names it in errors.
pub fn decode_safetensors(
    bytes: &[u8],
    path: &Path,
) -> Result<(NamedTensors, HashMap<String, String>)> {
    let bad = |e: safetensors::SafeTensorError| {
        Error::file(path, format!("not a valid .safetensors file: {e:?}"))
    };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    f64::from_le_bytes(b) as f32
                })
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            other => {
                return Err(Error::file(
                    path,
                    format!(
                        "tensor '{name}' has dtype {other:?}; only F32, F64, F16 and BF16 are read"
                    ),
                ))
            }
        };
        let t = Tensor::from_vec(view.shape(), values)
            .map_err(|e| Error::file(path, format!("tensor '{name}': {e}")))?;
        out.push((name, t));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let metadata = meta.metadata().clone().unwrap_or_default();
    Ok((out, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_bytes_never_panic() {
        let t = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let dir = std::env::temp_dir().join(format!("gated-st-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("w.safetensors");
        save_safetensors(&p, &[("a", &t)]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        for n in 0..bytes.len() {
            let e = decode_safetensors(&bytes[..n], Path::new("w.safetensors"));
            assert!(e.is_err(), "prefix {n}");
        }
        for i in 0..bytes.len() {
            let mut c = bytes.clone();
            c[i] ^= 0xa5;
            let _ = decode_safetensors(&c, Path::new("w.safetensors"));
        }
    }
}
