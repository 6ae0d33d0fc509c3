//! Interrupted training loses nothing: a `gated train` process killed with
//! SIGKILL at a random moment leaves a loadable checkpoint, and `--resume`
//! ends with the same weights, bit for bit, as a run that was never interrupted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gated::io::npy::{write_npy, write_npy_i32};
use gated::io::weights::load_safetensors;
use gated::model::{load_checkpoint, Checkpoint};
use gated::{Rng, Tensor};

const SPEC: &str = r#"name = "resume"
[input]
shape = [12, 2]
dtype = "float32"
[[layer]]
type = "lstm"
units = 24
return_sequences = true
dropout = 0.2
recurrent_dropout = 0.2
[[layer]]
type = "dropout"
rate = 0.3
[[layer]]
type = "gru"
units = 16
[[layer]]
type = "dense"
units = 2
"#;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn inputs(dir: &Path) {
    std::fs::write(dir.join("spec.toml"), SPEC).unwrap();
    let mut rng = Rng::new(5);
    let n = 400;
    let x: Vec<f32> = (0..n * 24).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let y: Vec<i32> = x
        .chunks(24)
        .map(|r| i32::from(r.iter().step_by(2).sum::<f32>() > 0.0))
        .collect();
    write_npy(
        dir.join("x.npy"),
        &Tensor::from_vec(&[n, 12, 2], x).unwrap(),
    )
    .unwrap();
    write_npy_i32(dir.join("y.npy"), &[n], &y).unwrap();
}

fn train_cmd(dir: &Path, out: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gated"));
    c.arg("train")
        .arg("--spec")
        .arg(dir.join("spec.toml"))
        .args(["--x"])
        .arg(dir.join("x.npy"))
        .args(["--y"])
        .arg(dir.join("y.npy"))
        .arg("--out")
        .arg(out)
        .args([
            "--epochs",
            "20",
            "--batch-size",
            "16",
            "--loss",
            "sparse_categorical_crossentropy",
            "--validation-split",
            "0.2",
        ])
        .args(["--seed", "7", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        c.arg("--resume");
    }
    c
}

fn weights(dir: &Path) -> Vec<(String, Tensor)> {
    load_safetensors(dir.join("weights.safetensors")).unwrap()
}

#[test]
fn killed_run_resumes_to_the_same_weights() {
    let dir = temp_dir("data");
    inputs(&dir);
    let straight = dir.join("straight");
    let out = train_cmd(&dir, &straight, false).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = weights(&straight);

    // Kill a second run at a random moment after its first checkpoint, a few times over.
    let killed = dir.join("killed");
    let mut rng = Rng::new(std::process::id() as u64);
    let mut kills = 0;
    for round in 0..6 {
        let mut child = train_cmd(&dir, &killed, round > 0).spawn().unwrap();
        let started = Instant::now();
        let delay = Duration::from_millis(10 + rng.below(200) as u64);
        let mut finished = false;
        while started.elapsed() < delay + Duration::from_secs(20) {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            if started.elapsed() >= delay
                && Checkpoint::Last
                    .path(&killed)
                    .join("checkpoint.json")
                    .exists()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if finished {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        // Whatever moment the kill hit, the last checkpoint loads.
        let ck =
            load_checkpoint(&killed, Checkpoint::Last).expect("checkpoint loadable after kill -9");
        assert!(ck.state.is_some());
    }
    // Finish the run.
    let out = train_cmd(&dir, &killed, true).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = weights(&killed);
    assert_eq!(want.len(), got.len());
    for ((n1, t1), (n2, t2)) in want.iter().zip(&got) {
        assert_eq!(n1, n2);
        assert!(
            t1.data()
                .iter()
                .zip(t2.data())
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{n1} differs after {kills} kills"
        );
    }
    assert!(
        kills > 0,
        "the run finished before it could be killed; make it longer"
    );
}

#[test]
fn sigint_stops_with_exit_code_130_and_a_resumable_checkpoint() {
    let dir = temp_dir("sigint");
    inputs(&dir);
    let out_dir = dir.join("run");
    let child = train_cmd(&dir, &out_dir, false).spawn().unwrap();
    let started = Instant::now();
    while !Checkpoint::Last
        .path(&out_dir)
        .join("checkpoint.json")
        .exists()
        && started.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(0) {
        return; // finished before the signal arrived; nothing to check
    }
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("--resume") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(load_checkpoint(&out_dir, Checkpoint::Last).is_ok());
}
