//! # gated
//!
//! Gated recurrent neural networks — SimpleRNN, LSTM and GRU layers, their cells,
//! stacking and bidirectional wrappers — with explicit forward and backward
//! passes whose maths agrees with PyTorch and Keras, fast on a CPU, with no
//! Python at run time.
//!
//! ## Quick start
//!
//! An LSTM over a batch of sequences, forward and backward:
//!
//! ```
//! use gated::recurrent::Lstm;
//! use gated::{Layer, Tensor};
//!
//! # fn main() -> gated::Result<()> {
//! // Keras's LSTM(8, return_sequences=True) on 3 input features.
//! let mut lstm = Lstm::new(3, 8).return_sequences(true).seed(42).build()?;
//! assert_eq!(lstm.param_count(), 4 * (8 * (3 + 8) + 8)); // Keras's count: 384
//!
//! // [batch, time, features], batch-first as in Keras.
//! let x = Tensor::from_vec(&[2, 5, 3], (0..30).map(|v| v as f32 / 30.0).collect())?;
//! let out = lstm.forward_seq(&x, None, None, true)?;
//! assert_eq!(out.output.shape(), &[2, 5, 8]);
//!
//! // Backpropagation through time for d(loss)/d(output) = 1.
//! let grads = lstm.backward_seq(&Tensor::from_vec(&[2, 5, 8], vec![1.0; 80])?, None)?;
//! assert_eq!(grads.dx.shape(), &[2, 5, 3]);
//! let weight_grads = &lstm.params()[0].grads;
//! assert!(weight_grads.iter().any(|g| *g != 0.0));
//! # Ok(())
//! # }
//! ```
//!
//! ## Conventions
//!
//! - Tensors are batch-first `[batch, time, features]`; inside, sequences are time-major.
//! - Weights use PyTorch's names, layouts and gate orders (`weight_ih_l0`, i,f,g,o
//!   for LSTM, r,z,n for GRU); parameter counts follow Keras (one bias for LSTM
//!   and SimpleRNN unless the two-bias cuDNN layout is asked for).
//! - Masking, `go_backwards`, dropout masks (one per sequence) and `summary()`
//!   follow Keras.
//! - Every fallible function returns [`Result`]; nothing panics on caller input.
#![warn(missing_docs)]

pub mod bench;
pub mod compare;
pub mod conv;
pub mod data;
pub mod datasets;
pub mod demo;
pub mod error;
pub mod generate;
#[doc(hidden)]
pub mod gradcheck;
pub mod init;
pub mod io;
pub mod kernels;
pub mod layers;
pub mod memory;
pub mod model;
pub mod params;
pub mod plot;
pub mod recurrent;
pub mod rng;
pub mod tensor;
pub mod threads;
pub mod train;

pub use error::{Error, Result};
pub use init::Initializer;
pub use kernels::act::Activation;
pub use layers::Layer;
pub use params::Params;
pub use rng::Rng;
pub use tensor::Tensor;
