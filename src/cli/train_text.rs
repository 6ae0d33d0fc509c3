//! `gated train --text FILE --out DIR`: a char-level language model, char-rnn style.

use std::fmt::Write as _;
use std::path::PathBuf;

use gated::data::{read_text, CharVocab};
use gated::io::atomic::write_atomic;
use gated::model::Checkpoint;
use gated::plot::{save_svg, Plot, Series};
use gated::train::charlm::{
    parse_cell, save_char_checkpoint, save_char_model, CharLmConfig, CharLmTrainer, Event,
};
use gated::train::metrics::{bits_per_char, perplexity};
use gated::Result;

use super::train::{prepare_out, spec_as_toml, Args};

/// Options of `gated train --text` (char-rnn's knobs, with its defaults).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Char-level language model (--text)")]
pub struct TextArgs {
    /// Train a char-level language model on this UTF-8 text file (char-rnn): the vocabulary is
    /// its sorted distinct characters; the model is Embedding -> stacked recurrent layers ->
    /// TimeDistributed(Dense) logits, unless --spec gives another one.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Recurrent cell of every layer: lstm, gru or rnn (char-rnn `model`).
    #[arg(long, default_value = "lstm", requires = "text")]
    pub cell: String,
    /// Hidden units per layer (char-rnn `rnn_size`).
    #[arg(long, default_value_t = 128, requires = "text")]
    pub units: usize,
    /// Stacked recurrent layers (char-rnn `num_layers`).
    #[arg(long, default_value_t = 2, requires = "text")]
    pub layers: usize,
    /// Width of the character embedding.
    #[arg(long, default_value_t = 64, requires = "text")]
    pub embedding_dim: usize,
    /// Dropout between the recurrent layers (char-rnn `dropout`), 0 to turn off.
    #[arg(long, default_value_t = 0.0, requires = "text")]
    pub dropout: f32,
    /// Characters per chunk: how far back in time the gradient flows (char-rnn `seq_length`).
    /// The state itself is carried across chunks.
    #[arg(long, default_value_t = 50, requires = "text")]
    pub seq_len: usize,
    /// Multiply the learning rate by this every epoch from --lr-decay-after on (char-rnn
    /// `learning_rate_decay`).
    #[arg(long, default_value_t = 0.97, requires = "text")]
    pub lr_decay: f64,
    /// The first epoch (0-based) with a decayed rate: at epoch e >= N the rate is
    /// lr * decay^(e - N + 1) (char-rnn `learning_rate_decay_after`).
    #[arg(long, default_value_t = 10, requires = "text")]
    pub lr_decay_after: usize,
    /// Clip the gradients to this global L2 norm (char-rnn `grad_clip`); 0 turns it off.
    #[arg(long, default_value_t = 5.0, requires = "text")]
    pub grad_clip: f32,
    /// Fraction of the text (from its start) used for training (char-rnn `train_frac`).
    #[arg(long, default_value_t = 0.95, requires = "text")]
    pub train_frac: f64,
    /// Fraction after the training part used for validation (char-rnn `val_frac`); 0 trains
    /// without validation.
    #[arg(long, default_value_t = 0.05, requires = "text")]
    pub val_frac: f64,
    /// Every N steps: validation loss, samples, checkpoints (char-rnn `eval_val_every`). 0:
    /// only at the end.
    #[arg(long, default_value_t = 1000, requires = "text")]
    pub eval_every: usize,
    /// Optimisation steps (chunks); overrides --epochs.
    #[arg(long, requires = "text")]
    pub steps: Option<usize>,
    /// Characters per sample printed at every evaluation (temperatures 0.5 and 1.0, and the
    /// greedy line); 0 prints none.
    #[arg(long, default_value_t = 200, requires = "text")]
    pub sample_length: usize,
}

fn history_csv(train: &[(usize, f32)], val: &[(usize, f32)]) -> String {
    let mut s = String::from("step,train_loss,val_loss,val_perplexity,val_bits_per_char\n");
    for &(step, t) in train {
        let v = val.iter().find(|(s, _)| *s == step).map(|&(_, v)| v);
        let _ = match v {
            Some(v) => writeln!(s, "{step},{t},{v},{},{}", perplexity(v), bits_per_char(v)),
            None => writeln!(s, "{step},{t},,,"),
        };
    }
    s
}

fn curves(train: &[(usize, f32)], val: &[(usize, f32)]) -> Plot {
    let pts = |c: &[(usize, f32)]| c.iter().map(|&(s, v)| (s as f64, v as f64)).collect();
    let mut p = Plot::new("char model: cross-entropy")
        .x_label("step")
        .y_label("loss (nats per character)")
        .series(Series::new("train", pts(train)));
    if !val.is_empty() {
        p = p.series(Series::new("validation", pts(val)).dashed(true));
    }
    p
}

