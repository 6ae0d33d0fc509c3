//! `gated generate --model DIR`

use std::io::Write as _;
use std::path::PathBuf;

use gated::generate::{Generator, Strategy};
use gated::train::charlm::load_char_model;
use gated::{Error, Result};

/// Stream text from a char model trained with `gated train --text`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Characters are printed as soon as they are sampled. The model first reads the prime text
(every character must be in the model's vocabulary), then feeds back each sampled character.

Sampling: softmax(logits / T). T = 1 samples the model's own distribution, smaller T is more
careful and repetitive, larger T more surprising and noisy. --top-k K keeps only the K most
likely characters; --argmax always takes the most likely one (deterministic).

Examples:
  gated generate --model runs/shakespeare --length 1000 --temperature 0.8
  gated generate --model runs/shakespeare --prime 'ROMEO:' --argmax --length 200")]
pub struct Args {
    /// The model directory written by `gated train --text FILE --out DIR`.
    #[arg(long)]
    pub model: PathBuf,
    /// Sampling temperature, a number above 0.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Sample only among the K most likely characters.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Always take the most likely character (greedy decoding); ignores --temperature.
    #[arg(long)]
    pub argmax: bool,
    /// Number of characters to generate (after the prime).
    #[arg(long, default_value_t = 500)]
    pub length: usize,
    /// Text the model reads before generating; it is printed first. Default: a newline if the
    /// vocabulary has one, else a space, else its first character.
    #[arg(long)]
    pub prime: Option<String>,
    /// Seed of the sampler: the same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    if a.length == 0 {
        return Err(Error::invalid(
            "--length",
            "0 characters asked; give at least 1",
        ));
    }
    let strategy =
        Strategy::from_options(a.argmax, a.temperature, a.top_k).map_err(|e| match e {
            Error::Invalid { name, message } => {
                Error::invalid(format!("--{}", name.replace('_', "-")), message)
            }
            e => e,
        })?;
    let (model, vocab) = load_char_model(&a.model)?;
    let prime = match &a.prime {
        Some(p) => p.clone(),
        None => ['\n', ' ']
            .into_iter()
            .find(|&c| vocab.id(c).is_some())
            .or_else(|| vocab.chars().first().copied())
            .map(String::from)
            .unwrap_or_default(),
    };
    let mut gen = Generator::new(model, vocab, strategy, a.seed)?;
    gen.prime(&prime).map_err(|e| match e {
        Error::Invalid { message, .. } => Error::invalid("--prime", message),
        e => e,
    })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |e: std::io::Error| Error::io("<stdout>", e);
    if a.prime.is_some() {
        out.write_all(prime.as_bytes()).map_err(io)?;
    }
    let mut buf = [0u8; 4];
    for _ in 0..a.length {
        let c = gen.next_char()?;
        out.write_all(c.encode_utf8(&mut buf).as_bytes())
            .map_err(io)?;
        out.flush().map_err(io)?;
    }
    out.write_all(b"\n").map_err(io)?;
    out.flush().map_err(io)
}
