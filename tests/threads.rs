//! The thread count changes the speed of training, never its numbers: the
//! fit loop and char-LM training give the same losses and weights, bit for
//! bit, on 1, 2 and 3 threads. The models are sized so that every parallel
//! region of a step runs split: whole-sequence products above
//! `gemm::PARALLEL_MIN_MACS`, batches of 32 (two row blocks per recurrent
//! pass), an embedding table above the optimizer's and `zero_grad`'s split
//! sizes, bias-gradient column sums above theirs.
//!
//! Also `--threads` and `GATED_NUM_THREADS` as a user meets them: the flag
//! beats the variable, bad values give one line naming the flag or the
//! variable, and the headers say how many threads run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use gated::data::CharVocab;
use gated::model::spec::parse_spec;
use gated::model::Sequential;
use gated::train::charlm::{CharLmConfig, CharLmTrainer, Event};
use gated::train::{fit, FitConfig, Loss, NoHooks, Optimizer, Verbosity};
use gated::{Rng, Tensor};

/// Three first: rayon's pool is built by the first call, with three workers,
/// so that the split work of every count really runs concurrently.
const COUNTS: [usize; 3] = [3, 1, 2];

/// The thread count is process-wide; tests that set it take turns.
static THREADS: Mutex<()> = Mutex::new(());

fn weight_bits(m: &Sequential) -> Vec<u32> {
    m.params()
        .iter()
        .flat_map(|p| p.values.iter().map(|v| v.to_bits()))
        .collect()
}

/// Runs `f` at every count of [`COUNTS`] and checks that all give what 1
/// thread gives: with the CPU's widest kernels (on AVX-512, the blocked
/// GEMM), then with the portable ones (the `gemm` crate's products, split by
/// that crate).
fn same_on_every_count<T: PartialEq>(what: &str, f: impl Fn() -> T) {
    let _guard = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    for simd in [true, false] {
        gated::kernels::simd::set_simd_enabled(simd);
        let runs: Vec<(usize, T)> = COUNTS
            .iter()
            .map(|&n| {
                gated::threads::set_num_threads(n);
                (n, f())
            })
            .collect();
        gated::threads::set_num_threads(1);
        gated::kernels::simd::set_simd_enabled(true);
        let one = &runs.iter().find(|(n, _)| *n == 1).unwrap().1;
        for (n, r) in &runs {
            assert!(
                r == one,
                "{what} (simd {simd}): {n} threads differ from 1 thread"
            );
        }
    }
}

const FIT_SPEC: &str = r#"
name = "tokens"
[input]
shape = [40]
dtype = "int32"
[[layer]]
type = "embedding"
input_dim = 5000
output_dim = 64
[[layer]]
type = "lstm"
units = 64
return_sequences = true
[[layer]]
type = "simple_rnn"
units = 32
[[layer]]
type = "dense"
units = 4
"#;

#[test]
fn fit_is_bit_identical_on_1_2_and_3_threads() {
    let mut rng = Rng::new(5);
    let (n, t) = (96, 40);
    let x = Tensor::from_vec(
        &[n, t],
        (0..n * t).map(|_| rng.below(5000) as f32).collect(),
    );
    let y = Tensor::from_vec(&[n], (0..n).map(|_| rng.below(4) as f32).collect());
    let (x, y) = (x.unwrap(), y.unwrap());
    let cfg = FitConfig::new(Loss::SparseCategoricalCrossEntropy)
        .epochs(3)
        .batch_size(32)
        .clipnorm(1.0)
        .validation_split(0.25)
        .verbosity(Verbosity::Quiet)
        .seed(3);
    same_on_every_count("fit", || {
        let mut model = parse_spec(Path::new("t.toml"), FIT_SPEC, false, 1).unwrap();
        let mut opt = Optimizer::parse("adam", 1e-2).unwrap();
        let h = fit(&mut model, &mut opt, &x, &y, &cfg, &mut NoHooks).unwrap();
        let losses: Vec<(u64, u64)> = h
            .epochs
            .iter()
            .map(|e| (e.metrics["loss"].to_bits(), e.metrics["val_loss"].to_bits()))
            .collect();
        assert_eq!(losses.len(), 3);
        (losses, weight_bits(&model))
    });
}

