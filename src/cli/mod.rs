//! Subcommands, one file each.

mod common;
mod compare;
mod eval;
mod predict;
mod summary;
mod train;

use clap::{Parser, Subcommand};

/// Gated recurrent neural networks (SimpleRNN, LSTM, GRU): build, train, evaluate
/// and sample models whose maths matches PyTorch and Keras.
#[derive(Debug, Parser)]
#[command(name = "gated", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a model's Keras-style summary table (layers, output shapes, parameter counts).
    Summary(summary::Args),
    /// Train a model from a spec on .npy arrays (Keras's model.fit) and write weights,
    /// history and learning curves.
    Train(Box<train::Args>),
    /// Run a saved model (gated or PyTorch weights) over inputs and write the outputs as .npy.
    Predict(predict::Args),
    /// Print a saved model's loss and metrics on inputs and targets.
    Eval(eval::Args),
    /// Train every cell type (SimpleRNN, LSTM, GRU, stacked, bidirectional, RNN(cell),
    /// StackedRNNCells) on every data set with the same budget and write a report with plots.
    Compare(Box<compare::Args>),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> gated::Result<()> {
    match cli.command {
        Command::Summary(a) => summary::run(a),
        Command::Train(a) => train::run(*a),
        Command::Predict(a) => predict::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Compare(a) => compare::run(*a),
    }
}
