//! File formats: atomic writes, NumPy `.npy`/`.npz` (including the pickled
//! object arrays of Keras's dataset caches) and `.safetensors` weights.
//!
//! Every reader returns [`Error::File`](crate::Error::File) naming the file and
//! what is wrong with it (with the byte offset where one applies) and never
//! panics or allocates more than the file can justify, whatever its contents.

pub mod atomic;
pub mod fingerprint;
pub mod lock;
pub mod memory;
pub mod npy;
pub mod npy_stream;
pub mod npz;
pub mod pickle;
pub mod regular;
pub mod weights;

pub use atomic::{write_atomic, write_atomic_with};
pub use npy::{read_npy, write_npy, write_npy_i32};
pub use npz::{read_npz, write_npz, NpzArray, NpzFile, NpzLimits};
pub use weights::{
    load_safetensors, load_safetensors_with_metadata, save_safetensors,
    save_safetensors_with_metadata, NamedTensors,
};
