//! Messages that must not mislead (issue 19, items 9 and 10): bad labels by
//! sample index before training, no pointer to a checkpoint that does not
//! exist, readable lines for crafted shapes, and crafted training states.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gated::io::npy::{write_npy, write_npy_i32};
use gated::model::Checkpoint;
use gated::{Rng, Tensor};

const SPEC: &str = "[input]\nshape = [4, 2]\n\
    [[layer]]\ntype = \"gru\"\nunits = 8\n\
    [[layer]]\ntype = \"dense\"\nunits = 3\n";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-msg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `spec.toml` and `x.npy` of 40 samples with values from `x_value`.
fn inputs(dir: &Path, x_value: impl Fn(usize) -> f32) {
    std::fs::write(dir.join("spec.toml"), SPEC).unwrap();
    let mut rng = Rng::new(1);
    let x: Vec<f32> = (0..40 * 8)
        .map(|i| x_value(i) + rng.uniform(-0.5, 0.5))
        .collect();
    write_npy(
        dir.join("x.npy"),
        &Tensor::from_vec(&[40, 4, 2], x).unwrap(),
    )
    .unwrap();
}

fn train(dir: &Path, y: &str, loss: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gated"))
        .args(["train", "--spec"])
        .arg(dir.join("spec.toml"))
        .arg("--x")
        .arg(dir.join("x.npy"))
        .arg("--y")
        .arg(dir.join(y))
        .arg("--out")
        .arg(dir.join("out"))
        .args([
            "--loss",
            loss,
            "--plain",
            "--epochs",
            "2",
            "--batch-size",
            "8",
        ])
        .args(extra)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn error_line(o: &Output) -> String {
    assert!(!o.status.success(), "succeeded");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err.lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {err}"))
        .to_string()
}

#[test]
fn a_bad_label_is_named_by_sample_index_and_file_before_training() {
    let d = temp_dir("label");
    inputs(&d, |_| 0.0);
    let mut y: Vec<i32> = (0..40).map(|i| i % 3).collect();
    y[29] = 7;
    write_npy_i32(d.join("y.npy"), &[40], &y).unwrap();
    let o = train(&d, "y.npy", "sparse_categorical_crossentropy", &[]);
    let e = error_line(&o);
    assert!(
        e.contains("sample 29 is 7") && e.contains("0..3") && e.contains("y.npy"),
        "{e}"
    );
    // Refused before the first step: no checkpoint, no epoch line.
    assert!(!Checkpoint::Last.path(&d.join("out")).exists());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("Epoch 1"));

    inputs(&d, |i| if i == 8 * 12 + 3 { f32::NAN } else { 0.0 });
    y[29] = 1;
    write_npy_i32(d.join("y.npy"), &[40], &y).unwrap();
    let e = error_line(&train(&d, "y.npy", "sparse_categorical_crossentropy", &[]));
    assert!(e.contains("sample 12 (value 3 of its 8) is NaN"), "{e}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn divergence_in_the_first_epoch_names_no_checkpoint() {
    let d = temp_dir("diverge");
    inputs(&d, |_| 0.0);
    // Finite targets whose squared error overflows f32 at the first step.
    let y = Tensor::from_vec(&[40, 3], vec![3.0e38; 120]).unwrap();
    write_npy(d.join("y.npy"), &y).unwrap();
    let o = train(&d, "y.npy", "mse", &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(err.contains("non-finite"), "{err}");
    assert!(err.contains("no checkpoint was written"), "{err}");
    assert!(!err.contains("last good checkpoint"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_crafted_shape_gives_a_readable_line() {
    let d = temp_dir("shape");
    inputs(&d, |_| 0.0);
    // A version 2 .npy header declaring 100,000 axes of length 1 and one value.
    let mut dict = String::from("{'descr': '<f4', 'fortran_order': False, 'shape': (");
    dict.push_str(&"1, ".repeat(100_000));
    dict.push_str("), }");
    while (12 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.extend_from_slice(&1.0f32.to_le_bytes());
    std::fs::write(d.join("x.npy"), bytes).unwrap();
    write_npy_i32(d.join("y.npy"), &[1], &[0]).unwrap();
    let e = error_line(&train(&d, "y.npy", "sparse_categorical_crossentropy", &[]));
    assert!(e.len() < 2_000, "{} characters", e.len());
    assert!(e.contains("x.npy"), "{e}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_crafted_training_state_is_refused_on_resume() {
    let d = temp_dir("state");
    inputs(&d, |_| 0.0);
    let y: Vec<i32> = (0..40).map(|i| i % 3).collect();
    write_npy_i32(d.join("y.npy"), &[40], &y).unwrap();
    let o = train(&d, "y.npy", "sparse_categorical_crossentropy", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let last = Checkpoint::Last.path(&d.join("out"));
    let state_path = last.join("training_state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    // As a crafted directory would: no manifest to contradict the edits.
    std::fs::remove_file(last.join("checkpoint.json")).unwrap();
    for (field, value, needle) in [
        ("lr", serde_json::json!(-5.0), "`lr` is -5"),
        (
            "step",
            serde_json::json!(u64::MAX),
            "`step` is 18446744073709551615",
        ),
    ] {
        let mut crafted = state.clone();
        crafted[field] = value;
        std::fs::write(&state_path, serde_json::to_vec(&crafted).unwrap()).unwrap();
        let e = error_line(&train(
            &d,
            "y.npy",
            "sparse_categorical_crossentropy",
            &["--resume"],
        ));
        assert!(
            e.contains(needle) && e.contains("training_state.json"),
            "{e}"
        );
    }
    state["lr"] = serde_json::json!(0.001);
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    let o = train(
        &d,
        "y.npy",
        "sparse_categorical_crossentropy",
        &["--resume"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&d).ok();
}