pub fn run(a: &Args) -> Result<()> {
    let t = &a.text;
    if a.weight_decay != 0.0 {
        return Err(gated::Error::invalid(
            "--weight-decay",
            "is not available with --text yet",
        ));
    }
    if a.resume {
        return Err(gated::Error::invalid(
            "--resume",
            "is not available with --text yet; start a new run",
        ));
    }
    let Some(file) = t.text.as_ref() else {
        return Err(gated::Error::invalid("--text", "no text file given"));
    };
    let cfg = CharLmConfig {
        cell: parse_cell(&t.cell)?,
        units: t.units,
        layers: t.layers,
        embedding_dim: t.embedding_dim,
        dropout: t.dropout,
        seq_len: t.seq_len,
        batch_size: a.batch_size.unwrap_or(50),
        optimizer: a.optimizer.clone().unwrap_or_else(|| "rmsprop".into()),
        lr: a.lr.unwrap_or(2e-3),
        lr_decay: t.lr_decay,
        lr_decay_after: t.lr_decay_after,
        grad_clip: t.grad_clip,
        train_frac: t.train_frac,
        val_frac: t.val_frac,
        eval_every: t.eval_every,
        seed: a.seed,
        steps: t.steps,
        epochs: a.epochs.unwrap_or(50),
        sample_temperatures: vec![0.5, 1.0],
        sample_length: t.sample_length,
    };
    cfg.validate()?;
    let text = read_text(file)?;
    let vocab = CharVocab::from_text(&text)?;
    let spec = match &a.spec {
        Some(path) => {
            let raw = std::fs::read_to_string(path).map_err(|e| gated::Error::io(path, e))?;
            let json = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            Some(spec_as_toml(&raw, json, path)?)
        }
        None => None,
    };
    let mut trainer = CharLmTrainer::new(&text, vocab.clone(), cfg, spec)?;
    prepare_out(&a.out)?;
    let _lock = gated::io::lock::DirLock::acquire(&a.out)?;
    let spec_text = trainer.spec_text().to_string();
    let chunks = trainer.chunks_per_epoch();
    if !a.quiet {
        let (_, trainable) = trainer.model().param_counts();
        eprintln!(
            "{}: {} characters, vocabulary {}, {} parameters, {} chunks per epoch, {} steps, {} \
             threads",
            file.display(),
            text.chars().count(),
            vocab.len(),
            trainable,
            chunks,
            trainer.total_steps(),
            gated::threads::num_threads()
        );
    }
    let out = a.out.clone();
    let quiet = a.quiet;
    let (mut train_curve, mut val_curve) = (Vec::new(), Vec::new());
    let mut last_eval = 0;
    let summary = trainer.train(&mut |event| {
        match event {
            Event::Step {
                step,
                total,
                epoch,
                loss,
                lr,
            } => {
                if !quiet && (step % 10 == 0 || step == 1) {
                    eprintln!(
                        "step {step}/{total} (epoch {epoch}): batch loss {loss:.4}, lr {lr:.2e}"
                    );
                }
            }
            Event::Eval {
                step,
                total,
                train_loss,
                val_loss,
                best,
                samples,
                model,
            } => {
                train_curve.push((step, train_loss));
                // The mean over the steps since the previous evaluation; the
                // per-step lines above show single batches.
                let steps = step - last_eval;
                last_eval = step;
                let mut line = format!(
                    "step {step}/{total}: train loss {train_loss:.4} (mean of the last {steps} \
                     batches; perplexity {:.2}, {:.3} bits/char)",
                    perplexity(train_loss),
                    bits_per_char(train_loss)
                );
                if let Some(v) = val_loss {
                    val_curve.push((step, v));
                    let _ = write!(
                        line,
                        ", val loss {v:.4} (perplexity {:.2}, {:.3} bits/char){}",
                        perplexity(v),
                        bits_per_char(v),
                        if best { ", best so far" } else { "" }
                    );
                }
                if !quiet {
                    println!("{line}");
                    for s in &samples {
                        println!("--- sample {} ---\n{}", s.label, s.text);
                    }
                }
                save_char_checkpoint(&out, Checkpoint::Last, model, &spec_text, &vocab)?;
                if best {
                    save_char_model(&out, model, &spec_text, &vocab)?;
                }
                write_atomic(
                    out.join("history.csv"),
                    history_csv(&train_curve, &val_curve).as_bytes(),
                )?;
                save_svg(out.join("loss.svg"), &[curves(&train_curve, &val_curve)])?;
            }
        }
        Ok(())
    })?;
    if !a.quiet {
        if let Some((step, v)) = summary.best {
            println!(
                "best validation loss {v:.4} ({:.3} bits/char) at step {step}; {:.1}s",
                bits_per_char(v),
                summary.seconds
            );
        }
        println!(
            "wrote {} (generate with: gated generate --model {})",
            a.out.display(),
            a.out.display()
        );
    }
    Ok(())
}
