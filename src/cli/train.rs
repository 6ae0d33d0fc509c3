//! `gated train --spec SPEC --x X.npy --y Y.npy --out DIR`, and
//! `gated train --text FILE --out DIR` (char-level language model; see `train_text.rs`).

use std::path::{Path, PathBuf};

use gated::io::fingerprint::fingerprint_file;
use gated::io::lock::DirLock;
use gated::io::npy::read_npy;
use gated::model::spec::load_spec;
use gated::model::Sequential;
use gated::model::{
    check_writable, load_checkpoint, save_checkpoint, save_model_dir, Checkpoint, LoadedModel,
    SaveExtras,
};
use gated::train::options::{optimizer_by_name, FitOptions, OPTIMIZERS};
use gated::train::run::{read_run_file, spec_differences, write_run_file, RunIdentity};
use gated::train::{
    check_data, fit_from, EpochRecord, FitConfig, FitHooks, History, HistoryWriter, Loss, Metric,
    Optimizer, TrainingState, Verbosity,
};
use gated::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Train a model on arrays in .npy files (Keras's `model.fit`), or a char-level language model
/// on a text file (char-rnn).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Two modes:
  --spec SPEC --x X.npy --y Y.npy --loss LOSS   a model from a spec, trained on arrays
  --text FILE                                   a char-level language model (char-rnn): see the
                                                char-rnn options above; --spec overrides the model

Array mode writes into --out: model.toml (the spec), weights.safetensors (final weights, keys \
<layer>.<param> in PyTorch's naming, loadable into a PyTorch module with the same submodule names), \
training_state.json and optimizer.safetensors, history.csv, history.json, loss.svg (learning \
curves), and the checkpoints last/ (every epoch) and best/ (the best epoch by val_loss with \
validation data, else by loss, or by --monitor with early stopping). Every file is \
written atomically. Ctrl-C stops after the current step (exit code 130); --resume continues.

Text mode writes into --out: model.toml, weights.safetensors and vocab.json (the best
checkpoint by validation loss, so that `gated generate --model DIR` works), last/ (the latest
weights), history.csv and loss.svg (train and validation loss per evaluation).

Examples:
  gated train --text input.txt --out runs/charlm --steps 2000 --eval-every 200
  gated train --text input.txt --out runs/charlm --cell gru --units 256 --layers 3 --dropout 0.2
  gated train --spec lstm.toml --x x.npy --y y.npy --out runs/sum --epochs 20 \\
      --loss sparse_categorical_crossentropy --metrics accuracy --validation-split 0.2
  gated train --spec charlm.toml --x x.npy --y y.npy --out runs/charlm --optimizer rmsprop \\
      --lr 2e-3 --clipnorm 5 --loss sparse_categorical_crossentropy --metrics perplexity")]
pub struct Args {
    /// The model spec (.toml, or .json), as for `gated summary`. With --text it replaces the
    /// default char model.
    #[arg(long, required_unless_present = "text")]
    pub spec: Option<PathBuf>,
    /// Inputs, a .npy array with the samples on the first axis: [N, T, features] floats for an
    /// RNN, or [N, T] integer token ids when the model starts with an Embedding.
    #[arg(long, required_unless_present = "text", conflicts_with = "text")]
    pub x: Option<PathBuf>,
    /// Targets, a .npy array with N samples: class ids [N] or [N, T] for
    /// sparse_categorical_crossentropy, one-hot/probabilities for categorical_crossentropy,
    /// 0/1 for binary_crossentropy, values for mse/mae.
    #[arg(long, required_unless_present = "text", conflicts_with = "text")]
    pub y: Option<PathBuf>,
    /// Output directory (created if missing; files in it are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Passes over the training data (Keras `epochs`). Default 1; with --text, 50 (char-rnn's
    /// max_epochs) unless --steps is given.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Samples per gradient step; the last batch of an epoch may be smaller, as in Keras
    /// (`batch_size`; PyTorch DataLoader `batch_size` with drop_last=False). Default 32; with
    /// --text, the number of contiguous lanes per chunk, default 50 (char-rnn's batch_size).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// The optimizer, with Keras's default hyperparameters (torch.optim.SGD, RMSprop, Adagrad,
    /// Adam, AdamW, Adadelta). Keras's compile() defaults to rmsprop; adam is the usual choice.
    /// Default adam; with --text, rmsprop with char-rnn's alpha 0.95 and eps 1e-8.
    #[arg(long, value_parser = OPTIMIZERS)]
    pub optimizer: Option<String>,
    /// Learning rate (Keras `learning_rate`, PyTorch `lr`). Default: Keras's for the optimizer,
    /// 0.01 for sgd and 0.001 for the others (PyTorch's Adadelta uses 1.0); with --text, 2e-3
    /// (char-rnn's learning_rate).
    #[arg(long)]
    pub lr: Option<f64>,
    /// The loss: sparse_categorical_crossentropy, categorical_crossentropy (on logits from a
    /// final Dense layer, as PyTorch's CrossEntropyLoss; a model ending in a softmax Activation
    /// layer works too, the softmax being fused into the loss as Keras does),
    /// binary_crossentropy (probabilities unless --from-logits; a final sigmoid Activation is
    /// fused the same way), mse, mae.
    #[arg(long, required_unless_present = "text", conflicts_with = "text")]
    pub loss: Option<String>,
    /// binary_crossentropy reads logits, not probabilities (Keras `from_logits=True`,
    /// PyTorch BCEWithLogitsLoss).
    #[arg(long)]
    pub from_logits: bool,
    /// Metrics besides the loss, comma-separated: accuracy, binary_accuracy, top_k_accuracy
    /// (k=5), perplexity, bits_per_char, mae.
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// L2 weight decay added to the gradients, g += wd * w (PyTorch `weight_decay`; for adamw
    /// the decoupled decay). Off by default.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Learning-rate schedule, applied per epoch: step:STEP_SIZE:GAMMA (StepLR),
    /// exponential:GAMMA (ExponentialLR), char-rnn:DECAY_AFTER:DECAY (char-rnn's
    /// learning_rate_decay after N epochs), plateau:PATIENCE:FACTOR (ReduceLROnPlateau on the
    /// monitored loss). Constant by default.
    #[arg(long)]
    pub lr_schedule: Option<String>,
    /// Rescale the gradients when their global L2 norm exceeds this (Keras `global_clipnorm`,
    /// PyTorch clip_grad_norm_). Off by default.
    #[arg(long)]
    pub clipnorm: Option<f32>,
    /// Clamp every gradient element to [-v, v] (Keras `clipvalue`, PyTorch clip_grad_value_).
    /// Off by default.
    #[arg(long)]
    pub clipvalue: Option<f32>,
    /// Hold out this fraction of the samples for validation: the LAST samples of the arrays,
    /// taken before shuffling, as Keras's `validation_split`. Off by default.
    #[arg(long)]
    pub validation_split: Option<f64>,
    /// Stop after this many epochs without improvement of the monitored metric (Keras
    /// EarlyStopping `patience`). Off by default.
    #[arg(long)]
    pub early_stopping_patience: Option<usize>,
    /// The metric early stopping watches; default val_loss with validation data, else loss.
    /// Names containing "acc" must go up, others down.
    #[arg(long)]
    pub monitor: Option<String>,
    /// The least change of the monitored metric that counts as an improvement (Keras
    /// EarlyStopping `min_delta`).
    #[arg(long, default_value_t = 0.0)]
    pub min_delta: f64,
    /// With early stopping, end with the weights of the best epoch (Keras
    /// `restore_best_weights`).
    #[arg(long)]
    pub restore_best_weights: bool,
    /// Seed of the weight initialisation, shuffling and dropout masks: the same seed gives the
    /// same run, bit for bit.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep the sample order fixed (Keras `shuffle=False`); by default it is reshuffled every epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Continue an interrupted run from the `last/` checkpoint in --out (weights, optimizer
    /// moments, epoch, random state): with the same arguments it ends with the same weights
    /// as a run that was never interrupted.
    #[arg(long)]
    pub resume: bool,
    /// Print nothing while training (Keras `verbose=0`).
    #[arg(long)]
    pub quiet: bool,
    /// One line per epoch instead of a progress bar (Keras `verbose=2`); automatic when stderr
    /// is not a terminal.
    #[arg(long, conflicts_with = "quiet")]
    pub plain: bool,
    /// Char-level language model options (used with --text).
    #[command(flatten)]
    pub text: super::train_text::TextArgs,
}

/// The fit configuration the flags describe (shared with the Python binding:
/// `gated::train::options`).
fn config(a: &Args, loss: Loss) -> Result<FitConfig> {
    FitOptions {
        epochs: a.epochs,
        batch_size: a.batch_size,
        no_shuffle: a.no_shuffle,
        metrics: a.metrics.clone(),
        seed: a.seed,
        verbosity: if a.quiet {
            Verbosity::Quiet
        } else if a.plain {
            Verbosity::Plain
        } else {
            Verbosity::ProgressBar
        },
        validation_split: a.validation_split,
        validation_data: None,
        lr_schedule: a.lr_schedule.clone(),
        clipnorm: a.clipnorm,
        clipvalue: a.clipvalue,
        early_stopping_patience: a.early_stopping_patience,
        monitor: a.monitor.clone(),
        min_delta: a.min_delta,
        restore_best_weights: a.restore_best_weights,
    }
    .config(loss)
}

/// The spec text as TOML (JSON specs are converted).
pub(super) fn spec_as_toml(text: &str, json: bool, path: &Path) -> Result<String> {
    gated::model::spec::spec_as_toml(text, json, path)
}

/// Creates `out` and checks that files can be written in it.
pub(super) fn prepare_out(out: &Path) -> Result<()> {
    check_writable(out)
        .map_err(|e| Error::invalid("--out", format!("cannot write the output directory: {e}")))
}

/// What runs at every epoch end of `gated train`: the history files and the
/// `last/` checkpoint (plus `best/` when the monitored metric improved), each
/// written atomically so a kill at any moment leaves a loadable checkpoint.
struct TrainHooks {
    history: HistoryWriter,
    out: PathBuf,
    spec_toml: String,
    interrupted: Arc<AtomicBool>,
    /// Recorded in every checkpoint, for `--resume` to check.
    run: RunIdentity,
    /// The state at the last epoch end, for the final top-level save.
    last_state: Option<TrainingState>,
}

impl FitHooks for TrainHooks {
    fn on_epoch_end(
        &mut self,
        record: &EpochRecord,
        model: &Sequential,
        optimizer: &Optimizer,
        state: &TrainingState,
    ) -> Result<()> {
        self.history.on_epoch_end(record, model, optimizer, state)?;
        let opt_state = optimizer.export_state();
        let state = TrainingState {
            run: Some(self.run.clone()),
            ..state.clone()
        };
        let extras = SaveExtras {
            state: Some(&state),
            optimizer: Some(&opt_state),
            vocab: None,
        };
        save_checkpoint(&self.out, Checkpoint::Last, model, &self.spec_toml, &extras)?;
        if state.best.map(|b| b.1) == Some(record.epoch) {
            save_checkpoint(&self.out, Checkpoint::Best, model, &self.spec_toml, &extras)?;
        }
        self.last_state = Some(state);
        Ok(())
    }

    fn should_stop(&mut self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    fn on_train_end(&mut self, model: &Sequential, history: &History) -> Result<()> {
        self.history.on_train_end(model, history)
    }
}

/// A required flag of the array mode (clap enforces them; this keeps the code panic-free).
fn required<'a, T>(v: &'a Option<T>, flag: &str) -> Result<&'a T> {
    v.as_ref()
        .ok_or_else(|| Error::invalid(flag, "is required (or train a char model with --text FILE)"))
}

/// Makes Ctrl-C finish the current step and stop training (exit code 130) instead
/// of killing the process; the last epoch's checkpoint stays in `DIR/last`.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    // A second handler cannot be installed (tests call `run` once per process);
    // then Ctrl-C keeps its default behaviour, which the checkpoints survive too.
    let _ = ctrlc::set_handler(move || f.store(true, Ordering::Relaxed));
    flag
}

