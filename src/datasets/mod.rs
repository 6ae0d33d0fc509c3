//! Data-set loaders and preprocessing with Keras's semantics.
//!
//! - [`keras`]: `imdb.npz` / `reuters.npz` as Keras caches them, with
//!   `load_data`'s `num_words`, `skip_top`, `maxlen`, `seed`, `start_char`,
//!   `oov_char`, `index_from` and `test_split`.
//! - [`sequence`]: `pad_sequences` and a word [`Tokenizer`]
//!   with Keras's `Tokenizer` semantics.
//! - [`aclimdb`]: the raw `aclImdb` review folders.
//! - [`csv`]: numeric CSV time series, windowing into (lookback, horizon)
//!   samples, and a serialisable [`Scaler`].
//! - [`idx`]: IDX files (MNIST, Fashion-MNIST), plain or gzipped.
//! - [`ts`]: UCR/UEA `.ts` time-series classification files.
//!
//! Every loader returns [`Error::File`](crate::Error::File) naming the file and
//! the line, column or byte offset at fault, and never allocates more than the
//! file's contents justify. `docs/datasets.md` says where each real data set
//! can be had.

pub mod aclimdb;
pub mod csv;
pub mod idx;
pub mod keras;
pub mod sequence;
pub mod ts;

pub use aclimdb::{load_aclimdb, load_aclimdb_split, Reviews};
pub use csv::{
    read_csv, read_csv_skipping, window, Column, CsvOptions, CsvTable, ScaleKind, Scaler,
};
pub use idx::{load_idx_images, load_idx_labels, load_idx_pair, read_idx, IdxArray};
pub use keras::{load_imdb, load_reuters, LoadOptions, Split};
pub use sequence::{pad_sequences, Padding, Tokenizer};
pub use ts::{read_ts, TsDataset};

use crate::{Result, Tensor};

/// Integer labels as an f32 tensor `[N]`, the form the losses take for
/// sparse class indices.
pub fn labels_to_tensor(labels: &[i64]) -> Result<Tensor> {
    Tensor::from_vec(&[labels.len()], labels.iter().map(|&v| v as f32).collect())
}
