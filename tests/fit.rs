//! The fit loop end to end: learning, exact resumption, NaN detection, early
//! stopping, validation split and the history files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gated::model::spec::parse_spec;
use gated::model::Sequential;
use gated::train::{
    evaluate, fit, fit_from, EarlyStopping, EpochRecord, FitConfig, FitHooks, History,
    HistoryWriter, Loss, Metric, Optimizer, ReduceOnPlateau, Schedule, TrainingState, Verbosity,
};
use gated::{Error, Rng, Tensor};

fn model(spec: &str, seed: u64) -> Sequential {
    parse_spec(Path::new("test.toml"), spec, false, seed).unwrap()
}

const LSTM_SPEC: &str = r#"
name = "sum_sign"
[input]
shape = [10, 1]
dtype = "float32"
[[layer]]
type = "lstm"
units = 16
[[layer]]
type = "dense"
units = 2
"#;

const DROPOUT_SPEC: &str = r#"
name = "with_dropout"
[input]
shape = [6, 1]
dtype = "float32"
[[layer]]
type = "lstm"
units = 8
[[layer]]
type = "dropout"
rate = 0.3
[[layer]]
type = "dense"
units = 2
"#;

const LINEAR_SPEC: &str = r#"
name = "linear"
[input]
shape = [3]
dtype = "float32"
[[layer]]
type = "dense"
units = 1
"#;

/// `n` random ±1 sequences of length `t`; label 1 when the sum is positive.
fn sum_sign(n: usize, t: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let mut x = Vec::with_capacity(n * t);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let mut sum = 0.0;
        for _ in 0..t {
            let v = if rng.next_f32() < 0.5 { -1.0 } else { 1.0 };
            sum += v;
            x.push(v);
        }
        y.push(if sum > 0.0 { 1.0 } else { 0.0 });
    }
    (
        Tensor::from_vec(&[n, t, 1], x).unwrap(),
        Tensor::from_vec(&[n], y).unwrap(),
    )
}

fn regression(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let x: Vec<f32> = (0..n * 3).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let y: Vec<f32> = x
        .chunks(3)
        .map(|r| 0.5 * r[0] - 2.0 * r[1] + r[2] + 0.1 * rng.normal())
        .collect();
    (
        Tensor::from_vec(&[n, 3], x).unwrap(),
        Tensor::from_vec(&[n, 1], y).unwrap(),
    )
}

/// Weights as exact bit patterns, by name.
type Bits = Vec<(String, Vec<u32>)>;
/// Named weights with their shapes, copied out of a model.
type Owned = Vec<(String, Vec<usize>, Vec<f32>)>;

