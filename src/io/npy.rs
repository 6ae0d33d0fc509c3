//! NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
//!
//! Reading converts every supported numeric dtype to f32: `f2`, `f4`, `f8`,
//! `i1`..`i8`, `u1`..`u8` (either byte order) and `|b1`. Integers must be
//! exactly representable (|v| <= 2^24); a larger one is an error naming the
//! value and its index. Only C-order arrays are read. Writing produces `<f4`
//! (or `<i4`) in format 1.0, or 2.0 when the header needs it.
//!
//! The layout: the magic `\x93NUMPY`, a major and minor version byte, the
//! header length (u16 little-endian for 1.0, u32 for 2.0/3.0), an ASCII
//! (UTF-8 for 3.0) Python dict literal `{'descr': '<f4', 'fortran_order':
//! False, 'shape': (3, 4), }` padded with spaces and a newline, then the data.

use std::path::Path;

use crate::io::atomic::write_atomic;
use crate::{Error, Result, Tensor};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Largest integer magnitude that every f32 represents exactly.
const EXACT_INT: i64 = 1 << 24;

/// An element type found in an `.npy` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// IEEE half (`f2`).
    F16,
    /// IEEE single (`f4`).
    F32,
    /// IEEE double (`f8`).
    F64,
    /// Signed integer of the given byte width (1, 2, 4 or 8).
    Int(usize),
    /// Unsigned integer of the given byte width (1, 2, 4 or 8).
    UInt(usize),
    /// `|b1`.
    Bool,
    /// `|O`: pickled Python objects.
    Object,
}

impl Dtype {
    /// Bytes per element (0 for object arrays, which are pickled).
    pub fn size(self) -> usize {
        match self {
            Dtype::F16 => 2,
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::Int(n) | Dtype::UInt(n) => n,
            Dtype::Bool => 1,
            Dtype::Object => 0,
        }
    }
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    /// The `descr` string as written, e.g. `<f4`.
    pub descr: String,
    /// The element type.
    pub dtype: Dtype,
    /// True when multi-byte elements are big-endian.
    pub big_endian: bool,
    /// The `fortran_order` flag.
    pub fortran_order: bool,
    /// The array shape (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// Byte offset at which the data starts.
    pub data_offset: usize,
}

/// Reads an `.npy` file as an f32 tensor, checking the header and the file's
/// size before reading the data, which is converted a piece at a time (the
/// file's bytes are never held whole beside the tensor).
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    crate::io::npy_stream::NpyReader::open(path)?.read_all()
}

/// Decodes the bytes of an `.npy` file; `path` names the source in errors.
pub fn decode_npy(bytes: &[u8], path: &Path) -> Result<Tensor> {
    let header = parse_header(bytes, path)?;
    decode_data(&header, &bytes[header.data_offset..], path)
}

