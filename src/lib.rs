//! # gated
//!
//! Gated recurrent neural networks — SimpleRNN, LSTM and GRU layers, their cells,
//! stacking and bidirectional wrappers — with explicit forward and backward
//! passes whose maths agrees with PyTorch and Keras, fast on a CPU, with no
//! Python at run time.
#![warn(missing_docs)]

pub mod error;
#[doc(hidden)]
pub mod gradcheck;
pub mod init;
pub mod kernels;
pub mod layers;
pub mod params;
pub mod rng;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use init::Initializer;
pub use kernels::act::Activation;
pub use params::Params;
pub use rng::Rng;
pub use tensor::Tensor;
