//! Models: [`Sequential`], Keras's `summary()` table, and (in submodules) the
//! spec format and the model directory.

mod sequential;
pub mod spec;
mod summary;

pub use sequential::{InputSpec, Sequential};
pub use summary::{format_count, format_shape};
