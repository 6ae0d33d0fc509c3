//! `.npy` data read from a stream in pieces: the header first, then as many
//! elements as asked for, so that neither a large input (`gated predict`
//! reads one batch at a time) nor a compressed `.npz` member costs more
//! memory than the elements kept, and nothing is read before the header has
//! been checked; and f32 data written the same way.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::io::npy::{alloc_f32, convert_into, data_size, parse_header, NpyHeader};
use crate::{Error, Result, Tensor};

/// The longest header read (NumPy itself refuses headers over 10,000 bytes
/// unless told otherwise): a length field that claims more is refused before
/// the bytes are read.
pub const MAX_HEADER: usize = 1 << 20;

/// Bytes read (and converted) at a time.
const CHUNK: usize = 1 << 20;

/// Reads and checks the header at the start of `r`, leaving `r` at the first
/// data byte. Errors are those of [`parse_header`] (truncation included).
pub fn read_header(r: &mut impl Read, path: &Path) -> Result<NpyHeader> {
    let mut buf = Vec::with_capacity(16);
    read_up_to(r, 10, &mut buf, path)?;
    if buf.len() >= 8 && buf[6] >= 2 {
        read_up_to(r, 2, &mut buf, path)?;
    }
    let header_len = match buf.len() {
        10 => u16::from_le_bytes([buf[8], buf[9]]) as usize,
        12 => u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize,
        // Too short to hold a length: parse_header names what is missing.
        _ => 0,
    };
    if header_len > MAX_HEADER {
        return Err(Error::file(
            path,
            format!(
                "the header length field at byte 8 claims {header_len} bytes; more than \
                 {MAX_HEADER} is not an .npy header"
            ),
        ));
    }
    read_up_to(r, header_len, &mut buf, path)?;
    parse_header(&buf, path)
}

/// Appends up to `n` more bytes of `r` to `buf` (fewer at end of file).
fn read_up_to(r: &mut impl Read, n: usize, buf: &mut Vec<u8>, path: &Path) -> Result<()> {
    r.take(n as u64)
        .read_to_end(buf)
        .map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// Reads `count` elements (element `first` onwards) of the array `header`
/// describes from `r`, converting them to f32 and appending them to `out`.
/// Running out of data is an error naming the byte where it ended.
pub fn read_elements(
    r: &mut impl Read,
    header: &NpyHeader,
    first: usize,
    count: usize,
    out: &mut Vec<f32>,
    path: &Path,
) -> Result<()> {
    let size = header.dtype.size().max(1);
    let per_chunk = (CHUNK / size).max(1);
    let mut buf = vec![0u8; per_chunk.min(count) * size];
    let mut done = 0;
    while done < count {
        let k = per_chunk.min(count - done);
        let bytes = &mut buf[..k * size];
        if let Err(e) = r.read_exact(bytes) {
            let at = header.data_offset + (first + done) * size;
            return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::file(
                    path,
                    format!(
                        "data ends before byte {}: shape {:?} of '{}' needs more",
                        at + k * size,
                        header.shape,
                        header.descr
                    ),
                )
            } else {
                Error::io(path, e)
            });
        }
        convert_into(header, bytes, first + done, out, path)?;
        done += k;
    }
    Ok(())
}

/// Writes `data` as little-endian f32 (an `<f4` array's data), a piece at a
/// time, without a byte copy of the whole.
pub fn write_f32_le(w: &mut impl Write, data: &[f32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK.min(data.len() * 4));
    for piece in data.chunks(CHUNK / 4) {
        buf.clear();
        buf.extend(piece.iter().flat_map(|v| v.to_le_bytes()));
        w.write_all(&buf)?;
    }
    Ok(())
}

/// An `.npy` file read one group of rows (samples along the first axis) at a
/// time. Opening checks the header and that the file holds exactly the data
/// it declares, so a truncated file fails before any work.
#[derive(Debug)]
pub struct NpyReader {
    file: File,
    header: NpyHeader,
    path: PathBuf,
    /// Elements per row (the product of the shape after the first axis).
    row_len: usize,
    /// Rows read so far.
    next: usize,
}

