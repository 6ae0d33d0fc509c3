//! The Keras-port examples (`examples/imdb_lstm.rs`, ...) run end to end on
//! small generated files of the real formats, with tiny budgets.

#[path = "../examples/imdb_lstm.rs"]
mod imdb_lstm;

#[path = "../examples/imdb_bidirectional_lstm.rs"]
mod imdb_bidirectional_lstm;

#[path = "../examples/reuters_compare.rs"]
mod reuters_compare;

#[path = "../examples/lstm_text_generation.rs"]
mod lstm_text_generation;

use std::path::PathBuf;

use gated::io::npz::write_npz;
use gated::train::Verbosity;
use gated::{Rng, Tensor};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-keras-examples-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// `n` sequences of `len` word ids in 1..vocab; label = whether the sum of the
/// first few ids is large (learnable, not needed here).
fn sequences(
    n: usize,
    len: usize,
    vocab: usize,
    classes: usize,
    rng: &mut Rng,
) -> (Tensor, Tensor) {
    let mut x = Vec::with_capacity(n * len);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f32> = (0..len)
            .map(|_| 1.0 + (rng.next_u64() % (vocab as u64 - 1)) as f32)
            .collect();
        y.push((row[0] as usize % classes) as f32);
        x.extend(row);
    }
    (
        Tensor::from_vec(&[n, len], x).unwrap(),
        Tensor::from_vec(&[n], y).unwrap(),
    )
}

/// An imdb.npz with 2-D integer members (all sequences the same length),
/// which `load_imdb` reads like Keras's object arrays.
fn imdb_file(name: &str) -> PathBuf {
    let mut rng = Rng::new(7);
    let (x, y) = sequences(24, 12, 50, 2, &mut rng);
    let (xt, yt) = sequences(10, 12, 50, 2, &mut rng);
    let p = temp(name);
    write_npz(
        &p,
        &[
            ("x_train", &x),
            ("y_train", &y),
            ("x_test", &xt),
            ("y_test", &yt),
        ],
    )
    .unwrap();
    p
}

#[test]
fn imdb_lstm_runs_on_a_small_file() {
    let mut cfg = imdb_lstm::parse_args(&[
        imdb_file("imdb_a.npz").display().to_string(),
        "--epochs".into(),
        "2".into(),
    ])
    .unwrap();
    assert_eq!((cfg.max_features, cfg.maxlen, cfg.units), (20_000, 80, 128));
    cfg.max_features = 60;
    cfg.maxlen = 10;
    cfg.embedding = 8;
    cfg.units = 8;
    cfg.verbosity = Verbosity::Quiet;
    let out = imdb_lstm::run(&cfg).unwrap();
    assert_eq!(out.history.epochs.len(), 2);
    assert!(out.history.epochs[1].metrics.contains_key("val_accuracy"));
    assert!((0.0..=1.0).contains(&out.test_accuracy));
    assert!(out.test_loss.is_finite());
    assert!(imdb_lstm::parse_args(&[]).is_err());
}

#[test]
fn imdb_bidirectional_lstm_runs_on_a_small_file() {
    let mut cfg = imdb_bidirectional_lstm::parse_args(&[
        imdb_file("imdb_b.npz").display().to_string(),
        "--epochs".into(),
        "1".into(),
        "--max-samples".into(),
        "16".into(),
    ])
    .unwrap();
    assert_eq!((cfg.maxlen, cfg.units, cfg.epochs), (100, 64, 1));
    cfg.max_features = 60;
    cfg.maxlen = 10;
    cfg.embedding = 8;
    cfg.units = 4;
    cfg.verbosity = Verbosity::Quiet;
    let spec = cfg.spec();
    assert!(spec.contains("bidirectional") && spec.contains("dropout"));
    let out = imdb_bidirectional_lstm::run(&cfg).unwrap();
    assert_eq!(out.history.epochs.len(), 1);
    assert!(out.test_loss.is_finite());
}

#[test]
fn reuters_compare_uses_46_one_hot_topics() {
    let mut rng = Rng::new(3);
    let (x, y) = sequences(40, 10, 40, 46, &mut rng);
    let p = temp("reuters.npz");
    write_npz(&p, &[("x", &x), ("y", &y)]).unwrap();
    let mut cfg = reuters_compare::Config::new(p);
    cfg.num_words = 45;
    cfg.maxlen = 8;
    cfg.units = 6;
    cfg.epochs = 1;
    cfg.batch_size = 16;
    cfg.layers = vec!["gru", "lstm"];
    cfg.verbosity = Verbosity::Quiet;
    let rows = reuters_compare::run(&cfg).unwrap();
    assert_eq!(rows.len(), 2);
    // Embedding 45*6 + GRU (reset_after) 3*6*(6+6+2) + Dense 6*46+46.
    assert_eq!(rows[0].params, 45 * 6 + 3 * 6 * (6 + 6 + 2) + 6 * 46 + 46);
    assert!(rows.iter().all(|r| (0.0..=1.0).contains(&r.test_accuracy)));
    let hot = reuters_compare::one_hot(&[0, 45]).unwrap();
    assert_eq!(hot.shape(), &[2, 46]);
    assert_eq!(hot.data()[91], 1.0);
    assert!(reuters_compare::one_hot(&[46]).is_err());
}

#[test]
fn lstm_text_generation_trains_and_samples() {
    let mut cfg = lstm_text_generation::parse_args(&["--epochs".into(), "1".into()]).unwrap();
    assert!(cfg.path.ends_with("examples/data/gated_notes.txt"));
    // A tiny budget: the first 400 characters, short windows, a small LSTM.
    let text: String = std::fs::read_to_string(&cfg.path)
        .unwrap()
        .chars()
        .take(400)
        .collect();
    let p = temp("notes.txt");
    std::fs::write(&p, text).unwrap();
    cfg.path = p;
    cfg.maxlen = 10;
    cfg.step = 5;
    cfg.units = 16;
    cfg.generate = 20;
    cfg.verbosity = Verbosity::Quiet;
    let out = lstm_text_generation::run(&cfg).unwrap();
    assert_eq!(out.history.epochs.len(), 1);
    assert_eq!(out.samples.len(), 4);
    assert_eq!(out.windows, 390usize.div_ceil(5));
    for (t, seed, s) in &out.samples {
        assert_eq!(seed.chars().count(), 10, "diversity {t}");
        assert_eq!(s.chars().count(), 20);
        assert!(s.chars().all(|c| out.chars.contains(&c)));
    }
    cfg.maxlen = 1000;
    assert!(lstm_text_generation::run(&cfg).is_err());
}
