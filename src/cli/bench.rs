//! `gated bench [--config A,B,...] [--threads N] [--repeats N] [--json]` (`--threads` is
//! the global flag: every core by default)

use gated::bench::{format_table, run_config, BenchConfig, BenchOptions, BenchResult};
use gated::Error;

/// Time the benchmark configurations (training step and inference).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Configurations (PyTorch comparison: bench/pytorch_compare.py, results: bench/RESULTS.md):\n  A      Embedding(20000,50) -> LSTM(128,seq) -> Dropout -> LSTM(128) -> Dropout -> Dense(5), batch 32, 10 steps\n  B      Embedding(20000,128) -> LSTM(128) -> Dense(1), batch 32, 80 steps\n  B-GRU  as B with GRU(128);  B-RNN  as B with SimpleRNN(128)\n  C      Embedding(65,64) -> LSTM(512) -> LSTM(512) -> TimeDistributed Dense(65), batch 32, 100 steps\n  D      LSTM(1024) on 1024 features, batch 64, 50 steps\n  E      the C model generating one character at a time (ms per character)\n\nEach configuration runs in a fresh child process so that its peak RSS is its own.\n\nExamples:\n  gated bench\n  gated bench --config B,D --threads 1\n  gated bench --json > results.json"
)]
pub struct Args {
    /// Comma-separated configuration ids (A, B, B-GRU, B-RNN, C, D, E); all by default.
    #[arg(long, value_delimiter = ',')]
    pub config: Vec<String>,
    /// Timed runs per measurement (default: depends on the configuration).
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Print JSON (an array of results) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run in this process rather than one child process per configuration.
    #[arg(long, hide = true)]
    pub in_process: bool,
}

pub fn run(args: Args) -> gated::Result<()> {
    let configs: Vec<BenchConfig> = if args.config.is_empty() {
        BenchConfig::ALL.to_vec()
    } else {
        args.config
            .iter()
            .map(|s| BenchConfig::parse(s))
            .collect::<gated::Result<_>>()?
    };
    let opts = BenchOptions {
        threads: gated::threads::num_threads(),
        repeats: args.repeats,
        warmup: args.warmup,
        ..BenchOptions::default()
    };
    let mut results = Vec::with_capacity(configs.len());
    for cfg in configs {
        let r = if args.in_process {
            run_config(cfg, &opts)?
        } else {
            run_child(cfg, &args)?
        };
        if !args.json && !args.in_process {
            eprintln!("{} done", r.config);
        }
        results.push(r);
    }
    if args.json {
        let s = serde_json::to_string_pretty(&results)
            .map_err(|e| Error::invalid("bench", format!("cannot write JSON: {e}")))?;
        println!("{s}");
    } else {
        print!("{}", format_table(&results));
    }
    Ok(())
}

/// Runs one configuration in a child process of this binary and reads its JSON.
fn run_child(cfg: BenchConfig, args: &Args) -> gated::Result<BenchResult> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::invalid("bench", format!("cannot find this program's path: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench", "--in-process", "--json", "--config", cfg.id()])
        .args(["--threads", &gated::threads::num_threads().to_string()])
        .args(["--warmup", &args.warmup.to_string()]);
    if let Some(r) = args.repeats {
        cmd.args(["--repeats", &r.to_string()]);
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::invalid("bench", format!("cannot start a child process: {e}")))?;
    if !out.status.success() {
        return Err(Error::invalid(
            "bench",
            format!("configuration {} failed ({})", cfg.id(), out.status),
        ));
    }
    let mut v: Vec<BenchResult> = serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::invalid(
            "bench",
            format!("configuration {}: unreadable child output: {e}", cfg.id()),
        )
    })?;
    v.pop()
        .ok_or_else(|| Error::invalid("bench", format!("configuration {}: no result", cfg.id())))
}
