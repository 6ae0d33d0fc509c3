//! `gated train` as a user runs it: files in, files out, exit codes, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gated::io::npy::{write_npy, write_npy_i32};
use gated::io::weights::load_safetensors;
use gated::{Rng, Tensor};

const SPEC: &str = r#"name = "cli_lstm"
[input]
shape = [5, 1]
dtype = "float32"
[[layer]]
type = "lstm"
units = 4
[[layer]]
type = "dense"
units = 2
"#;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-cli-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes the spec, x [40, 5, 1] and y [40] (int32 class ids) into `dir`.
fn inputs(dir: &Path) {
    std::fs::write(dir.join("spec.toml"), SPEC).unwrap();
    let mut rng = Rng::new(1);
    let x: Vec<f32> = (0..200).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let y: Vec<i32> = x
        .chunks(5)
        .map(|r| i32::from(r.iter().sum::<f32>() > 0.0))
        .collect();
    write_npy(
        dir.join("x.npy"),
        &Tensor::from_vec(&[40, 5, 1], x).unwrap(),
    )
    .unwrap();
    write_npy_i32(dir.join("y.npy"), &[40], &y).unwrap();
}

fn train(dir: &Path, out: &Path, y: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gated"))
        .arg("train")
        .arg("--spec")
        .arg(dir.join("spec.toml"))
        .arg("--x")
        .arg(dir.join("x.npy"))
        .arg("--y")
        .arg(dir.join(y))
        .arg("--out")
        .arg(out)
        .args(extra)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn assert_one_clear_line(o: &Output, must_contain: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{stderr}");
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(must_contain), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
}

#[test]
fn train_writes_spec_weights_history_and_curves() {
    let dir = temp_dir("ok");
    inputs(&dir);
    let out = dir.join("run");
    let o = train(
        &dir,
        &out,
        "y.npy",
        &[
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--loss",
            "sparse_categorical_crossentropy",
            "--metrics",
            "accuracy",
            "--validation-split",
            "0.25",
            "--optimizer",
            "rmsprop",
            "--clipnorm",
            "1.0",
            "--early-stopping-patience",
            "5",
            "--restore-best-weights",
            "--seed",
            "7",
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    // Not a terminal: one plain line per epoch.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("Epoch ")).count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("val_accuracy: "), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(out.join("model.toml")).unwrap(),
        SPEC
    );
    let csv = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.starts_with("epoch,accuracy,loss,lr,val_accuracy,val_loss,seconds"));
    assert!(out.join("history.json").is_file());
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 4);
    let w = load_safetensors(out.join("weights.safetensors")).unwrap();
    let names: Vec<&str> = w.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"lstm_1.weight_ih_l0"), "{names:?}");
    assert!(names.contains(&"dense_1.weight"), "{names:?}");
    // Same seed, same run: identical weights.
    let out2 = dir.join("run2");
    let o = train(
        &dir,
        &out2,
        "y.npy",
        &[
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--loss",
            "sparse_categorical_crossentropy",
            "--metrics",
            "accuracy",
            "--validation-split",
            "0.25",
            "--optimizer",
            "rmsprop",
            "--clipnorm",
            "1.0",
            "--early-stopping-patience",
            "5",
            "--restore-best-weights",
            "--seed",
            "7",
            "--quiet",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(
        std::fs::read(out.join("weights.safetensors")).unwrap(),
        std::fs::read(out2.join("weights.safetensors")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_out_fails_before_training() {
    let dir = temp_dir("badout");
    inputs(&dir);
    let file = dir.join("not_a_dir");
    std::fs::write(&file, "x").unwrap();
    let o = train(
        &dir,
        &file.join("run"),
        "y.npy",
        &["--loss", "sparse_categorical_crossentropy", "--epochs", "2"],
    );
    assert_one_clear_line(&o, "--out");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("Epoch"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mismatched_y_is_one_clear_error() {
    let dir = temp_dir("bady");
    inputs(&dir);
    write_npy_i32(dir.join("y_bad.npy"), &[39], &[0; 39]).unwrap();
    let out = dir.join("run");
    let o = train(
        &dir,
        &out,
        "y_bad.npy",
        &["--loss", "sparse_categorical_crossentropy"],
    );
    assert_one_clear_line(&o, "[39]");
    assert!(
        !out.exists(),
        "--out was created although the data was rejected"
    );
    // An unknown metric is rejected the same way.
    let o = train(&dir, &out, "y.npy", &["--loss", "mse", "--metrics", "f1"]);
    assert_one_clear_line(&o, "unknown metric");
    let _ = std::fs::remove_dir_all(&dir);
}
