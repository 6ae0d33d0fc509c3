//! `checkpoint.json`, the manifest of a model directory: which files belong to
//! one save, with their sizes and FNV-1a hashes.
//!
//! A model directory is often downloaded or shared, so its manifest is
//! untrusted input: it may name only the files gated itself writes there (plain
//! names, no separators, no `..`), each must be a plain file inside the
//! directory, and a file's size is compared with the manifest before a byte of
//! it is read.

use std::collections::BTreeMap;
use std::path::Path;

use crate::io::atomic::write_atomic;
use crate::io::fingerprint::hash_reader;
use crate::io::regular::{is_present, open_regular, read_regular_text};
use crate::{Error, Result};

/// `checkpoint.json`: the manifest of a save.
pub const MANIFEST_FILE: &str = "checkpoint.json";

/// The largest manifest read: it lists at most a handful of files.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

const FORMAT: &str = "gated-model-dir";
const VERSION: u32 = 1;

/// One file's entry in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct FileEntry {
    bytes: u64,
    fnv1a64: String,
}

/// The contents of `checkpoint.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Manifest {
    format: String,
    version: u32,
    /// False while a top-level save is under way.
    pub(crate) complete: bool,
    files: BTreeMap<String, FileEntry>,
}

/// Size and FNV-1a hash of the plain file `path`.
fn entry_of(path: &Path) -> Result<FileEntry> {
    let (file, size) = open_regular(path, u64::MAX)?;
    hashed(path, file, size)
}

fn hashed(path: &Path, file: std::fs::File, size: u64) -> Result<FileEntry> {
    Ok(FileEntry {
        bytes: size,
        fnv1a64: format!("{:016x}", hash_reader(path, file, size)?),
    })
}

/// Writes `dir/checkpoint.json` listing `files` (names inside `dir`).
pub(crate) fn write_manifest(dir: &Path, complete: bool, files: &[&str]) -> Result<()> {
    let mut m = Manifest {
        format: FORMAT.to_string(),
        version: VERSION,
        complete,
        files: BTreeMap::new(),
    };
    for f in files {
        m.files.insert(f.to_string(), entry_of(&dir.join(f))?);
    }
    let path = dir.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&m).map_err(|e| Error::file(&path, e.to_string()))?;
    write_atomic(&path, text.as_bytes())
}

/// Reads `dir/checkpoint.json`, or `None` when the directory has none (a
/// directory written by hand or by PyTorch). Names outside `allowed` (the
/// files gated writes into a model directory) are refused here, before any
/// of them is touched.
pub(crate) fn read_manifest(dir: &Path, allowed: &[&str]) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST_FILE);
    if !is_present(&path) {
        return Ok(None);
    }
    let text = read_regular_text(&path, MAX_MANIFEST_BYTES)?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::file(&path, format!("not a valid manifest: {e}")))?;
    if m.format != FORMAT || m.version != VERSION {
        return Err(Error::file(
            &path,
            format!(
                "format {:?} version {}; this gated reads {FORMAT:?} version {VERSION}",
                m.format, m.version
            ),
        ));
    }
    if let Some(bad) = m.files.keys().find(|n| !allowed.contains(&n.as_str())) {
        return Err(Error::file(
            &path,
            format!(
                "lists {:?}, which is not a file of a model directory (allowed: {}); \
                 a manifest may name only those files, inside the directory",
                truncate(bad),
                allowed.join(", ")
            ),
        ));
    }
    Ok(Some(m))
}

/// A name as shown in an error: at most 80 characters of it.
fn truncate(name: &str) -> String {
    match name.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &name[..i]),
        None => name.to_string(),
    }
}

/// Checks every file `m` lists against its size and hash. `hint` ends each
/// message (e.g. where the last complete checkpoint is).
pub(crate) fn verify_manifest(dir: &Path, m: &Manifest, hint: &str) -> Result<()> {
    if !m.complete {
        return Err(Error::file(
            dir.join(MANIFEST_FILE),
            format!("the save into this directory did not finish (interrupted?){hint}"),
        ));
    }
    for (name, want) in &m.files {
        let path = dir.join(name);
        if !is_present(&path) {
            return Err(Error::file(
                &path,
                format!("listed in {MANIFEST_FILE} but missing{hint}"),
            ));
        }
        let mismatch = |got: String| {
            Error::file(
                &path,
                format!(
                    "does not match {MANIFEST_FILE} ({got}; expected {} bytes, hash {}): \
                     truncated, corrupt or from another save{hint}",
                    want.bytes,
                    truncate(&want.fnv1a64)
                ),
            )
        };
        // The size is checked on the open file before a byte is read, so a
        // listed file can make gated read no more than the manifest declared.
        let (file, size) = open_regular(&path, u64::MAX)?;
        if size != want.bytes {
            return Err(mismatch(format!("{size} bytes")));
        }
        let got = hashed(&path, file, size)?;
        if got.fnv1a64 != want.fnv1a64 {
            return Err(mismatch(format!(
                "{} bytes, hash {}",
                got.bytes, got.fnv1a64
            )));
        }
    }
    Ok(())
}