/// Parses and validates the header of an `.npy` file. Fortran order and
/// unsupported dtypes are errors here; object arrays (`|O`) pass, for the
/// caller to unpickle.
pub fn parse_header(bytes: &[u8], path: &Path) -> Result<NpyHeader> {
    let bad = |msg: String| Error::file(path, msg);
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad(
            "not a NumPy .npy file: bad magic at byte 0 (expected \\x93NUMPY)".into(),
        ));
    }
    if bytes.len() < 8 {
        return Err(bad(format!(
            "truncated .npy header: {} bytes, the version needs 8",
            bytes.len()
        )));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match major {
        1 => (2usize, false),
        2 => (4, false),
        3 => (4, true),
        _ => {
            return Err(bad(format!(
            "unsupported .npy format version {major}.{minor} at byte 6 (1.0, 2.0 and 3.0 are read)"
        )))
        }
    };
    let start = 8 + len_bytes;
    if bytes.len() < start {
        return Err(bad(format!(
            "truncated .npy header: {} bytes, the header length field ends at byte {start}",
            bytes.len()
        )));
    }
    let header_len = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let end = start
        .checked_add(header_len)
        .ok_or_else(|| bad("header length overflows".into()))?;
    if end > bytes.len() {
        return Err(bad(format!(
            "truncated .npy header: it claims {header_len} bytes from byte {start} but the file has {}",
            bytes.len()
        )));
    }
    let raw = &bytes[start..end];
    let text = if utf8 {
        std::str::from_utf8(raw).map_err(|e| {
            bad(format!(
                "header is not UTF-8 at byte {}",
                start + e.valid_up_to()
            ))
        })?
    } else {
        if let Some(i) = raw.iter().position(|b| !b.is_ascii()) {
            return Err(bad(format!("header is not ASCII at byte {}", start + i)));
        }
        // ASCII checked just above, so this cannot fail.
        std::str::from_utf8(raw).map_err(|_| bad("header is not ASCII".into()))?
    };
    let lit = LitParser::new(text, start)
        .parse_all()
        .map_err(|(off, msg)| bad(format!("header does not parse at byte {off}: {msg}")))?;
    let Lit::Dict(entries) = lit else {
        return Err(bad(format!("header at byte {start} is not a dict literal")));
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in entries {
        let Lit::Str(k) = k else {
            return Err(bad("header dict has a non-string key".into()));
        };
        match (k.as_str(), v) {
            ("descr", Lit::Str(s)) => descr = Some(s),
            ("descr", other) => {
                return Err(bad(format!(
                    "unsupported dtype {}: structured arrays are not read",
                    other.describe()
                )))
            }
            ("fortran_order", Lit::Bool(b)) => fortran = Some(b),
            ("shape", Lit::Tuple(dims)) => {
                let mut s = Vec::with_capacity(dims.len());
                for d in dims {
                    match d {
                        Lit::Int(n) => s.push(usize::try_from(n).map_err(|_| {
                            bad(format!("shape dimension {n} does not fit in memory"))
                        })?),
                        other => {
                            return Err(bad(format!(
                                "shape holds {} where an integer was expected",
                                other.describe()
                            )))
                        }
                    }
                }
                shape = Some(s);
            }
            (k, v) => {
                return Err(bad(format!(
                    "unexpected header entry '{k}': {}",
                    v.describe()
                )))
            }
        }
    }
    let descr = descr.ok_or_else(|| bad("header has no 'descr'".into()))?;
    let fortran_order = fortran.ok_or_else(|| bad("header has no 'fortran_order'".into()))?;
    let shape = shape.ok_or_else(|| bad("header has no 'shape'".into()))?;
    let (dtype, big_endian) = parse_descr(&descr).ok_or_else(|| {
        bad(format!(
            "unsupported dtype '{descr}' (read: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1, and O in .npz)"
        ))
    })?;
    if fortran_order {
        return Err(bad(
            "fortran_order is True: only C-order arrays are read; save with np.ascontiguousarray"
                .into(),
        ));
    }
    Ok(NpyHeader {
        descr,
        dtype,
        big_endian,
        fortran_order,
        shape,
        data_offset: end,
    })
}

fn parse_descr(descr: &str) -> Option<(Dtype, bool)> {
    let mut chars = descr.chars();
    let order = chars.next()?;
    let big = match order {
        '<' | '|' | '=' => false,
        '>' => true,
        _ => return None,
    };
    let rest = chars.as_str();
    let dtype = match rest {
        "f2" | "e" => Dtype::F16,
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        "i1" => Dtype::Int(1),
        "i2" => Dtype::Int(2),
        "i4" => Dtype::Int(4),
        "i8" => Dtype::Int(8),
        "u1" => Dtype::UInt(1),
        "u2" => Dtype::UInt(2),
        "u4" => Dtype::UInt(4),
        "u8" => Dtype::UInt(8),
        "b1" => Dtype::Bool,
        "O" | "O8" | "O4" => Dtype::Object,
        _ => return None,
    };
    Some((dtype, big))
}

/// Element count of `shape`, or an error when it overflows.
pub(crate) fn element_count(shape: &[usize], path: &Path) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| Error::file(path, format!("shape {shape:?} overflows")))
    })
}

/// Converts the data section (`data` starts at `header.data_offset`) of a
/// numeric array to an f32 tensor, checking its length against the header
/// before allocating.
pub fn decode_data(header: &NpyHeader, data: &[u8], path: &Path) -> Result<Tensor> {
    let (n, need) = data_size(header, path)?;
    if data.len() != need {
        return Err(Error::file(
            path,
            format!(
                "data length mismatch at byte {}: shape {:?} of '{}' needs {need} bytes, the file has {}",
                header.data_offset,
                header.shape,
                header.descr,
                data.len()
            ),
        ));
    }
    let mut out = alloc_f32(n, header, path)?;
    convert_into(header, data, 0, &mut out, path)?;
    Tensor::from_vec(&header.shape, out)
}

