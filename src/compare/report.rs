//! The comparison report: `report.md` with one table per data set, SVG plots
//! (validation curves; test metric against training time), the model
//! summaries and the raw numbers as JSON.

use std::fmt::Write as _;
use std::path::Path;

use super::data::Task;
use super::{CellResult, CompareConfig, DataResult};
use crate::io::atomic::write_atomic;
use crate::plot::{save_svg, Plot, Series};
use crate::{Error, Result};

/// The CPU model from `/proc/cpuinfo` (Linux), for the report.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn fmt_metric(task: &Task, v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    match task {
        Task::Regression { scale, .. } => format!("{:.4}", v * f64::from(*scale)),
        _ => format!("{:.2}%", 100.0 * v),
    }
}

fn table(d: &DataResult) -> String {
    let metric = d.task.metric_name();
    let units = match d.task {
        Task::Regression { .. } => " (original units)",
        _ => "",
    };
    let mut s = format!(
        "| cell | test {metric}{units} | test {metric} at best val epoch | parameters | seconds / epoch | best val epoch (val {metric}) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n"
    );
    for c in &d.cells {
        let last = c.epochs.last();
        let best = c.best_epoch(&d.task);
        let val = |p: &super::EpochPoint| fmt_metric(&d.task, p.val_metric);
        let _ = writeln!(
            s,
            "| {}{} | {} | {} | {} | {} | {} |",
            c.cell,
            if c.error.is_some() { " (stopped)" } else { "" },
            last.map_or("—".into(), |p| fmt_metric(&d.task, p.test_metric)),
            best.map_or("—".into(), |p| fmt_metric(&d.task, p.test_metric)),
            c.params,
            c.seconds_per_epoch()
                .map_or("—".into(), |v| format!("{v:.2}")),
            best.map_or("—".into(), |p| format!("{} ({})", p.epoch, val(p))),
        );
    }
    s
}

fn scaled(task: &Task) -> f64 {
    match task {
        Task::Regression { scale, .. } => f64::from(*scale),
        _ => 1.0,
    }
}

fn plots(d: &DataResult) -> (Plot, Plot) {
    let metric = d.task.metric_name();
    let k = scaled(&d.task);
    let mut val = Plot::new(format!("{}: validation {metric}", d.name))
        .x_label("epoch")
        .y_label(format!("val {metric}"));
    let mut time = Plot::new(format!("{}: test {metric} vs training time", d.name))
        .x_label("training time (s)")
        .y_label(format!("test {metric}"));
    for c in &d.cells {
        val = val.series(Series::new(
            &c.cell,
            c.epochs
                .iter()
                .map(|p| (p.epoch as f64, p.val_metric * k))
                .collect(),
        ));
        time = time.series(Series::new(
            &c.cell,
            c.epochs
                .iter()
                .map(|p| (p.seconds, p.test_metric * k))
                .collect(),
        ));
    }
    (val, time)
}

fn errors(cells: &[CellResult]) -> String {
    cells
        .iter()
        .filter_map(|c| c.error.as_ref().map(|e| format!("- {}: {e}\n", c.cell)))
        .collect()
}

/// Writes `report.md`, `<data>_val.svg`, `<data>_time.svg`, `summaries.md`
/// and `results.json` into `dir` (created if missing). `seconds` is the
/// whole run's wall time.
pub fn write(dir: &Path, results: &[DataResult], cfg: &CompareConfig, seconds: f64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut md = String::from("# Recurrent cell comparison\n\n");
    if !cfg.command.is_empty() {
        let _ = writeln!(md, "Command:\n\n```\n{}\n```\n", cfg.command);
    }
    let _ = writeln!(
        md,
        "Same budget for every model: {} epochs, {} units per recurrent layer or cell, batch size {}, \
         {} (learning rate {}){}, seed {}; {:.0}% of the training data held out for validation{}. \
         Time per epoch covers the training and validation passes; the test split is scored after \
         every epoch outside the timed part.\n",
        cfg.epochs,
        cfg.units,
        cfg.batch_size,
        cfg.optimizer,
        cfg.lr,
        cfg.clipnorm
            .map_or(String::new(), |c| format!(", gradient norm clipped at {c}")),
        cfg.seed,
        100.0 * cfg.validation,
        cfg.max_samples.map_or(String::new(), |m| format!(
            "; at most {m} training and {m} test samples per data set"
        )),
    );
    let _ = writeln!(
        md,
        "Machine: {}, {} threads used of {} available; total wall time {:.1} s.\n",
        cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        crate::threads::num_threads(),
        crate::threads::available(),
        seconds
    );
    md.push_str(
        "Cells: `simple_rnn`, `lstm`, `gru` are one layer; `stacked_lstm` two LSTM layers; `bilstm` \
         Bidirectional(LSTM) (concat); `rnn_lstm_cell` the generic `rnn` layer with one LSTM cell; \
         `stacked_cells` `rnn` with two LSTM cells (StackedRNNCells). The model summaries are in \
         [summaries.md](summaries.md), the raw numbers in `results.json`.\n\n",
    );
    let mut summaries = String::from("# Model summaries\n\n");
    for d in results {
        let (val, time) = plots(d);
        let val_file = format!("{}_val.svg", d.name);
        let time_file = format!("{}_time.svg", d.name);
        save_svg(dir.join(&val_file), &[val])?;
        save_svg(dir.join(&time_file), &[time])?;
        let _ = writeln!(md, "## {}\n\n`{}`\n\n{}.\n", d.name, d.spec, d.description);
        md.push_str(&table(d));
        let errs = errors(&d.cells);
        if !errs.is_empty() {
            let _ = writeln!(md, "\nStopped early:\n\n{errs}");
        }
        let _ = writeln!(
            md,
            "\n![validation curves]({val_file})\n![test vs time]({time_file})\n"
        );
        let _ = writeln!(summaries, "## {}\n", d.name);
        for c in &d.cells {
            let _ = writeln!(
                summaries,
                "### {}\n\n```\n{}\n```\n",
                c.cell,
                c.summary.trim_end()
            );
        }
    }
    write_atomic(dir.join("report.md"), md.as_bytes())?;
    write_atomic(dir.join("summaries.md"), summaries.as_bytes())?;
    let json: Vec<serde_json::Value> = results
        .iter()
        .map(|d| {
            serde_json::json!({
                "data": d.name,
                "spec": d.spec,
                "description": d.description,
                "metric": d.task.metric_name(),
                "metric_scale": scaled(&d.task),
                "cells": d.cells,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json)
        .map_err(|e| Error::invalid("results.json", e.to_string()))?;
    write_atomic(dir.join("results.json"), text.as_bytes())?;
    Ok(())
}
