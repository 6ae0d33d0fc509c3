//! Keras's `lstm_text_generation.py` in gated: a character-level LSTM that
//! learns to write like its training text.
//!
//! The recipe is Keras's: cut the text into windows of 40 characters every 3
//! characters, each window's target the character that follows; inputs are
//! one-hot `[40, chars]` (floats, no Embedding); `LSTM(128) -> Dense(chars,
//! softmax)`, categorical cross-entropy on one-hot targets, RMSprop at 0.01,
//! batch size 128. After every epoch it writes text from a random window of
//! the training text at the temperatures ("diversities") 0.2, 0.5, 1.0 and
//! 1.2, feeding each sampled character back in a sliding 40-character window.
//!
//! Keras trains on Nietzsche; this example defaults to a short text written
//! for the project, `examples/data/gated_notes.txt`. Any UTF-8 text file works:
//!
//! ```text
//! cargo run --release --example lstm_text_generation -- [TEXT.txt] [--epochs N] [--chars N]
//! ```
//!
//! `tests/keras_examples.rs` runs [`run`] with a tiny budget.

use std::collections::BTreeSet;
use std::path::PathBuf;

use gated::generate::{sample_probs, Strategy};
use gated::model::spec::parse_spec;
use gated::model::Sequential;
use gated::train::{FitConfig, History, Loss, Optimizer, Verbosity};
use gated::{Error, Result, Rng, Tensor};

/// The recipe's knobs; [`Config::keras`] is `lstm_text_generation.py`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The training text.
    pub path: PathBuf,
    /// Characters per window.
    pub maxlen: usize,
    /// Characters between window starts.
    pub step: usize,
    /// LSTM units.
    pub units: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Epochs.
    pub epochs: usize,
    /// RMSprop learning rate.
    pub lr: f64,
    /// Characters written per temperature after each epoch.
    pub generate: usize,
    /// Temperatures to sample at.
    pub diversities: Vec<f32>,
    /// Seed of weights, shuffles and samples.
    pub seed: u64,
    /// Print the samples and progress.
    pub verbosity: Verbosity,
}

impl Config {
    /// `lstm_text_generation.py`'s settings (with 400 characters per sample
    /// and 60 epochs) for the text at `path`.
    pub fn keras(path: PathBuf) -> Self {
        Config {
            path,
            maxlen: 40,
            step: 3,
            units: 128,
            batch_size: 128,
            epochs: 60,
            lr: 0.01,
            generate: 400,
            diversities: vec![0.2, 0.5, 1.0, 1.2],
            seed: 0,
            verbosity: Verbosity::ProgressBar,
        }
    }
}

/// What a run gives.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The alphabet, sorted.
    pub chars: Vec<char>,
    /// Training windows.
    pub windows: usize,
    /// Loss per epoch.
    pub history: History,
    /// After the last epoch: `(temperature, seed window, generated text)`.
    pub samples: Vec<(f32, String, String)>,
}

/// One-hot windows `[N, maxlen, C]` and one-hot next characters `[N, C]`.
fn vectorise(text: &[char], chars: &[char], cfg: &Config) -> Result<(Tensor, Tensor)> {
    let c = chars.len();
    let index = |ch: char| chars.binary_search(&ch).unwrap_or(0);
    let starts: Vec<usize> = (0..text.len() - cfg.maxlen).step_by(cfg.step).collect();
    let mut x = vec![0.0; starts.len() * cfg.maxlen * c];
    let mut y = vec![0.0; starts.len() * c];
    for (i, &s) in starts.iter().enumerate() {
        for (t, &ch) in text[s..s + cfg.maxlen].iter().enumerate() {
            x[(i * cfg.maxlen + t) * c + index(ch)] = 1.0;
        }
        y[i * c + index(text[s + cfg.maxlen])] = 1.0;
    }
    Ok((
        Tensor::from_vec(&[starts.len(), cfg.maxlen, c], x)?,
        Tensor::from_vec(&[starts.len(), c], y)?,
    ))
}

/// Writes `n` characters after `seed` (exactly `maxlen` characters) at `temperature`.
pub fn sample_text(
    model: &mut Sequential,
    chars: &[char],
    seed: &[char],
    n: usize,
    temperature: f32,
    rng: &mut Rng,
) -> Result<String> {
    let c = chars.len();
    let strategy = Strategy::temperature(temperature)?;
    let mut window: Vec<char> = seed.to_vec();
    let mut out = String::new();
    for _ in 0..n {
        let mut x = vec![0.0; window.len() * c];
        for (t, &ch) in window.iter().enumerate() {
            x[t * c + chars.binary_search(&ch).unwrap_or(0)] = 1.0;
        }
        let probs = model.forward(Tensor::from_vec(&[1, window.len(), c], x)?, false)?;
        let next = chars[sample_probs(probs.data(), strategy, rng)?.min(c - 1)];
        out.push(next);
        window.remove(0);
        window.push(next);
    }
    Ok(out)
}

