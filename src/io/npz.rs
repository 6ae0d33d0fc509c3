//! NumPy `.npz` archives: a zip of `.npy` members, stored or deflated.
//!
//! Numeric members are read as f32 [`Tensor`]s (see [`crate::io::npy`]);
//! object arrays of int lists — how Keras caches `imdb.npz` and
//! `reuters.npz` — are unpickled by the restricted reader in
//! [`crate::io::pickle`] into [`NpzArray::Sequences`].

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::io::atomic::write_atomic_with;
use crate::io::npy::{self, Dtype};
use crate::io::pickle::unpickle_int_sequences;
use crate::{Error, Result, Tensor};

/// One member of an `.npz` archive.
#[derive(Debug, Clone, PartialEq)]
pub enum NpzArray {
    /// A numeric array, converted to f32.
    Tensor(Tensor),
    /// An object array of integer lists (one `Vec` per row), as in Keras's
    /// `imdb.npz` `x_train`.
    Sequences(Vec<Vec<i64>>),
}

impl NpzArray {
    /// The tensor, if this member is numeric.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            NpzArray::Tensor(t) => Some(t),
            NpzArray::Sequences(_) => None,
        }
    }

    /// The sequences, if this member is an object array of int lists.
    pub fn as_sequences(&self) -> Option<&[Vec<i64>]> {
        match self {
            NpzArray::Tensor(_) => None,
            NpzArray::Sequences(s) => Some(s),
        }
    }
}

/// Reads every member of an `.npz` archive, in archive order, named without
/// the `.npy` suffix (as `np.load` names them).
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, NpzArray)>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = ZipArchive::new(file)
        .map_err(|e| Error::file(path, format!("not a readable .npz (zip) archive: {e}")))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| Error::file(path, format!("zip member {i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let full = entry
            .name()
            .map_err(|e| Error::file(path, format!("zip member {i} has a bad name: {e}")))?
            .to_string();
        let name = full.strip_suffix(".npy").unwrap_or(&full).to_string();
        let member = path.join(&full);
        let declared = entry.size();
        // Never trust the declared size for the allocation; read at most one
        // byte more than it, which also detects a member that lies.
        let mut bytes = Vec::with_capacity(declared.min(1 << 26) as usize);
        (&mut entry)
            .take(declared.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::file(&member, format!("cannot read member: {e}")))?;
        if bytes.len() as u64 != declared {
            return Err(Error::file(
                &member,
                format!(
                    "member holds {} bytes, the archive declares {declared}",
                    bytes.len()
                ),
            ));
        }
        out.push((name, decode_member(&bytes, &member)?));
    }
    Ok(out)
}

/// Decodes the bytes of one `.npy` member; `member` (archive path joined with
/// the member name) names it in errors.
fn decode_member(bytes: &[u8], member: &Path) -> Result<NpzArray> {
    let header = npy::parse_header(bytes, member)?;
    let data = &bytes[header.data_offset..];
    if header.dtype == Dtype::Object {
        let rows = unpickle_int_sequences(data, header.data_offset, member)?;
        let n = npy::element_count(&header.shape, member)?;
        let matches = match header.shape.as_slice() {
            [_] => rows.len() == n,
            [r, _] => rows.len() == *r,
            _ => false,
        };
        if !matches {
            return Err(Error::file(
                member,
                format!(
                    "header shape {:?} disagrees with the pickled array ({} rows)",
                    header.shape,
                    rows.len()
                ),
            ));
        }
        return Ok(NpzArray::Sequences(rows));
    }
    Ok(NpzArray::Tensor(npy::decode_data(&header, data, member)?))
}

/// Writes named tensors to an uncompressed `.npz` (each as an `<f4` member
/// `name.npy`), atomically. Names must be unique and non-empty.
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(&str, &Tensor)]) -> Result<()> {
    let path = path.as_ref();
    for (i, (name, _)) in arrays.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::invalid("npz member name", "empty name"));
        }
        if arrays[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::invalid(
                "npz member name",
                format!("'{name}' appears twice"),
            ));
        }
    }
    write_atomic_with(path, |w| {
        let zerr = |e: zip::result::ZipError| Error::file(path, format!("writing zip: {e}"));
        let mut zip = ZipWriter::new(w);
        for (name, tensor) in arrays {
            let bytes = npy::encode_npy(tensor);
            let opts = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .large_file(bytes.len() as u64 >= u32::MAX as u64);
            zip.start_file(format!("{name}.npy"), opts).map_err(zerr)?;
            zip.write_all(&bytes).map_err(|e| Error::io(path, e))?;
        }
        zip.finish().map_err(zerr)?;
        Ok(())
    })
}
