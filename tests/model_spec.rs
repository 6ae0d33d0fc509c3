//! Model specs and Keras's summary table (the figures of the course and of Keras itself).

use gated::model::spec::{load_spec, parse_spec};
use std::path::Path;

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn emojify_summary_matches_keras_number_for_number() {
    let spec = load_spec(&example("emojify_v2.toml"), 0).unwrap();
    let text = spec.model.summary();
    let rows = [
        "Layer (type)                 Output Shape              Param #",
        "input_1 (InputLayer)         (None, 10)                0",
        "embedding_1 (Embedding)      (None, 10, 50)            20000050",
        "lstm_1 (LSTM)                (None, 10, 128)           91648",
        "dropout_1 (Dropout)          (None, 10, 128)           0",
        "lstm_2 (LSTM)                (None, 128)               131584",
        "dropout_2 (Dropout)          (None, 128)               0",
        "dense_1 (Dense)              (None, 5)                 645",
        "activation_1 (Activation)    (None, 5)                 0",
        "Total params: 20,223,927",
        "Trainable params: 20,223,927",
        "Non-trainable params: 0",
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
    assert_eq!(lines.iter().filter(|l| l.starts_with("====")).count(), 2);
}

#[test]
fn frozen_embedding_counts() {
    let spec = load_spec(&example("emojify_v2_frozen.toml"), 0).unwrap();
    let text = spec.model.summary();
    assert!(text.contains("Total params: 20,223,927\n"), "{text}");
    assert!(text.contains("Trainable params: 223,877\n"), "{text}");
    assert!(
        text.contains("Non-trainable params: 20,000,050\n"),
        "{text}"
    );
}

fn err(spec: &str) -> String {
    parse_spec(Path::new("bad.toml"), spec, false, 0)
        .unwrap_err()
        .to_string()
}

const HEAD: &str = "name = \"m\"\n[input]\nshape = [7, 3]\ndtype = \"float32\"\n";

#[test]
fn spec_errors_name_file_line_and_options() {
    let e = err(&format!(
        "{HEAD}[[layer]]\ntype = \"lstm\"\nunits = 4\n\n[[layer]]\ntype = \"lstmm\"\nunits = 3\n"
    ));
    assert!(
        e.contains("bad.toml")
            && e.contains("line 10")
            && e.contains("lstmm")
            && e.contains("simple_rnn"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}[[layer]]\ntype = \"lstm\"\nunits = 4\nunitz = 5\n"
    ));
    assert!(
        e.contains("line 8") && e.contains("unitz") && e.contains("return_sequences"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}[[layer]]\ntype = \"lstm\"\nunits = 4\n[[layer]]\ntype = \"lstm\"\nunits = 2\n"
    ));
    assert!(
        e.contains("lstm_2 (LSTM)") && e.contains("lstm_1 (LSTM)") && e.contains("(None, 4)"),
        "{e}"
    );
    let e = err(&format!("{HEAD}[[layer]]\ntype = \"gru\"\nunits = 0\n"));
    assert!(e.contains("units") && e.contains('0'), "{e}");
    let e =
        err("[input]\nshape = [3]\ndtype = \"complex\"\n[[layer]]\ntype = \"dense\"\nunits = 2\n");
    assert!(e.contains("complex"), "{e}");
    let e = err("this is = not toml [");
    assert!(e.contains("bad.toml") && e.contains("TOML"), "{e}");
}

#[test]
fn nested_wrappers_and_json() {
    let spec = format!(
        "{HEAD}[[layer]]\ntype = \"bidirectional\"\nmerge_mode = \"sum\"\n[layer.layer]\ntype = \"gru\"\nunits = 6\nreturn_sequences = true\n\n\
         [[layer]]\ntype = \"rnn\"\nreturn_sequences = true\ncells = [{{ type = \"lstm\", units = 5 }}, {{ type = \"simple_rnn\", units = 4 }}]\n\n\
         [[layer]]\ntype = \"time_distributed\"\n[layer.layer]\ntype = \"dense\"\nunits = 2\n"
    );
    let m = parse_spec(Path::new("ok.toml"), &spec, false, 0).unwrap();
    let s = m.summary();
    assert!(
        s.contains("bidirectional_1 (Bidirectional) (None, 7, 6)")
            || s.contains("bidirectional_1 (Bidirectio"),
        "{s}"
    );
    assert!(
        s.contains("(None, 7, 6)") && s.contains(&(2 * (3 * (6 * 9 + 12))).to_string()),
        "{s}"
    );
    assert!(
        s.contains("rnn_1 (RNN)") && s.contains("(None, 7, 4)"),
        "{s}"
    );
    assert!(
        s.contains("time_distributed_1 (TimeDistributed)")
            || s.contains("time_distributed_1 (TimeDi"),
        "{s}"
    );
    let json = r#"{"name": "j", "input": {"shape": [5], "dtype": "int32"},
        "layer": [{"type": "embedding", "input_dim": 20, "output_dim": 4, "mask_zero": true},
                  {"type": "simple_rnn", "units": 3}, {"type": "dense", "units": 1, "activation": "sigmoid"}]}"#;
    let m = parse_spec(Path::new("m.json"), json, true, 0).unwrap();
    assert_eq!(m.param_counts().0, 20 * 4 + (3 * 7 + 3) + 4);
}

