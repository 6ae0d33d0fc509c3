//! Reading files that come from somewhere else (a downloaded or shared model
//! directory): only plain files, never through a symbolic link, never a FIFO
//! or a device, and never more bytes than the caller allows.
//!
//! A name is opened once and everything is decided on that open file: the
//! link check is `O_NOFOLLOW` on the open itself and the type and size come
//! from `fstat`, so swapping the file between a check and the read changes
//! nothing. `O_NONBLOCK` makes opening a FIFO return at once instead of
//! waiting for a writer (it is then refused as not a plain file).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Opens `path` for reading if it is a plain file (not a symbolic link,
/// directory, FIFO, socket or device) of at most `max_bytes`; returns the
/// file and its size.
pub fn open_regular(path: &Path, max_bytes: u64) -> Result<(File, u64)> {
    let file = open_no_follow(path)?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::file(
            path,
            "not a plain file (a directory, FIFO, socket or device); refusing to read it",
        ));
    }
    let size = meta.len();
    if size > max_bytes {
        return Err(Error::file(
            path,
            format!("is {size} bytes, more than the {max_bytes} this file may have"),
        ));
    }
    Ok((file, size))
}

/// Reads the whole of a plain file of at most `max_bytes` (see
/// [`open_regular`]). A file that shrinks or grows while being read is an
/// error, not a partial read.
pub fn read_regular(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let (file, size) = open_regular(path, max_bytes)?;
    let len = usize::try_from(size)
        .map_err(|_| Error::file(path, format!("is {size} bytes, too large for this machine")))?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len).map_err(|_| {
        Error::file(
            path,
            format!("is {size} bytes; not enough memory to read it"),
        )
    })?;
    // One byte more than the size, to notice a file that grew.
    file.take(size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 != size {
        return Err(Error::file(
            path,
            format!(
                "changed while being read ({size} bytes when opened, {} read)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// [`read_regular`] for a UTF-8 text file.
pub fn read_regular_text(path: &Path, max_bytes: u64) -> Result<String> {
    String::from_utf8(read_regular(path, max_bytes)?)
        .map_err(|e| Error::file(path, format!("not UTF-8 text: {e}")))
}

/// Whether anything (a file, a directory, a link, even a dangling one) is at
/// `path`: what a reader that must refuse links should test, since
/// `Path::exists` follows them.
pub fn is_present(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                Error::file(path, "is a symbolic link; refusing to follow it")
            } else {
                Error::io(path, e)
            }
        })
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> Result<File> {
    let meta = path.symlink_metadata().map_err(|e| Error::io(path, e))?;
    if meta.file_type().is_symlink() {
        return Err(Error::file(
            path,
            "is a symbolic link; refusing to follow it",
        ));
    }
    OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gated-regular-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_a_plain_file_within_its_limit() {
        let d = scratch("plain");
        let p = d.join("a.txt");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_regular(&p, 5).unwrap(), b"hello");
        let e = read_regular(&p, 4).unwrap_err().to_string();
        assert!(e.contains("5 bytes") && e.contains("a.txt"), "{e}");
        std::fs::remove_dir_all(d).ok();
    }

    #[cfg(unix)]
    #[test]
    fn refuses_links_directories_fifos_and_devices() {
        let d = scratch("special");
        let target = d.join("target.txt");
        std::fs::write(&target, b"secret").unwrap();
        let link = d.join("link.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = read_regular(&link, 100).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(is_present(&link));

        let e = read_regular(&d, 100).unwrap_err().to_string();
        assert!(e.contains("not a plain file"), "{e}");

        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Without O_NONBLOCK this open would wait for a writer forever.
        let e = read_regular(&fifo, 100).unwrap_err().to_string();
        assert!(e.contains("not a plain file"), "{e}");

        let e = read_regular(Path::new("/dev/zero"), 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a plain file"), "{e}");
        std::fs::remove_dir_all(d).ok();
    }
}
