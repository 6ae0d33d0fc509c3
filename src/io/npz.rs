//! NumPy `.npz` archives: a zip of `.npy` members, stored or deflated.
//!
//! Numeric members are read as f32 [`Tensor`]s (see [`crate::io::npy`]);
//! object arrays of int lists — how Keras caches `imdb.npz` and
//! `reuters.npz` — are unpickled by the restricted reader in
//! [`crate::io::pickle`] into [`NpzArray::Sequences`].

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::io::atomic::write_atomic_with;
use crate::io::npy::{self, Dtype, NpyHeader};
use crate::io::npy_stream::{read_elements, read_header};
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

/// How much memory one `.npz` file may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NpzLimits {
    /// The most bytes all members together may take once read: a numeric
    /// member counts its f32 tensor, an object member its pickle and the ints
    /// it can hold. Checked against the headers before anything is inflated.
    pub max_bytes: u64,
}

/// The default cap of [`NpzLimits`]: 4 GiB (Keras's `imdb.npz` needs about
/// 100 MiB), or half the memory available when that is less.
pub const MAX_NPZ_BYTES: u64 = 4 << 30;

impl Default for NpzLimits {
    fn default() -> Self {
        let half_free = crate::io::memory::available_bytes().map_or(u64::MAX, |b| b / 2);
        NpzLimits {
            max_bytes: MAX_NPZ_BYTES.min(half_free),
        }
    }
}

/// One member of an open [`NpzFile`], known from its header alone.
#[derive(Debug, Clone, PartialEq)]
pub struct NpzMember {
    /// The name without `.npy`, as `np.load` gives it.
    pub name: String,
    /// The `.npy` header.
    pub header: NpyHeader,
    /// The member's uncompressed size in the zip central directory.
    pub declared: u64,
    /// The bytes it takes once read (an upper bound for object arrays).
    pub memory: u64,
    /// The archive path joined with the member's file name, for errors.
    pub path: PathBuf,
    index: usize,
}

/// An `.npz` archive whose members' headers have been read and checked, and
/// whose data is inflated only on [`NpzFile::read`].
///
/// A zip member can declare anything: a 3 MB file held a member that
/// inflates to 3 GB of zeros. So before any data is inflated, each member's
/// `.npy` header is read (at most
/// [`MAX_HEADER`](crate::io::npy_stream::MAX_HEADER) bytes of it), a numeric
/// member's shape and dtype must account for exactly the size the central
/// directory declares, and all members together must fit
/// [`NpzLimits::max_bytes`]; loaders then check the shapes they expect. The
/// data is read through a `take` of the declared size, so a central
/// directory that lies cannot make a member inflate further.
#[derive(Debug)]
pub struct NpzFile {
    zip: ZipArchive<File>,
    path: PathBuf,
    members: Vec<NpzMember>,
}

impl NpzFile {
    /// Opens `path` and reads and checks every member's header.
    pub fn open(path: impl AsRef<Path>, limits: NpzLimits) -> Result<NpzFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut zip = ZipArchive::new(file)
            .map_err(|e| Error::file(path, format!("not a readable .npz (zip) archive: {e}")))?;
        let mut members = Vec::with_capacity(zip.len().min(1 << 16));
        let mut total = 0u64;
        for i in 0..zip.len() {
            let Some(m) = member_header(&mut zip, i, path)? else {
                continue;
            };
            total = total.saturating_add(m.memory);
            if total > limits.max_bytes {
                return Err(Error::file(
                    &m.path,
                    format!(
                        "shape {:?} of '{}' ({} bytes in the archive) would bring the file to \
                         {total} bytes in memory, more than the {} one .npz may take; \
                         nothing was inflated",
                        m.header.shape, m.header.descr, m.declared, limits.max_bytes
                    ),
                ));
            }
            members.push(m);
        }
        Ok(NpzFile {
            zip,
            path: path.to_path_buf(),
            members,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The members, in archive order.
    pub fn members(&self) -> &[NpzMember] {
        &self.members
    }

    /// The member called `name` (without `.npy`).
    pub fn member(&self, name: &str) -> Option<&NpzMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Inflates and decodes the member called `name`.
    pub fn read(&mut self, name: &str) -> Result<NpzArray> {
        let m = self
            .member(name)
            .cloned()
            .ok_or_else(|| Error::file(&self.path, format!("no member '{name}'")))?;
        read_member(&mut self.zip, &m)
    }

    /// Every member, in archive order.
    pub fn read_all(mut self) -> Result<Vec<(String, NpzArray)>> {
        let members = std::mem::take(&mut self.members);
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            let a = read_member(&mut self.zip, &m)?;
            out.push((m.name, a));
        }
        Ok(out)
    }
}

/// Reads every member of an `.npz` archive, in archive order, named without
/// the `.npy` suffix (as `np.load` names them), within the default
/// [`NpzLimits`] (see [`NpzFile`]).
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, NpzArray)>> {
    NpzFile::open(path, NpzLimits::default())?.read_all()
}

