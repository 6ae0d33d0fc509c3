//! Every `gated` subcommand against bad files: garbage, truncated, empty,
//! the wrong type (a directory, a float array where token ids are needed, an
//! array of the wrong rank), missing, unreadable and unwritable paths.
//!
//! Each case must exit non-zero with exactly one line on stderr, starting with
//! `error: `, naming the file at fault (and the line, byte offset or shape
//! where the case has one), and no panic or backtrace.
//!
//! The cases are a table: to cover a new subcommand, add a `fn <cmd>_cases`
//! that returns its [`Case`]s and call it from `bad_inputs_give_one_clear_error`.
//!
//! The same file tests that a diverging run stops cleanly and keeps its last
//! good checkpoint, and that a failing run never damages an existing model
//! directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gated::io::npy::{encode_npy, write_npy, write_npy_i32};
use gated::model::dir::{load_checkpoint, load_model_dir, save_model_dir, Checkpoint, SaveExtras};
use gated::model::spec::parse_spec;
use gated::Tensor;

/// A float model: [5, 1] sequences into an LSTM and a 2-class head.
const FLOAT_SPEC: &str = "[input]\nshape = [5, 1]\ndtype = \"float32\"\n\
    [[layer]]\ntype = \"lstm\"\nunits = 4\n\
    [[layer]]\ntype = \"dense\"\nunits = 2\n";

/// A float model of variable-length sequences.
const VAR_SPEC: &str = "[input]\nshape = [\"None\", 1]\ndtype = \"float32\"\n\
    [[layer]]\ntype = \"lstm\"\nunits = 4\n\
    [[layer]]\ntype = \"dense\"\nunits = 2\n";

/// A token model: [5] int ids into an embedding, an LSTM and a head.
const INT_SPEC: &str = "[input]\nshape = [5]\ndtype = \"int32\"\n\
    [[layer]]\ntype = \"embedding\"\ninput_dim = 10\noutput_dim = 3\n\
    [[layer]]\ntype = \"lstm\"\nunits = 4\n\
    [[layer]]\ntype = \"dense\"\nunits = 2\n";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gated-cli-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The files the cases point at, all in one temporary directory.
struct Fx {
    dir: PathBuf,
}

impl Fx {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn new(name: &str) -> Fx {
        let dir = temp_dir(name);
        let fx = Fx { dir };
        let w = |n: &str, b: &[u8]| std::fs::write(fx.p(n), b).unwrap();
        w("float.toml", FLOAT_SPEC.as_bytes());
        w("int.toml", INT_SPEC.as_bytes());
        w("empty", b"");
        w(
            "garbage.bin",
            b"\x00\x9f\xffgarbage\x13\x37 not any format at all\xfe\n\x00",
        );
        w("garbage.toml", b"[input\nshape = [5, 1\n");
        w(
            "garbage.json",
            b"{\"input\": {\"shape\": [5, 1]},\n \"layer\": [\n",
        );
        w(
            "bad_layer.toml",
            b"[input]\nshape = [5, 1]\n[[layer]]\ntype = \"lstm\"\nunits = -3\n",
        );
        w("not_utf8.toml", b"name = \"\xff\xfe\"\n");
        std::fs::create_dir_all(fx.p("a_dir")).unwrap();
        std::fs::create_dir_all(fx.p("empty_dir")).unwrap();