/// The element count and data size in bytes of a numeric array; an error
/// for object arrays and for shapes whose size overflows.
pub fn data_size(header: &NpyHeader, path: &Path) -> Result<(usize, usize)> {
    if header.dtype == Dtype::Object {
        return Err(Error::file(
            path,
            format!(
                "dtype '{}' is an object (pickled) array, not a numeric tensor (object arrays of int lists are read from .npz files by read_npz)",
                header.descr
            ),
        ));
    }
    let n = element_count(&header.shape, path)?;
    let need = n.checked_mul(header.dtype.size()).ok_or_else(|| {
        Error::file(
            path,
            format!("shape {:?} of '{}' overflows", header.shape, header.descr),
        )
    })?;
    Ok((n, need))
}

/// An empty buffer with room for exactly `n` f32 values, or an error naming
/// the array when that memory cannot be had (instead of an abort).
pub(crate) fn alloc_f32(n: usize, header: &NpyHeader, path: &Path) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| {
        Error::file(
            path,
            format!(
                "shape {:?} needs {} bytes of memory as f32; not enough memory",
                header.shape,
                (n as u128) * 4
            ),
        )
    })?;
    Ok(out)
}

/// Converts whole elements of `bytes` (element `first` onwards of the array
/// `header` describes) to f32, appending them to `out`. Errors give the
/// element's index and byte offset in the whole file.
pub(crate) fn convert_into(
    header: &NpyHeader,
    bytes: &[u8],
    first: usize,
    out: &mut Vec<f32>,
    path: &Path,
) -> Result<()> {
    let size = header.dtype.size();
    let be = header.big_endian;
    let chunks = bytes.chunks_exact(size.max(1));
    match header.dtype {
        Dtype::F16 => out.extend(chunks.map(|c| {
            let b = [c[0], c[1]];
            f16_to_f32(if be {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            })
        })),
        Dtype::F32 => out.extend(chunks.map(|c| {
            let b = [c[0], c[1], c[2], c[3]];
            if be {
                f32::from_be_bytes(b)
            } else {
                f32::from_le_bytes(b)
            }
        })),
        Dtype::F64 => out.extend(chunks.map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            (if be {
                f64::from_be_bytes(b)
            } else {
                f64::from_le_bytes(b)
            }) as f32
        })),
        Dtype::Bool => out.extend(bytes.iter().map(|&b| if b != 0 { 1.0 } else { 0.0 })),
        Dtype::Int(_) | Dtype::UInt(_) => {
            let signed = matches!(header.dtype, Dtype::Int(_));
            for (k, c) in chunks.enumerate() {
                let v = int_value(c, signed, be);
                let ok = match v {
                    Ok(v) => (-EXACT_INT..=EXACT_INT).contains(&v).then_some(v),
                    Err(_) => None,
                };
                match ok {
                    Some(v) => out.push(v as f32),
                    None => {
                        let shown = match v {
                            Ok(v) => v.to_string(),
                            Err(u) => u.to_string(),
                        };
                        let i = first + k;
                        return Err(Error::file(
                            path,
                            format!(
                                "integer {shown} at element {i} (byte {}) is not exactly representable as f32 (|v| <= 16777216 is)",
                                header.data_offset + i * size
                            ),
                        ));
                    }
                }
            }
        }
        Dtype::Object => {}
    }
    Ok(())
}

/// Reads one integer of 1, 2, 4 or 8 bytes; `Err` carries a u64 too large for i64.
fn int_value(c: &[u8], signed: bool, be: bool) -> std::result::Result<i64, u64> {
    let mut b = [0u8; 8];
    let n = c.len();
    // Assemble as little-endian in the low bytes.
    for (i, slot) in b.iter_mut().take(n).enumerate() {
        *slot = if be { c[n - 1 - i] } else { c[i] };
    }
    let negative = signed && (b[n - 1] & 0x80) != 0;
    if negative {
        for slot in b.iter_mut().skip(n) {
            *slot = 0xff;
        }
        return Ok(i64::from_le_bytes(b));
    }
    let u = u64::from_le_bytes(b);
    i64::try_from(u).map_err(|_| u)
}

