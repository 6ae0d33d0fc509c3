//! IDX files, the format of MNIST and Fashion-MNIST, plain or gzipped.
//!
//! Layout (big-endian): two zero bytes, a type byte (`0x08` u8, `0x09` i8,
//! `0x0B` i16, `0x0C` i32, `0x0D` f32, `0x0E` f64), the number of dimensions,
//! one u32 per dimension, then the data row-major. A file starting with the
//! gzip magic (`1f 8b`) is decompressed first; offsets in errors then count
//! bytes of the decompressed stream.
//!
//! The data size declared by the header is checked against what is there
//! before (for plain files) or while (for gzip) reading, and the buffer only
//! grows with bytes actually read, so a lying header cannot cause a large
//! allocation.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::{Error, Result, Tensor};

/// An IDX array converted to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// The type byte from the header (`0x08` for MNIST).
    pub dtype: u8,
    /// The values, with the header's shape.
    pub tensor: Tensor,
}

fn elem_size(dtype: u8) -> Option<usize> {
    match dtype {
        0x08 | 0x09 => Some(1),
        0x0B => Some(2),
        0x0C | 0x0D => Some(4),
        0x0E => Some(8),
        _ => None,
    }
}

/// Reads exactly `buf.len()` bytes at `offset` or reports truncation.
fn read_exact_at(
    r: &mut impl Read,
    buf: &mut [u8],
    offset: usize,
    path: &Path,
    what: &str,
) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(Error::file(
                    path,
                    format!(
                        "truncated {what}: file ends at byte offset {}, {} bytes needed from offset {offset}",
                        offset + got,
                        buf.len()
                    ),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::file(
                    path,
                    format!("cannot read at byte offset {}: {e}", offset + got),
                ))
            }
        }
    }
    Ok(())
}

/// Reads any IDX file (plain or gzipped) into an f32 tensor of its shape.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 2];
    let peek = {
        let buf = std::io::BufRead::fill_buf(&mut reader).map_err(|e| Error::io(path, e))?;
        let n = buf.len().min(2);
        magic[..n].copy_from_slice(&buf[..n]);
        n
    };
    if peek == 2 && magic == [0x1f, 0x8b] {
        read_idx_stream(GzDecoder::new(reader), None, path)
    } else {
        read_idx_stream(reader, Some(file_len), path)
    }
}

fn read_idx_stream(mut r: impl Read, file_len: Option<u64>, path: &Path) -> Result<IdxArray> {
    let mut head = [0u8; 4];
    read_exact_at(&mut r, &mut head, 0, path, "header")?;
    if head[0] != 0 || head[1] != 0 {
        return Err(Error::file(
            path,
            format!(
                "not an IDX file: bytes 0-1 are {:02x} {:02x}, expected 00 00",
                head[0], head[1]
            ),
        ));
    }
    let dtype = head[2];
    let size = elem_size(dtype).ok_or_else(|| {
        Error::file(
            path,
            format!("unknown IDX data type 0x{dtype:02x} at byte offset 2"),
        )
    })?;
    let ndims = head[3] as usize;
    if ndims == 0 {
        return Err(Error::file(
            path,
            "IDX header declares 0 dimensions at byte offset 3",
        ));
    }
    let mut dims_raw = vec![0u8; 4 * ndims];
    read_exact_at(&mut r, &mut dims_raw, 4, path, "header dimensions")?;
    let shape: Vec<usize> = dims_raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let data_offset = 4 + 4 * ndims;
    let data_len = shape
        .iter()
        .try_fold(size, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::file(
                path,
                format!(
                    "header dimensions at byte offset 4, {shape:?}, overflow the address space"
                ),
            )
        })?;
    if let Some(len) = file_len {
        let have = len.saturating_sub(data_offset as u64);
        if have != data_len as u64 {
            return Err(Error::file(
                path,
                format!(
                    "header (shape {shape:?}, {size}-byte values) declares {data_len} data bytes \
                     from byte offset {data_offset}, but the file holds {have} \
                     (it ends at byte offset {len})"
                ),
            ));
        }
    }
    // Grow only with bytes actually present; read one byte more to detect excess.
    let mut data = Vec::with_capacity(data_len.min(1 << 20));
    (&mut r)
        .take((data_len as u64).saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| {
            Error::file(
                path,
                format!("cannot read data after byte offset {data_offset}: {e}"),
            )
        })?;
    if data.len() != data_len {
        let end = data_offset + data.len();
        return Err(Error::file(
            path,
            if data.len() < data_len {
                format!(
                    "truncated data: header (shape {shape:?}) declares {data_len} bytes from byte \
                     offset {data_offset}, the data ends at byte offset {end}"
                )
            } else {
                format!(
                    "trailing bytes after byte offset {}: header (shape {shape:?}) declares \
                     {data_len} data bytes",
                    data_offset + data_len
                )
            },
        ));
    }
    let values: Vec<f32> = match dtype {
        0x08 => data.iter().map(|&b| b as f32).collect(),
        0x09 => data.iter().map(|&b| b as i8 as f32).collect(),
        0x0B => data
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]) as f32)
            .collect(),
        0x0C => data
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        0x0D => data
            .chunks_exact(4)
            .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => data
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
    };
    Ok(IdxArray {
        dtype,
        tensor: Tensor::from_vec(&shape, values)?,
    })
}

/// Reads an IDX image file (u8, 3 dimensions) as `[N, rows, cols]` scaled to
/// [0, 1] (divided by 255): each image is a `rows`-step sequence of `cols`
/// features, ready for an RNN.
pub fn load_idx_images(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let arr = read_idx(path)?;
    if arr.dtype != 0x08 || arr.tensor.rank() != 3 {
        return Err(Error::file(
            path,
            format!(
                "expected u8 images with 3 dimensions (type 0x08), got type 0x{:02x} with shape {:?}",
                arr.dtype,
                arr.tensor.shape()
            ),
        ));
    }
    let mut t = arr.tensor;
    t.data_mut().iter_mut().for_each(|v| *v /= 255.0);
    Ok(t)
}

/// Reads an IDX label file (1 dimension) as integer labels `[N]`.
pub fn load_idx_labels(path: impl AsRef<Path>) -> Result<Vec<i64>> {
    let path = path.as_ref();
    let arr = read_idx(path)?;
    if arr.tensor.rank() != 1 || !matches!(arr.dtype, 0x08 | 0x09 | 0x0B | 0x0C) {
        return Err(Error::file(
            path,
            format!(
                "expected integer labels with 1 dimension, got type 0x{:02x} with shape {:?}",
                arr.dtype,
                arr.tensor.shape()
            ),
        ));
    }
    Ok(arr.tensor.data().iter().map(|&v| v as i64).collect())
}

/// Reads an image file and its label file, checking they hold the same number
/// of samples: `([N, rows, cols] in [0, 1], labels [N])`.
pub fn load_idx_pair(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
) -> Result<(Tensor, Vec<i64>)> {
    let x = load_idx_images(images.as_ref())?;
    let y = load_idx_labels(labels.as_ref())?;
    if x.shape()[0] != y.len() {
        return Err(Error::file(
            labels.as_ref(),
            format!(
                "{} labels for {} images in {}",
                y.len(),
                x.shape()[0],
                images.as_ref().display()
            ),
        ));
    }
    Ok((x, y))
}
