//! `gated train --text`, `gated generate` and `gated demo` as a user runs them:
//! files in, files out, exit codes, one-line errors, no panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-cli-text-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gated(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gated"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A failure: non-zero exit, one line on stderr that contains `needle`, no panic.
fn one_line_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
}

/// A small generated corpus: words drawn from a fixed list with a seeded LCG.
fn corpus() -> String {
    let words = [
        "gate", "cell", "state", "loss", "step", "lane", "chunk", "the", "a",
    ];
    let mut x: u64 = 7;
    let mut text = String::new();
    for i in 0..600 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(words[(x >> 33) as usize % words.len()]);
        text.push(if i % 12 == 11 { '\n' } else { ' ' });
    }
    text
}

fn train_small(dir: &Path, out: &Path) -> Output {
    let file = dir.join("corpus.txt");
    std::fs::write(&file, corpus()).unwrap();
    gated(&[
        "train",
        "--text",
        s(&file),
        "--out",
        s(out),
        "--units",
        "16",
        "--layers",
        "2",
        "--embedding-dim",
        "8",
        "--seq-len",
        "16",
        "--batch-size",
        "4",
        "--steps",
        "6",
        "--eval-every",
        "3",
        "--sample-length",
        "10",
        "--quiet",
    ])
}

#[test]
fn train_text_writes_a_model_that_generates() {
    let dir = temp_dir("ok");
    let out = dir.join("model");
    let o = train_small(&dir, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "model.toml",
        "weights.safetensors",
        "vocab.json",
        "history.csv",
        "loss.svg",
        "last/weights.safetensors",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let hist = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(hist.lines().count(), 3, "{hist}"); // header + evals at steps 3 and 6
                                                   // The library loads it back as a char model.
    let (model, vocab) = gated::train::charlm::load_char_model(&out).unwrap();
    assert_eq!(
        model.output_shape().unwrap().last().copied().flatten(),
        Some(vocab.len())
    );

    let g = gated(&[
        "generate",
        "--model",
        s(&out),
        "--length",
        "37",
        "--seed",
        "3",
    ]);
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let text = String::from_utf8(g.stdout).unwrap();
    let body = text.strip_suffix('\n').unwrap();
    assert_eq!(body.chars().count(), 37, "{text:?}");
    // Same seed, same text; greedy with a prime prints the prime first.
    let again = gated(&[
        "generate",
        "--model",
        s(&out),
        "--length",
        "37",
        "--seed",
        "3",
    ]);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), text);
    let g = gated(&[
        "generate",
        "--model",
        s(&out),
        "--length",
        "5",
        "--argmax",
        "--prime",
        "the ",
    ]);
    assert!(g.status.success());
    let text = String::from_utf8(g.stdout).unwrap();
    assert!(text.starts_with("the "), "{text:?}");
    assert_eq!(text.trim_end_matches('\n').chars().count(), 9);

    // Bad generate arguments: one line each, non-zero exit.
    one_line_error(
        &gated(&["generate", "--model", s(&out), "--prime", "the Zebra"]),
        "'Z'",
    );
    one_line_error(
        &gated(&["generate", "--model", s(&out), "--length", "0"]),
        "--length",
    );
    for t in ["0", "-1", "NaN"] {
        let arg = format!("--temperature={t}");
        one_line_error(
            &gated(&["generate", "--model", s(&out), &arg]),
            "temperature",
        );
    }
    one_line_error(
        &gated(&["generate", "--model", s(&out), "--top-k", "0"]),
        "top",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spec_overrides_the_default_char_model() {
    let dir = temp_dir("spec");
    let file = dir.join("corpus.txt");
    std::fs::write(&file, corpus()).unwrap();
    let v = gated::data::CharVocab::from_text(&corpus()).unwrap().len();
    let spec = |units: usize| {
        format!(
            "name = \"tiny_gru\"\n[input]\nshape = [\"None\"]\ndtype = \"int32\"\n\
             [[layer]]\ntype = \"embedding\"\ninput_dim = {v}\noutput_dim = 4\n\
             [[layer]]\ntype = \"gru\"\nunits = 6\nreturn_sequences = true\n\
             [[layer]]\ntype = \"time_distributed\"\n[layer.layer]\ntype = \"dense\"\nunits = {units}\n"
        )
    };
    std::fs::write(dir.join("gru.toml"), spec(v)).unwrap();
    let out = dir.join("m");
    let args = |spec_file: &Path| {
        gated(&[
            "train",
            "--text",
            s(&file),
            "--spec",
            s(spec_file),
            "--out",
            s(&out),
            "--seq-len",
            "8",
            "--batch-size",
            "2",
            "--steps",
            "2",
            "--quiet",
        ])
    };
    let o = args(&dir.join("gru.toml"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let toml = std::fs::read_to_string(out.join("model.toml")).unwrap();
    assert!(toml.contains("tiny_gru") && toml.contains("gru"), "{toml}");
    let g = gated(&["generate", "--model", s(&out), "--length", "4"]);
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    // A spec whose output does not match the vocabulary.
    std::fs::write(dir.join("bad.toml"), spec(v + 3)).unwrap();
    one_line_error(&args(&dir.join("bad.toml")), "char model");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_text_files_are_one_line_errors() {
    let dir = temp_dir("bad");
    let out = dir.join("out");
    let run = |file: &Path| {
        gated(&[
            "train",
            "--text",
            s(file),
            "--out",
            s(&out),
            "--steps",
            "1",
            "--quiet",
        ])
    };
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    one_line_error(&run(&empty), "empty");
    let binary = dir.join("bin.dat");
    std::fs::write(&binary, b"abc\0\x01\x02").unwrap();
    one_line_error(&run(&binary), "byte offset 3");
    let latin1 = dir.join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait").unwrap();
    one_line_error(&run(&latin1), "byte offset 3");
    one_line_error(&run(&dir.join("missing.txt")), "missing.txt");
    // Too short for the default 50 lanes of 50 characters.
    let short = dir.join("short.txt");
    std::fs::write(&short, "hello world, hello lanes\n".repeat(8)).unwrap();
    one_line_error(&run(&short), "too short");
    // A bad knob.
    std::fs::write(dir.join("c.txt"), corpus()).unwrap();
    one_line_error(
        &gated(&[
            "train",
            "--text",
            s(&dir.join("c.txt")),
            "--out",
            s(&out),
            "--cell",
            "tcn",
        ]),
        "tcn",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generate_refuses_what_is_not_a_char_model() {
    let dir = temp_dir("notchar");
    one_line_error(
        &gated(&["generate", "--model", s(&dir.join("nowhere"))]),
        "not a model directory",
    );
    // A model directory from the array mode: a spec and weights, no vocabulary.
    std::fs::write(
        dir.join("model.toml"),
        "[input]\nshape = [5, 1]\n[[layer]]\ntype = \"lstm\"\nunits = 2\n",
    )
    .unwrap();
    one_line_error(
        &gated(&["generate", "--model", s(&dir)]),
        "not a char model",
    );
    // A vocabulary that does not fit the model.
    std::fs::write(dir.join("vocab.json"), r#"{"chars":["a","b"]}"#).unwrap();
    let o = gated(&["generate", "--model", s(&dir)]);
    assert!(!o.status.success());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_parts_run_end_to_end_on_tiny_settings() {
    let dir = temp_dir("demo");
    let out = dir.join("plots");
    let o = gated(&[
        "demo",
        "reber",
        "--cell",
        "all",
        "--steps",
        "4",
        "--eval-every",
        "2",
        "--eval-size",
        "20",
        "--units",
        "8",
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "SimpleRNN",
        "GRU",
        "LSTM",
        "steps to solve",
        "held-out correct",
    ] {
        assert!(table.contains(needle), "{needle} not in {table}");
    }
    let svg = std::fs::read_to_string(out.join("reber.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 3);

    let o = gated(&[
        "demo",
        "adding",
        "--length",
        "12",
        "--cell",
        "lstm",
        "--steps",
        "3",
        "--eval-every",
        "3",
        "--eval-size",
        "16",
        "--units",
        "4",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(
        table.contains("LSTM") && table.contains("test MSE"),
        "{table}"
    );
    assert!(!table.contains("GRU"));
    // Progress went to stderr.
    assert!(String::from_utf8_lossy(&o.stderr).contains("step"));
    assert!(out.join("adding.svg").is_file());

    one_line_error(
        &gated(&["demo", "reber", "--cell", "xyz", "--out", s(&out)]),
        "xyz",
    );
    one_line_error(
        &gated(&[
            "demo",
            "adding",
            "--length",
            "1",
            "--steps",
            "1",
            "--out",
            s(&out),
        ]),
        "length",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