fn weights(m: &Sequential) -> Bits {
    m.named_weights()
        .into_iter()
        .map(|(n, _, d)| (n, d.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn rows(t: &Tensor, start: usize, end: usize) -> Tensor {
    let size = t.len() / t.shape()[0];
    let mut shape = t.shape().to_vec();
    shape[0] = end - start;
    Tensor::from_vec(&shape, t.data()[start * size..end * size].to_vec()).unwrap()
}

#[test]
fn lstm_learns_the_sign_of_a_sum() {
    let (x, y) = sum_sign(1000, 10, 7);
    let mut m = model(LSTM_SPEC, 1);
    let mut opt = Optimizer::parse("adam", 0.01).unwrap();
    let cfg = FitConfig::new(Loss::SparseCategoricalCrossEntropy)
        .epochs(12)
        .batch_size(32)
        .validation_split(0.2)
        .metrics(vec![Metric::Accuracy])
        .seed(3)
        .verbosity(Verbosity::Quiet);
    let t0 = Instant::now();
    let h = fit(&mut m, &mut opt, &x, &y, &cfg, &mut gated::train::NoHooks).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let (_, val_acc) = *h.series("val_accuracy").last().unwrap();
    let (_, first_loss) = h.series("loss")[0];
    let (_, last_loss) = *h.series("loss").last().unwrap();
    println!(
        "sum-sign LSTM(16): val_accuracy {val_acc:.4} after {} epochs, loss {first_loss:.4} -> \
         {last_loss:.4}, {secs:.2}s",
        h.epochs.len()
    );
    assert!(val_acc >= 0.9, "val_accuracy {val_acc}");
    assert!(last_loss < first_loss);
    assert_eq!(h.epochs.len(), 12);
}

/// Captures the state, weights and optimizer at one epoch, then asks to stop.
struct Interrupt {
    at_epoch: usize,
    saved: Option<(TrainingState, Owned, Optimizer)>,
    stop: bool,
}

impl FitHooks for Interrupt {
    fn on_epoch_end(
        &mut self,
        record: &EpochRecord,
        model: &Sequential,
        optimizer: &Optimizer,
        state: &TrainingState,
    ) -> gated::Result<()> {
        if record.epoch == self.at_epoch {
            let w = model
                .named_weights()
                .into_iter()
                .map(|(n, s, d)| (n, s, d.to_vec()))
                .collect();
            self.saved = Some((state.clone(), w, optimizer.clone()));
            self.stop = true;
        }
        Ok(())
    }

    fn should_stop(&mut self) -> bool {
        self.stop
    }
}

fn resume_run(
    cfg: &FitConfig,
    x: &Tensor,
    y: &Tensor,
    mutate: impl Fn(&mut TrainingState),
) -> (Sequential, History) {
    let mut m = model(DROPOUT_SPEC, 11);
    let mut opt = Optimizer::parse("adam", 0.01).unwrap();
    let mut hook = Interrupt {
        at_epoch: 2,
        saved: None,
        stop: false,
    };
    let err = fit(&mut m, &mut opt, x, y, cfg, &mut hook).unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err}");
    let (mut state, w, saved_opt) = hook.saved.unwrap();
    mutate(&mut state);
    // A fresh process: other initial weights, a new optimizer with the saved state.
    let mut m2 = model(DROPOUT_SPEC, 999);
    for (name, shape, data) in &w {
        m2.set_weight(name, shape, data).unwrap();
    }
    let mut opt2 = Optimizer::parse("adam", 0.01).unwrap();
    opt2.import_state(&saved_opt.export_state()).unwrap();
    let h = fit_from(
        &mut m2,
        &mut opt2,
        x,
        y,
        cfg,
        Some(&state),
        &mut gated::train::NoHooks,
    )
    .unwrap();
    (m2, h)
}

#[test]
fn resumed_run_matches_uninterrupted_bit_for_bit() {
    let (x, y) = sum_sign(90, 6, 5);
    let cfg = FitConfig::new(Loss::SparseCategoricalCrossEntropy)
        .epochs(4)
        .batch_size(16)
        .validation_split(0.2)
        .metrics(vec![Metric::Accuracy])
        .seed(21)
        .verbosity(Verbosity::Quiet);
    assert!(cfg.shuffle);

    let mut a = model(DROPOUT_SPEC, 11);
    let mut opt = Optimizer::parse("adam", 0.01).unwrap();
    let ha = fit(&mut a, &mut opt, &x, &y, &cfg, &mut gated::train::NoHooks).unwrap();

    let (b, hb) = resume_run(&cfg, &x, &y, |_| {});
    assert_eq!(weights(&a), weights(&b), "resumed weights differ");
    assert_eq!(hb.epochs.len(), 4);
    for (ea, eb) in ha.epochs.iter().zip(&hb.epochs) {
        assert_eq!(ea.metrics, eb.metrics, "epoch {}", ea.epoch);
    }

    // The saved PRNG state matters: resuming from another one gives other weights.
    let (c, _) = resume_run(&cfg, &x, &y, |s| s.rng[0] ^= 1);
    assert_ne!(weights(&a), weights(&c), "the rng state had no effect");
    // And dropout is on: the same run without dropout's randomness differs too.
    let no_dropout = DROPOUT_SPEC.replace("rate = 0.3", "rate = 0.0");
    let mut d = model(&no_dropout, 11);
    let mut opt = Optimizer::parse("adam", 0.01).unwrap();
    fit(&mut d, &mut opt, &x, &y, &cfg, &mut gated::train::NoHooks).unwrap();
    assert_ne!(weights(&a), weights(&d));
}

/// A reduce-on-plateau schedule's counters are part of the saved state: the
/// resumed run reduces the rate at the same epochs as the uninterrupted one,
/// and forgetting the counters (a state saved without them) changes that.
#[test]
fn resumed_plateau_schedule_continues_its_counters() {
    let (x, y) = sum_sign(90, 6, 5);
    // Only a halving of the loss counts as an improvement, and one bad epoch
    // is tolerated: the interruption after epoch 2 falls mid-count.
    let plateau = ReduceOnPlateau::new(0.5, 1, 0.5, 0, 0.0);
    let cfg = FitConfig::new(Loss::SparseCategoricalCrossEntropy)
        .epochs(6)
        .batch_size(16)
        .validation_split(0.2)
        .schedule(Schedule::Plateau(plateau))
        .seed(21)
        .verbosity(Verbosity::Quiet);
    let mut a = model(DROPOUT_SPEC, 11);
    let mut opt = Optimizer::parse("adam", 0.01).unwrap();
    let ha = fit(&mut a, &mut opt, &x, &y, &cfg, &mut gated::train::NoHooks).unwrap();
    let lrs = |h: &History| {
        h.series("lr")
            .into_iter()
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
    };
    assert!(
        lrs(&ha).windows(2).any(|w| w[1] < w[0]),
        "the schedule must reduce the rate: {:?}",
        lrs(&ha)
    );

    let (b, hb) = resume_run(&cfg, &x, &y, |s| assert!(s.plateau.is_some()));
    assert_eq!(lrs(&ha), lrs(&hb));
    assert_eq!(weights(&a), weights(&b), "resumed weights differ");

    let (_, hc) = resume_run(&cfg, &x, &y, |s| s.plateau = None);
    assert_ne!(lrs(&ha), lrs(&hc), "the saved counters had no effect");
}

/// Records whether the weights were finite at each epoch end.
#[derive(Default)]
struct FiniteWatch {
    last: Option<(u64, Bits)>,
    all_finite: bool,
    calls: usize,
}

impl FitHooks for FiniteWatch {
    fn on_epoch_end(
        &mut self,
        _r: &EpochRecord,
        model: &Sequential,
        _o: &Optimizer,
        state: &TrainingState,
    ) -> gated::Result<()> {
        self.calls += 1;
        self.all_finite = model
            .named_weights()
            .iter()
            .all(|(_, _, d)| d.iter().all(|v| v.is_finite()));
        self.last = Some((state.step, weights(model)));
        Ok(())
    }
}

#[test]
fn huge_learning_rate_stops_with_non_finite_naming_the_step() {
    let (x, y) = regression(8, 2);
    let mut m = model(LINEAR_SPEC, 0);
    let mut opt = Optimizer::parse("sgd", 5.0).unwrap();
    let cfg = FitConfig::new(Loss::MeanSquaredError)
        .epochs(1000)
        .batch_size(8)
        .verbosity(Verbosity::Quiet);
    let mut watch = FiniteWatch::default();
    let err = fit(&mut m, &mut opt, &x, &y, &cfg, &mut watch).unwrap_err();
    let Error::NonFinite { step, message } = &err else {
        panic!("expected NonFinite, got {err}");
    };
    println!("{err}");
    let (last_step, last_weights) = watch.last.clone().unwrap();
    assert!(
        watch.calls > 2,
        "diverged too fast to test: {}",
        watch.calls
    );
    assert!(watch.all_finite, "weights at the last hook were not finite");
    // One batch per epoch: the failing step is the one after the last hook's.
    assert_eq!(*step, last_step + 1);
    assert!(err.to_string().contains(&format!("step {step}")));
    assert!(message.contains("epoch"), "{message}");
    // The optimizer did not touch the weights at the failing step.
    assert_eq!(weights(&m), last_weights);
}

/// Keeps every epoch's weights.
#[derive(Default)]
struct AllWeights(Vec<Bits>);

impl FitHooks for AllWeights {
    fn on_epoch_end(
        &mut self,
        _r: &EpochRecord,
        model: &Sequential,
        _o: &Optimizer,
        _s: &TrainingState,
    ) -> gated::Result<()> {
        self.0.push(weights(model));
        Ok(())
    }
}

#[test]
fn early_stopping_restores_the_best_weights() {
    // Random labels: validation loss soon rises while training loss falls.
    let (x, _) = sum_sign(200, 6, 8);
    let mut rng = Rng::new(99);
    let y = Tensor::from_vec(&[200], (0..200).map(|_| rng.below(2) as f32).collect()).unwrap();
    let mut m = model(DROPOUT_SPEC, 4);
    let mut opt = Optimizer::parse("adam", 0.02).unwrap();
    let patience = 3;
    let cfg = FitConfig::new(Loss::SparseCategoricalCrossEntropy)
        .epochs(60)
        .batch_size(16)
        .validation_split(0.25)
        .early_stopping(EarlyStopping::new(patience).restore_best_weights(true))
        .verbosity(Verbosity::Quiet);
    let mut all = AllWeights::default();
    let h = fit(&mut m, &mut opt, &x, &y, &cfg, &mut all).unwrap();
    let val = h.series("val_loss");
    let (best_epoch, best) =
        val.iter().copied().fold(
            (0, f64::INFINITY),
            |b, (e, v)| if v < b.1 { (e, v) } else { b },
        );
    println!(
        "stopped after {} epochs; best val_loss {best:.4} at epoch {best_epoch}",
        h.epochs.len()
    );
    assert!(h.epochs.len() < 60, "never stopped");
    assert_eq!(h.epochs.len(), best_epoch + patience);
    assert_eq!(
        weights(&m),
        all.0[best_epoch - 1],
        "not the best epoch's weights"
    );
    assert_ne!(weights(&m), *all.0.last().unwrap());
    // Evaluating the restored model on the validation tail reproduces the best val_loss.
    let xv = rows(&x, 150, 200);
    let yv = rows(&y, 150, 200);
    let e = evaluate(
        &mut m,
        &xv,
        &yv,
        Loss::SparseCategoricalCrossEntropy,
        &[],
        16,
    )
    .unwrap();
    assert!((e["loss"] - best).abs() < 1e-9, "{} vs {best}", e["loss"]);
}

#[test]
fn validation_split_takes_the_last_samples() {
    let (x, y) = regression(40, 3);
    let mut m = model(LINEAR_SPEC, 0);
    let mut opt = Optimizer::parse("adam", 0.05).unwrap();
    let cfg = FitConfig::new(Loss::MeanSquaredError)
        .epochs(3)
        .batch_size(8)
        .validation_split(0.25)
        .metrics(vec![Metric::Mae])
        .verbosity(Verbosity::Quiet);
    let h = fit(&mut m, &mut opt, &x, &y, &cfg, &mut gated::train::NoHooks).unwrap();
    let last = &h.epochs.last().unwrap().metrics;
    let tail = evaluate(
        &mut m,
        &rows(&x, 30, 40),
        &rows(&y, 30, 40),
        cfg.loss,
        &cfg.metrics,
        8,
    )
    .unwrap();
    let head = evaluate(
        &mut m,
        &rows(&x, 0, 10),
        &rows(&y, 0, 10),
        cfg.loss,
        &cfg.metrics,
        8,
    )
    .unwrap();
    assert_eq!(last["val_loss"], tail["loss"]);
    assert_eq!(last["val_mae"], tail["mae"]);
    assert_ne!(last["val_loss"], head["loss"]);
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-fit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn history_files_hold_every_epoch() {
    let dir = temp_dir("history");
    let (x, y) = regression(40, 4);
    let mut m = model(LINEAR_SPEC, 0);
    let mut opt = Optimizer::parse("sgd", 0.1).unwrap();
    let cfg = FitConfig::new(Loss::MeanSquaredError)
        .epochs(3)
        .batch_size(10)
        .validation_split(0.25)
        .metrics(vec![Metric::Mae])
        .verbosity(Verbosity::Quiet);
    let mut writer = HistoryWriter::new(&dir).main_metric(Some("mae".into()));
    let h = fit(&mut m, &mut opt, &x, &y, &cfg, &mut writer).unwrap();

    let csv = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,loss,lr,mae,val_loss,val_mae,seconds");
    assert_eq!(lines.len(), 4);
    for (line, rec) in lines[1..].iter().zip(&h.epochs) {
        let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(f[0] as usize, rec.epoch);
        assert_eq!(f[1], rec.metrics["loss"]);
        assert_eq!(f[2], 0.1);
        assert_eq!(f[3], rec.metrics["mae"]);
        assert_eq!(f[4], rec.metrics["val_loss"]);
        assert_eq!(f[5], rec.metrics["val_mae"]);
    }
    let json: History =
        serde_json::from_str(&std::fs::read_to_string(dir.join("history.json")).unwrap()).unwrap();
    assert_eq!(json, h);
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert_eq!(
        svg.matches("<polyline").count(),
        4,
        "loss, val_loss, mae, val_mae"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mismatched_targets_name_both_shapes() {
    let (x, _) = sum_sign(20, 10, 1);
    let mut m = model(LSTM_SPEC, 1);
    let mut opt = Optimizer::parse("adam", 0.01).unwrap();
    let cfg = FitConfig::new(Loss::SparseCategoricalCrossEntropy).verbosity(Verbosity::Quiet);
    let y = Tensor::from_vec(&[20, 3], vec![0.0; 60]).unwrap();
    let e = fit(&mut m, &mut opt, &x, &y, &cfg, &mut gated::train::NoHooks)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[20, 3]") && e.contains("(None, 2)"), "{e}");
    let y = Tensor::from_vec(&[19], vec![0.0; 19]).unwrap();
    let e = fit(&mut m, &mut opt, &x, &y, &cfg, &mut gated::train::NoHooks)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[20, 10, 1]") && e.contains("[19]"), "{e}");
}
