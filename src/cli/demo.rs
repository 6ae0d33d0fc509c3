//! `gated demo [reber|adding|text]`

use std::io::Write as _;
use std::path::{Path, PathBuf};

use gated::demo::suite::{
    run_adding, run_reber, run_text, AddingConfig, ReberConfig, TaskReport, TextConfig, ALL_CELLS,
};
use gated::plot::save_svg;
use gated::recurrent::CellKind;
use gated::train::charlm::parse_cell;
use gated::{Error, Result};

/// Why gates matter, in about two minutes: SimpleRNN, GRU and LSTM side by side.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without a subcommand, runs all three parts with their default settings:
  1. reber   the embedded Reber grammar (Hochreiter & Schmidhuber 1997, experiment 1): read a
             string such as BTBPVVETE symbol by symbol and predict the set of legal next symbols;
             a string counts as correct only if every step is. The second symbol decides the
             second to last one, so the net must remember it across the inner string.
  2. adding  the adding problem: 100 steps of (value, marker); the target is the sum of the
             two marked values. Always answering 1.0 scores MSE 1/6 = 0.167.
  3. text    a small LSTM trained briefly on a text built into the binary, then sampled at
             temperatures 0.2, 0.5, 1.0, 1.5 and greedily.
Each task prints a table (cell, parameters, final metric, steps to solve, time) and writes a
learning-curve plot to --out (reber.svg, adding.svg). Nothing is downloaded.

Examples:
  gated demo
  gated demo reber --cell lstm --steps 3000
  gated demo adding --length 100 --cell lstm --steps 2000
  gated demo text --steps 600")]
pub struct Args {
    #[command(subcommand)]
    part: Option<Part>,
    /// Directory for the learning-curve plots (created if missing).
    #[arg(long, global = true, default_value = "demo_out")]
    out: PathBuf,
    /// Seed of the weights, the training data and the samples.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    /// Print only the tables and samples, no progress lines.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Part {
    /// The embedded Reber grammar: predict the set of legal next symbols at every step.
    Reber(ReberArgs),
    /// The adding problem: output the sum of the two marked values of a long sequence.
    Adding(AddingArgs),
    /// Train a small char LSTM on the built-in text and sample from it.
    Text(TextArgs),
}

/// Which cells to train: lstm, gru, rnn or all.
fn cells(name: &str) -> Result<Vec<CellKind>> {
    if name.trim().eq_ignore_ascii_case("all") {
        Ok(ALL_CELLS.to_vec())
    } else {
        Ok(vec![parse_cell(name)?])
    }
}

