//! What every fuzz target runs, one function per parser.
//!
//! This file is compiled twice: by the fuzz crate (`fuzz/fuzz_targets/*.rs`,
//! one libFuzzer binary per function) and by the regression suite
//! (`tests/fuzz_regressions.rs`), which replays every saved input under
//! `tests/fixtures/fuzz/<target>/` through the same function. A function must
//! return normally for every input: parse errors are fine, a panic, an abort
//! on a huge allocation or a hang is a bug.
//!
//! Parsers that only take a path get the bytes through a scratch file in a
//! per-process, per-thread directory (under `/dev/shm` when it exists).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gated::data::text::{decode_text, CharVocab};
use gated::datasets::csv::{read_csv, Column, CsvOptions};
use gated::datasets::idx::read_idx;
use gated::datasets::keras::{load_imdb, load_reuters, LoadOptions};
use gated::datasets::ts::read_ts;
use gated::io::npy::{decode_npy, encode_npy};
use gated::io::npz::read_npz;
use gated::io::pickle::unpickle_int_sequences;
use gated::io::weights::{load_safetensors_with_metadata, save_safetensors};
use gated::model::dir::{load_model_dir, load_optimizer_state, model_from_spec_text};
use gated::model::spec::{parse_spec, parse_spec_with_limit};
use gated::model::torch::{apply_state_dict, torch_state_dict};
use gated::train::TrainingState;

/// A small model every weight file is applied to: an embedding, an LSTM and
/// a dense head, so `apply_state_dict` sees each naming rule.
pub const SMALL_SPEC: &str = "[input]\nshape = [3]\ndtype = \"int32\"\n\
    [[layer]]\ntype = \"embedding\"\ninput_dim = 5\noutput_dim = 2\n\
    [[layer]]\ntype = \"lstm\"\nunits = 2\n\
    [[layer]]\ntype = \"dense\"\nunits = 2\n";

/// The parameter limit of the spec targets.
pub const FUZZ_MAX_PARAMS: usize = 1 << 16;

/// A scratch directory private to this process and thread.
fn scratch_dir() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let thread = format!("{:?}", std::thread::current().id())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>();
    let dir = base.join(format!("gated-fuzz-{}-{thread}", std::process::id()));
    // Creating an existing directory is fine; a failure shows up on write.
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Writes `data` to `name` in the scratch directory and returns its path.
fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    if let Err(e) = std::fs::write(&path, data) {
        // The harness itself failing is not a finding; say so loudly.
        panic!("harness: cannot write {}: {e}", path.display());
    }
    path
}

