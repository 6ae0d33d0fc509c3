//! Data: corpora, vocabularies and batching.
//!
//! - [`text`]: char-level corpora as in char-rnn — a strict UTF-8 loader, a
//!   sorted [`CharVocab`], the train/val/test split of the contiguous stream
//!   and the contiguous-lane batching used for truncated backpropagation
//!   through time with stateful recurrent layers.

pub mod text;

pub use text::{
    decode_text, read_text, split_stream, CharVocab, Chunk, ContiguousBatches, StreamSplit,
};