        let x: Vec<f32> = (0..20).map(|i| (i as f32 * 0.37).sin()).collect();
        write_npy(
            fx.p("x.npy"),
            &Tensor::from_vec(&[4, 5, 1], x.clone()).unwrap(),
        )
        .unwrap();
        write_npy(
            fx.p("x_rank2.npy"),
            &Tensor::from_vec(&[4, 5], x.clone()).unwrap(),
        )
        .unwrap();
        write_npy(
            fx.p("x_float_ids.npy"),
            &Tensor::from_vec(&[4, 5], x).unwrap(),
        )
        .unwrap();
        write_npy_i32(
            fx.p("ids.npy"),
            &[4, 5],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2],
        )
        .unwrap();
        write_npy_i32(
            fx.p("ids_oob.npy"),
            &[4, 5],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 99, 6, 7, 8, 9, 1, 2],
        )
        .unwrap();
        write_npy_i32(fx.p("y.npy"), &[4], &[0, 1, 1, 0]).unwrap();
        write_npy(
            fx.p("y2.npy"),
            &Tensor::from_vec(&[4, 2], vec![0.5, -0.5, 1.0, 0.0, -1.0, 0.25, 0.0, 1.0]).unwrap(),
        )
        .unwrap();
        write_npy_i32(fx.p("y3.npy"), &[3], &[0, 1, 1]).unwrap();
        let good = std::fs::read(fx.p("x.npy")).unwrap();
        w("x_truncated.npy", &good[..good.len() - 7]);
        w("x_header_cut.npy", &good[..20]);
        let zero = encode_npy(&Tensor::from_vec(&[0, 5, 1], vec![]).unwrap());
        w("x_empty_batch.npy", &zero);
        // Valid but empty: 2^40 samples of zero steps (no data bytes at all).
        let no_steps = encode_npy(&Tensor::from_vec(&[1 << 40, 0, 1], vec![]).unwrap());
        w("x_2e40_samples_of_0_steps.npy", &no_steps);

        // A saved model directory of each kind, and one with a corrupt weight file.
        for (spec, name) in [
            (FLOAT_SPEC, "float_model"),
            (INT_SPEC, "int_model"),
            (VAR_SPEC, "var_model"),
        ] {
            let m = parse_spec(Path::new("spec.toml"), spec, false, 1).unwrap();
            save_model_dir(&fx.p(name), &m, spec, &SaveExtras::default()).unwrap();
        }
        let corrupt = fx.p("corrupt_model");
        let m = parse_spec(Path::new("spec.toml"), FLOAT_SPEC, false, 1).unwrap();
        save_model_dir(&corrupt, &m, FLOAT_SPEC, &SaveExtras::default()).unwrap();
        let wpath = corrupt.join("weights.safetensors");
        let bytes = std::fs::read(&wpath).unwrap();
        std::fs::write(&wpath, &bytes[..bytes.len() / 2]).unwrap();
        // A model directory without a manifest and garbage weights (PyTorch-style dir).
        std::fs::create_dir_all(fx.p("garbage_weights")).unwrap();
        w("garbage_weights/model.toml", FLOAT_SPEC.as_bytes());
        w(
            "garbage_weights/weights.safetensors",
            b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}",
        );
        // The regular file that makes `reg_file/below` unreachable (ENOTDIR).
        w("reg_file", b"I am a file");
        fx
    }

    /// A file no one may read, or `None` when the tests run as root (root
    /// reads any file, so the case cannot be produced that way).
    fn unreadable(&self) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let p = self.p("unreadable.npy");
        std::fs::copy(self.p("x.npy"), &p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::read(&p).is_ok() {
            eprintln!(
                "note: running as root, which reads mode-000 files; the permission-denied \
                 cases are skipped (the not-a-directory cases still cover unreachable paths)"
            );
            return None;
        }
        Some(p)
    }
}

/// One command run and what its one error line must name.
struct Case {
    /// Shown when the case fails.
    label: String,
    args: Vec<OsString>,
    /// The file the message must name.
    names: PathBuf,
    /// Further text the message must contain (a line, offset, shape...).
    also: Vec<&'static str>,
}

