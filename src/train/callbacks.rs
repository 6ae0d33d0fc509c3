//! Ready-made [`FitHooks`]: [`HistoryWriter`] keeps `history.csv`,
//! `history.json` and the learning-curve plot `loss.svg` up to date after
//! every epoch (all written atomically), so an interrupted run leaves them
//! complete up to its last epoch.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::fit::FitHooks;
use super::optim::Optimizer;
use super::state::{EpochRecord, History, TrainingState};
use crate::io::atomic::write_atomic;
use crate::model::Sequential;
use crate::plot::{save_svg, Plot, Series};
use crate::{Error, Result};

/// The history as CSV (Keras's `CSVLogger` layout): a header `epoch,<metrics
/// sorted by name>,seconds`, then one row per epoch; a metric missing from an
/// epoch is an empty field. Values are printed in Rust's shortest exact form.
pub fn history_csv(history: &History) -> String {
    let names: BTreeSet<&str> = history
        .epochs
        .iter()
        .flat_map(|e| e.metrics.keys().map(String::as_str))
        .collect();
    let mut out = String::from("epoch");
    for n in &names {
        out.push(',');
        out.push_str(n);
    }
    out.push_str(",seconds\n");
    for e in &history.epochs {
        out.push_str(&e.epoch.to_string());
        for n in &names {
            out.push(',');
            if let Some(v) = e.metrics.get(*n) {
                out.push_str(&v.to_string());
            }
        }
        out.push_str(&format!(",{}\n", e.seconds));
    }
    out
}

/// The history as pretty JSON (`{"epochs": [{"epoch": 1, "metrics": {..}, "seconds": ..}]}`).
pub fn history_json(history: &History) -> Result<String> {
    serde_json::to_string_pretty(history)
        .map_err(|e| Error::invalid("history", format!("cannot serialise: {e}")))
}

/// Learning-curve panels: `loss` and `val_loss` per epoch, then, when
/// `main_metric` is given and recorded, the metric and its `val_` version.
pub fn learning_curves(history: &History, main_metric: Option<&str>) -> Vec<Plot> {
    let panel = |name: &str| {
        let series = |key: &str| -> Vec<(f64, f64)> {
            history
                .series(key)
                .into_iter()
                .map(|(e, v)| (e as f64, v))
                .collect()
        };
        let mut p = Plot::new(name).x_label("epoch").y_label(name);
        p = p.series(Series::new(name, series(name)));
        let val = format!("val_{name}");
        let v = series(&val);
        if !v.is_empty() {
            p = p.series(Series::new(val, v).dashed(true));
        }
        p
    };
    let mut panels = vec![panel("loss")];
    if let Some(m) = main_metric {
        if !history.series(m).is_empty() {
            panels.push(panel(m));
        }
    }
    panels
}

/// Writes `history.csv`, `history.json` and `loss.svg` into a directory after
/// every epoch.
#[derive(Debug, Clone)]
pub struct HistoryWriter {
    dir: PathBuf,
    main_metric: Option<String>,
}

impl HistoryWriter {
    /// Writes into `dir` (which must exist).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        HistoryWriter {
            dir: dir.into(),
            main_metric: None,
        }
    }

    /// Adds a second panel to `loss.svg` for this metric (e.g. `accuracy`).
    pub fn main_metric(mut self, metric: Option<String>) -> Self {
        self.main_metric = metric;
        self
    }

    /// The directory written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the three files for `history`.
    pub fn write(&self, history: &History) -> Result<()> {
        write_atomic(
            self.dir.join("history.csv"),
            history_csv(history).as_bytes(),
        )?;
        write_atomic(
            self.dir.join("history.json"),
            history_json(history)?.as_bytes(),
        )?;
        save_svg(
            self.dir.join("loss.svg"),
            &learning_curves(history, self.main_metric.as_deref()),
        )
    }
}

impl FitHooks for HistoryWriter {
    fn on_epoch_end(
        &mut self,
        _record: &EpochRecord,
        _model: &Sequential,
        _optimizer: &Optimizer,
        state: &TrainingState,
    ) -> Result<()> {
        self.write(&state.history)
    }

    fn on_train_end(&mut self, _model: &Sequential, history: &History) -> Result<()> {
        self.write(history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn history() -> History {
        let rec = |epoch, loss: f64, val: Option<f64>| EpochRecord {
            epoch,
            metrics: {
                let mut m = BTreeMap::from([("loss".to_string(), loss)]);
                if let Some(v) = val {
                    m.insert("val_loss".into(), v);
                }
                m
            },
            seconds: 0.5,
        };
        History {
            epochs: vec![rec(1, 0.75, Some(1.0)), rec(2, 0.5, None)],
        }
    }

    #[test]
    fn csv_layout_and_missing_values() {
        assert_eq!(
            history_csv(&history()),
            "epoch,loss,val_loss,seconds\n1,0.75,1,0.5\n2,0.5,,0.5\n"
        );
    }

    #[test]
    fn json_round_trips() {
        let h = history();
        let back: History = serde_json::from_str(&history_json(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn curves_have_loss_and_val_loss() {
        let p = learning_curves(&history(), Some("accuracy"));
        assert_eq!(p.len(), 1, "accuracy is not recorded");
        assert_eq!(p[0].series.len(), 2);
        assert_eq!(p[0].series[1].name, "val_loss");
        assert_eq!(p[0].series[1].points, vec![(1.0, 1.0)]);
    }
}