/// What defines this run: the data files' sizes and hashes and the settings
/// that change the arithmetic of a step (see `gated::train::run`).
fn run_identity(a: &Args, x_file: &Path, y_file: &Path) -> Result<RunIdentity> {
    let data = [("--x", x_file), ("--y", y_file)]
        .into_iter()
        .map(|(flag, path)| Ok((flag.to_string(), fingerprint_file(path)?)))
        .collect::<Result<_>>()?;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "default".to_string());
    let settings = [
        ("--seed", a.seed.to_string()),
        ("--loss", opt(a.loss.clone())),
        ("--from-logits", a.from_logits.to_string()),
        (
            "--optimizer",
            a.optimizer.clone().unwrap_or_else(|| "adam".into()),
        ),
        ("--lr", opt(a.lr.map(|v| v.to_string()))),
        ("--weight-decay", a.weight_decay.to_string()),
        ("--lr-schedule", opt(a.lr_schedule.clone())),
        ("--clipnorm", opt(a.clipnorm.map(|v| v.to_string()))),
        ("--clipvalue", opt(a.clipvalue.map(|v| v.to_string()))),
        ("--batch-size", a.batch_size.unwrap_or(32).to_string()),
        (
            "--validation-split",
            opt(a.validation_split.map(|v| v.to_string())),
        ),
        ("--no-shuffle", a.no_shuffle.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(RunIdentity::new(data, settings))
}

/// Refuses to resume from a checkpoint of another run: another spec, data,
/// settings, or an earlier run than the one last started in `out`. Returns the
/// identity to keep recording (the checkpoint's, whose id names the run).
fn check_resume(
    out: &Path,
    loaded: &LoadedModel,
    state: &TrainingState,
    spec_toml: &str,
    now: RunIdentity,
) -> Result<RunIdentity> {
    let last = Checkpoint::Last.path(out);
    let mut why = spec_differences(&loaded.spec_text, spec_toml, 4)
        .into_iter()
        .map(|d| format!("spec {d}"))
        .collect::<Vec<_>>();
    let kept = match &state.run {
        Some(recorded) => {
            why.extend(recorded.differences(&now));
            if let Some(latest) = read_run_file(out)? {
                if latest.id != recorded.id {
                    why.push(format!(
                        "it belongs to an earlier run than the one last started in {}                          (which stopped before its first checkpoint; start that again without                          --resume)",
                        out.display()
                    ));
                }
            }
            RunIdentity {
                id: recorded.id.clone(),
                ..now
            }
        }
        // Checkpoints of versions that did not record the run: only the spec
        // can be checked.
        None => now,
    };
    if why.is_empty() {
        return Ok(kept);
    }
    Err(Error::invalid(
        "--resume",
        format!(
            "{} is not a checkpoint of this run: {}; resume with the run's own spec, data and              flags, or start a new run without --resume (nothing was written)",
            last.display(),
            why.join("; ")
        ),
    ))
}

pub fn run(a: Args) -> Result<()> {
    if a.text.text.is_some() {
        return super::train_text::run(&a);
    }
    let loss = Loss::parse(required(&a.loss, "--loss")?)?.with_from_logits(a.from_logits);
    let cfg = config(&a, loss)?;
    let mut opt = optimizer_by_name(
        a.optimizer.as_deref().unwrap_or("adam"),
        a.lr,
        a.weight_decay,
    )?;
    let spec_file = required(&a.spec, "--spec")?;
    let (x_file, y_file) = (required(&a.x, "--x")?, required(&a.y, "--y")?);
    let spec = load_spec(spec_file, a.seed)?;
    let mut model = spec.model;
    let x = read_npy(x_file)?;
    let y = read_npy(y_file)?;
    check_data(&model, &x, &y, loss).map_err(|e| {
        let detail = match e {
            Error::Invalid { name, message } => format!("{name}: {message}"),
            e => e.to_string(),
        };
        Error::invalid(
            format!("training data ({}, {})", x_file.display(), y_file.display()),
            detail,
        )
    })?;
    let spec_toml = spec_as_toml(&spec.text, spec.json, spec_file)?;

    let mut run = run_identity(&a, x_file, y_file)?;

    prepare_out(&a.out)?;
    let _lock = DirLock::acquire(&a.out)?;
    let start = if a.resume {
        let loaded = load_checkpoint(&a.out, Checkpoint::Last)?;
        let state = loaded.state.clone().ok_or_else(|| {
            Error::file(
                Checkpoint::Last.path(&a.out),
                "the checkpoint has no training state to resume from",
            )
        })?;
        run = check_resume(&a.out, &loaded, &state, &spec_toml, run)?;
        if let Some(o) = &loaded.optimizer {
            opt.import_state(o)?;
        }
        opt.set_lr(state.lr);
        model = loaded.model;
        if !a.quiet {
            eprintln!(
                "resuming {} after epoch {} (step {})",
                a.out.display(),
                state.epoch,
                state.step
            );
        }
        Some(state)
    } else {
        // Before any checkpoint: a later --resume must not take an older
        // run's last/ for this one's.
        write_run_file(&a.out, &run)?;
        None
    };
    // DIR/model.toml is written by save_model_dir at the end, with the weights
    // and manifest: writing it now would break an existing model in DIR (its
    // manifest no longer matching) if this run fails or trains another spec.
    let main_metric = cfg
        .metrics
        .iter()
        .find(|m| !matches!(m, Metric::BitsPerChar))
        .map(|m| m.name());
    if !a.quiet {
        eprintln!(
            "{}: {} samples, {} trainable parameters, {} threads",
            spec_file.display(),
            x.shape().first().copied().unwrap_or(0),
            model.param_counts().1,
            gated::threads::num_threads()
        );
    }
    let interrupted = interrupt_flag();
    let mut hooks = TrainHooks {
        history: HistoryWriter::new(&a.out).main_metric(main_metric),
        out: a.out.clone(),
        spec_toml: spec_toml.clone(),
        interrupted,
        run,
        last_state: None,
    };
    let history = match fit_from(
        &mut model,
        &mut opt,
        &x,
        &y,
        &cfg,
        start.as_ref(),
        &mut hooks,
    ) {
        Err(Error::Interrupted) => {
            if hooks.last_state.is_some() || start.is_some() {
                eprintln!(
                    "interrupted: the last completed epoch is saved in {}; continue with --resume",
                    Checkpoint::Last.path(&a.out).display()
                );
            } else {
                eprintln!("interrupted before the first epoch ended: nothing to resume from");
            }
            return Err(Error::Interrupted);
        }
        Err(e @ Error::NonFinite { .. }) => {
            let last = Checkpoint::Last.path(&a.out);
            // Only a checkpoint this run wrote (or resumed from) is worth naming.
            if hooks.last_state.is_some() || start.is_some() {
                eprintln!("the last good checkpoint is in {}", last.display());
            } else {
                eprintln!(
                    "no checkpoint was written: the run stopped before its first epoch ended                      (try a lower --lr or --clipnorm)"
                );
            }
            return Err(e);
        }
        r => r?,
    };
    // The state of the last epoch, as in last/ (a run that trained no epoch
    // after resuming keeps the state it resumed from).
    let final_state = hooks
        .last_state
        .take()
        .or(start)
        .unwrap_or_else(|| TrainingState {
            history: history.clone(),
            run: Some(hooks.run.clone()),
            ..TrainingState::default()
        });
    let opt_state = opt.export_state();
    let extras = SaveExtras {
        state: Some(&final_state),
        optimizer: Some(&opt_state),
        vocab: None,
    };
    save_model_dir(&a.out, &model, &spec_toml, &extras)?;
    if !a.quiet {
        println!("wrote {}", a.out.display());
    }
    Ok(())
}
