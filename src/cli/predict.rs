//! `gated predict --model DIR --x X.npy --out Y.npy [--batch-size N]`

use super::common::{load_model, predict_batched, read_inputs};
use gated::io::write_npy;
use std::path::PathBuf;

/// Run a saved model over inputs and write its outputs as .npy.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    gated predict --model runs/emojify --x x_test.npy --out y_pred.npy\n  \
    gated predict --model torch_export/ --x ids.npy --out out.npy   # model.toml + PyTorch weights.safetensors\n  \
    gated predict --model spec.toml --weights state_dict.safetensors --x ids.npy --out out.npy\n\n\
The outputs are the last layer's values as they are (logits unless the model ends in a softmax).")]
pub struct Args {
    /// A model directory (model.toml + weights.safetensors, from gated or PyTorch),
    /// or a spec file when --weights is given.
    #[arg(long)]
    pub model: PathBuf,
    /// A safetensors state dict to use instead of the directory's weights.safetensors.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Inputs, [N, ...] as the spec's [input]: int token ids for an int32 model, floats otherwise.
    #[arg(long)]
    pub x: PathBuf,
    /// Where to write the outputs (float32 .npy, written atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
}

pub fn run(args: Args) -> gated::Result<()> {
    let mut model = load_model(&args.model, args.weights.as_deref())?;
    let x = read_inputs(&args.x, &model)?;
    let y = predict_batched(&mut model, &x, args.batch_size, &args.x)?;
    write_npy(&args.out, &y)?;
    eprintln!(
        "wrote {} predictions of shape {:?} to {}",
        y.shape().first().copied().unwrap_or(0),
        y.shape(),
        args.out.display()
    );
    Ok(())
}
