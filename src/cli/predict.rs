//! `gated predict --model DIR --x X.npy --out Y.npy [--batch-size N]`

use super::common::{for_each_batch, load_model, open_inputs};
use gated::io::npy::npy_file_bytes;
use gated::io::npy_stream::write_f32_le;
use gated::io::write_atomic_with;
use gated::Error;
use std::io::Write;
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

/// Streams: each batch of X is read, run and written before the next, so
/// memory does not grow with the number of samples. The output header needs
/// the full shape, known once the first batch has run (N comes from X).
pub fn run(args: Args) -> gated::Result<()> {
    let mut model = load_model(&args.model, args.weights.as_deref())?;
    let mut x = open_inputs(&args.x, &model)?;
    let n = x.rows();
    let out = &args.out;
    let mut shape = Vec::new();
    write_atomic_with(out, |w| {
        for_each_batch(&mut model, &mut x, args.batch_size, &args.x, |start, y| {
            if start == 0 {
                shape = std::iter::once(n)
                    .chain(y.shape().iter().skip(1).copied())
                    .collect();
                let header = npy_file_bytes("<f4", &shape, 0);
                w.write_all(&header).map_err(|e| Error::io(out, e))?;
            }
            write_f32_le(w, y.data()).map_err(|e| Error::io(out, e))
        })
    })?;
    eprintln!(
        "wrote {n} predictions of shape {shape:?} to {}",
        out.display()
    );
    Ok(())
}
