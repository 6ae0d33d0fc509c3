//! `gated eval --model DIR --x X.npy --y Y.npy [--loss L] [--metrics m1,m2]`

use super::common::{load_model, open_inputs, predict_all};
use gated::io::read_npy;
use gated::train::{metrics, Loss};
use gated::{Error, Result, Tensor};
use std::path::PathBuf;

/// Evaluate a saved model: print its loss and metrics on (X, Y).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    gated eval --model runs/emojify --x x_test.npy --y y_test.npy --metrics accuracy\n  \
    gated eval --model runs/charlm --x x.npy --y y.npy --metrics accuracy,perplexity,bpc\n  \
    gated eval --model runs/sine --x x.npy --y y.npy --loss mse --metrics mae\n\n\
Losses: sparse_categorical_crossentropy (the default when Y holds one class index per\n\
prediction), categorical_crossentropy, binary_crossentropy, mse, mae. Cross-entropies\n\
read the model's outputs as logits (binary_crossentropy: as probabilities unless\n\
--from-logits), as `gated train` does.\n\
Metrics: accuracy, top_k_accuracy (k = 5) or topK (e.g. top3), binary_accuracy, mae,\n\
perplexity, bpc (bits per character; both from the cross-entropy loss).\n\
Prints one line: loss: L - metric: V ...")]
pub struct Args {
    /// A model directory (model.toml + weights.safetensors, from gated or PyTorch),
    /// or a spec file when --weights is given.
    #[arg(long)]
    pub model: PathBuf,
    /// A safetensors state dict to use instead of the directory's weights.safetensors.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Inputs, [N, ...] as the spec's [input].
    #[arg(long)]
    pub x: PathBuf,
    /// Targets: class indices (int or float .npy), one-hot rows, or values of the outputs' shape.
    #[arg(long)]
    pub y: PathBuf,
    /// Loss (Keras name); see below for the default.
    #[arg(long)]
    pub loss: Option<String>,
    /// binary_crossentropy reads the outputs as logits.
    #[arg(long)]
    pub from_logits: bool,
    /// Metrics to print, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
}

/// Whether `y` holds one label per prediction row (sparse targets).
fn is_sparse(pred: &Tensor, y: &Tensor) -> bool {
    let p = pred.shape();
    let lead = &p[..p.len().saturating_sub(1)];
    y.shape() == lead
        || (p.last().is_some_and(|&c| c > 1) && y.shape().split_last() == Some((&1, lead)))
}

fn choose_loss(args: &Args, pred: &Tensor, y: &Tensor) -> Result<Loss> {
    match &args.loss {
        Some(name) => Ok(Loss::parse(name)?.with_from_logits(args.from_logits)),
        None if is_sparse(pred, y) => Ok(Loss::SparseCategoricalCrossEntropy),
        None => Err(Error::invalid(
            "--loss",
            format!(
                "Y has shape {:?} and the outputs {:?}; say which loss to use \
                 (e.g. --loss mse or --loss categorical_crossentropy)",
                y.shape(),
                pred.shape()
            ),
        )),
    }
}

fn metric(name: &str, loss: Loss, loss_value: f32, pred: &Tensor, y: &Tensor) -> Result<f32> {
    let ce = || -> Result<f32> {
        match loss {
            Loss::CategoricalCrossEntropy | Loss::SparseCategoricalCrossEntropy => Ok(loss_value),
            _ => Err(Error::invalid(
                "--metrics",
                format!("{name} needs a cross-entropy loss, not {}", loss.name()),
            )),
        }
    };
    let top_k = |k: usize| -> Result<f32> {
        if !is_sparse(pred, y) {
            return Err(Error::invalid(
                "--metrics",
                format!("{name} needs Y to hold class indices"),
            ));
        }
        metrics::top_k_accuracy(pred, y, k)
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "accuracy" | "acc" => metrics::accuracy(pred, y),
        "binary_accuracy" => metrics::binary_accuracy(pred, y, loss.from_logits()),
        "mae" | "mean_absolute_error" => metrics::mae(pred, y),
        "perplexity" => Ok(metrics::perplexity(ce()?)),
        "bpc" | "bits_per_char" => Ok(metrics::bits_per_char(ce()?)),
        "top_k_accuracy" | "sparse_top_k_categorical_accuracy" => top_k(5),
        other => match other
            .strip_prefix("top")
            .and_then(|k| k.parse::<usize>().ok())
        {
            Some(k) => top_k(k),
            None => Err(Error::invalid(
                "--metrics",
                format!(
                    "unknown metric {name:?}; known: accuracy, top_k_accuracy, topK, \
                     binary_accuracy, mae, perplexity, bpc"
                ),
            )),
        },
    }
}

pub fn run(args: Args) -> Result<()> {
    let mut model = load_model(&args.model, args.weights.as_deref())?;
    // X is read a batch at a time; Y (one target per sample) whole.
    let mut x = open_inputs(&args.x, &model)?;
    let y = read_npy(&args.y)?;
    if y.shape().first() != Some(&x.rows()) {
        return Err(Error::file(
            &args.y,
            format!(
                "shape {:?} has {} samples, but X has {}",
                y.shape(),
                y.shape().first().copied().unwrap_or(0),
                x.rows()
            ),
        ));
    }
    let pred = predict_all(&mut model, &mut x, args.batch_size, &args.x)?;
    let loss = choose_loss(&args, &pred, &y)?;
    let (value, _) = loss
        .compute(&pred, &y)
        .map_err(|e| Error::file(&args.y, e.to_string()))?;
    let mut line = format!("loss: {value:.4}");
    for name in args.metrics.iter().filter(|m| !m.trim().is_empty()) {
        let v = metric(name, loss, value, &pred, &y).map_err(|e| match e {
            Error::Invalid { .. } => e,
            other => Error::file(&args.y, other.to_string()),
        })?;
        line.push_str(&format!(" - {}: {v:.4}", name.trim()));
    }
    println!("{line}");
    Ok(())
}
