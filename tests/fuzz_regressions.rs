//! Replays every input the fuzzers found a bug with (and a few hand-made
//! ones of the same kind) through the fuzz harness: each must now return
//! normally, with an `Err` or an `Ok`, without a panic, abort or hang.
//!
//! Inputs live in `tests/fixtures/fuzz/<target>/`, one file each, named after
//! the bug; `<target>` is a function of `fuzz/harness.rs` (the same code the
//! libFuzzer binaries in `fuzz/` run). To keep a new crash: copy
//! `fuzz/artifacts/<target>/crash-*` there under a descriptive name.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

/// A harness function: one fuzz input in, nothing out.
type Harness = fn(&[u8]);

/// The harness entry point of each target, by directory name.
const TARGETS: &[(&str, Harness)] = &[
    ("npy", harness::npy),
    ("npz", harness::npz),
    ("pickle", harness::pickle),
    ("safetensors", harness::safetensors),
    ("spec_toml", harness::spec_toml),
    ("spec_json", harness::spec_json),
    ("idx", harness::idx),
    ("ts", harness::ts),
    ("csv", harness::csv),
    ("text", harness::text),
    ("vocab_json", harness::vocab_json),
    ("model_dir", harness::model_dir),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz")
}

/// The saved inputs of one target, sorted by name (none is fine).
fn inputs(target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fixtures().join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_saved_input_returns_normally() {
    let mut replayed = 0;
    for (target, run) in TARGETS {
        for path in inputs(target) {
            let data = std::fs::read(&path).unwrap();
            let started = std::time::Instant::now();
            let caught = std::panic::catch_unwind(|| run(&data));
            assert!(caught.is_ok(), "{target}: {} panics", path.display());
            assert!(
                started.elapsed().as_secs() < 5,
                "{target}: {} takes {:?}",
                path.display(),
                started.elapsed()
            );
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved fuzz inputs");
}

#[test]
fn every_fixture_directory_is_a_known_target() {
    let Ok(entries) = std::fs::read_dir(fixtures()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "tests/fixtures/fuzz/{name} matches no harness function"
        );
    }
}

/// The seed inputs (valid files from the other test fixtures) pass through
/// the harness too, so its own checks (round trips) are exercised.
#[test]
fn valid_files_pass_the_harness() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cases: &[(&str, Harness)] = &[
        ("datasets/imdb_tiny.npz", harness::npz),
        ("datasets/reuters_tiny.npz", harness::npz),
        ("datasets/tiny-images-idx3-ubyte", harness::idx),
        ("datasets/tiny-images-idx3-ubyte.gz", harness::idx),
        ("datasets/toy.ts", harness::ts),
        ("datasets/series.csv", harness::csv),
        ("layers/embedding.safetensors", harness::safetensors),
    ];
    for (rel, run) in cases {
        let data = std::fs::read(f.join(rel)).unwrap();
        run(&data);
    }
    harness::spec_toml(harness::SMALL_SPEC.as_bytes());
    harness::text("héllo, wörld\n".as_bytes());
    harness::vocab_json(br#"{"chars": ["\n", " ", "a"]}"#);
    for which in 0..5u8 {
        harness::model_dir(&[which]);
    }
}

/// The oversized specs among the saved inputs are refused by the real
/// `parse_spec` (not just the fuzz harness's smaller limit), with a message
/// naming the limit, before anything is allocated.
#[test]
fn oversized_specs_are_refused_before_allocating() {
    let mut seen = 0;
    for (dir, json) in [("spec_toml", false), ("spec_json", true)] {
        for path in inputs(dir) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.starts_with("huge") || name.contains("over_limit")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            match gated::model::spec::parse_spec(&path, &text, json, 0) {
                Ok(_) => panic!("{name} parses"),
                Err(e) => assert!(e.to_string().contains("limit"), "{name}: {e}"),
            }
            seen += 1;
        }
    }
    assert!(seen >= 4, "only {seen} oversized specs found");
}

/// Many short series and one long one: padding them all to the longest would
/// allocate far more than the file holds, so `read_ts` refuses.
#[test]
fn ts_padding_blowup_is_refused() {
    let path = fixtures().join("ts/padding_blowup.ts");
    match gated::datasets::ts::read_ts(&path) {
        Ok(d) => panic!("read a padded array of shape {:?}", d.x.shape()),
        Err(e) => assert!(e.to_string().contains("padding 5001 series"), "{e}"),
    }
}
