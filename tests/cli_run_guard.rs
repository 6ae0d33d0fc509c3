//! `--resume` continues only the run its checkpoint belongs to, and two runs
//! cannot write into one directory (issue 19, items 3 and 5). Every refusal
//! leaves the directory's files exactly as they were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gated::io::fingerprint::fingerprint_file;
use gated::io::lock::{DirLock, LOCK_FILE};
use gated::io::npy::{write_npy, write_npy_i32};
use gated::model::{load_model_dir, Checkpoint};
use gated::{Rng, Tensor};

const SPEC: &str = "[input]\nshape = [6, 2]\n\
    [[layer]]\ntype = \"lstm\"\nunits = 16\n\
    [[layer]]\ntype = \"dense\"\nunits = 2\n";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-guard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `spec.toml`, and `x.npy`/`y.npy` of `n` samples.
fn inputs(dir: &Path, spec: &str, n: usize) {
    std::fs::write(dir.join("spec.toml"), spec).unwrap();
    let mut rng = Rng::new(5);
    let x: Vec<f32> = (0..n * 12).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let y: Vec<i32> = x.chunks(12).map(|r| i32::from(r[0] > 0.0)).collect();
    write_npy(dir.join("x.npy"), &Tensor::from_vec(&[n, 6, 2], x).unwrap()).unwrap();
    write_npy_i32(dir.join("y.npy"), &[n], &y).unwrap();
}