/// Reads the header of member `i` (`None` for a directory entry) and checks
/// it against the size the central directory declares.
fn member_header(zip: &mut ZipArchive<File>, i: usize, path: &Path) -> Result<Option<NpzMember>> {
    let entry = zip
        .by_index(i)
        .map_err(|e| Error::file(path, format!("zip member {i}: {e}")))?;
    if entry.is_dir() {
        return Ok(None);
    }
    let full = entry
        .name()
        .map_err(|e| Error::file(path, format!("zip member {i} has a bad name: {e}")))?
        .to_string();
    let member = path.join(&full);
    let declared = entry.size();
    let header = read_header(&mut entry.take(declared), &member)?;
    let rows = header.shape.first().copied().unwrap_or(1) as u64;
    let memory = if header.dtype == Dtype::Object {
        // The pickle itself, the ints it holds (8 bytes each, from at least
        // 2 pickled bytes) and one list per row.
        declared
            .saturating_mul(5)
            .saturating_add(rows.saturating_mul(24))
    } else {
        let (n, need) = npy::data_size(&header, &member)?;
        let want = (header.data_offset as u64).saturating_add(need as u64);
        if declared != want {
            return Err(Error::file(
                &member,
                format!(
                    "the archive declares {declared} bytes, but shape {:?} of '{}' needs {want}",
                    header.shape, header.descr
                ),
            ));
        }
        (n as u64).saturating_mul(4)
    };
    let name = full.strip_suffix(".npy").unwrap_or(&full).to_string();
    Ok(Some(NpzMember {
        name,
        header,
        declared,
        memory,
        path: member,
        index: i,
    }))
}

/// Inflates one member whose header was checked by [`member_header`], never
/// past its declared size.
fn read_member(zip: &mut ZipArchive<File>, m: &NpzMember) -> Result<NpzArray> {
    let member = &m.path;
    let entry = zip
        .by_index(m.index)
        .map_err(|e| Error::file(member, format!("cannot read member: {e}")))?;
    // One byte past the declared size shows a member that holds more (and
    // reaching the end makes the zip reader check the CRC).
    let mut r = entry.take(m.declared.saturating_add(1));
    let out = if m.header.dtype == Dtype::Object {
        let len = usize::try_from(m.declared)
            .map_err(|_| Error::file(member, "too large for this machine"))?;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(len).map_err(|_| {
            Error::file(member, format!("{len} bytes; not enough memory to read it"))
        })?;
        r.read_to_end(&mut bytes)
            .map_err(|e| Error::file(member, format!("cannot read member: {e}")))?;
        if bytes.len() as u64 != m.declared {
            return Err(Error::file(
                member,
                format!(
                    "member holds {}{} bytes, the archive declares {}",
                    if bytes.len() as u64 > m.declared {
                        "more than "
                    } else {
                        ""
                    },
                    bytes.len().min(len),
                    m.declared
                ),
            ));
        }
        decode_member(&bytes, member)?
    } else {
        let header = read_header(&mut r, member)?;
        let (n, _) = npy::data_size(&header, member)?;
        let mut data = npy::alloc_f32(n, &header, member)?;
        read_elements(&mut r, &header, 0, n, &mut data, member)
            .map_err(|e| Error::file(member, format!("cannot read member: {}", bare(&e))))?;
        let mut extra = [0u8; 1];
        let more = r
            .read(&mut extra)
            .map_err(|e| Error::file(member, format!("cannot read member: {e}")))?;
        if more != 0 {
            return Err(Error::file(
                member,
                format!(
                    "member holds more than the {} bytes the archive declares",
                    m.declared
                ),
            ));
        }
        NpzArray::Tensor(Tensor::from_vec(&header.shape, data)?)
    };
    Ok(out)
}

/// An error's message without the path it names (the caller names it).
fn bare(e: &Error) -> String {
    match e {
        Error::File { message, .. } => message.clone(),
        other => other.to_string(),
    }
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
