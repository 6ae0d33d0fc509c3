//! `gated compare --data SPEC[,SPEC...] --cells CELL[,CELL...] --epochs N --out DIR`

use std::path::PathBuf;
use std::time::Instant;

use gated::compare::{data::parse_data_specs, report, run as run_compare, CompareConfig, CELLS};

/// Train every cell type on every data set with the same budget and write a report.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Data sets (--data, comma-separated, or repeat the flag; a token `LOADER:` starts a new spec):
  fashion-mnist:DIR        IDX folder (train-images-idx3-ubyte[.gz], ...), rows as 28 steps, \
10 classes. Debian: apt-get install dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist
  mnist:DIR                the same for MNIST
  ts:TRAIN.ts,TEST.ts      UCR/UEA classification, variable lengths zero-padded and masked
  csv:PATH,target=COL,lookback=L[,horizon=1][,features=A|B][,skip=Date][,test=0.2][,scale=standard|minmax]
                           regression on the next H values (MSE loss, MAE reported in original units);
                           windows in time order: train, then validation, then the last `test` part
  imdb:PATH.npz[,num_words=10000][,maxlen=200][,embedding=32]     Keras's imdb.npz, binary
  reuters:PATH.npz[,num_words=10000][,maxlen=200][,embedding=32]  Keras's reuters.npz, 46 topics,
                           sparse categorical cross-entropy

Cells: simple_rnn, lstm, gru (one layer); stacked_lstm (two LSTM layers); bilstm \
(Bidirectional(LSTM)); rnn_lstm_cell (the generic rnn layer with one LSTM cell); stacked_cells \
(rnn with two LSTM cells, StackedRNNCells).

Writes into --out: report.md (a table per data set: test metric, parameters, seconds per epoch, \
best validation epoch), <data>_val.svg (validation curves, one line per cell), <data>_time.svg \
(test metric against training time), summaries.md (Keras summaries), results.json.

Examples:
  gated compare --data fashion-mnist:/usr/share/datasets/fashion-mnist --cells lstm --units 128 \\
      --epochs 5 --batch-size 64 --out runs/fmnist
  gated compare --data ts:JapaneseVowels_TRAIN.ts,JapaneseVowels_TEST.ts,csv:Lynx.csv,target=1,lookback=10 \\
      --cells simple_rnn,lstm,gru,bilstm --epochs 20 --out runs/compare")]
pub struct Args {
    /// Data-set specs `LOADER:ARGS` (see below); several separated by commas or given by
    /// repeating --data.
    #[arg(long, required = true)]
    pub data: Vec<String>,
    /// Cell types to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "simple_rnn,lstm,gru")]
    pub cells: Vec<String>,
    /// Epochs per model.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Output directory (created if missing; report files in it are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Units of every recurrent layer or cell.
    #[arg(long, default_value_t = 32)]
    pub units: usize,
    /// Samples per gradient step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Seed of the weights, shuffles and validation split; the same for every model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use at most N training samples (before validation is held out) and N test samples per
    /// data set: a random subset for classification, the most recent windows for csv.
    #[arg(long)]
    pub max_samples: Option<usize>,
    /// Fraction of the training samples held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub validation_split: f64,
    /// The optimizer, the same for every model: sgd, rmsprop, adagrad, adam, adamw, adadelta.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Rescale gradients whose global L2 norm exceeds this. Off by default.
    #[arg(long)]
    pub clipnorm: Option<f32>,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: Args) -> gated::Result<()> {
    let t0 = Instant::now();
    let specs = parse_data_specs(&args.data)?;
    let mut cells = Vec::new();
    for c in &args.cells {
        let c = c.trim().to_ascii_lowercase();
        if !c.is_empty() && !cells.contains(&c) {
            cells.push(c);
        }
    }
    let mut cfg = CompareConfig::new(cells);
    cfg.epochs = args.epochs;
    cfg.units = args.units;
    cfg.batch_size = args.batch_size;
    cfg.seed = args.seed;
    cfg.max_samples = args.max_samples;
    cfg.validation = args.validation_split;
    cfg.optimizer = args.optimizer;
    cfg.lr = args.lr;
    cfg.clipnorm = args.clipnorm;
    cfg.progress = !args.quiet;
    cfg.command = std::env::args()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    cfg.validate()?;
    debug_assert!(cfg.cells.iter().all(|c| CELLS.contains(&c.as_str())));
    let results = run_compare(&specs, &cfg)?;
    report::write(&args.out, &results, &cfg, t0.elapsed().as_secs_f64())?;
    if !args.quiet {
        eprintln!(
            "wrote {} ({:.1} s)",
            args.out.join("report.md").display(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