fn train(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gated"));
    c.arg("train")
        .arg("--spec")
        .arg(data.join("spec.toml"))
        .arg("--x")
        .arg(data.join("x.npy"))
        .arg("--y")
        .arg(data.join("y.npy"))
        .arg("--out")
        .arg(out)
        .args(["--loss", "sparse_categorical_crossentropy", "--quiet"])
        .args(extra)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir` (recursively) with its size and hash, but the lock
/// file, which holds the pid of the latest run.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with(LOCK_FILE) {
                out.insert(p.clone(), fingerprint_file(&p).unwrap());
            }
        }
    }
    out
}

/// A refused resume: exit non-zero, one line naming `needles`, nothing changed.
fn refused(c: Command, out: &Path, needles: &[&str]) {
    let before = snapshot(out);
    let o = run(c);
    let err = stderr(&o);
    assert!(!o.status.success(), "resume was accepted: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(snapshot(out), before, "a refused resume changed files");
    load_model_dir(&Checkpoint::Last.path(out)).unwrap();
}

#[test]
fn resume_refuses_a_checkpoint_of_another_run() {
    let data = temp_dir("other-run");
    inputs(&data, SPEC, 64);
    let out = data.join("out");
    let o = run(train(&data, &out, &["--epochs", "2", "--seed", "3"]));
    assert!(o.status.success(), "{}", stderr(&o));
    // best/ is kept without early stopping too (Keras's ModelCheckpoint), by loss here.
    let best = load_model_dir(&Checkpoint::Best.path(&out)).unwrap();
    let (value, epoch) = best.state.unwrap().best.unwrap();
    let history = load_model_dir(&out).unwrap().state.unwrap().history;
    assert_eq!(history.epochs[epoch - 1].metrics["loss"], value);
    assert!(history.epochs.iter().all(|e| e.metrics["loss"] >= value));

    // The same run resumes (and may train longer).
    let o = run(train(
        &data,
        &out,
        &["--epochs", "3", "--seed", "3", "--resume"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let state = load_model_dir(&out).unwrap().state.unwrap();
    assert_eq!(state.epoch, 3, "the top-level state is the real one");
    assert!(state.step > 0 && state.optimizer_algorithm == "adam" && state.lr > 0.0);

    // Wider layer: shapes differ.
    let other = temp_dir("other-run-spec");
    inputs(&other, &SPEC.replace("units = 16", "units = 32"), 64);
    let c = train(&other, &out, &["--epochs", "4", "--seed", "3", "--resume"]);
    refused(
        c,
        &out,
        &["--resume", "layer[0].units: 16 in the checkpoint, 32 now"],
    );

    // Same shapes, another activation: the silent case.
    inputs(
        &other,
        &SPEC.replace("units = 16\n", "units = 16\nactivation = \"relu\"\n"),
        64,
    );
    refused(
        train(&other, &out, &["--epochs", "4", "--seed", "3", "--resume"]),
        &out,
        &["layer[0].activation: absent in the checkpoint, \"relu\" now"],
    );

    // Other data, seed or learning rate.
    inputs(&other, SPEC, 65);
    refused(
        train(&other, &out, &["--epochs", "4", "--seed", "3", "--resume"]),
        &out,
        &["data file --x", "data file --y"],
    );
    refused(
        train(&data, &out, &["--epochs", "4", "--seed", "4", "--resume"]),
        &out,
        &["setting --seed: 3 in the checkpoint, 4 now"],
    );
    refused(
        train(
            &data,
            &out,
            &["--epochs", "4", "--seed", "3", "--lr", "0.01", "--resume"],
        ),
        &out,
        &["setting --lr: default in the checkpoint, 0.01 now"],
    );
    std::fs::remove_dir_all(&data).ok();
    std::fs::remove_dir_all(&other).ok();
}

#[test]
fn resume_after_a_new_run_was_killed_early_does_not_continue_the_old_one() {
    let data = temp_dir("killed-early");
    inputs(&data, SPEC, 64);
    let out = data.join("out");
    let o = run(train(&data, &out, &["--epochs", "1", "--seed", "3"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let run_file = out.join("run.json");
    let first_run = std::fs::read(&run_file).unwrap();
    let old_last = snapshot(&Checkpoint::Last.path(&out));

    // A new run with a long first epoch, killed once it has started.
    let slow = temp_dir("killed-early-slow");
    inputs(&slow, SPEC, 20_000);
    let mut child = train(&slow, &out, &["--epochs", "1", "--batch-size", "1"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::read(&run_file).unwrap() == first_run {
        assert!(started.elapsed() < Duration::from_secs(30), "no run.json");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        snapshot(&Checkpoint::Last.path(&out)),
        old_last,
        "the new run checkpointed before it was killed; make its epoch longer"
    );
    // Neither the new run's flags nor the old one's continue the old last/.
    refused(
        train(
            &slow,
            &out,
            &["--epochs", "1", "--batch-size", "1", "--resume"],
        ),
        &out,
        &["earlier run"],
    );
    refused(
        train(&data, &out, &["--epochs", "2", "--seed", "3", "--resume"]),
        &out,
        &["earlier run"],
    );
    std::fs::remove_dir_all(&data).ok();
    std::fs::remove_dir_all(&slow).ok();
}

#[test]
fn a_second_run_into_a_locked_directory_is_refused() {
    let data = temp_dir("locked");
    inputs(&data, SPEC, 64);
    let out = data.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let lock = DirLock::acquire(&out).unwrap();
    let o = run(train(&data, &out, &["--epochs", "1"]));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("in use") && err.contains(&std::process::id().to_string()),
        "{err}"
    );
    assert!(!Checkpoint::Last.path(&out).exists());
    // Text mode takes the same lock.
    std::fs::write(data.join("t.txt"), "hello world, hello gated. ".repeat(40)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gated"))
        .args(["train", "--text"])
        .arg(data.join("t.txt"))
        .arg("--out")
        .arg(&out)
        .args([
            "--steps",
            "2",
            "--units",
            "8",
            "--batch-size",
            "2",
            "--seq-len",
            "10",
        ])
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("in use"),
        "{}",
        stderr(&o)
    );
    drop(lock);
    // Released (also when a holder is killed: the kernel drops flock locks).
    let o = run(train(&data, &out, &["--epochs", "1"]));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(&data).ok();
}
