//! The options of a recurrent cell, with Keras's argument names and defaults.

use crate::init::Initializer;
use crate::kernels::act::Activation;
use crate::{Error, Result};

/// Which recurrence a cell computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// Elman RNN: h = act(x W_ih^T + h W_hh^T + b).
    SimpleRnn,
    /// Long short-term memory (Hochreiter & Schmidhuber, 1997), gates i, f, g, o.
    Lstm,
    /// Gated recurrent unit (Cho et al., 2014), gates r, z, n.
    Gru,
}

impl CellKind {
    /// Number of gate blocks in the projections (1, 4 or 3).
    pub fn gates(self) -> usize {
        match self {
            CellKind::SimpleRnn => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// Keras's layer class name.
    pub fn keras_name(self) -> &'static str {
        match self {
            CellKind::SimpleRnn => "SimpleRNN",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }
}

/// Options of one recurrent cell. Defaults are Keras's; [`CellConfig::torch_like`]
/// switches to PyTorch's initialisation and two-bias layout.
#[derive(Debug, Clone, PartialEq)]
pub struct CellConfig {
    /// The recurrence.
    pub kind: CellKind,
    /// Features per input step.
    pub input_size: usize,
    /// Hidden units H.
    pub units: usize,
    /// Output / candidate activation (Keras `activation`, default tanh).
    pub activation: Activation,
    /// Gate activation (Keras `recurrent_activation`, default sigmoid; LSTM and GRU only).
    pub recurrent_activation: Activation,
    /// Whether the cell has biases at all.
    pub use_bias: bool,
    /// LSTM: initialise the forget-gate bias to 1 (Keras default true).
    pub unit_forget_bias: bool,
    /// GRU: apply the reset gate after the recurrent product (PyTorch/cuDNN, Keras >= 2.3
    /// default, two biases) or before it (Keras 2.2, one bias).
    pub reset_after: bool,
    /// LSTM/SimpleRNN: keep PyTorch's two bias vectors `bias_ih` and `bias_hh`
    /// (the CuDNNLSTM count) instead of Keras's one.
    pub two_biases: bool,
    /// Initialiser of `weight_ih` (Keras kernel).
    pub kernel_initializer: Initializer,
    /// Initialiser of `weight_hh` (Keras recurrent_kernel).
    pub recurrent_initializer: Initializer,
    /// Initialiser of the biases.
    pub bias_initializer: Initializer,
    /// Fraction of input features dropped (one mask per sequence), training only.
    pub dropout: f32,
    /// Fraction of the recurrent state dropped before the recurrent product
    /// (one mask per sequence), training only.
    pub recurrent_dropout: f32,
}

impl CellConfig {
    /// A cell of `kind` with Keras's defaults.
    pub fn new(kind: CellKind, input_size: usize, units: usize) -> Self {
        CellConfig {
            kind,
            input_size,
            units,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
            unit_forget_bias: true,
            reset_after: true,
            two_biases: false,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            bias_initializer: Initializer::Zeros,
            dropout: 0.0,
            recurrent_dropout: 0.0,
        }
    }

    /// Keras `SimpleRNN` defaults.
    pub fn simple_rnn(input_size: usize, units: usize) -> Self {
        Self::new(CellKind::SimpleRnn, input_size, units)
    }

    /// Keras `LSTM` defaults.
    pub fn lstm(input_size: usize, units: usize) -> Self {
        Self::new(CellKind::Lstm, input_size, units)
    }

    /// Keras `GRU` defaults (reset_after = true).
    pub fn gru(input_size: usize, units: usize) -> Self {
        Self::new(CellKind::Gru, input_size, units)
    }

    /// PyTorch's layout and initialisation: two biases, every weight and bias
    /// U(-1/sqrt(H), 1/sqrt(H)), no unit forget bias, GRU reset after.
    pub fn torch_like(mut self) -> Self {
        self.two_biases = true;
        self.reset_after = true;
        self.unit_forget_bias = false;
        self.kernel_initializer = Initializer::TorchDefault;
        self.recurrent_initializer = Initializer::TorchDefault;
        self.bias_initializer = Initializer::TorchDefault;
        self
    }

    /// Sets the activation.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// Sets the recurrent (gate) activation.
    pub fn recurrent_activation(mut self, a: Activation) -> Self {
        self.recurrent_activation = a;
        self
    }

    /// Sets GRU's reset_after.
    pub fn reset_after(mut self, on: bool) -> Self {
        self.reset_after = on;
        self
    }

    /// Sets the two-bias (cuDNN/PyTorch) layout.
    pub fn two_biases(mut self, on: bool) -> Self {
        self.two_biases = on;
        self
    }

    /// Sets input and recurrent dropout rates.
    pub fn dropout(mut self, dropout: f32, recurrent_dropout: f32) -> Self {
        self.dropout = dropout;
        self.recurrent_dropout = recurrent_dropout;
        self
    }

    /// Gate blocks times units: the width of the projections.
    pub fn gate_width(&self) -> usize {
        self.kind.gates() * self.units
    }

    /// Whether the cell holds a `bias_hh` slot.
    pub fn has_bias_hh(&self) -> bool {
        self.use_bias
            && match self.kind {
                CellKind::Gru => self.reset_after,
                _ => self.two_biases,
            }
    }

    /// Parameter count as Keras reports it.
    pub fn param_count(&self) -> usize {
        let gw = self.gate_width();
        let biases = usize::from(self.use_bias) + usize::from(self.has_bias_hh());
        gw * (self.input_size + self.units) + biases * gw
    }

    /// Checks sizes, rates and activations; errors name the value at fault.
    pub fn validate(&self) -> Result<()> {
        let name = self.kind.keras_name();
        if self.units == 0 {
            return Err(Error::invalid(
                "units",
                format!("{name} needs at least 1 unit, got 0"),
            ));
        }
        if self.input_size == 0 {
            return Err(Error::invalid(
                "input_size",
                format!("{name} needs at least 1 input feature, got 0"),
            ));
        }
        for (what, rate) in [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
        ] {
            if !(0.0..1.0).contains(&rate) {
                return Err(Error::invalid(
                    what,
                    format!("must be in [0, 1), got {rate}"),
                ));
            }
        }
        match self.recurrent_activation {
            Activation::Sigmoid | Activation::HardSigmoid => {}
            other if self.kind != CellKind::SimpleRnn => {
                return Err(Error::invalid(
                    "recurrent_activation",
                    format!(
                        "{name} gates need sigmoid or hard_sigmoid, got {}",
                        other.name()
                    ),
                ))
            }
            _ => {}
        }
        Ok(())
    }
}
