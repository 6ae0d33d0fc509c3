//! gated errors as Python exceptions: ValueError for shapes, specs and
//! arguments, OSError (or a subclass) for files, KeyboardInterrupt for an
//! interrupted run. Messages are the CLI's.

use gated::Error;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyFloatingPointError, PyIsADirectoryError,
    PyKeyboardInterrupt, PyNotADirectoryError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::PyErr;
use std::io::ErrorKind;

/// What an [`Error::File`] (a file's contents at fault) becomes: a ValueError
/// where the "file" is a spec or array the caller passed, an OSError where it
/// is a model directory on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAs {
    Value,
    Os,
}

/// `--batch-size` -> `batch_size`: the CLI's flag as the Python argument.
fn argument_name(name: &str) -> String {
    match name.strip_prefix("--") {
        Some(flag) if !flag.contains(' ') && !flag.contains('/') => flag.replace('-', "_"),
        _ => name.to_string(),
    }
}

/// The Python exception for a gated error.
pub fn to_py(e: Error, file: FileAs) -> PyErr {
    match e {
        Error::Invalid { name, message } => {
            PyValueError::new_err(format!("invalid {}: {message}", argument_name(&name)))
        }
        Error::Shape { .. } => PyValueError::new_err(e.to_string()),
        Error::File { .. } if file == FileAs::Value => PyValueError::new_err(e.to_string()),
        Error::File { .. } => PyOSError::new_err(e.to_string()),
        Error::Io { ref source, .. } => {
            let msg = e.to_string();
            match source.kind() {
                ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
                ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
                ErrorKind::AlreadyExists => PyFileExistsError::new_err(msg),
                ErrorKind::IsADirectory => PyIsADirectoryError::new_err(msg),
                ErrorKind::NotADirectory => PyNotADirectoryError::new_err(msg),
                _ => PyOSError::new_err(msg),
            }
        }
        Error::NonFinite { .. } => PyFloatingPointError::new_err(e.to_string()),
        Error::Interrupted => PyKeyboardInterrupt::new_err("training interrupted"),
    }
}

/// Shorthand: [`to_py`] with file errors as ValueError.
pub fn value(e: Error) -> PyErr {
    to_py(e, FileAs::Value)
}

/// Shorthand: [`to_py`] with file errors as OSError.
pub fn os(e: Error) -> PyErr {
    to_py(e, FileAs::Os)
}

#[cfg(test)]
mod tests {
    use super::argument_name;

    #[test]
    fn flags_become_argument_names() {
        assert_eq!(argument_name("--batch-size"), "batch_size");
        assert_eq!(argument_name("y"), "y");
        assert_eq!(
            argument_name("--restore-best-weights/--monitor"),
            "--restore-best-weights/--monitor"
        );
    }
}