#[derive(Debug, clap::Args)]
struct ReberArgs {
    /// The cell to train: lstm, gru, rnn, or all (side by side).
    #[arg(long, default_value = "all")]
    cell: String,
    /// Optimisation steps per cell.
    #[arg(long)]
    steps: Option<usize>,
    /// Hidden units.
    #[arg(long)]
    units: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Evaluate on the held-out strings every this many steps.
    #[arg(long)]
    eval_every: Option<usize>,
    /// Number of held-out strings.
    #[arg(long)]
    eval_size: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct AddingArgs {
    /// Sequence length T (the two markers fall in the first and the second half).
    #[arg(long)]
    length: Option<usize>,
    /// The cell to train: lstm, gru, rnn, or all (side by side).
    #[arg(long, default_value = "all")]
    cell: String,
    /// Optimisation steps per cell.
    #[arg(long)]
    steps: Option<usize>,
    /// Hidden units.
    #[arg(long)]
    units: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Evaluate on the test sequences every this many steps.
    #[arg(long)]
    eval_every: Option<usize>,
    /// Number of test sequences.
    #[arg(long)]
    eval_size: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct TextArgs {
    /// Optimisation steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Characters per sample.
    #[arg(long)]
    length: Option<usize>,
}

fn prepare_out(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| {
        Error::invalid(
            "--out",
            format!("cannot create the output directory {}: {e}", out.display()),
        )
    })
}

fn finish_task(report: &TaskReport, out: &Path, file: &str) -> Result<()> {
    let path = out.join(file);
    save_svg(&path, &[report.plot()])?;
    println!("{}wrote {}\n", report.table(), path.display());
    Ok(())
}

fn reber(a: &ReberArgs, seed: u64, out: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let d = ReberConfig::default();
    let cfg = ReberConfig {
        cells: cells(&a.cell)?,
        steps: a.steps.unwrap_or(d.steps),
        units: a.units.unwrap_or(d.units),
        lr: a.lr.unwrap_or(d.lr),
        eval_every: a.eval_every.unwrap_or(d.eval_every),
        eval_size: a.eval_size.unwrap_or(d.eval_size),
        seed,
        ..d
    };
    let report = run_reber(&cfg, progress)?;
    finish_task(&report, out, "reber.svg")
}

fn adding(a: &AddingArgs, seed: u64, out: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let d = AddingConfig::default();
    let cfg = AddingConfig {
        cells: cells(&a.cell)?,
        length: a.length.unwrap_or(d.length),
        steps: a.steps.unwrap_or(d.steps),
        units: a.units.unwrap_or(d.units),
        lr: a.lr.unwrap_or(d.lr),
        eval_every: a.eval_every.unwrap_or(d.eval_every),
        eval_size: a.eval_size.unwrap_or(d.eval_size),
        seed,
        ..d
    };
    let report = run_adding(&cfg, progress)?;
    finish_task(&report, out, "adding.svg")
}

fn text(a: &TextArgs, seed: u64, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let d = TextConfig::default();
    let cfg = TextConfig {
        steps: a.steps.unwrap_or(d.steps),
        length: a.length.unwrap_or(d.length),
        seed,
        ..d
    };
    if cfg.steps == 0 || cfg.length == 0 {
        return Err(Error::invalid("--steps/--length", "must be at least 1"));
    }
    let r = run_text(&cfg, progress)?;
    let val = r
        .val_loss
        .map_or(String::new(), |v| format!(", validation loss {v:.3}"));
    println!(
        "Char LSTM on the built-in text ({} characters): train loss {:.3} nats/char{val}, {:.1}s",
        gated::demo::SAMPLE_TEXT.chars().count(),
        r.train_loss,
        r.seconds
    );
    for s in &r.samples {
        println!("--- {} ---\n{}", s.label, s.text);
    }
    println!();
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    let quiet = a.quiet;
    // The header goes out with the first progress line: after the arguments
    // are checked, so that a bad one still gives a single line.
    let mut header = Some(format!(
        "demo: {} threads (--threads N or GATED_NUM_THREADS to change)",
        gated::threads::num_threads()
    ));
    let mut progress = |line: &str| {
        if !quiet {
            if let Some(h) = header.take() {
                eprintln!("{h}");
            }
            eprintln!("{line}");
        }
    };
    let start = std::time::Instant::now();
    match &a.part {
        Some(Part::Reber(r)) => {
            prepare_out(&a.out)?;
            reber(r, a.seed, &a.out, &mut progress)?;
        }
        Some(Part::Adding(ad)) => {
            prepare_out(&a.out)?;
            adding(ad, a.seed, &a.out, &mut progress)?;
        }
        Some(Part::Text(t)) => text(t, a.seed, &mut progress)?,
        None => {
            prepare_out(&a.out)?;
            let all = "all".to_string();
            let r = ReberArgs {
                cell: all.clone(),
                steps: None,
                units: None,
                lr: None,
                eval_every: None,
                eval_size: None,
            };
            reber(&r, a.seed, &a.out, &mut progress)?;
            let ad = AddingArgs {
                length: None,
                cell: all,
                steps: None,
                units: None,
                lr: None,
                eval_every: None,
                eval_size: None,
            };
            adding(&ad, a.seed, &a.out, &mut progress)?;
            text(
                &TextArgs {
                    steps: None,
                    length: None,
                },
                a.seed,
                &mut progress,
            )?;
            println!("demo finished in {:.1}s", start.elapsed().as_secs_f64());
        }
    }
    std::io::stdout()
        .flush()
        .map_err(|e| Error::io("<stdout>", e))
}