/// Words drawn from a fixed list with a seeded LCG.
fn corpus(words: usize) -> String {
    let list = [
        "gate", "cell", "state", "loss", "step", "lane", "chunk", "the", "a",
    ];
    let mut x: u64 = 11;
    let mut text = String::new();
    for i in 0..words {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(list[(x >> 33) as usize % list.len()]);
        text.push(if i % 12 == 11 { '\n' } else { ' ' });
    }
    text
}

#[test]
fn char_lm_training_is_bit_identical_on_1_2_and_3_threads() {
    let text = corpus(900);
    let cfg = CharLmConfig {
        cell: gated::recurrent::CellKind::Gru,
        units: 96,
        layers: 2,
        embedding_dim: 16,
        seq_len: 32,
        batch_size: 32,
        steps: Some(6),
        eval_every: 3,
        sample_length: 0,
        ..CharLmConfig::default()
    };
    same_on_every_count("char LM", || {
        let vocab = CharVocab::from_text(&text).unwrap();
        let mut trainer = CharLmTrainer::new(&text, vocab, cfg.clone(), None).unwrap();
        let mut losses = Vec::new();
        trainer
            .train(&mut |e| {
                match e {
                    Event::Step { loss, .. } => losses.push(loss.to_bits()),
                    Event::Eval { val_loss, .. } => {
                        losses.push(val_loss.map_or(0, f32::to_bits));
                    }
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(losses.len(), 8, "6 steps and 2 evaluations");
        (losses, weight_bits(trainer.model()))
    });
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-threads-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gated(args: &[&str], env: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gated"));
    c.args(args).env_remove("RUST_BACKTRACE");
    match env {
        Some(v) => c.env(gated::threads::ENV_VAR, v),
        None => c.env_remove(gated::threads::ENV_VAR),
    };
    c.output().unwrap()
}

fn one_line_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{needle:?} not in {err}"
    );
}

#[test]
fn bad_thread_counts_give_one_line_naming_the_flag_or_variable() {
    let dir = temp_dir("bad");
    let spec = dir.join("m.toml");
    std::fs::write(&spec, FIT_SPEC).unwrap();
    let spec = spec.to_str().unwrap();
    for bad in ["0", "abc", "-3", "2.5"] {
        one_line_error(
            &gated(&["summary", spec, "--threads", bad], None),
            "--threads",
        );
        let o = gated(&["bench", "--config", "B", "--threads", bad], None);
        one_line_error(&o, "--threads");
        one_line_error(&gated(&["summary", spec], Some(bad)), "GATED_NUM_THREADS");
    }
    // The flag beats the variable, a bad one included.
    let o = gated(&["summary", spec, "--threads", "2"], Some("abc"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `gated train --text` with a thread setting; returns the stderr and the weights file.
fn train_text(dir: &Path, name: &str, flag: Option<&str>, env: Option<&str>) -> (String, Vec<u8>) {
    let file = dir.join("corpus.txt");
    std::fs::write(&file, corpus(600)).unwrap();
    let out = dir.join(name);
    let mut args = vec![
        "train",
        "--text",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--units",
        "32",
        "--layers",
        "1",
        "--seq-len",
        "16",
        "--batch-size",
        "16",
        "--steps",
        "4",
        "--eval-every",
        "2",
        "--sample-length",
        "0",
    ];
    if let Some(n) = flag {
        args.extend(["--threads", n]);
    }
    let o = gated(&args, env);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let weights = std::fs::read(out.join("last").join("weights.safetensors")).unwrap();
    (err, weights)
}

#[test]
fn the_binary_uses_the_flag_then_the_variable_and_gives_the_same_weights() {
    let dir = temp_dir("cli");
    let header = |err: &str| err.lines().next().unwrap_or("").to_string();
    let (err1, w1) = train_text(&dir, "one", Some("1"), Some("2"));
    assert!(header(&err1).ends_with(", 1 threads"), "{err1}");
    let (err3, w3) = train_text(&dir, "three", None, Some("3"));
    assert!(header(&err3).ends_with(", 3 threads"), "{err3}");
    let (err_all, w_all) = train_text(&dir, "all", None, None);
    let all = format!(", {} threads", gated::threads::available());
    assert!(header(&err_all).ends_with(&all), "{err_all}");
    assert!(
        w1 == w3 && w1 == w_all,
        "weights differ between thread counts"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