/// IEEE 754 half to single precision.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24.
            let v = m as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// bfloat16 to single precision.
pub(crate) fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// The header of a format-1.0 (2.0 when the header is over 65535 bytes)
/// `.npy` file with the given descr and shape, with room reserved for
/// `data_len` bytes of raw little-endian data to follow.
pub fn npy_file_bytes(descr: &str, shape: &[usize], data_len: usize) -> Vec<u8> {
    let shape_txt = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let (version, len_bytes) = if dict.len() + 1 + 10 <= 65535 {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let prefix = MAGIC.len() + 2 + len_bytes;
    // Pad so the data starts on a 64-byte boundary, as NumPy does.
    let unpadded = prefix + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let header_len = total - prefix;
    let mut out = Vec::with_capacity(total + data_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if len_bytes == 2 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// The bytes of an `<f4` `.npy` file holding `tensor`.
pub fn encode_npy(tensor: &Tensor) -> Vec<u8> {
    let mut out = npy_file_bytes("<f4", tensor.shape(), tensor.len() * 4);
    for v in tensor.data() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `tensor` to `path` as an `<f4` `.npy` file, atomically.
pub fn write_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<()> {
    write_atomic(path, &encode_npy(tensor))
}

/// Writes integers to `path` as an `<i4` `.npy` file, atomically; errors when
/// `data.len()` is not the product of `shape`.
pub fn write_npy_i32(path: impl AsRef<Path>, shape: &[usize], data: &[i32]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::shape(
            "write_npy_i32",
            format!("{n} elements for shape {shape:?}"),
            format!("{} elements", data.len()),
        ));
    }
    let mut out = npy_file_bytes("<i4", shape, data.len() * 4);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(path, &out)
}

// ---------------------------------------------------------------------------
// A parser for the Python literals in an .npy header.

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    fn describe(&self) -> String {
        match self {
            Lit::Str(s) => format!("the string '{s}'"),
            Lit::Int(n) => format!("the integer {n}"),
            Lit::Bool(b) => (if *b { "True" } else { "False" }).to_string(),
            Lit::None => "None".into(),
            Lit::Tuple(_) => "a tuple".into(),
            Lit::List(_) => "a list".into(),
            Lit::Dict(_) => "a dict".into(),
        }
    }
}

const MAX_DEPTH: usize = 16;

struct LitParser<'a> {
    s: &'a [u8],
    pos: usize,
    base: usize,
}

type PResult<T> = std::result::Result<T, (usize, String)>;

impl<'a> LitParser<'a> {
    fn new(s: &'a str, base: usize) -> Self {
        LitParser {
            s: s.as_bytes(),
            pos: 0,
            base,
        }
    }

    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err((self.base + self.pos, msg.into()))
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn parse_all(mut self) -> PResult<Lit> {
        let v = self.value(0)?;
        if self.peek().is_some() {
            return self.err("unexpected text after the header dict");
        }
        Ok(v)
    }

