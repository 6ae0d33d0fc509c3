//! The crate's error type. Every fallible public function returns [`Result`];
//! messages name the file, line, shape or value at fault.

use std::path::PathBuf;

/// Errors returned by gated. Nothing in the library panics on caller input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor or buffer had a different shape from the one required.
    #[error("shape mismatch in {context}: expected {expected}, got {actual}")]
    Shape {
        /// Where the mismatch was found (layer name, argument).
        context: String,
        /// The shape that was required.
        expected: String,
        /// The shape that was given.
        actual: String,
    },
    /// An argument had a value outside its allowed set or range.
    #[error("invalid {name}: {message}")]
    Invalid {
        /// The argument's name.
        name: String,
        /// What was wrong and what is allowed.
        message: String,
    },
    /// A file could not be parsed or did not hold what was expected.
    #[error("{}: {message}", path.display())]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What was wrong, with line or offset where it applies.
        message: String,
    },
    /// An operating-system error while reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Training stopped because the loss or a gradient became NaN or infinite.
    #[error("non-finite value at step {step}: {message}")]
    NonFinite {
        /// The optimisation step (1-based) at which it was seen.
        step: u64,
        /// What was non-finite.
        message: String,
    },
    /// Training was interrupted by the user (SIGINT).
    #[error("interrupted")]
    Interrupted,
}

/// A formatted shape of at most ~120 characters: a crafted file may declare
/// thousands of axes, and the message must stay readable.
fn shortened(s: String) -> String {
    const KEEP: usize = 60;
    let n = s.chars().count();
    if n <= 2 * KEEP {
        return s;
    }
    let head: String = s.chars().take(KEEP).collect();
    let tail: String = s.chars().skip(n - KEEP).collect();
    format!("{head} ... ({} characters) ... {tail}", n - 2 * KEEP)
}

/// Shorthand for `std::result::Result<T, gated::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A shape mismatch; `expected` and `actual` are formatted with `{:?}`.
    pub fn shape(
        context: impl Into<String>,
        expected: impl std::fmt::Debug,
        actual: impl std::fmt::Debug,
    ) -> Self {
        Error::Shape {
            context: context.into(),
            expected: shortened(format!("{expected:?}")),
            actual: shortened(format!("{actual:?}")),
        }
    }

    /// An invalid argument value.
    pub fn invalid(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            name: name.into(),
            message: message.into(),
        }
    }

    /// A problem with the contents of a file.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            message: message.into(),
        }
    }

    /// An I/O error on a file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
