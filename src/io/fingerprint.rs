//! FNV-1a (64 bits) over whole files: a cheap check that a file is the one
//! recorded earlier (the model directory's manifest, a run's data files). Not
//! a defence against a forger, who can rewrite the record too; a guard
//! against truncation, mix-ups and files from another save or data set.

use std::io::Read;
use std::path::Path;

use super::regular::open_regular;
use crate::{Error, Result};

/// FNV-1a, 64 bits, fed in pieces.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a64 {
    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// Hashes the first `size` bytes of `reader` (the file at `path`, named in errors).
pub fn hash_reader(path: &Path, reader: impl Read, size: u64) -> Result<u64> {
    let mut reader = reader.take(size);
    let mut hash = Fnv1a64::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hash.value())
}

/// Size and hash of the plain file at `path`, as `"<bytes> bytes, fnv1a64 <hex>"`.
pub fn fingerprint_file(path: &Path) -> Result<String> {
    let (file, size) = open_regular(path, u64::MAX)?;
    let hash = hash_reader(path, file, size)?;
    Ok(format!("{size} bytes, fnv1a64 {hash:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_vectors() {
        // Test vectors of the FNV reference (isthe.com/chongo/tech/comp/fnv).
        let of = |s: &[u8]| {
            let mut h = Fnv1a64::default();
            h.update(s);
            h.value()
        };
        assert_eq!(of(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(of(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(of(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