#[test]
fn final_softmax_is_fused_into_cross_entropy() {
    use gated::train::Loss;
    use gated::Tensor;
    let spec = "[input]\nshape = [4]\ndtype = \"int32\"\n[[layer]]\ntype = \"embedding\"\ninput_dim = 9\noutput_dim = 3\n\
                [[layer]]\ntype = \"lstm\"\nunits = 5\n[[layer]]\ntype = \"dense\"\nunits = 3\n[[layer]]\ntype = \"activation\"\nactivation = \"softmax\"\n";
    let mut m = parse_spec(Path::new("s.toml"), spec, false, 3).unwrap();
    let x = Tensor::from_vec(&[2, 4], vec![1., 2., 3., 4., 8., 7., 0., 5.]).unwrap();
    let y = Tensor::from_vec(&[2], vec![2., 0.]).unwrap();
    let probs = m.forward(x.clone(), false).unwrap();
    let want = -((probs.data()[2] as f64).ln() + (probs.data()[3] as f64).ln()) / 2.0;
    let (head, skip) = m.loss_head(Loss::SparseCategoricalCrossEntropy);
    assert!(skip, "the softmax layer is fused");
    let logits = m.forward_head(x.clone(), false, skip).unwrap();
    let (got, _) = head.compute(&logits, &y).unwrap();
    assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    // A model without a final softmax is left alone.
    let (_, skip) = m.loss_head(Loss::MeanSquaredError);
    assert!(!skip);
}

/// A spec of 20,000 dense layers parses and summarises within the normal test
/// run. Parsing was quadratic (0.38 s for 2,500 layers, 24.96 s for 20,000);
/// the structural guard is `Sequential`'s own test that adding a layer checks
/// one shape, this one that the whole path (TOML, build, summary) keeps up.
#[test]
fn twenty_thousand_layers_parse() {
    let n = 20_000;
    let mut text = String::from("[input]\nshape = [4]\ndtype = \"float32\"\n");
    for _ in 0..n {
        text.push_str("[[layer]]\ntype = \"dense\"\nunits = 4\n");
    }
    let start = std::time::Instant::now();
    let m = parse_spec(Path::new("deep.toml"), &text, false, 0).unwrap();
    let summary = m.summary();
    let took = start.elapsed();
    assert_eq!(m.layers().len(), n);
    assert!(summary.contains("dense_20000 (Dense)"), "{summary:.300}");
    assert_eq!(m.param_counts().0, n * 20);
    // Far above the linear cost (well under a second) and far below the
    // quadratic one, so a loaded machine cannot make it fail by chance.
    assert!(took.as_secs() < 20, "20,000 layers took {took:?}");
}

/// The parameter limit is checked against each layer's arguments before the
/// layer is built, counting the layers before it: a second large layer is
/// refused without first allocating it.
#[test]
fn the_parameter_limit_counts_the_layers_before() {
    let spec = "[input]\nshape = [3, 4]\n\
        [[layer]]\ntype = \"dense\"\nunits = 100\n\
        [[layer]]\ntype = \"bidirectional\"\n[layer.layer]\ntype = \"lstm\"\nunits = 100\n";
    let p = Path::new("limit.toml");
    // dense: 500; bidirectional LSTM: at most 2 * 4 * 100 * 202 = 161,600.
    let e = gated::model::spec::parse_spec_with_limit(p, spec, false, 0, 100_000)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("limit.toml: layer 2: "), "{e}");
    assert!(e.contains("with the 500 of the layers before it"), "{e}");
    assert!(e.contains("limit of 100000"), "{e}");
    let e = gated::model::spec::parse_spec_with_limit(p, spec, false, 0, 500)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer 2"), "{e}");
    gated::model::spec::parse_spec_with_limit(p, spec, false, 0, 162_100).unwrap();
}
