//! Recurrent cells and layers.
//!
//! - Cells: [`SimpleRnnCell`], [`LstmCell`], [`GruCell`], all implementing [`Cell`].
//! - [`Rnn`]: the one driver running a cell, or a stack of cells interleaved per
//!   step (Keras `StackedRNNCells`), over a sequence, forward and backward.
//! - Builders with Keras's names: [`SimpleRnn`], [`Lstm`], [`Gru`], [`StackedRnnCells`].
//! - Wrappers: [`Bidirectional`] (merge modes as Keras) and [`MultiLayerRnn`]
//!   (PyTorch's `num_layers`, `bidirectional` and inter-layer `dropout`).
//!
//! Which framework each option follows: layer arguments, masking, `go_backwards`,
//! dropout masks and parameter counts follow Keras; weight names, layouts, gate
//! orders and the ordering of bidirectional outputs and states follow PyTorch.

mod bidirectional;
mod builder;
mod cell;
mod config;
mod gru;
mod keras;
mod lstm;
mod multilayer;
mod pool;
mod rnn;
mod rows;
mod simple;
mod time_loop;
mod tokens;

pub use bidirectional::{Bidirectional, MergeMode};
pub use builder::{Gru, Lstm, RnnBuilder, SimpleRnn, StackedRnnCells};
pub use cell::{Cell, CellCore, StepBackward, StepForward};
pub use config::{CellConfig, CellKind};
pub use gru::GruCell;
pub use keras::set_keras_weights;
pub use lstm::LstmCell;
pub use multilayer::{MultiLayerOutput, MultiLayerRnn};
pub use rnn::{CellState, Rnn, RnnGrads, RnnOptions, RnnOutput};
pub use simple::SimpleRnnCell;

use crate::rng::Rng;
use crate::Result;

/// Builds the built-in cell for `config`; `suffix` completes PyTorch's weight
/// names (`_l0`, `_l1_reverse`).
pub fn build_cell(config: CellConfig, suffix: &str, rng: &mut Rng) -> Result<Box<dyn Cell>> {
    Ok(match config.kind {
        CellKind::SimpleRnn => Box::new(SimpleRnnCell::new(config, suffix, rng)?),
        CellKind::Lstm => Box::new(LstmCell::new(config, suffix, rng)?),
        CellKind::Gru => Box::new(GruCell::new(config, suffix, rng)?),
    })
}
