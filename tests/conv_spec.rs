//! The conv layers in model specs and Keras's summary table: the conv_lstm.py
//! model's numbers, and spec errors that name the problem.

use gated::model::spec::{load_spec, parse_spec};
use gated::Tensor;
use std::path::Path;

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn conv_lstm_example_summary_matches_keras() {
    let spec = load_spec(&example("conv_lstm.toml"), 0).unwrap();
    let text = spec.model.summary();
    let rows = [
        "input_1 (InputLayer)         (None, None, 40, 40, 1)   0",
        "conv_lst_m2d_1 (ConvLSTM2D)  (None, None, 40, 40, 40)  59200",
        "batch_normalization_1 (Batch (None, None, 40, 40, 40)  160",
        "conv_lst_m2d_2 (ConvLSTM2D)  (None, None, 40, 40, 40)  115360",
        "batch_normalization_2 (Batch (None, None, 40, 40, 40)  160",
        "conv_lst_m2d_3 (ConvLSTM2D)  (None, None, 40, 40, 40)  115360",
        "batch_normalization_3 (Batch (None, None, 40, 40, 40)  160",
        "conv_lst_m2d_4 (ConvLSTM2D)  (None, None, 40, 40, 40)  115360",
        "batch_normalization_4 (Batch (None, None, 40, 40, 40)  160",
        "conv3d_1 (Conv3D)            (None, None, 40, 40, 1)   1081",
        "Total params: 407,001",
        "Trainable params: 406,681",
        "Non-trainable params: 320",
    ];
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    for row in rows {
        let pos = lines[at..]
            .iter()
            .position(|l| *l == row)
            .unwrap_or_else(|| panic!("missing or out of order: {row:?}\n{text}"));
        at += pos + 1;
    }
}

const SMALL: &str = r#"
[input]
shape = ["None", 6, 5, 1]

[[layer]]
type = "conv_lstm2d"
filters = 2
kernel_size = [3, 3]
padding = "same"
return_sequences = true
dropout = 0.1

[[layer]]
type = "batch_normalization"
momentum = 0.9

[[layer]]
type = "conv3d"
filters = 1
kernel_size = 3
padding = "same"
activation = "sigmoid"
"#;

#[test]
fn a_small_spec_model_runs_forward_and_backward() {
    let mut m = parse_spec(Path::new("small.toml"), SMALL, false, 1).unwrap();
    let x = Tensor::from_vec(
        &[2, 3, 6, 5, 1],
        (0..180).map(|v| (v % 7) as f32 / 7.0).collect(),
    )
    .unwrap();
    let y = m.forward(x, true).unwrap();
    assert_eq!(y.shape(), &[2, 3, 6, 5, 1]);
    assert!(y.data().iter().all(|v| *v > 0.0 && *v < 1.0));
    m.zero_grad();
    m.backward(Tensor::from_vec(&[2, 3, 6, 5, 1], vec![1.0; 180]).unwrap())
        .unwrap();
    let (total, trainable) = m.param_counts();
    assert_eq!(total, 4 * 2 * (9 * 3 + 1) + 8 + (27 * 2 + 1));
    assert_eq!(total - trainable, 4);
    // Weights are named PyTorch-style.
    let names: Vec<String> = m.named_weights().into_iter().map(|w| w.0).collect();
    assert!(names.contains(&"conv_lst_m2d_1.weight_ih".to_string()));
    assert!(names.contains(&"batch_normalization_1.running_var".to_string()));
    assert!(names.contains(&"conv3d_1.weight".to_string()));
}

fn spec_err(text: &str) -> String {
    parse_spec(Path::new("bad.toml"), text, false, 0)
        .unwrap_err()
        .to_string()
}

#[test]
fn spec_errors_name_the_fault() {
    // A ConvLSTM2D after a 3-D input.
    let e = spec_err("[input]\nshape = [10, 4]\n[[layer]]\ntype = \"conv_lstm2d\"\nfilters = 2\n");
    assert!(
        e.contains("ConvLSTM2D") && e.contains("(None, 10, 4)"),
        "{e}"
    );
    // A kernel larger than the frame with valid padding.
    let e = spec_err(
        "[input]\nshape = [\"None\", 2, 8, 1]\n[[layer]]\ntype = \"conv_lstm2d\"\nfilters = 2\nkernel_size = [3, 3]\n",
    );
    assert!(
        e.contains("at least 3x3") && e.contains("(None, None, 2, 8, 1)"),
        "{e}"
    );
    let e = spec_err(
        "[input]\nshape = [\"None\", 8, 8, 1]\n[[layer]]\ntype = \"conv_lstm2d\"\nfilters = 2\nkernel_size = [3, 0]\n",
    );
    assert!(e.contains("line 6") && e.contains("kernel_size"), "{e}");
    let e = spec_err(
        "[input]\nshape = [\"None\", 8, 8, 1]\n[[layer]]\ntype = \"conv_lstm2d\"\nfilters = 2\npadding = \"full\"\n",
    );
    assert!(e.contains("\"full\"") && e.contains("same, valid"), "{e}");
    let e = spec_err("[input]\nshape = [4, 8, 8, 3]\n[[layer]]\ntype = \"conv3d\"\nfilters = 1\nkernel_size = [5, 3, 3]\n");
    assert!(
        e.contains("Conv3D") && e.contains("(None, 4, 8, 8, 3)"),
        "{e}"
    );
    let e = spec_err(
        "[input]\nshape = [4]\n[[layer]]\ntype = \"batch_normalization\"\nmomentum = 2.0\n",
    );
    assert!(e.contains("momentum"), "{e}");
}
