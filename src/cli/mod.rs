//! Subcommands, one file each.

mod bench;
mod summary;

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
    /// Time the benchmark configurations (training step, inference, generation).
    Bench(bench::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> gated::Result<()> {
    match cli.command {
        Command::Summary(a) => summary::run(a),
        Command::Bench(a) => bench::run(a),
    }
}
