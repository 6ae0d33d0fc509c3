//! The model directory, PyTorch interchange, crash safety, and the `predict` /
//! `eval` commands (fixture from scripts/make_torch_model_fixture.py).

use gated::io::{read_npy, write_npy, write_npy_i32};
use gated::model::dir::{
    load_spec_text, MANIFEST_FILE, OPTIMIZER_FILE, STATE_FILE, VOCAB_FILE, WEIGHTS_FILE,
};
use gated::model::{
    export_torch_state_dict, load_checkpoint, load_model_dir, save_checkpoint, save_model_dir,
    Checkpoint, SaveExtras,
};
use gated::train::{OptimizerState, TrainingState};
use gated::{io::load_safetensors, Tensor};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_model")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-modeldir-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn gated(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gated"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A failing command: non-zero exit, one line on stderr naming `needle`, no panic.
fn fails_cleanly(args: &[&str], needle: &str) {
    let (ok, _, err) = gated(args);
    assert!(!ok, "{args:?} succeeded");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn state() -> TrainingState {
    let mut st = TrainingState {
        epoch: 3,
        step: 120,
        rng: [1, 2, 3, 4],
        optimizer_algorithm: "adam".into(),
        optimizer_steps: 120,
        lr: 0.001,
        best: Some((0.5, 2)),
        wait: 1,
        ..Default::default()
    };
    st.history.epochs.push(Default::default());
    st
}

fn optimizer() -> OptimizerState {
    OptimizerState {
        algorithm: "adam".into(),
        steps: 120,
        tensors: vec![
            ("group0.step".into(), vec![120.0, 120.0]),
            ("group0.exp_avg".into(), vec![0.1, 0.2, 0.3]),
            ("group0.exp_avg_sq".into(), vec![0.01, 0.02, 0.03]),
            ("group1.step".into(), vec![]),
            ("group1.exp_avg".into(), vec![]),
            ("group1.exp_avg_sq".into(), vec![]),
        ],
    }
}

#[test]
fn predict_on_a_pytorch_state_dict_matches_pytorch() {
    let d = scratch("predict");
    let out = d.join("y.npy");
    let f = fixture();
    let (ok, _, err) = gated(&[
        "predict",
        "--model",
        s(&f),
        "--x",
        s(&f.join("x.npy")),
        "--out",
        s(&out),
        "--batch-size",
        "4",
    ]);
    assert!(ok, "{err}");
    let got = read_npy(&out).unwrap();
    let want = read_npy(f.join("y_torch.npy")).unwrap();
    assert_eq!(got.shape(), &[6, 3]);
    let diff = got.max_abs_diff(&want);
    assert!(diff < 1e-5, "max |gated - torch| = {diff}");

    // The same with a spec file and an explicit state dict.
    let (ok, _, err) = gated(&[
        "predict",
        "--model",
        s(&f.join("model.toml")),
        "--weights",
        s(&f.join(WEIGHTS_FILE)),
        "--x",
        s(&f.join("x.npy")),
        "--out",
        s(&out),
    ]);
    assert!(ok, "{err}");
    assert!(read_npy(&out).unwrap().max_abs_diff(&want) < 1e-5);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn eval_prints_loss_and_metrics() {
    let f = fixture();
    let (ok, stdout, err) = gated(&[
        "eval",
        "--model",
        s(&f),
        "--x",
        s(&f.join("x.npy")),
        "--y",
        s(&f.join("labels.npy")),
        "--metrics",
        "accuracy,perplexity",
    ]);
    assert!(ok, "{err}");
    let want: f32 = fs::read_to_string(f.join("eval_loss.txt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(stdout.starts_with("loss: "), "{stdout}");
    let loss: f32 = stdout["loss: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((loss - want).abs() < 1e-3, "{stdout} vs {want}");
    assert!(stdout.contains("accuracy: 1.0000"), "{stdout}");
    assert!(stdout.contains("perplexity: "), "{stdout}");
}

#[test]
fn summary_reads_a_model_directory() {
    let (ok, stdout, err) = gated(&["summary", s(&fixture())]);
    assert!(ok, "{err}");
    assert!(stdout.contains("lstm_1 (LSTM)"), "{stdout}");
    // Keras counting: 4 * (16 * (8 + 16) + 16) = 1600.
    assert!(stdout.contains("1600"), "{stdout}");
}

#[test]
fn round_trip_and_torch_export_fold_the_biases() {
    let loaded = load_model_dir(&fixture()).unwrap();
    let torch = load_safetensors(fixture().join(WEIGHTS_FILE)).unwrap();
    let get = |name: &str| -> &Tensor { &torch.iter().find(|(n, _)| n == name).unwrap().1 };
    // Import summed bias_ih + bias_hh into the single Keras bias.
    let bias = loaded
        .model
        .named_weights()
        .into_iter()
        .find(|(n, _, _)| n == "lstm_1.bias_ih_l0")
        .unwrap()
        .2
        .to_vec();
    let sum: Vec<f32> = get("lstm_1.bias_ih_l0")
        .data()
        .iter()
        .zip(get("lstm_1.bias_hh_l0").data())
        .map(|(a, b)| a + b)
        .collect();
    assert_eq!(bias, sum);
    assert!(loaded.state.is_none() && loaded.optimizer.is_none() && loaded.vocab.is_none());

    // gated saves a directory with every extra; loading gives identical everything.
    let d = scratch("roundtrip");
    let st = state();
    let opt = optimizer();
    let vocab = serde_json::json!({"chars": ["\n", " ", "a", "b"]});
    let extras = SaveExtras {
        state: Some(&st),
        optimizer: Some(&opt),
        vocab: Some(&vocab),
    };
    save_model_dir(&d, &loaded.model, &loaded.spec_text, &extras).unwrap();
    let back = load_model_dir(&d).unwrap();
    assert_eq!(back.spec_text, loaded.spec_text);
    assert_eq!(back.state.as_ref(), Some(&st));
    assert_eq!(back.optimizer.as_ref(), Some(&opt));
    assert_eq!(back.vocab.as_ref(), Some(&vocab));
    let w0 = loaded.model.named_weights();
    let w1 = back.model.named_weights();
    assert_eq!(w0.len(), w1.len());
    for (a, b) in w0.iter().zip(&w1) {
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
        assert_eq!(a.2, b.2, "{}", a.0);
    }

    // Export to a torch-style file: the same keys as PyTorch's state dict,
    // bias_ih = the sum, bias_hh = zeros; reloading gives identical weights.
    let path = d.join("export.safetensors");
    export_torch_state_dict(&back.model, &path).unwrap();
    let exported = load_safetensors(&path).unwrap();
    let names = |v: &[(String, Tensor)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&exported), names(&torch));
    let ex = |name: &str| exported.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(ex("lstm_1.bias_ih_l0").data(), sum.as_slice());
    assert!(ex("lstm_1.bias_hh_l0").data().iter().all(|v| *v == 0.0));
    assert_eq!(ex("lstm_1.bias_hh_l0").shape(), &[64]);
    let (mut again, _) = load_spec_text(&fixture()).unwrap();
    gated::model::load_weights(&mut again, &path).unwrap();
    for (a, b) in w0.iter().zip(again.named_weights()) {
        assert_eq!(a.2, b.2, "{}", a.0);
    }
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn missing_extra_and_misshapen_keys_are_named() {
    let (model, _) = load_spec_text(&fixture()).unwrap();
    let torch = load_safetensors(fixture().join(WEIGHTS_FILE)).unwrap();
    let d = scratch("keys");
    let write = |tensors: &[(String, Tensor)]| -> PathBuf {
        let p = d.join("w.safetensors");
        let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        gated::io::save_safetensors(&p, &refs).unwrap();
        p
    };
    let try_load = |p: &Path| {
        let (mut m, _) = load_spec_text(&fixture()).unwrap();
        gated::model::load_weights(&mut m, p)
            .unwrap_err()
            .to_string()
    };
    let mut missing = torch.clone();
    missing.retain(|(n, _)| n != "dense_1.bias");
    let e = try_load(&write(&missing));
    assert!(e.contains("missing") && e.contains("dense_1.bias"), "{e}");
    assert!(e.contains("w.safetensors"), "{e}");

    let mut extra = torch.clone();
    extra.push(("dense_2.weight".into(), Tensor::zeros(&[1])));
    let e = try_load(&write(&extra));
    assert!(
        e.contains("unexpected") && e.contains("dense_2.weight"),
        "{e}"
    );

    let mut shape = torch.clone();
    for (n, t) in shape.iter_mut() {
        if n == "dense_1.weight" {
            *t = Tensor::zeros(&[16, 3]);
        }
    }
    let e = try_load(&write(&shape));
    assert!(
        e.contains("dense_1.weight") && e.contains("[16, 3]") && e.contains("[3, 16]"),
        "{e}"
    );
    let mut shape = torch.clone();
    for (n, t) in shape.iter_mut() {
        if n == "lstm_1.bias_hh_l0" {
            *t = Tensor::zeros(&[63]);
        }
    }
    let e = try_load(&write(&shape));
    assert!(
        e.contains("lstm_1.bias_hh_l0") && e.contains("[63]") && e.contains("[64]"),
        "{e}"
    );
    drop(model);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn corrupt_weights_name_the_file_and_overwrite_nothing() {
    let d = scratch("corrupt");
    let loaded = load_model_dir(&fixture()).unwrap();
    save_model_dir(&d, &loaded.model, &loaded.spec_text, &SaveExtras::default()).unwrap();
    let w = d.join(WEIGHTS_FILE);
    let bytes = fs::read(&w).unwrap();
    fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let before: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&d)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    // With the manifest: detected as a mismatch.
    let e = load_model_dir(&d).unwrap_err().to_string();
    assert!(e.contains(WEIGHTS_FILE) && e.contains("truncated"), "{e}");
    // Without it (a hand-made or PyTorch directory): the safetensors reader names it.
    fs::remove_file(d.join(MANIFEST_FILE)).unwrap();
    let e = load_model_dir(&d).unwrap_err().to_string();
    assert!(e.contains(WEIGHTS_FILE) && e.contains("not a valid"), "{e}");
    fs::write(
        d.join(MANIFEST_FILE),
        &before
            .iter()
            .find(|(p, _)| p.ends_with(MANIFEST_FILE))
            .unwrap()
            .1,
    )
    .unwrap();
    // The CLI: one line, non-zero exit, and no file touched.
    let out = d.join("y.npy");
    fails_cleanly(
        &[
            "predict",
            "--model",
            s(&d),
            "--x",
            s(&fixture().join("x.npy")),
            "--out",
            s(&out),
        ],
        WEIGHTS_FILE,
    );
    assert!(!out.exists());
    for (p, b) in &before {
        assert_eq!(&fs::read(p).unwrap(), b, "{} changed", p.display());
    }
    assert_eq!(fs::read_dir(&d).unwrap().count(), before.len());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn non_finite_state_is_refused_at_save_and_debris_is_cleaned() {
    let d = scratch("nan");
    let loaded = load_model_dir(&fixture()).unwrap();
    // A kill -9 during an earlier write left a temporary file.
    let debris = d.join(".weights.safetensors.tmp.99999.0");
    fs::write(&debris, b"torn").unwrap();
    save_model_dir(&d, &loaded.model, &loaded.spec_text, &SaveExtras::default()).unwrap();
    assert!(!debris.exists());
    let mut st = state();
    st.lr = f64::NAN;
    let e = save_model_dir(
        &d,
        &loaded.model,
        &loaded.spec_text,
        &SaveExtras {
            state: Some(&st),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(STATE_FILE) && e.contains("NaN"), "{e}");
    // Refused before anything was written: the earlier save still loads.
    assert!(load_model_dir(&d).unwrap().state.is_none());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn interrupted_top_level_save_is_refused() {
    let d = scratch("interrupted");
    let loaded = load_model_dir(&fixture()).unwrap();
    let st = state();
    let extras = SaveExtras {
        state: Some(&st),
        ..Default::default()
    };
    save_model_dir(&d, &loaded.model, &loaded.spec_text, &extras).unwrap();
    save_checkpoint(
        &d,
        Checkpoint::Last,
        &loaded.model,
        &loaded.spec_text,
        &extras,
    )
    .unwrap();
    // A save killed after its first step leaves the manifest marked incomplete.
    let m = d.join(MANIFEST_FILE);
    let text = fs::read_to_string(&m)
        .unwrap()
        .replace("\"complete\": true", "\"complete\": false");
    fs::write(&m, text).unwrap();
    let e = load_model_dir(&d).unwrap_err().to_string();
    assert!(e.contains("did not finish") && e.contains("last"), "{e}");
    // The checkpoint is intact.
    assert_eq!(
        load_checkpoint(&d, Checkpoint::Last).unwrap().state,
        Some(st)
    );
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn checkpoints_survive_a_kill_at_any_step() {
    let d = scratch("ckpt");
    let loaded = load_model_dir(&fixture()).unwrap();
    let mut model = loaded.model;
    let spec = loaded.spec_text;
    let mut st = state();
    st.epoch = 1;
    st.best = Some((0.5, 1));
    let opt = optimizer();
    let extras =
        |st: &TrainingState| -> (TrainingState, OptimizerState) { (st.clone(), opt.clone()) };
    let (s1, o1) = extras(&st);
    save_checkpoint(
        &d,
        Checkpoint::Last,
        &model,
        &spec,
        &SaveExtras {
            state: Some(&s1),
            optimizer: Some(&o1),
            vocab: None,
        },
    )
    .unwrap();
    let epoch_of = |d: &Path| {
        load_checkpoint(d, Checkpoint::Last)
            .unwrap()
            .state
            .unwrap()
            .epoch
    };
    assert_eq!(epoch_of(&d), 1);

    // Killed while writing the next checkpoint's temporary directory: a stray
    // half-written `.last.tmp.*` with a torn weights file and no manifest.
    let tmp = d.join(".last.tmp.99999.0");
    fs::create_dir(&tmp).unwrap();
    fs::write(tmp.join(WEIGHTS_FILE), b"torn").unwrap();
    fs::write(tmp.join(".weights.safetensors.tmp.99999.1"), b"torn").unwrap();
    assert_eq!(epoch_of(&d), 1);

    // Killed between the two renames: `last` is gone, `.last.old.*` is complete.
    fs::rename(d.join("last"), d.join(".last.old.99999.2")).unwrap();
    assert_eq!(epoch_of(&d), 1);

    // The next save recovers, replaces, and cleans up all debris.
    model.params_mut()[0].values[0] += 1.0;
    st.epoch = 2;
    let (s2, o2) = extras(&st);
    save_checkpoint(
        &d,
        Checkpoint::Last,
        &model,
        &spec,
        &SaveExtras {
            state: Some(&s2),
            optimizer: Some(&o2),
            vocab: None,
        },
    )
    .unwrap();
    let back = load_checkpoint(&d, Checkpoint::Last).unwrap();
    assert_eq!(back.state.unwrap().epoch, 2);
    assert_eq!(back.optimizer, Some(opt.clone()));
    assert_eq!(back.model.params()[0].values, model.params()[0].values);
    let names: Vec<String> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["last".to_string()], "debris left: {names:?}");

    // A save without optimizer/state into `best` writes only what it has.
    save_checkpoint(&d, Checkpoint::Best, &model, &spec, &SaveExtras::default()).unwrap();
    let best = d.join("best");
    assert!(!best.join(STATE_FILE).exists() && !best.join(OPTIMIZER_FILE).exists());
    assert!(!best.join(VOCAB_FILE).exists());
    assert!(load_checkpoint(&d, Checkpoint::Best)
        .unwrap()
        .state
        .is_none());
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_inputs_fail_with_one_line() {
    let d = scratch("badinput");
    let f = fixture();
    let model = s(&f);
    let out = d.join("y.npy");
    // Wrong shape: [6, 5] where the model takes (None, 7).
    let x = d.join("x_shape.npy");
    write_npy_i32(&x, &[6, 5], &[1; 30]).unwrap();
    fails_cleanly(
        &["predict", "--model", model, "--x", s(&x), "--out", s(&out)],
        "(None, 7)",
    );
    // Wrong dtype for an int32-input model.
    let x = d.join("x_float.npy");
    write_npy(&x, &Tensor::zeros(&[6, 7])).unwrap();
    fails_cleanly(
        &["predict", "--model", model, "--x", s(&x), "--out", s(&out)],
        "int32",
    );
    // Token id out of the embedding's range.
    let x = d.join("x_range.npy");
    write_npy_i32(&x, &[1, 7], &[0, 1, 2, 3, 4, 5, 20]).unwrap();
    fails_cleanly(
        &["predict", "--model", model, "--x", s(&x), "--out", s(&out)],
        "20",
    );
    assert!(!out.exists());
    // Labels out of range in eval.
    let y = d.join("y_range.npy");
    write_npy_i32(&y, &[6], &[0, 1, 2, 3, 0, 1]).unwrap();
    let xf = f.join("x.npy");
    fails_cleanly(
        &["eval", "--model", model, "--x", s(&xf), "--y", s(&y)],
        "label 3",
    );
    // Wrong number of labels.
    let y = d.join("y_count.npy");
    write_npy_i32(&y, &[5], &[0; 5]).unwrap();
    fails_cleanly(
        &["eval", "--model", model, "--x", s(&xf), "--y", s(&y)],
        "samples",
    );
    // Unknown metric; missing model directory; batch size 0.
    fails_cleanly(
        &[
            "eval",
            "--model",
            model,
            "--x",
            s(&xf),
            "--y",
            s(&f.join("labels.npy")),
            "--metrics",
            "f1",
        ],
        "unknown metric",
    );
    fails_cleanly(
        &[
            "predict",
            "--model",
            s(&d.join("nope")),
            "--x",
            s(&xf),
            "--out",
            s(&out),
        ],
        "nope",
    );
    fails_cleanly(
        &[
            "predict",
            "--model",
            model,
            "--x",
            s(&xf),
            "--out",
            s(&out),
            "--batch-size",
            "0",
        ],
        "batch-size",
    );
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn check_writable_fails_early() {
    let d = scratch("writable");
    gated::model::check_writable(&d.join("new/sub")).unwrap();
    assert!(d.join("new/sub").is_dir());
    assert_eq!(fs::read_dir(d.join("new/sub")).unwrap().count(), 0);
    let file = d.join("file");
    fs::write(&file, b"x").unwrap();
    let e = gated::model::check_writable(&file).unwrap_err().to_string();
    assert!(e.contains("not a directory"), "{e}");
    fs::remove_dir_all(&d).unwrap();
}

/// Issue 19, item 1: a shared model directory's manifest must not make gated
/// read anything outside the directory, nor read without bound, nor hang.
#[test]
fn a_crafted_manifest_touches_nothing_outside_the_directory() {
    let d = scratch("manifest-attack");
    let loaded = load_model_dir(&fixture()).unwrap();
    save_model_dir(&d, &loaded.model, &loaded.spec_text, &SaveExtras::default()).unwrap();
    let manifest_path = d.join(MANIFEST_FILE);
    let good: serde_json::Value =
        serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    // A secret beside the directory, as `../secret.txt` would find it.
    let secret = d
        .parent()
        .unwrap()
        .join(format!("gated-secret-{}.txt", std::process::id()));
    fs::write(&secret, b"secret").unwrap();
    let secret_rel = format!("../{}", secret.file_name().unwrap().to_str().unwrap());
    let x = fixture().join("x.npy");
    let out = d.join("y.npy");
    let predict = ["predict", "--model", s(&d), "--x", s(&x), "--out", s(&out)];
    let entry = serde_json::json!({"bytes": 6, "fnv1a64": "0000000000000000"});
    for name in [
        "/etc/passwd",
        secret_rel.as_str(),
        secret.to_str().unwrap(),
        "/dev/zero",
        "last/weights.safetensors",
        "notes.txt",
    ] {
        let mut m = good.clone();
        m["files"][name] = entry.clone();
        fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
        let e = load_model_dir(&d).unwrap_err().to_string();
        assert!(
            e.contains("not a file of a model directory") && e.contains(MANIFEST_FILE),
            "{name}: {e}"
        );
        // The size or hash of the outside file must never be reported.
        assert!(!e.contains("6 bytes") && !e.contains("hash"), "{name}: {e}");
        fails_cleanly(&predict, "not a file of a model directory");
    }
    fs::write(&manifest_path, serde_json::to_vec(&good).unwrap()).unwrap();
    load_model_dir(&d).unwrap();

    // A listed file replaced by a link to an outside file, by /dev/zero, by a
    // FIFO (which would block a plain open forever), or by a directory.
    #[cfg(unix)]
    {
        let spec = d.join("model.toml");
        let spec_bytes = fs::read(&spec).unwrap();
        let restore = |p: &Path| {
            let _ = fs::remove_file(p);
            let _ = fs::remove_dir(p);
            fs::write(p, &spec_bytes).unwrap();
        };
        std::os::unix::fs::symlink(&secret, d.join("x")).unwrap();
        fs::remove_file(&spec).unwrap();
        std::os::unix::fs::symlink(&secret, &spec).unwrap();
        let e = load_model_dir(&d).unwrap_err().to_string();
        assert!(
            e.contains("symbolic link") && e.contains("model.toml"),
            "{e}"
        );
        restore(&spec);

        fs::remove_file(&spec).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &spec).unwrap();
        let e = load_model_dir(&d).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        restore(&spec);

        fs::remove_file(&spec).unwrap();
        let c = std::ffi::CString::new(spec.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        let e = load_model_dir(&d).unwrap_err().to_string();
        assert!(e.contains("not a plain file"), "{e}");
        assert!(started.elapsed().as_secs() < 5);
        fails_cleanly(&predict, "not a plain file");
        restore(&spec);

        fs::remove_file(&spec).unwrap();
        fs::create_dir(&spec).unwrap();
        let e = load_model_dir(&d).unwrap_err().to_string();
        assert!(e.contains("not a plain file"), "{e}");
        restore(&spec);
        load_model_dir(&d).unwrap();

        // An optional file that is a link is refused, not silently skipped.
        std::os::unix::fs::symlink(&secret, d.join(STATE_FILE)).unwrap();
        let e = load_model_dir(&d).unwrap_err().to_string();
        assert!(e.contains("symbolic link") && e.contains(STATE_FILE), "{e}");
        fs::remove_file(d.join(STATE_FILE)).unwrap();
        fs::remove_file(d.join("x")).unwrap();
    }

    // A listed file with a declared size is never read past what the
    // manifest declared: a mismatch is reported from the size alone.
    let mut m = good.clone();
    m["files"][WEIGHTS_FILE]["bytes"] = serde_json::json!(3);
    fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
    let e = load_model_dir(&d).unwrap_err().to_string();
    assert!(
        e.contains("does not match checkpoint.json (8036 bytes; expected 3 bytes"),
        "{e}"
    );

    // Without a manifest, a weights file far larger than the spec allows is
    // refused before it is read.
    fs::remove_file(&manifest_path).unwrap();
    let w = d.join(WEIGHTS_FILE);
    let f = fs::OpenOptions::new().append(true).open(&w).unwrap();
    f.set_len(1 << 40).unwrap(); // sparse: no disk used
    drop(f);
    let e = load_model_dir(&d).unwrap_err().to_string();
    assert!(
        e.contains(WEIGHTS_FILE) && e.contains("more than the"),
        "{e}"
    );
    assert!(!out.exists());
    fs::remove_file(&secret).ok();
    fs::remove_dir_all(&d).unwrap();
}
