//! What the fit loop prints: a Keras-style progress bar per epoch, one plain
//! line per epoch (logs, non-terminals), or nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much [`fit`](super::fit::fit) prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Nothing at all (Keras `verbose=0`).
    Quiet,
    /// One line per epoch on stdout (Keras `verbose=2`); good for logs.
    Plain,
    /// `Epoch 3/10` and a live progress bar with ETA and running metrics
    /// (Keras `verbose=1`). Falls back to [`Verbosity::Plain`] when stderr is
    /// not a terminal.
    #[default]
    ProgressBar,
}

/// Formats metrics Keras's way: ` - loss: 0.4312 - accuracy: 0.8100`.
pub fn format_metrics(metrics: &[(String, f64)]) -> String {
    metrics
        .iter()
        .map(|(k, v)| format!(" - {k}: {v:.4}"))
        .collect()
}

/// The printer used by the fit loop.
#[derive(Debug)]
pub(crate) struct Progress {
    mode: Verbosity,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(crate) fn new(mode: Verbosity) -> Self {
        let mode = if mode == Verbosity::ProgressBar && !std::io::stderr().is_terminal() {
            Verbosity::Plain
        } else {
            mode
        };
        Progress { mode, bar: None }
    }

    /// A warning or note (not printed in quiet mode), on stderr.
    pub(crate) fn note(&self, text: &str) {
        if self.mode != Verbosity::Quiet {
            eprintln!("{text}");
        }
    }

    /// A line on stdout (not printed in quiet mode).
    pub(crate) fn line(&self, text: &str) {
        if self.mode != Verbosity::Quiet {
            println!("{text}");
        }
    }

    pub(crate) fn epoch_begin(&mut self, epoch: usize, epochs: usize, batches: usize) {
        if self.mode != Verbosity::ProgressBar {
            return;
        }
        println!("Epoch {epoch}/{epochs}");
        let bar = ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{pos}/{len} [{bar:30}] - ETA: {eta}{msg}")
        {
            bar.set_style(style.progress_chars("=>."));
        }
        self.bar = Some(bar);
    }

    pub(crate) fn batch(&mut self, done: usize, running: &[(String, f64)]) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format_metrics(running));
        }
    }

    pub(crate) fn epoch_end(
        &mut self,
        epoch: usize,
        epochs: usize,
        batches: usize,
        seconds: f64,
        metrics: &[(String, f64)],
    ) {
        let timing = format!("{:.0}s {}", seconds.floor(), per_step(seconds, batches));
        match self.mode {
            Verbosity::Quiet => {}
            Verbosity::Plain => println!(
                "Epoch {epoch}/{epochs} - {timing}{}",
                format_metrics(metrics)
            ),
            Verbosity::ProgressBar => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                println!(
                    "{batches}/{batches} [{}] - {timing}{}",
                    "=".repeat(30),
                    format_metrics(metrics)
                );
            }
        }
    }

    /// Removes a live bar (on errors), leaving the terminal clean.
    pub(crate) fn abandon(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

/// Keras's per-step time, `12ms/step`, or `340us/step` under a millisecond
/// (where Keras would print an unhelpful `0ms/step`).
fn per_step(seconds: f64, batches: usize) -> String {
    let ms = seconds * 1000.0 / batches.max(1) as f64;
    if ms >= 1.0 {
        format!("{ms:.0}ms/step")
    } else {
        format!("{:.0}us/step", ms * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_metric_format() {
        let m = vec![
            ("loss".to_string(), 0.43121),
            ("accuracy".to_string(), 0.81),
        ];
        assert_eq!(format_metrics(&m), " - loss: 0.4312 - accuracy: 0.8100");
    }

    #[test]
    fn fast_steps_print_microseconds() {
        assert_eq!(super::per_step(1.2, 100), "12ms/step");
        assert_eq!(super::per_step(0.034, 100), "340us/step");
        assert_eq!(super::per_step(0.0, 0), "0us/step");
    }
}