/// `.npy`: header and data decoding; a decoded tensor must survive a
/// write/read round trip bit for bit.
pub fn npy(data: &[u8]) {
    let path = Path::new("fuzz.npy");
    if let Ok(t) = decode_npy(data, path) {
        let again = decode_npy(&encode_npy(&t), path);
        let back = match again {
            Ok(b) => b,
            Err(e) => panic!("a decoded array does not re-read: {e}"),
        };
        assert_eq!(back.shape(), t.shape());
        assert!(back
            .data()
            .iter()
            .zip(t.data())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// `.npz`: the zip container, every member (numeric or pickled object array)
/// and the Keras `imdb.npz` / `reuters.npz` loaders on top.
pub fn npz(data: &[u8]) {
    let path = scratch_file("fuzz.npz", data);
    if read_npz(&path).is_ok() {
        let _ = load_imdb(&path, &LoadOptions::default());
        let _ = load_reuters(&path, &LoadOptions::default());
    }
}

/// The restricted pickle reader on its own (the object-array payload of an
/// `.npz` member).
pub fn pickle(data: &[u8]) {
    let _ = unpickle_int_sequences(data, 0, Path::new("fuzz.pkl"));
}

/// `.safetensors`: decoding, the optimizer-state metadata, and applying the
/// tensors to a small model as PyTorch weights.
pub fn safetensors(data: &[u8]) {
    let path = scratch_file("fuzz.safetensors", data);
    let Ok((tensors, _meta)) = load_safetensors_with_metadata(&path) else {
        return;
    };
    let _ = load_optimizer_state(&path);
    if let Ok(mut model) = parse_spec(Path::new("small.toml"), SMALL_SPEC, false, 0) {
        let _ = apply_state_dict(&mut model, &tensors, &path);
    }
}

/// Treats `data` as spec text; non-UTF-8 input stops here, as
/// `read_to_string` would.
fn spec(data: &[u8], json: bool) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let name = if json { "fuzz.json" } else { "fuzz.toml" };
    // The real limit (`MAX_PARAMS`, 2^28) allows models that take seconds to
    // initialise; the fuzzer needs fast runs, and the limit check is the same
    // code whatever the number.
    if let Ok(model) = parse_spec_with_limit(Path::new(name), text, json, 0, FUZZ_MAX_PARAMS) {
        let _ = model.summary();
        let _ = torch_state_dict(&model);
    }
}

/// A TOML model spec.
pub fn spec_toml(data: &[u8]) {
    spec(data, false);
}

/// A JSON model spec (also through `model_from_spec_text`, which sniffs).
pub fn spec_json(data: &[u8]) {
    spec(data, true);
    if let Ok(text) = std::str::from_utf8(data) {
        // `model_from_spec_text` sniffs JSON vs TOML; only small inputs go
        // through it, as it has the full parameter limit.
        if text.len() < 256 && !text.contains(|c: char| c.is_ascii_digit()) {
            let _ = model_from_spec_text(Path::new("model.toml"), text);
        }
    }
}

/// IDX files (MNIST), plain or gzipped.
pub fn idx(data: &[u8]) {
    let path = scratch_file("fuzz.idx", data);
    let _ = read_idx(&path);
}

/// `.ts` files (sktime / UEA-UCR time series).
pub fn ts(data: &[u8]) {
    let path = scratch_file("fuzz.ts", data);
    let _ = read_ts(&path);
}

/// CSV tables; the first byte picks the delimiter and header mode, then
/// every column is selected.
pub fn csv(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let opts = CsvOptions {
        delimiter: [',', ';', '\t', ' '][usize::from(mode & 3)],
        header: [None, Some(true), Some(false), None][usize::from((mode >> 2) & 3)],
    };
    let path = scratch_file("fuzz.csv", rest);
    if let Ok(table) = read_csv(&path, &opts) {
        let cols: Vec<Column> = (0..table.cols()).map(Column::Index).collect();
        let _ = table.select(&cols);
        let _ = table.column_names(&cols);
    }
}

/// Text corpora: strict UTF-8 decoding, then the char vocabulary, which must
/// round-trip the text.
pub fn text(data: &[u8]) {
    let Ok(text) = decode_text("fuzz.txt", data.to_vec()) else {
        return;
    };
    let vocab = match CharVocab::from_text(&text) {
        Ok(v) => v,
        Err(_) => return,
    };
    let ids = match vocab.encode(&text) {
        Ok(ids) => ids,
        Err(e) => panic!("the text's own vocabulary cannot encode it: {e}"),
    };
    match vocab.decode(&ids) {
        Ok(back) => assert_eq!(back, text),
        Err(e) => panic!("ids from encode do not decode: {e}"),
    }
}

/// A char vocabulary JSON (`vocab.json` of a char-LM); a parsed vocabulary
/// must round-trip through its JSON form.
pub fn vocab_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = CharVocab::from_json("vocab.json", text) {
        let json = match v.to_json() {
            Ok(j) => j,
            Err(e) => panic!("a parsed vocabulary does not serialise: {e}"),
        };
        match CharVocab::from_json("vocab.json", &json) {
            Ok(back) => assert_eq!(back.chars(), v.chars()),
            Err(e) => panic!("a serialised vocabulary does not re-read: {e}"),
        }
    }
}

/// The files of a model directory. The first byte picks the file the rest
/// replaces in an otherwise valid directory: `checkpoint.json` (manifest),
/// `training_state.json`, `model.toml`, `vocab.json` or
/// `optimizer.safetensors`; then the directory is loaded.
pub fn model_dir(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let _ = serde_json::from_slice::<TrainingState>(rest);
    let dir = scratch_dir().join("model");
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("harness: cannot create {}: {e}", dir.display());
    }
    let model = match parse_spec(Path::new("small.toml"), SMALL_SPEC, false, 0) {
        Ok(m) => m,
        Err(e) => panic!("harness: the small spec does not parse: {e}"),
    };
    let weights = match torch_state_dict(&model) {
        Ok(w) => w,
        Err(e) => panic!("harness: no state dict: {e}"),
    };
    let named: Vec<(&str, &gated::Tensor)> = weights.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let writes = [
        ("model.toml", SMALL_SPEC.as_bytes().to_vec()),
        (
            "training_state.json",
            serde_json::to_vec(&TrainingState::default()).unwrap_or_default(),
        ),
    ];
    for (name, bytes) in &writes {
        if let Err(e) = std::fs::write(dir.join(name), bytes) {
            panic!("harness: cannot write {name}: {e}");
        }
    }
    if let Err(e) = save_safetensors(dir.join("weights.safetensors"), &named) {
        panic!("harness: cannot write weights: {e}");
    }
    let target = match which % 5 {
        0 => "checkpoint.json",
        1 => "training_state.json",
        2 => "model.toml",
        3 => "vocab.json",
        _ => "optimizer.safetensors",
    };
    if let Err(e) = std::fs::write(dir.join(target), rest) {
        panic!("harness: cannot write {target}: {e}");
    }
    let _ = load_model_dir(&dir);
}
