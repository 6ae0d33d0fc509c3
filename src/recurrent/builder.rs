//! Keras-named entry points: `Lstm::new(input, units).return_sequences(true).build()`.

use super::config::{CellConfig, CellKind};
use super::rnn::{Rnn, RnnOptions};
use crate::init::Initializer;
use crate::kernels::act::Activation;
use crate::Result;

/// Options for an [`Rnn`] layer, finished with [`RnnBuilder::build`].
#[derive(Debug, Clone, PartialEq)]
pub struct RnnBuilder {
    /// One config per cell (one for SimpleRNN/LSTM/GRU, several for StackedRNNCells).
    pub configs: Vec<CellConfig>,
    /// Layer options.
    pub options: RnnOptions,
    /// Layer name.
    pub name: String,
    /// Seed for the weights and dropout masks.
    pub seed: u64,
}

macro_rules! cell_setter {
    ($(#[$doc:meta])* $fn:ident, $field:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $fn(mut self, value: $ty) -> Self {
            self.configs.iter_mut().for_each(|c| c.$field = value);
            self
        }
    };
}

macro_rules! option_setter {
    ($(#[$doc:meta])* $fn:ident) => {
        $(#[$doc])*
        pub fn $fn(mut self, on: bool) -> Self {
            self.options.$fn = on;
            self
        }
    };
}

impl RnnBuilder {
    fn single(kind: CellKind, input_size: usize, units: usize, name: &str) -> Self {
        RnnBuilder {
            configs: vec![CellConfig::new(kind, input_size, units)],
            options: RnnOptions::default(),
            name: name.to_string(),
            seed: 0,
        }
    }

    option_setter!(
        /// Return every step's output.
        return_sequences
    );
    option_setter!(
        /// Also return the final states.
        return_state
    );
    option_setter!(
        /// Process the sequence backwards (outputs in reversed order).
        go_backwards
    );
    option_setter!(
        /// Carry the final state into the next call.
        stateful
    );
    cell_setter!(
        /// Output/candidate activation.
        activation, activation, Activation
    );
    cell_setter!(
        /// Gate activation.
        recurrent_activation, recurrent_activation, Activation
    );
    cell_setter!(
        /// GRU reset_after.
        reset_after, reset_after, bool
    );
    cell_setter!(
        /// PyTorch/cuDNN two-bias layout.
        two_biases, two_biases, bool
    );
    cell_setter!(
        /// Whether to use biases.
        use_bias, use_bias, bool
    );
    cell_setter!(
        /// LSTM forget-gate bias initialised to 1.
        unit_forget_bias, unit_forget_bias, bool
    );
    cell_setter!(
        /// Input dropout rate.
        dropout, dropout, f32
    );
    cell_setter!(
        /// Recurrent dropout rate.
        recurrent_dropout, recurrent_dropout, f32
    );
    cell_setter!(
        /// Initialiser of `weight_ih`.
        kernel_initializer, kernel_initializer, Initializer
    );
    cell_setter!(
        /// Initialiser of `weight_hh`.
        recurrent_initializer, recurrent_initializer, Initializer
    );
    cell_setter!(
        /// Initialiser of the biases.
        bias_initializer, bias_initializer, Initializer
    );

    /// PyTorch's initialisation and two-bias layout for every cell.
    pub fn torch_like(mut self) -> Self {
        self.configs = self
            .configs
            .into_iter()
            .map(CellConfig::torch_like)
            .collect();
        self
    }

    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Sets the seed of the weights and dropout masks.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Parameter count, Keras's way.
    pub fn param_count(&self) -> usize {
        self.configs.iter().map(CellConfig::param_count).sum()
    }

    /// Builds the layer, validating every option.
    pub fn build(self) -> Result<Rnn> {
        Rnn::from_configs(&self.name, &self.configs, self.options, self.seed)
    }
}

/// Keras `SimpleRNN`.
#[derive(Debug)]
pub struct SimpleRnn;
/// Keras `LSTM` (and `CuDNNLSTM` with [`RnnBuilder::two_biases`]).
#[derive(Debug)]
pub struct Lstm;
/// Keras `GRU` (and `CuDNNGRU`: reset_after, the default).
#[derive(Debug)]
pub struct Gru;

impl SimpleRnn {
    /// A SimpleRNN layer with Keras's defaults.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(input_size: usize, units: usize) -> RnnBuilder {
        RnnBuilder::single(CellKind::SimpleRnn, input_size, units, "simple_rnn")
    }
}

impl Lstm {
    /// An LSTM layer with Keras's defaults.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(input_size: usize, units: usize) -> RnnBuilder {
        RnnBuilder::single(CellKind::Lstm, input_size, units, "lstm")
    }
}

impl Gru {
    /// A GRU layer with Keras's defaults (reset_after = true).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(input_size: usize, units: usize) -> RnnBuilder {
        RnnBuilder::single(CellKind::Gru, input_size, units, "gru")
    }
}

/// Keras `StackedRNNCells`: several cells applied one after another at every
/// step, run by one [`Rnn`]. Gives the same results as stacked layers.
#[derive(Debug)]
pub struct StackedRnnCells;

impl StackedRnnCells {
    /// A stacked-cells layer; each config's input size must be the previous units.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(configs: Vec<CellConfig>) -> RnnBuilder {
        RnnBuilder {
            configs,
            options: RnnOptions::default(),
            name: "rnn".to_string(),
            seed: 0,
        }
    }
}
