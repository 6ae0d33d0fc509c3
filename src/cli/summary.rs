//! `gated summary SPEC_OR_MODEL_DIR`

use gated::model::spec::{load_spec, spec_path};
use std::path::PathBuf;

/// Print Keras's summary table for a model spec or a model directory.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gated summary examples/emojify_v2.toml\n  gated summary runs/charlm   # a model directory (reads its model.toml)"
)]
pub struct Args {
    /// A model spec (.toml or .json) or a model directory containing model.toml.
    pub spec: PathBuf,
}

pub fn run(args: Args) -> gated::Result<()> {
    let path = if args.spec.is_dir() {
        spec_path(&args.spec)
    } else {
        args.spec
    };
    let spec = load_spec(&path, 0)?;
    print!("{}", spec.model.summary());
    Ok(())
}
