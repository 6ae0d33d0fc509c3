//! Subcommands, one file each.

mod bench;
mod common;
mod compare;
mod demo;
mod eval;
mod generate;
mod predict;
mod summary;
mod train;
mod train_text;

use clap::{Parser, Subcommand};

/// Gated recurrent neural networks (SimpleRNN, LSTM, GRU): build, train, evaluate
/// and sample models whose maths matches PyTorch and Keras.
#[derive(Debug, Parser)]
#[command(name = "gated", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Threads for the matrix products and the other parallel parts of training and
    /// inference. Default: the GATED_NUM_THREADS environment variable, else every core
    /// this process may use; as torch.set_num_threads / OMP_NUM_THREADS in PyTorch.
    /// Results are the same, bit for bit, for any count.
    #[arg(long, global = true, value_name = "N", allow_hyphen_values = true)]
    threads: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a model's Keras-style summary table (layers, output shapes, parameter counts).
    Summary(summary::Args),
    /// Train a model from a spec on .npy arrays (Keras's model.fit), or a char-level language
    /// model on a text file (--text), and write weights, history and learning curves.
    Train(Box<train::Args>),
    /// Stream text from a char model trained with `gated train --text`.
    Generate(generate::Args),
    /// SimpleRNN vs GRU vs LSTM on the embedded Reber grammar and the adding problem, then a
    /// small char LSTM generating text. No download; about two minutes.
    Demo(demo::Args),
    /// Run a saved model (gated or PyTorch weights) over inputs and write the outputs as .npy.
    Predict(predict::Args),
    /// Print a saved model's loss and metrics on inputs and targets.
    Eval(eval::Args),
    /// Time the benchmark configurations (training step, inference, generation).
    Bench(bench::Args),
    /// Train every cell type (SimpleRNN, LSTM, GRU, stacked, bidirectional, RNN(cell),
    /// StackedRNNCells) on every data set with the same budget and write a report with plots.
    Compare(Box<compare::Args>),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> gated::Result<()> {
    let env = std::env::var_os(gated::threads::ENV_VAR);
    let threads = gated::threads::resolve(cli.threads.as_deref(), env.as_deref())?;
    gated::threads::set_num_threads(threads);
    match cli.command {
        Command::Summary(a) => summary::run(a),
        Command::Train(a) => train::run(*a),
        Command::Generate(a) => generate::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Compare(a) => compare::run(*a),
    }
}
