//! Crash-safe file writes: write a temporary file beside the target, flush it
//! to disk, then rename it over the target, so a reader sees either the old
//! file or the complete new one, never a torn write.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync of
/// the directory where the platform allows it). Errors name `path`.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    write_atomic_with(path, |w| w.write_all(bytes).map_err(|e| Error::io(path, e)))
}

/// Like [`write_atomic`], but `write` streams the contents into a buffered
/// writer over the temporary file (it is also `Seek`, as zip writers need).
/// When `write` fails the temporary file is removed, the target is left as it
/// was, and its error is returned.
pub fn write_atomic_with<F>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    let path = path.as_ref();
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::file(path, "not a file path (no file name)"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_tmp_then_rename(path, &tmp, write);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else {
        sync_dir(&dir);
    }
    result
}

fn write_tmp_then_rename<F>(path: &Path, tmp: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(file);
    write(&mut w)?;
    let file = w
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    drop(file);
    fs::rename(tmp, path).map_err(|e| Error::io(path, e))
}

/// Flushes the directory entry of the rename to disk; not possible (and not
/// needed) on every platform, so failures are ignored.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gated-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_and_replaces() {
        let d = tmp_dir("replace");
        let p = d.join("a.bin");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        // No temporary files left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failed_writer_keeps_old_file() {
        let d = tmp_dir("fail");
        let p = d.join("a.bin");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"partial").unwrap();
            Err(Error::invalid("test", "boom"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("boom"));
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_directory_names_the_path() {
        let p = std::env::temp_dir().join("gated-no-such-dir-xyz/sub/a.bin");
        let err = write_atomic(&p, b"x").unwrap_err();
        assert!(err.to_string().contains("gated-no-such-dir-xyz"), "{err}");
    }
}