    fn value(&mut self, depth: usize) -> PResult<Lit> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        match self.peek() {
            None => self.err("unexpected end of header"),
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(Lit::Dict(entries));
                    }
                    let k = self.value(depth + 1)?;
                    if self.peek() != Some(b':') {
                        return self.err("expected ':'");
                    }
                    self.pos += 1;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.pos += 1;
                let mut items = Vec::new();
                let mut saw_comma = false;
                loop {
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => {
                            self.pos += 1;
                            saw_comma = true;
                        }
                        Some(c) if c == close => {}
                        _ => return self.err(format!("expected ',' or '{}'", close as char)),
                    }
                }
                if open == b'(' {
                    // `(x)` is just x in Python; `(x,)` is a tuple.
                    if items.len() == 1 && !saw_comma {
                        return Ok(items.remove(0));
                    }
                    Ok(Lit::Tuple(items))
                } else {
                    Ok(Lit::List(items))
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos] != q {
                    if self.s[self.pos] == b'\\' {
                        return self.err("escapes in header strings are not supported");
                    }
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return self.err("unterminated string");
                }
                let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                self.pos += 1;
                Ok(Lit::Str(text))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let start = self.pos;
                self.pos += 1;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                // A trailing 'L' is how Python 2 wrote longs.
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                if self.pos < self.s.len() && self.s[self.pos] == b'L' {
                    self.pos += 1;
                }
                match text.parse::<i128>() {
                    Ok(n) => Ok(Lit::Int(n)),
                    Err(_) => {
                        self.pos = start;
                        self.err(format!("bad integer '{text}'"))
                    }
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Lit::Bool(true)),
                    b"False" => Ok(Lit::Bool(false)),
                    b"None" => Ok(Lit::None),
                    other => {
                        let word = String::from_utf8_lossy(other).into_owned();
                        self.pos = start;
                        self.err(format!("unexpected name '{word}'"))
                    }
                }
            }
            Some(c) => self.err(format!("unexpected character '{}'", c as char)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("mem.npy")
    }

    #[test]
    fn round_trip_shapes() {
        for shape in [
            vec![],
            vec![0],
            vec![5],
            vec![2, 3],
            vec![2, 0, 4],
            vec![1, 2, 3, 2],
        ] {
            let n: usize = shape.iter().product();
            let t =
                Tensor::from_vec(&shape, (0..n).map(|i| i as f32 * 0.25 - 1.0).collect()).unwrap();
            let bytes = encode_npy(&t);
            assert_eq!(parse_header(&bytes, p()).unwrap().data_offset % 64, 0);
            assert_eq!(decode_npy(&bytes, p()).unwrap(), t);
        }
    }

    #[test]
    fn header_literals() {
        let lit = LitParser::new("{'a': (1,), \"b\": [True, None], 'c': (), 'd': (3)}", 0)
            .parse_all()
            .unwrap();
        assert_eq!(
            lit,
            Lit::Dict(vec![
                (Lit::Str("a".into()), Lit::Tuple(vec![Lit::Int(1)])),
                (
                    Lit::Str("b".into()),
                    Lit::List(vec![Lit::Bool(true), Lit::None])
                ),
                (Lit::Str("c".into()), Lit::Tuple(vec![])),
                (Lit::Str("d".into()), Lit::Int(3)),
            ])
        );
        let deep = "(".repeat(100);
        assert!(LitParser::new(&deep, 0).parse_all().is_err());
    }

    fn with_header(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&((dict.len() + 1) as u16).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        b.push(b'\n');
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn malformed_headers_are_errors() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"\x93NUMPZ\x01\x00".to_vec(), "bad magic"),
            (b"\x93NUM".to_vec(), "bad magic"),
            (b"\x93NUMPY\x01".to_vec(), "truncated"),
            (b"\x93NUMPY\x09\x00\x10\x00".to_vec(), "version 9.0"),
            (b"\x93NUMPY\x01\x00\xff\x00{'descr'".to_vec(), "claims 255 bytes"),
            (with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", &[]), "does not parse"),
            (with_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", &[0; 8]), "object"),
            (with_header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", &[0; 8]), "unsupported dtype '<c8'"),
            (with_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", &[0; 4]), "structured"),
            (with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", &[0; 4]), "fortran_order"),
            (with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", &[0; 8]), "needs 12 bytes"),
            (with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", &[0; 8]), "-1"),
            (with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", &[0; 8]), "overflows"),
            (with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", &[0; 8]), "needs 4000000000000 bytes"),
            (with_header("{'descr': '<f4', 'shape': (1,), }", &[0; 4]), "no 'fortran_order'"),
            (with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", &u64::MAX.to_le_bytes()), "-1"),
            (with_header("{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", &u64::MAX.to_le_bytes()), "18446744073709551615"),
        ];
        for (bytes, want) in cases {
            match decode_npy(&bytes, p()) {
                Ok(t) if want == "-1" && t.data() == [-1.0] => {}
                Ok(t) => panic!("expected an error containing {want:?}, got {t:?}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with("mem.npy: "), "{msg}");
                    assert!(msg.contains(want), "{msg} does not contain {want:?}");
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let t = Tensor::from_vec(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let bytes = encode_npy(&t);
        for n in 0..bytes.len() {
            assert!(decode_npy(&bytes[..n], p()).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn halves() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
    }
}
