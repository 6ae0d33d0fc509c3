//! Models: [`Sequential`], Keras's `summary()` table, and (in submodules) the
//! spec format, the model directory and PyTorch state-dict interchange.

pub mod dir;
mod manifest;
mod predict;
mod sequential;
pub mod spec;
mod summary;
pub mod torch;

pub use dir::{
    check_writable, load_checkpoint, load_model_dir, save_checkpoint, save_model_dir, Checkpoint,
    LoadedModel, SaveExtras,
};
pub use predict::predict_batched;
pub use sequential::{InputSpec, Sequential};
pub use summary::{format_count, format_shape};
pub use torch::{export_torch_state_dict, load_weights, torch_state_dict};