fn case(
    label: &str,
    args: &[&dyn AsRef<std::ffi::OsStr>],
    names: &Path,
    also: &[&'static str],
) -> Case {
    Case {
        label: label.to_string(),
        args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
        names: names.to_path_buf(),
        also: also.to_vec(),
    }
}

fn gated(args: &[OsString]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gated"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

/// Checks one run; returns what is wrong with it, if anything.
fn judge(c: &Case, o: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let named = c.names.display().to_string();
    let problem = if o.status.success() {
        Some("exit code 0".to_string())
    } else if o.status.code().is_none() {
        Some("killed by a signal".to_string())
    } else if stderr.contains("panicked") || stderr.contains("backtrace") {
        Some("panic".to_string())
    } else if lines.len() != 1 {
        Some(format!("{} lines on stderr, want 1", lines.len()))
    } else if !lines[0].starts_with("error: ") {
        Some("the line does not start with `error: `".to_string())
    } else if !lines[0].contains(&named) {
        Some(format!("the message does not name {named}"))
    } else {
        c.also
            .iter()
            .find(|a| !lines[0].contains(*a))
            .map(|a| format!("the message lacks {a:?}"))
    };
    problem.map(|p| format!("[{}] {p}\n    stderr: {}", c.label, stderr.trim_end()))
}

fn summary_cases(f: &Fx) -> Vec<Case> {
    let s = |label: &str, file: &str, also: &[&'static str]| {
        let p = f.p(file);
        case(label, &[&"summary", &p], &p, also)
    };
    let mut v = vec![
        s("summary: garbage TOML", "garbage.toml", &["line"]),
        s("summary: garbage JSON", "garbage.json", &["line"]),
        s(
            "summary: bad layer value",
            "bad_layer.toml",
            &["line", "units"],
        ),
        s("summary: binary file", "garbage.bin", &[]),
        s("summary: empty file", "empty", &[]),
        s("summary: not UTF-8", "not_utf8.toml", &[]),
        s("summary: missing file", "nope.toml", &[]),
    ];
    let below = f.p("reg_file").join("spec.toml");
    v.push(case(
        "summary: path under a file",
        &[&"summary", &below],
        &below,
        &[],
    ));
    let in_dir = f.p("empty_dir").join("model.toml");
    v.push(case(
        "summary: directory without model.toml",
        &[&"summary", &f.p("empty_dir")],
        &in_dir,
        &[],
    ));
    v
}

/// `gated train` with one of spec, x, y, out replaced.
fn train_cases(f: &Fx) -> Vec<Case> {
    let run = |label: &str,
               spec: PathBuf,
               x: PathBuf,
               y: PathBuf,
               out: PathBuf,
               names: PathBuf,
               also: &[&'static str]| {
        case(
            label,
            &[
                &"train",
                &"--spec",
                &spec,
                &"--x",
                &x,
                &"--y",
                &y,
                &"--out",
                &out,
                &"--loss",
                &"sparse_categorical_crossentropy",
                &"--quiet",
            ],
            &names,
            also,
        )
    };
    let (spec, x, y, out) = (
        f.p("float.toml"),
        f.p("x.npy"),
        f.p("y.npy"),
        f.p("train_out"),
    );
    let mut v = Vec::new();
    for (label, file, also) in [
        ("train: garbage spec", "garbage.toml", &["line"][..]),
        ("train: empty spec", "empty", &[][..]),
        ("train: binary spec", "garbage.bin", &[][..]),
        ("train: spec is a directory", "a_dir", &[][..]),
    ] {
        let p = f.p(file);
        v.push(run(
            label,
            p.clone(),
            x.clone(),
            y.clone(),
            out.clone(),
            p,
            also,
        ));
    }
    for (label, file, also) in [
        ("train: garbage x", "garbage.bin", &["byte"][..]),
        ("train: empty x", "empty", &["byte"][..]),
        (
            "train: truncated x",
            "x_truncated.npy",
            &["byte", "[4, 5, 1]"][..],
        ),
        ("train: x header cut", "x_header_cut.npy", &["byte"][..]),
        ("train: x is a directory", "a_dir", &[][..]),
        ("train: x missing", "nope.npy", &[][..]),
        ("train: x of the wrong rank", "x_rank2.npy", &["[4, 5]"][..]),
    ] {
        let p = f.p(file);
        v.push(run(
            label,
            spec.clone(),
            p.clone(),
            y.clone(),
            out.clone(),
            p,
            also,
        ));
    }
    for (label, file, also) in [
        ("train: garbage y", "garbage.bin", &["byte"][..]),
        ("train: truncated y", "x_truncated.npy", &["byte"][..]),
        ("train: y with too few samples", "y3.npy", &["[3]"][..]),
    ] {
        let p = f.p(file);
        v.push(run(
            label,
            spec.clone(),
            x.clone(),
            p.clone(),
            out.clone(),
            p,
            also,
        ));
    }
    let below = f.p("reg_file").join("run");
    v.push(run(
        "train: --out under a regular file",
        spec.clone(),
        x.clone(),
        y.clone(),
        below.clone(),
        below,
        &["--out"],
    ));
    let file_out = f.p("reg_file");
    v.push(run(
        "train: --out is a regular file",
        spec,
        x,
        y,
        file_out.clone(),
        file_out,
        &["--out"],
    ));
    if let Some(p) = f.unreadable() {
        v.push(run(
            "train: unreadable x",
            f.p("float.toml"),
            p.clone(),
            f.p("y.npy"),
            f.p("train_out"),
            p,
            &["ermission"],
        ));
    }
    v
}

/// `predict` and `eval` share the model and input loading, so each bad file is
/// tried with both.
fn predict_eval_cases(f: &Fx) -> Vec<Case> {
    let mut v = Vec::new();
    let out = f.p("pred.npy");
    let mut both = |label: &str,
                    model: PathBuf,
                    weights: Option<PathBuf>,
                    x: PathBuf,
                    y: PathBuf,
                    names: PathBuf,
                    also: &[&'static str]| {
        let w: Vec<OsString> = weights
            .map(|w| vec!["--weights".into(), w.into_os_string()])
            .unwrap_or_default();
        let mut p: Vec<OsString> = vec![
            "predict".into(),
            "--model".into(),
            model.clone().into(),
            "--x".into(),
            x.clone().into(),
            "--out".into(),
            out.clone().into(),
        ];
        p.extend(w.iter().cloned());
        let mut e: Vec<OsString> = vec![
            "eval".into(),
            "--model".into(),
            model.into(),
            "--x".into(),
            x.into(),
            "--y".into(),
            y.into(),
        ];
        e.extend(w);
        for (cmd, args) in [("predict", p), ("eval", e)] {
            v.push(Case {
                label: format!("{cmd}: {label}"),
                args,
                names: names.clone(),
                also: also.to_vec(),
            });
        }
    };
    let (fm, im, x, y) = (
        f.p("float_model"),
        f.p("int_model"),
        f.p("x.npy"),
        f.p("y.npy"),
    );
    let fs = f.p("float.toml");
    both(
        "model missing",
        f.p("nope"),
        None,
        x.clone(),
        y.clone(),
        f.p("nope"),
        &[],
    );
    both(
        "model is an empty directory",
        f.p("empty_dir"),
        None,
        x.clone(),
        y.clone(),
        f.p("empty_dir").join("model.toml"),
        &[],
    );
    both(
        "model is a garbage file",
        f.p("garbage.bin"),
        None,
        x.clone(),
        y.clone(),
        f.p("garbage.bin"),
        &[],
    );
    let cw = f.p("corrupt_model").join("weights.safetensors");
    both(
        "truncated weights in a model dir",
        f.p("corrupt_model"),
        None,
        x.clone(),
        y.clone(),
        cw,
        &["checkpoint.json"],
    );
    let gw = f.p("garbage_weights").join("weights.safetensors");
    both(
        "garbage weights without a manifest",
        f.p("garbage_weights"),
        None,
        x.clone(),
        y.clone(),
        gw,
        &[],
    );
    both(
        "--weights garbage",
        fs.clone(),
        Some(f.p("garbage.bin")),
        x.clone(),
        y.clone(),
        f.p("garbage.bin"),
        &[],
    );
    both(
        "--weights empty",
        fs.clone(),
        Some(f.p("empty")),
        x.clone(),
        y.clone(),
        f.p("empty"),
        &[],
    );
    both(
        "--weights a directory",
        fs.clone(),
        Some(f.p("a_dir")),
        x.clone(),
        y.clone(),
        f.p("a_dir"),
        &[],
    );
    both(
        "garbage spec with --weights",
        f.p("garbage.toml"),
        Some(f.p("float_model").join("weights.safetensors")),
        x.clone(),
        y.clone(),
        f.p("garbage.toml"),
        &["line"],
    );
    both(
        "garbage x",
        fm.clone(),
        None,
        f.p("garbage.bin"),
        y.clone(),
        f.p("garbage.bin"),
        &["byte"],
    );
    both(
        "empty x",
        fm.clone(),
        None,
        f.p("empty"),
        y.clone(),
        f.p("empty"),
        &["byte"],
    );
    both(
        "truncated x",
        fm.clone(),
        None,
        f.p("x_truncated.npy"),
        y.clone(),
        f.p("x_truncated.npy"),
        &["byte", "[4, 5, 1]"],
    );
    both(
        "x is a directory",
        fm.clone(),
        None,
        f.p("a_dir"),
        y.clone(),
        f.p("a_dir"),
        &[],
    );
    both(
        "x under a regular file",
        fm.clone(),
        None,
        f.p("reg_file").join("x.npy"),
        y.clone(),
        f.p("reg_file").join("x.npy"),
        &[],
    );
    both(
        "x of the wrong rank",
        fm.clone(),
        None,
        f.p("x_rank2.npy"),
        y.clone(),
        f.p("x_rank2.npy"),
        &["shape", "[4, 5]"],
    );
    both(
        "float x for a token model",
        im.clone(),
        None,
        f.p("x_float_ids.npy"),
        y.clone(),
        f.p("x_float_ids.npy"),
        &["<f4", "int"],
    );
    both(
        "token ids out of range",
        im,
        None,
        f.p("ids_oob.npy"),
        y.clone(),
        f.p("ids_oob.npy"),
        &["99"],
    );
    if let Some(p) = f.unreadable() {
        both(
            "unreadable x",
            fm.clone(),
            None,
            p.clone(),
            y.clone(),
            p,
            &["ermission"],
        );
    }
    // predict only: where the output goes.
    let below = f.p("reg_file").join("y.npy");
    v.push(case(
        "predict: --out under a regular file",
        &[&"predict", &"--model", &fm, &"--x", &x, &"--out", &below],
        &below,
        &[],
    ));
    v.push(case(
        "predict: --out is a directory",
        &[
            &"predict",
            &"--model",
            &fm,
            &"--x",
            &x,
            &"--out",
            &f.p("a_dir"),
        ],
        &f.p("a_dir"),
        &[],
    ));
    v.push(case(
        "predict: x with no samples",
        &[
            &"predict",
            &"--model",
            &fm,
            &"--x",
            &f.p("x_empty_batch.npy"),
            &"--out",
            &out,
        ],
        &f.p("x_empty_batch.npy"),
        &["no samples"],
    ));
    v.push(case(
        "predict: 2^40 samples of zero steps, variable-length model",
        &[
            &"predict",
            &"--model",
            &f.p("var_model"),
            &"--x",
            &f.p("x_2e40_samples_of_0_steps.npy"),
            &"--out",
            &out,
        ],
        &f.p("x_2e40_samples_of_0_steps.npy"),
        &["empty axis 1", "1099511627776"],
    ));
    // eval only: bad targets.
    for (label, file, also) in [
        ("garbage y", "garbage.bin", &["byte"][..]),
        ("truncated y", "x_truncated.npy", &["byte"][..]),
        ("y with too few samples", "y3.npy", &["[3]"][..]),
        ("y is a directory", "a_dir", &[][..]),
    ] {
        let p = f.p(file);
        v.push(case(
            &format!("eval: {label}"),
            &[&"eval", &"--model", &fm, &"--x", &x, &"--y", &p],
            &p,
            also,
        ));
    }
    v
}

#[test]
fn bad_inputs_give_one_clear_error() {
    let f = Fx::new("table");
    let mut cases = summary_cases(&f);
    cases.extend(train_cases(&f));
    cases.extend(predict_eval_cases(&f));
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| judge(c, &gated(&c.args)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        !f.p("train_out").exists(),
        "a rejected train run created --out"
    );
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[test]
fn good_inputs_work_so_the_table_tests_what_it_says() {
    let f = Fx::new("control");
    let out = f.p("ok.npy");
    for (model, x) in [("float_model", "x.npy"), ("int_model", "ids.npy")] {
        let o = gated(&[
            "predict".into(),
            "--model".into(),
            f.p(model).into(),
            "--x".into(),
            f.p(x).into(),
            "--out".into(),
            out.clone().into(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = gated(&[
            "eval".into(),
            "--model".into(),
            f.p(model).into(),
            "--x".into(),
            f.p(x).into(),
            "--y".into(),
            f.p("y.npy").into(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = gated(&["summary".into(), f.p("float.toml").into()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&f.dir);
}

/// `gated train` on the float fixtures into `out`, with `spec`, targets `y`
/// and extra flags (the loss among them).
fn train(f: &Fx, spec: &str, y: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<OsString> = vec![
        "train".into(),
        "--spec".into(),
        f.p(spec).into(),
        "--x".into(),
        f.p("x.npy").into(),
        "--y".into(),
        f.p(y).into(),
        "--out".into(),
        out.into(),
        "--quiet".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    gated(&args)
}

/// Flags that make plain SGD on an MSE loss blow up within a few steps (each
/// step multiplies the error by about the learning rate): one step per epoch,
/// so epoch 1 completes (and is checkpointed) before the values overflow.
const DIVERGE: &[&str] = &[
    "--loss",
    "mse",
    "--optimizer",
    "sgd",
    "--lr",
    "1e30",
    "--batch-size",
    "4",
    "--epochs",
    "30",
    "--no-shuffle",
];

fn all_finite(m: &gated::model::Sequential) -> bool {
    m.params()
        .iter()
        .all(|p| p.values.iter().all(|v| v.is_finite()))
}

#[test]
fn diverging_run_names_the_step_and_keeps_the_last_good_checkpoint() {
    let f = Fx::new("diverge");
    let out = f.p("run");
    let o = train(&f, "float.toml", "y2.npy", &out, DIVERGE);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let line = errors[0];
    assert!(line.contains("non-finite value at step "), "{line}");
    assert!(
        line.contains("NaN") || line.contains("inf"),
        "the message does not show the value: {line}"
    );
    let step: u64 = line
        .split("at step ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step number in {line}"));
    assert!(stderr.contains("last good checkpoint"), "{stderr}");
    let last = load_checkpoint(&out, Checkpoint::Last).unwrap();
    assert!(all_finite(&last.model), "DIR/last holds non-finite weights");
    let saved_step = last.state.map(|s| s.step).unwrap_or(0);
    assert!(
        saved_step < step,
        "the checkpoint (step {saved_step}) is not from before the failing step {step}"
    );
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[test]
fn failing_runs_leave_an_existing_model_dir_loadable() {
    let f = Fx::new("keep");
    let out = f.p("run");
    let o = train(
        &f,
        "float.toml",
        "y.npy",
        &out,
        &["--epochs", "1", "--loss", "sparse_categorical_crossentropy"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = load_model_dir(&out).unwrap();
    let weights = |m: &gated::model::Sequential| -> Vec<Vec<f32>> {
        m.params().iter().map(|p| p.values.clone()).collect()
    };

    // Bad data: rejected before anything is written.
    let o = train(
        &f,
        "float.toml",
        "y.npy",
        &out,
        &["--batch-size", "0", "--loss", "mse"],
    );
    assert_ne!(o.status.code(), Some(0));
    let mut bad_y = vec![
        "train".into(),
        "--spec".into(),
        f.p("float.toml").into(),
        "--x".into(),
        f.p("x.npy").into(),
        "--y".into(),
        f.p("x_truncated.npy").into(),
        "--out".into(),
        out.clone().into(),
    ];
    bad_y.extend(["--loss".into(), "mse".into()]);
    assert_ne!(gated(&bad_y).status.code(), Some(0));

    // A different model that diverges, trained into the same directory.
    std::fs::write(
        f.p("other.toml"),
        FLOAT_SPEC.replace("units = 4", "units = 3"),
    )
    .unwrap();
    let o = train(&f, "other.toml", "y2.npy", &out, DIVERGE);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let after = load_model_dir(&out).unwrap_or_else(|e| panic!("DIR no longer loads: {e}"));
    assert_eq!(after.spec_text, before.spec_text);
    assert_eq!(weights(&after.model), weights(&before.model));
    let _ = std::fs::remove_dir_all(&f.dir);
}