impl NpyReader {
    /// Opens `path` and reads its header.
    pub fn open(path: impl AsRef<Path>) -> Result<NpyReader> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::file(path, "is a directory, not an .npy file"));
        }
        let header = read_header(&mut file, path)?;
        let (_, need) = data_size(&header, path)?;
        if meta.is_file() {
            let have = meta.len().saturating_sub(header.data_offset as u64);
            if have != need as u64 {
                return Err(Error::file(
                    path,
                    format!(
                        "data length mismatch at byte {}: shape {:?} of '{}' needs {need} bytes, the file has {have}",
                        header.data_offset, header.shape, header.descr
                    ),
                ));
            }
        }
        let row_len = header.shape.get(1..).unwrap_or(&[]).iter().product();
        Ok(NpyReader {
            file,
            header,
            path: path.to_path_buf(),
            row_len,
            next: 0,
        })
    }

    /// The checked header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        &self.header.shape
    }

    /// Rows along the first axis (1 for a 0-d array).
    pub fn rows(&self) -> usize {
        self.header.shape.first().copied().unwrap_or(1)
    }

    /// The next `k` rows (fewer at the end; none once all were read) as a
    /// tensor `[k, ...]`.
    pub fn read_rows(&mut self, k: usize) -> Result<Tensor> {
        let k = k.min(self.rows() - self.next);
        let n = k.saturating_mul(self.row_len);
        let mut out = alloc_f32(n, &self.header, &self.path)?;
        let first = self.next * self.row_len;
        read_elements(&mut self.file, &self.header, first, n, &mut out, &self.path)?;
        self.next += k;
        let mut shape = self.header.shape.clone();
        match shape.first_mut() {
            Some(d) => *d = k,
            None => shape = vec![],
        }
        Tensor::from_vec(&shape, out)
    }

    /// The whole array (what is left of it, if rows were read).
    pub fn read_all(mut self) -> Result<Tensor> {
        if self.header.shape.is_empty() {
            let mut out = alloc_f32(1, &self.header, &self.path)?;
            read_elements(&mut self.file, &self.header, 0, 1, &mut out, &self.path)?;
            return Tensor::from_vec(&[], out);
        }
        let rest = self.rows() - self.next;
        self.read_rows(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::npy::{encode_npy, write_npy};

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("gated-npy-stream-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn rows_in_pieces_equal_the_whole() {
        let d = scratch("rows");
        let t = Tensor::from_vec(&[5, 2, 3], (0..30).map(|i| i as f32 * 0.5).collect()).unwrap();
        let p = d.join("x.npy");
        write_npy(&p, &t).unwrap();
        let mut r = NpyReader::open(&p).unwrap();
        assert_eq!(r.rows(), 5);
        let a = r.read_rows(2).unwrap();
        let b = r.read_rows(2).unwrap();
        let c = r.read_rows(2).unwrap();
        assert_eq!(a.shape(), [2, 2, 3]);
        assert_eq!(c.shape(), [1, 2, 3]);
        let all: Vec<f32> = [a.data(), b.data(), c.data()].concat();
        assert_eq!(all, t.data());
        assert_eq!(r.read_rows(2).unwrap().shape(), [0, 2, 3]);
        assert_eq!(NpyReader::open(&p).unwrap().read_all().unwrap(), t);
        let s = Tensor::from_vec(&[], vec![2.5]).unwrap();
        write_npy(&p, &s).unwrap();
        assert_eq!(NpyReader::open(&p).unwrap().read_all().unwrap(), s);
        std::fs::remove_dir_all(d).ok();
    }

    #[test]
    fn truncated_and_overlong_files_fail_on_open() {
        let d = scratch("trunc");
        let t = Tensor::from_vec(&[4, 3], vec![1.0; 12]).unwrap();
        let bytes = encode_npy(&t);
        let p = d.join("x.npy");
        for cut in [bytes.len() - 1, 70, 9, 0] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let e = NpyReader::open(&p).unwrap_err().to_string();
            assert!(e.contains("x.npy") && e.contains("byte"), "{cut}: {e}");
        }
        let mut long = bytes.clone();
        long.push(0);
        std::fs::write(&p, &long).unwrap();
        let e = NpyReader::open(&p).unwrap_err().to_string();
        assert!(e.contains("needs 48 bytes, the file has 49"), "{e}");
        // A header length field of 4 GiB is refused before it is read.
        std::fs::write(&p, b"\x93NUMPY\x02\x00\xff\xff\xff\xff{").unwrap();
        let e = NpyReader::open(&p).unwrap_err().to_string();
        assert!(e.contains("claims 4294967295 bytes"), "{e}");
        std::fs::remove_dir_all(d).ok();
    }
}
