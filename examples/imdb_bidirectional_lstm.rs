//! Keras's `imdb_bidirectional_lstm.py` in gated: sentiment of IMDB movie
//! reviews with a bidirectional LSTM.
//!
//! The model and recipe are Keras's: the 20,000 most frequent words, reviews
//! cut to their last 100 words, `Embedding(20000, 128)`,
//! `Bidirectional(LSTM(64))` (forward and backward outputs concatenated),
//! `Dropout(0.5)`, `Dense(1, sigmoid)`, binary cross-entropy, Adam, batch
//! size 32, 4 epochs, scored on the test split after every epoch.
//!
//! ```text
//! cargo run --release --example imdb_bidirectional_lstm -- ~/.keras/datasets/imdb.npz [--epochs N] [--max-samples N]
//! ```
//!
//! `imdb.npz` is Keras's cached download (`keras.datasets.imdb.load_data`);
//! see `docs/datasets.md`. The integration test `tests/keras_examples.rs`
//! runs [`run`] on a small generated file of the same format.

use std::path::PathBuf;

use gated::datasets::{labels_to_tensor, load_imdb, pad_sequences, LoadOptions, Padding};
use gated::model::spec::parse_spec;
use gated::train::{
    evaluate, fit, FitConfig, History, Loss, Metric, NoHooks, Optimizer, Verbosity,
};
use gated::{Result, Tensor};

/// The recipe's knobs; [`Config::keras`] is `imdb_bidirectional_lstm.py`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Keras's `imdb.npz`.
    pub path: PathBuf,
    /// Vocabulary size (`max_features`).
    pub max_features: usize,
    /// Tokens per review after padding/truncation.
    pub maxlen: usize,
    /// Embedding width.
    pub embedding: usize,
    /// LSTM units per direction.
    pub units: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Epochs.
    pub epochs: usize,
    /// Use at most this many training and test reviews (`None`: all).
    pub max_samples: Option<usize>,
    /// Progress output.
    pub verbosity: Verbosity,
}

impl Config {
    /// `imdb_bidirectional_lstm.py`'s settings for the file at `path`.
    pub fn keras(path: PathBuf) -> Self {
        Config {
            path,
            max_features: 20_000,
            maxlen: 100,
            embedding: 128,
            units: 64,
            batch_size: 32,
            epochs: 4,
            max_samples: None,
            verbosity: Verbosity::ProgressBar,
        }
    }

    /// The model as a spec (prints Keras's summary).
    pub fn spec(&self) -> String {
        format!(
            "name = \"imdb_bidirectional_lstm\"\n[input]\nshape = [{}]\ndtype = \"int32\"\n\n\
             [[layer]]\ntype = \"embedding\"\ninput_dim = {}\noutput_dim = {}\n\n\
             [[layer]]\ntype = \"bidirectional\"\n[layer.layer]\ntype = \"lstm\"\nunits = {}\n\n\
             [[layer]]\ntype = \"dropout\"\nrate = 0.5\n\n\
             [[layer]]\ntype = \"dense\"\nunits = 1\nactivation = \"sigmoid\"\n",
            self.maxlen, self.max_features, self.embedding, self.units
        )
    }
}

/// What a run gives: the history and the final test loss and accuracy.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Per-epoch loss/accuracy and test (`val_`) scores.
    pub history: History,
    /// Test loss after the last epoch.
    pub test_loss: f64,
    /// Test accuracy after the last epoch.
    pub test_accuracy: f64,
}

fn prepare(seqs: &[Vec<i64>], labels: &[i64], cfg: &Config) -> Result<(Tensor, Tensor)> {
    let n = cfg.max_samples.unwrap_or(seqs.len()).min(seqs.len());
    let x = pad_sequences(
        &seqs[..n],
        Some(cfg.maxlen),
        Padding::Pre,
        Padding::Pre,
        0.0,
    );
    Ok((x, labels_to_tensor(&labels[..n])?))
}

/// Loads the data, trains and scores the model.
pub fn run(cfg: &Config) -> Result<Outcome> {
    let opts = LoadOptions {
        num_words: Some(cfg.max_features),
        ..LoadOptions::default()
    };
    let (train, test) = load_imdb(&cfg.path, &opts)?;
    let (x, y) = prepare(&train.x, &train.y, cfg)?;
    let (xt, yt) = prepare(&test.x, &test.y, cfg)?;
    let mut model = parse_spec(
        std::path::Path::new("imdb_bidirectional_lstm"),
        &cfg.spec(),
        false,
        0,
    )?;
    if cfg.verbosity != Verbosity::Quiet {
        println!(
            "{} train sequences, {} test sequences",
            x.shape()[0],
            xt.shape()[0]
        );
        print!("{}", model.summary());
    }
    let loss = Loss::BinaryCrossEntropy { from_logits: false };
    let fit_cfg = FitConfig::new(loss)
        .epochs(cfg.epochs)
        .batch_size(cfg.batch_size)
        .metrics(vec![Metric::Accuracy])
        .validation_data(xt.clone(), yt.clone())
        .verbosity(cfg.verbosity);
    let mut opt = Optimizer::parse("adam", 1e-3)?;
    let history = fit(&mut model, &mut opt, &x, &y, &fit_cfg, &mut NoHooks)?;
    let scores = evaluate(
        &mut model,
        &xt,
        &yt,
        loss,
        &[Metric::Accuracy],
        cfg.batch_size,
    )?;
    Ok(Outcome {
        history,
        test_loss: scores.get("loss").copied().unwrap_or(f64::NAN),
        test_accuracy: scores.get("accuracy").copied().unwrap_or(f64::NAN),
    })
}

/// `PATH [--epochs N] [--max-samples N]` into a config.
pub fn parse_args(args: &[String]) -> std::result::Result<Config, String> {
    let mut it = args.iter();
    let path = it
        .next()
        .ok_or("usage: imdb_bidirectional_lstm PATH/imdb.npz [--epochs N] [--max-samples N]")?;
    let mut cfg = Config::keras(PathBuf::from(path));
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
        Ok(o) => {
            println!("Test score: {:.4}", o.test_loss);
            println!("Test accuracy: {:.4}", o.test_accuracy);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
