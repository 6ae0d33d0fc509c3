//! Reuters newswire topics (46 classes) with three recurrent layers side by
//! side, trained Keras's way with one-hot labels and categorical
//! cross-entropy.
//!
//! Keras's `reuters.load_data(num_words=10000, test_split=0.2)`, wires cut to
//! their last 200 words, labels one-hot (`to_categorical`, 46 columns), then
//! for each of SimpleRNN, GRU and LSTM: `Embedding(10000, 64) -> layer(64) ->
//! Dense(46, softmax)`, categorical cross-entropy, Adam, batch size 64, 10%
//! of the training wires held out for validation. Every model gets the same
//! epochs and seed; the table at the end gives the test accuracy.
//!
//! ```text
//! cargo run --release --example reuters_compare -- ~/.keras/datasets/reuters.npz [--epochs N] [--max-samples N]
//! ```
//!
//! `tests/keras_examples.rs` runs [`run`] on a small generated file of the
//! same format.

use std::path::PathBuf;
use std::time::Instant;

use gated::datasets::{load_reuters, pad_sequences, LoadOptions, Padding};
use gated::model::spec::parse_spec;
use gated::train::{evaluate, fit, FitConfig, Loss, Metric, NoHooks, Optimizer, Verbosity};
use gated::{Result, Tensor};

/// Keras's number of Reuters topics.
pub const TOPICS: usize = 46;

/// The recipe's knobs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Keras's `reuters.npz`.
    pub path: PathBuf,
    /// Vocabulary size.
    pub num_words: usize,
    /// Tokens per wire.
    pub maxlen: usize,
    /// Embedding width and recurrent units.
    pub units: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Epochs per model.
    pub epochs: usize,
    /// Use at most this many training and test wires.
    pub max_samples: Option<usize>,
    /// Layer types compared.
    pub layers: Vec<&'static str>,
    /// Progress output.
    pub verbosity: Verbosity,
}

impl Config {
    /// The default recipe for the file at `path`.
    pub fn new(path: PathBuf) -> Self {
        Config {
            path,
            num_words: 10_000,
            maxlen: 200,
            units: 64,
            batch_size: 64,
            epochs: 10,
            max_samples: None,
            layers: vec!["simple_rnn", "gru", "lstm"],
            verbosity: Verbosity::ProgressBar,
        }
    }

    /// The model spec for one layer type.
    pub fn spec(&self, layer: &str) -> String {
        format!(
            "name = \"reuters_{layer}\"\n[input]\nshape = [{}]\ndtype = \"int32\"\n\n\
             [[layer]]\ntype = \"embedding\"\ninput_dim = {}\noutput_dim = {}\n\n\
             [[layer]]\ntype = \"{layer}\"\nunits = {}\n\n\
             [[layer]]\ntype = \"dense\"\nunits = {TOPICS}\n\n\
             [[layer]]\ntype = \"activation\"\nactivation = \"softmax\"\n",
            self.maxlen, self.num_words, self.units, self.units
        )
    }
}

/// One row of the result table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Layer type.
    pub layer: String,
    /// Parameters.
    pub params: usize,
    /// Test accuracy after the last epoch.
    pub test_accuracy: f64,
    /// Best validation accuracy over the epochs.
    pub best_val_accuracy: f64,
    /// Training seconds.
    pub seconds: f64,
}

/// Labels as one-hot rows `[N, TOPICS]` (Keras's `to_categorical`).
pub fn one_hot(labels: &[i64]) -> Result<Tensor> {
    let mut v = vec![0.0; labels.len() * TOPICS];
    for (i, &l) in labels.iter().enumerate() {
        if l < 0 || l as usize >= TOPICS {
            return Err(gated::Error::invalid(
                "label",
                format!("{l} is not a Reuters topic (0..{TOPICS})"),
            ));
        }
        v[i * TOPICS + l as usize] = 1.0;
    }
    Tensor::from_vec(&[labels.len(), TOPICS], v)
}

/// Trains and scores every layer type.
pub fn run(cfg: &Config) -> Result<Vec<Row>> {
    let opts = LoadOptions {
        num_words: Some(cfg.num_words),
        ..LoadOptions::default()
    };
    let (train, test) = load_reuters(&cfg.path, &opts)?;
    let cap = |n: usize| cfg.max_samples.unwrap_or(n).min(n);
    let (n, nt) = (cap(train.x.len()), cap(test.x.len()));
    let x = pad_sequences(
        &train.x[..n],
        Some(cfg.maxlen),
        Padding::Pre,
        Padding::Pre,
        0.0,
    );
    let xt = pad_sequences(
        &test.x[..nt],
        Some(cfg.maxlen),
        Padding::Pre,
        Padding::Pre,
        0.0,
    );
    let y = one_hot(&train.y[..n])?;
    let yt = one_hot(&test.y[..nt])?;
    let loss = Loss::CategoricalCrossEntropy;
    let mut rows = Vec::new();
    for layer in &cfg.layers {
        let mut model = parse_spec(std::path::Path::new("reuters"), &cfg.spec(layer), false, 0)?;
        if cfg.verbosity != Verbosity::Quiet {
            println!("{layer}: {n} training wires, {nt} test wires");
            print!("{}", model.summary());
        }
        let fit_cfg = FitConfig::new(loss)
            .epochs(cfg.epochs)
            .batch_size(cfg.batch_size)
            .metrics(vec![Metric::Accuracy])
            .validation_split(0.1)
            .verbosity(cfg.verbosity);
        let mut opt = Optimizer::parse("adam", 1e-3)?;
        let t0 = Instant::now();
        let history = fit(&mut model, &mut opt, &x, &y, &fit_cfg, &mut NoHooks)?;
        let seconds = t0.elapsed().as_secs_f64();
        let scores = evaluate(&mut model, &xt, &yt, loss, &[Metric::Accuracy], 256)?;
        rows.push(Row {
            layer: layer.to_string(),
            params: model.param_counts().0,
            test_accuracy: scores.get("accuracy").copied().unwrap_or(f64::NAN),
            best_val_accuracy: history
                .series("val_accuracy")
                .iter()
                .map(|p| p.1)
                .fold(f64::NAN, f64::max),
            seconds,
        });
    }
    Ok(rows)
}

/// `PATH [--epochs N] [--max-samples N]` into a config.
pub fn parse_args(args: &[String]) -> std::result::Result<Config, String> {
    let mut it = args.iter();
    let path = it
        .next()
        .ok_or("usage: reuters_compare PATH/reuters.npz [--epochs N] [--max-samples N]")?;
    let mut cfg = Config::new(PathBuf::from(path));
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or(format!("{flag} needs a whole number"))?;
        match flag.as_str() {
            "--epochs" => cfg.epochs = value,
            "--max-samples" => cfg.max_samples = Some(value),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(cfg)
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    match run(&cfg) {
        Ok(rows) => {
            println!("| layer | parameters | test accuracy | best val accuracy | seconds |");
            println!("| --- | ---: | ---: | ---: | ---: |");
            for r in rows {
                println!(
                    "| {} | {} | {:.4} | {:.4} | {:.1} |",
                    r.layer, r.params, r.test_accuracy, r.best_val_accuracy, r.seconds
                );
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