/// Trains on the text and samples after every epoch.
pub fn run(cfg: &Config) -> Result<Outcome> {
    let raw = std::fs::read_to_string(&cfg.path).map_err(|e| Error::io(&cfg.path, e))?;
    let text: Vec<char> = raw.to_lowercase().chars().collect();
    if cfg.maxlen == 0 || cfg.step == 0 || text.len() <= cfg.maxlen + 1 {
        return Err(Error::file(
            &cfg.path,
            format!(
                "{} characters: too short for windows of {} (step {})",
                text.len(),
                cfg.maxlen,
                cfg.step
            ),
        ));
    }
    let chars: Vec<char> = text
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (x, y) = vectorise(&text, &chars, cfg)?;
    let spec = format!(
        "name = \"lstm_text_generation\"\n[input]\nshape = [{}, {}]\n\n\
         [[layer]]\ntype = \"lstm\"\nunits = {}\n\n\
         [[layer]]\ntype = \"dense\"\nunits = {}\n\n\
         [[layer]]\ntype = \"activation\"\nactivation = \"softmax\"\n",
        cfg.maxlen,
        chars.len(),
        cfg.units,
        chars.len()
    );
    let mut model = parse_spec(
        std::path::Path::new("lstm_text_generation"),
        &spec,
        false,
        cfg.seed,
    )?;
    let loud = cfg.verbosity != Verbosity::Quiet;
    if loud {
        println!(
            "corpus length: {}, total chars: {}, nb sequences: {}",
            text.len(),
            chars.len(),
            x.shape()[0]
        );
        print!("{}", model.summary());
    }
    let mut opt = Optimizer::parse("rmsprop", cfg.lr)?;
    let mut rng = Rng::new(cfg.seed ^ 0x5eed);
    let mut history = History::default();
    let mut samples = Vec::new();
    let mut state = None;
    for epoch in 1..=cfg.epochs {
        let fit_cfg = FitConfig::new(Loss::CategoricalCrossEntropy)
            .epochs(epoch)
            .batch_size(cfg.batch_size)
            .seed(cfg.seed)
            .verbosity(cfg.verbosity);
        let mut keep = KeepState(None);
        history = gated::train::fit_from(
            &mut model,
            &mut opt,
            &x,
            &y,
            &fit_cfg,
            state.as_ref(),
            &mut keep,
        )?;
        state = keep.0;
        let start = (rng.next_u64() as usize) % (text.len() - cfg.maxlen);
        let seed: Vec<char> = text[start..start + cfg.maxlen].to_vec();
        samples.clear();
        for &t in &cfg.diversities {
            let s = sample_text(&mut model, &chars, &seed, cfg.generate, t, &mut rng)?;
            if loud {
                println!("----- epoch {epoch}, diversity {t}");
                println!("----- seed: \"{}\"", seed.iter().collect::<String>());
                println!("{s}\n");
            }
            samples.push((t, seed.iter().collect(), s));
        }
    }
    Ok(Outcome {
        chars,
        windows: x.shape()[0],
        history,
        samples,
    })
}

/// Keeps the training state so the next epoch continues the same run.
struct KeepState(Option<gated::train::TrainingState>);

impl gated::train::FitHooks for KeepState {
    fn on_epoch_end(
        &mut self,
        _record: &gated::train::EpochRecord,
        _model: &Sequential,
        _optimizer: &Optimizer,
        state: &gated::train::TrainingState,
    ) -> Result<()> {
        self.0 = Some(state.clone());
        Ok(())
    }
}

/// `[TEXT] [--epochs N] [--chars N]` into a config.
pub fn parse_args(args: &[String]) -> std::result::Result<Config, String> {
    let mut it = args.iter().peekable();
    let path = match it.peek() {
        Some(a) if !a.starts_with("--") => {
            PathBuf::from(it.next().map(String::as_str).unwrap_or_default())
        }
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/data/gated_notes.txt"
        )),
    };
    let mut cfg = Config::keras(path);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or(format!("{flag} needs a whole number"))?;
        match flag.as_str() {
            "--epochs" => cfg.epochs = value,
            "--chars" => cfg.generate = value,
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
    if let Err(e) = run(&cfg) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
