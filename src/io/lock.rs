//! An advisory lock on an output directory, so that two training runs into
//! the same `--out` cannot interleave their checkpoints.
//!
//! The lock is `flock(2)` on `DIR/.gated.lock`, which also holds the holder's
//! pid for the message a second run prints. The kernel drops a `flock` when
//! its process ends in any way (exit, panic, kill -9), so a lock can never go
//! stale: a leftover file from a dead run is simply locked again.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The lock file's name inside the locked directory.
pub const LOCK_FILE: &str = ".gated.lock";

/// A held lock on a directory; released when dropped or when the process ends.
#[derive(Debug)]
pub struct DirLock {
    // Kept open: closing it releases the lock.
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock on `dir` (which exists) or fails at once, naming the pid
    /// of the run that holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = open_lock_file(&path)?;
        if !try_lock(&file).map_err(|e| Error::io(&path, e))? {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() || holder.len() > 20 {
                "another gated process".to_string()
            } else {
                format!("another gated process (pid {holder})")
            };
            return Err(Error::file(
                dir,
                format!(
                    "is in use by {who}; two runs must not write into one directory \
                     (wait for it to finish, or choose another --out)"
                ),
            ));
        }
        // Ours now: record our pid for the message above.
        let pid = std::process::id().to_string();
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()));
        written.map_err(|e| Error::io(&path, e))?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn open_lock_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Not through a link: the lock file must be the one inside the directory.
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

#[cfg(not(unix))]
fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// `Ok(true)` when the lock was taken, `Ok(false)` when another holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this `File` owns and keeps open.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let d = std::env::temp_dir().join(format!("gated-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let first = DirLock::acquire(&d).unwrap();
        // flock locks belong to the open file, so a second open in the same
        // process conflicts as another process's would.
        let e = DirLock::acquire(&d).unwrap_err().to_string();
        assert!(
            e.contains("in use") && e.contains(&std::process::id().to_string()),
            "{e}"
        );
        assert!(first.path().ends_with(LOCK_FILE));
        drop(first);
        let again = DirLock::acquire(&d).unwrap();
        drop(again);
        std::fs::remove_dir_all(&d).ok();
    }
}
