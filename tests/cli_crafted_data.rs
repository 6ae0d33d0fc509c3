//! Crafted data files against the `gated` CLI (issue 19): each test builds
//! its attack file itself, small on disk, and checks that gated refuses it
//! with one `error: ` line naming the file (and the member, line or value at
//! fault), without a panic, an abort or the memory the file asks for.
//!
//! `compare` prints a `loading ...` progress line before it reads a data set,
//! so its cases require exactly one `error: ` line, and that it is the last.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-crafted-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gated(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gated"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

/// The one error line of a failed run, after checking that it failed by
/// exiting (not by a signal), did not panic, printed exactly one `error: `
/// line and printed it last, and that the line names `file` and each of `also`.
fn refused(o: &Output, file: &Path, also: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code().is_some_and(|c| c != 0),
        "{:?}: {stderr}",
        o.status
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().last(),
        Some(errors[0]),
        "{stderr}"
    );
    let line = errors[0].to_string();
    assert!(line.contains(&file.display().to_string()), "{line}");
    for a in also {
        assert!(line.contains(a), "{line} lacks {a:?}");
    }
    line
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A univariate two-class `.ts` file whose second case holds `value`.
fn ts_with(path: &Path, value: &str) {
    write(
        path,
        &format!(
            "@problemName T\n@univariate true\n@classLabel true a b\n@data\n\
             1,2,3,4:a\n1,{value},3,4:b\n1,?,3,4:a\n4,3,2,NaN:b\n"
        ),
    );
}

/// `inf` in a `.ts` file was read as 0 without a word; now it is refused with
/// the line and value, while `?` and NaN (missing values) still load.
#[test]
fn ts_infinity_is_refused_with_its_line() {
    let d = temp_dir("ts");
    let ok = d.join("ok_TEST.ts");
    ts_with(&ok, "2");
    let out = d.join("out");
    for (i, value) in ["inf", "-Infinity", "1e39"].iter().enumerate() {
        let bad = d.join(format!("bad{i}_TRAIN.ts"));
        ts_with(&bad, value);
        let spec = format!("ts:{},{}", bad.display(), ok.display());
        let o = gated(&[&"compare", &"--data", &spec, &"--out", &out]);
        let want = format!("'{value}' is not finite");
        refused(&o, &bad, &["line 6", "value 2", &want]);
    }
    assert!(!out.join("report.md").exists());
    // The same files with a finite value train (missing values read as 0).
    let good = d.join("good_TRAIN.ts");
    ts_with(&good, "2.5");
    let spec = format!("ts:{},{}", good.display(), ok.display());
    let o = gated(&[
        &"compare",
        &"--data",
        &spec,
        &"--cells",
        &"gru",
        &"--epochs",
        &"1",
        &"--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&d);
}

/// NaN in a CSV named no file or line (the scaler's "column 0 has non-finite
/// values"); now each non-finite cell is refused where it is, with the file's
/// own line numbers even when columns are skipped and blank lines precede it.
#[test]
fn csv_non_finite_values_name_file_line_and_column() {
    let d = temp_dir("csv");
    let out = d.join("out");
    for (i, cell) in ["NaN", "inf", "-inf", "1e39"].iter().enumerate() {
        let csv = d.join(format!("series{i}.csv"));
        let mut text = String::from("Date,value\n\n");
        for t in 0..30 {
            let v = if t == 20 {
                cell.to_string()
            } else {
                format!("{}", t as f32 * 0.5)
            };
            text.push_str(&format!("2020-{t},{v}\n"));
        }
        write(&csv, &text);
        let spec = format!("csv:{},target=value,lookback=3,skip=Date", csv.display());
        let o = gated(&[&"compare", &"--data", &spec, &"--out", &out]);
        let want = format!("'{cell}' is not a finite number");
        let line = refused(&o, &csv, &["line 23", "column 2 ('value')", &want]);
        assert!(!line.contains("gated-compare-"), "{line}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
