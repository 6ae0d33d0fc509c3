//! `gated compare` as a user runs it: a report from two tiny data sets, and
//! one clear error line for bad data-set specs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-compare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gated(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gated"))
        .args(args)
        .output()
        .unwrap()
}

/// A variable-length, 2-dimension, 2-class `.ts` file with `n` cases.
fn write_ts(path: &Path, n: usize, offset: usize) {
    let mut s = String::from(
        "@problemName Tiny\n@timeStamps false\n@missing false\n@univariate false\n\
         @dimensions 2\n@equalLength false\n@classLabel true up down\n@data\n",
    );
    for i in 0..n {
        let len = 3 + (i + offset) % 4;
        let up = (i + offset).is_multiple_of(2);
        let dim = |k: usize| {
            (0..len)
                .map(|t| {
                    let v = (t + k) as f32 / 4.0;
                    format!("{}", if up { v } else { 1.0 - v })
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        s.push_str(&format!(
            "{}:{}:{}\n",
            dim(0),
            dim(1),
            if up { "up" } else { "down" }
        ));
    }
    std::fs::write(path, s).unwrap();
}

/// A CSV time series with a date column to skip.
fn write_csv(path: &Path, rows: usize) {
    let mut s = String::from("Date,value\n");
    for t in 0..rows {
        s.push_str(&format!(
            "2020-{t},{:.4}\n",
            (t as f32 * 0.5).sin() * 10.0 + 20.0
        ));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn compare_writes_report_and_plots() {
    let dir = temp_dir("e2e");
    write_ts(&dir.join("T_TRAIN.ts"), 20, 0);
    write_ts(&dir.join("T_TEST.ts"), 8, 1);
    write_csv(&dir.join("s.csv"), 60);
    let out = dir.join("out");
    let data = format!(
        "ts:{},{},csv:{},target=value,skip=Date,lookback=5",
        dir.join("T_TRAIN.ts").display(),
        dir.join("T_TEST.ts").display(),
        dir.join("s.csv").display()
    );
    let o = gated(&[
        "compare",
        "--data",
        &data,
        "--cells",
        "lstm,stacked_cells",
        "--epochs",
        "1",
        "--units",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "--quiet prints nothing");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for want in [
        "## ts-t",
        "## csv-s",
        "| lstm |",
        "| stacked_cells |",
        "seconds / epoch",
        "best val epoch",
        "ts-t_val.svg",
        "csv-s_time.svg",
    ] {
        assert!(report.contains(want), "missing {want:?} in\n{report}");
    }
    for f in [
        "ts-t_val.svg",
        "ts-t_time.svg",
        "csv-s_val.svg",
        "csv-s_time.svg",
    ] {
        let svg = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("stacked_cells"),
            "{f}"
        );
    }
    let summaries = std::fs::read_to_string(out.join("summaries.md")).unwrap();
    assert!(summaries.contains("masking") && summaries.contains("Total params"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["cells"][0]["epochs"].as_array().unwrap().len(), 1);
}

fn one_error_line(o: &Output, want: &str) {
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: ") && err.contains(want), "{err}");
}

#[test]
fn bad_data_specs_give_one_error_line() {
    let dir = temp_dir("bad");
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    one_error_line(
        &gated(&["compare", "--data", "nosuch:x", "--out", out]),
        "unknown loader 'nosuch'",
    );
    let missing = dir.join("missing.csv");
    one_error_line(
        &gated(&[
            "compare",
            "--data",
            &format!("csv:{},target=0,lookback=3", missing.display()),
            "--out",
            out,
        ]),
        "not found",
    );
    one_error_line(
        &gated(&[
            "compare",
            "--data",
            "fashion-mnist:/nonexistent/dir",
            "--out",
            out,
        ]),
        "not found",
    );
    one_error_line(
        &gated(&[
            "compare", "--data", "ts:a.ts", "--cells", "lstm", "--out", out,
        ]),
        "takes 2",
    );
    one_error_line(
        &gated(&[
            "compare",
            "--data",
            "ts:a.ts,b.ts",
            "--cells",
            "tcn",
            "--out",
            out,
        ]),
        "unknown cell type 'tcn'",
    );
    assert!(!Path::new(out).join("report.md").exists());
}
