//! `gated train` trains a ConvLSTM2D model from a spec (issue 7): the generic
//! fit loop, the spec parser and the model directory work for image sequences.

use std::process::Command;

use gated::io::npy::write_npy;
use gated::model::load_model_dir;
use gated::{Rng, Tensor};

const SPEC: &str = r#"name = "tiny_conv_lstm"
[input]
shape = ["None", 6, 6, 1]
dtype = "float32"
[[layer]]
type = "conv_lstm2d"
filters = 3
kernel_size = [3, 3]
padding = "same"
return_sequences = true
[[layer]]
type = "batch_normalization"
[[layer]]
type = "conv3d"
filters = 1
kernel_size = [3, 3, 3]
padding = "same"
activation = "sigmoid"
"#;

#[test]
fn train_conv_lstm_from_a_spec() {
    let dir = std::env::temp_dir().join(format!("gated-conv-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spec.toml"), SPEC).unwrap();
    let mut rng = Rng::new(3);
    let n = 4 * 3 * 6 * 6;
    let x: Vec<f32> = (0..n)
        .map(|_| if rng.next_f32() < 0.2 { 1.0 } else { 0.0 })
        .collect();
    let y: Vec<f32> = x.iter().map(|v| 1.0 - v).collect();
    write_npy(
        dir.join("x.npy"),
        &Tensor::from_vec(&[4, 3, 6, 6, 1], x).unwrap(),
    )
    .unwrap();
    write_npy(
        dir.join("y.npy"),
        &Tensor::from_vec(&[4, 3, 6, 6, 1], y).unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gated"))
        .arg("train")
        .args(["--spec"])
        .arg(dir.join("spec.toml"))
        .arg("--x")
        .arg(dir.join("x.npy"))
        .arg("--y")
        .arg(dir.join("y.npy"))
        .arg("--out")
        .arg(dir.join("run"))
        .args([
            "--loss",
            "binary_crossentropy",
            "--epochs",
            "3",
            "--batch-size",
            "2",
            "--lr",
            "0.01",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let loaded = load_model_dir(&dir.join("run")).unwrap();
    let history = loaded.state.unwrap().history;
    let losses = history.series("loss");
    assert_eq!(losses.len(), 3);
    assert!(losses[2].1 < losses[0].1, "loss went down: {losses:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
