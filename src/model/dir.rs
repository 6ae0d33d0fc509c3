//! The model directory: everything a trained model needs, in plain files.
//!
//! ```text
//! DIR/
//!   model.toml              the spec text (TOML, or JSON text when the spec was JSON)
//!   weights.safetensors     `<layer>.<PyTorch param>` -> tensor, PyTorch layout (see model::torch)
//!   training_state.json     TrainingState (optional)
//!   optimizer.safetensors   the optimizer's named state vectors (optional)
//!   vocab.json              the vocabulary, any JSON value (optional)
//!   checkpoint.json         manifest: which files belong to the save, their sizes and hashes
//!   last/                   the same layout: the last checkpoint of a training run
//!   best/                   the same layout: the best checkpoint by the monitored metric
//! ```
//!
//! A directory holding only `model.toml` and a `weights.safetensors` written
//! by PyTorch is a valid model directory too: without a manifest the files
//! are loaded as they are.
//!
//! # Crash safety
//!
//! Every file is written with [`write_atomic`]
//! (temporary file, fsync, rename), so no file is ever torn. On top of that:
//!
//! - **Checkpoints** (`last/`, `best/`; [`save_checkpoint`]) are written whole
//!   into a fresh hidden directory `.last.tmp.<pid>.<n>` beside the target
//!   (manifest last, everything fsynced), then swapped in with two renames:
//!   `last` -> `.last.old.<pid>.<n>`, then the temporary directory -> `last`;
//!   the old one is then removed. A kill -9 at any moment leaves either the old
//!   `last/` or the new one complete: a stray `.tmp` directory is ignored, and
//!   if the kill fell between the two renames `last/` is missing and the
//!   complete `.last.old.*` is used instead, by [`load_checkpoint`] (reading)
//!   and by the next [`save_checkpoint`] (which moves it back first).
//! - **The top-level save** ([`save_model_dir`]) cannot be swapped as a whole,
//!   because DIR may hold other files (plots, logs, `last/`). It writes the
//!   whole save, manifest included, into a hidden `.model.tmp.<pid>.<n>` first
//!   (the only step that needs disk space: a full disk or any failed write
//!   there leaves the previous model untouched), then marks DIR's manifest
//!   `"complete": false`, renames each file into DIR and renames the complete
//!   manifest last. A kill during those renames (no data is written then)
//!   leaves an incomplete manifest: a load says so and points at `last/`; it
//!   never loads a mix of two saves.
//!
//! Loading never writes: a corrupt or truncated file is an error naming it.
//!
//! # Example
//!
//! ```
//! use gated::model::spec::parse_spec;
//! use gated::model::{load_checkpoint, save_checkpoint, Checkpoint, SaveExtras};
//! use gated::train::TrainingState;
//!
//! # fn main() -> gated::Result<()> {
//! let spec = "[input]\nshape = [4]\ndtype = \"int32\"\n\
//!             [[layer]]\ntype = \"embedding\"\ninput_dim = 10\noutput_dim = 3\n\
//!             [[layer]]\ntype = \"lstm\"\nunits = 5\n";
//! let model = parse_spec("m.toml".as_ref(), spec, false, 42)?;
//! let dir = std::env::temp_dir().join(format!("gated-doc-dir-{}", std::process::id()));
//! let state = TrainingState { epoch: 1, ..Default::default() };
//! let extras = SaveExtras { state: Some(&state), ..Default::default() };
//! save_checkpoint(&dir, Checkpoint::Last, &model, spec, &extras)?;
//! let back = load_checkpoint(&dir, Checkpoint::Last)?;
//! assert_eq!(back.state.map(|s| s.epoch), Some(1));
//! assert_eq!(back.model.params()[1].values, model.params()[1].values);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use super::manifest::MANIFEST_FILE;
use super::manifest::{read_manifest, verify_manifest, write_manifest};
use super::spec::parse_spec;
use super::torch::{apply_state_dict, torch_state_dict};
use super::Sequential;
use crate::io::atomic::write_atomic;
use crate::io::regular::{is_present, read_regular, read_regular_text};
use crate::io::weights::{
    decode_safetensors, load_safetensors_with_metadata, save_safetensors,
    save_safetensors_with_metadata, NamedTensors,
};
use crate::train::{OptimizerState, TrainingState};
use crate::{Error, Result, Tensor};

/// `model.toml`: the spec text.
pub const SPEC_FILE: &str = "model.toml";
/// `weights.safetensors`: the weights in PyTorch's naming.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// `training_state.json`: [`TrainingState`] as JSON.
pub const STATE_FILE: &str = "training_state.json";
/// `optimizer.safetensors`: [`OptimizerState`] tensors; algorithm, step
/// count and the export order of the tensors in the header metadata.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// `vocab.json`: the vocabulary.
pub const VOCAB_FILE: &str = "vocab.json";
/// Every file gated writes into a model directory, and so every name a
/// manifest may list.
pub const MODEL_DIR_FILES: [&str; 5] = [
    SPEC_FILE,
    WEIGHTS_FILE,
    STATE_FILE,
    OPTIMIZER_FILE,
    VOCAB_FILE,
];

/// The largest `model.toml` read from a model directory.
const MAX_SPEC_BYTES: u64 = 16 << 20;
/// The largest `training_state.json` or `vocab.json` read from a model directory.
const MAX_JSON_BYTES: u64 = 256 << 20;
/// Room for a safetensors header beside the tensors it describes.
const MAX_HEADER_BYTES: u64 = 64 << 20;
/// At most this many f32 state values per parameter in `optimizer.safetensors`
/// (Adam with AMSGrad keeps three).
const MAX_OPTIMIZER_SLOTS: u64 = 4;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// What is saved besides the model and its spec. All optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct SaveExtras<'a> {
    /// The training state (epoch, step, RNG, history, best value) for resuming.
    pub state: Option<&'a TrainingState>,
    /// The optimizer's state ([`Optimizer::export_state`](crate::train::Optimizer::export_state)).
    pub optimizer: Option<&'a OptimizerState>,
    /// The vocabulary as any JSON value (char-level training stores its
    /// character list, e.g. `{"chars": ["\n", " ", "a", ...]}`).
    pub vocab: Option<&'a serde_json::Value>,
}

/// A model directory as loaded.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model with its saved weights.
    pub model: Sequential,
    /// The spec text exactly as saved.
    pub spec_text: String,
    /// The training state, when one was saved.
    pub state: Option<TrainingState>,
    /// The optimizer state, when one was saved.
    pub optimizer: Option<OptimizerState>,
    /// The vocabulary, when one was saved.
    pub vocab: Option<serde_json::Value>,
    /// The directory the files were read from (differs from the one asked
    /// for only when a checkpoint was recovered from an interrupted swap).
    pub path: PathBuf,
}

/// Which checkpoint of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// The checkpoint written at the end of the latest epoch (`DIR/last`).
    Last,
    /// The checkpoint with the best monitored value so far (`DIR/best`).
    Best,
}

impl Checkpoint {
    /// The subdirectory name: `last` or `best`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Checkpoint::Last => "last",
            Checkpoint::Best => "best",
        }
    }

    /// `dir/last` or `dir/best`.
    pub fn path(self, dir: &Path) -> PathBuf {
        dir.join(self.dir_name())
    }
}

/// Fails unless `dir` exists (it is created) and a file can be written in it,
/// so that a training run stops before its first epoch rather than after it.
pub fn check_writable(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::file(dir, "exists and is not a directory"));
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = dir.join(format!(
        ".gated-write-test.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    write_atomic(&probe, b"ok")?;
    fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

/// The JSON texts of the training state and vocabulary, made before anything
/// is written so that a state that cannot be stored fails the save early.
struct JsonTexts {
    state: Option<String>,
    vocab: Option<String>,
}

fn json_texts(extras: &SaveExtras<'_>) -> Result<JsonTexts> {
    let state = extras
        .state
        .map(|st| {
            let text = serde_json::to_string_pretty(st)
                .map_err(|e| Error::file(STATE_FILE, e.to_string()))?;
            // JSON has no NaN: serde_json writes it as null, which would not load back.
            if serde_json::from_str::<TrainingState>(&text).is_err() {
                return Err(Error::file(
                    STATE_FILE,
                    "the training state holds a NaN or infinite number, which JSON cannot \
                     store; not saving a state that would not load",
                ));
            }
            Ok(text)
        })
        .transpose()?;
    let vocab = extras
        .vocab
        .map(|v| {
            serde_json::to_string_pretty(v).map_err(|e| Error::file(VOCAB_FILE, e.to_string()))
        })
        .transpose()?;
    Ok(JsonTexts { state, vocab })
}

/// Writes the files of one save into `dir` (which exists) and returns their names.
fn write_files(
    dir: &Path,
    model: &Sequential,
    spec_text: &str,
    extras: &SaveExtras<'_>,
    json: &JsonTexts,
) -> Result<Vec<&'static str>> {
    let mut files = vec![SPEC_FILE, WEIGHTS_FILE];
    write_atomic(dir.join(SPEC_FILE), spec_text.as_bytes())?;
    let dict = torch_state_dict(model)?;
    let refs: Vec<(&str, &Tensor)> = dict.iter().map(|(n, t)| (n.as_str(), t)).collect();
    save_safetensors(dir.join(WEIGHTS_FILE), &refs)?;
    if let Some(text) = &json.state {
        write_atomic(dir.join(STATE_FILE), text.as_bytes())?;
        files.push(STATE_FILE);
    }
    if let Some(opt) = extras.optimizer {
        let path = dir.join(OPTIMIZER_FILE);
        let tensors: Vec<(String, Tensor)> = opt
            .tensors
            .iter()
            .map(|(n, v)| Ok((n.clone(), Tensor::from_vec(&[v.len()], v.clone())?)))
            .collect::<Result<_>>()?;
        let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let meta = [
            ("algorithm".to_string(), opt.algorithm.clone()),
            ("steps".to_string(), opt.steps.to_string()),
            (
                "order".to_string(),
                serde_json::to_string(&opt.tensors.iter().map(|(n, _)| n).collect::<Vec<_>>())
                    .map_err(|e| Error::file(&path, e.to_string()))?,
            ),
        ]
        .into_iter()
        .collect();
        save_safetensors_with_metadata(&path, &refs, &meta)?;
        files.push(OPTIMIZER_FILE);
    }
    if let Some(text) = &json.vocab {
        write_atomic(dir.join(VOCAB_FILE), text.as_bytes())?;
        files.push(VOCAB_FILE);
    }
    Ok(files)
}

/// Removes files of an earlier save that this one does not have (an old
/// optimizer state must not be read back with new weights).
fn remove_stale(dir: &Path, files: &[&str]) -> Result<()> {
    for f in [STATE_FILE, OPTIMIZER_FILE, VOCAB_FILE] {
        let p = dir.join(f);
        if !files.contains(&f) && is_present(&p) {
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

/// Saves a model directory at `dir` (created if needed): spec, weights in
/// PyTorch's layout, and the extras given; files of an earlier save that this
/// one lacks are removed. See the module docs for the crash-safety scheme.
pub fn save_model_dir(
    dir: &Path,
    model: &Sequential,
    spec_text: &str,
    extras: &SaveExtras<'_>,
) -> Result<()> {
    let json = json_texts(extras)?;
    check_writable(dir)?;
    // Debris of saves killed before they finished.
    for p in siblings(dir, "model", "tmp") {
        let _ = fs::remove_dir_all(p);
    }
    // Everything that needs disk space happens in a fresh hidden directory:
    // a full disk or a failed write there leaves the previous model as it was.
    let tmp = hidden(dir, "model", "tmp");
    fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let written = write_files(&tmp, model, spec_text, extras, &json).and_then(|files| {
        write_manifest(&tmp, true, &files)?;
        sync_dir(&tmp);
        Ok(files)
    });
    let files = match written {
        Ok(files) => files,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // Then only renames, which need no space: the manifest marked incomplete,
    // the files, and the complete manifest last.
    let swapped = write_manifest(dir, false, &[]).and_then(|()| {
        for f in &files {
            fs::rename(tmp.join(f), dir.join(f)).map_err(|e| Error::io(dir.join(f), e))?;
        }
        remove_stale(dir, &files)?;
        let manifest = dir.join(MANIFEST_FILE);
        fs::rename(tmp.join(MANIFEST_FILE), &manifest).map_err(|e| Error::io(&manifest, e))
    });
    let _ = fs::remove_dir_all(&tmp);
    swapped?;
    sync_dir(dir);
    // Temporary files of single-file writes killed before their rename.
    for f in MODEL_DIR_FILES.iter().chain([&MANIFEST_FILE]) {
        for p in siblings(dir, f, "tmp") {
            let _ = fs::remove_file(p);
        }
    }
    Ok(())
}

fn hidden(parent: &Path, name: &str, kind: &str) -> PathBuf {
    parent.join(format!(
        ".{name}.{kind}.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Hidden siblings `.{name}.{kind}.*` of a checkpoint directory or file.
fn siblings(parent: &Path, name: &str, kind: &str) -> Vec<PathBuf> {
    let prefix = format!(".{name}.{kind}.");
    let mut out: Vec<PathBuf> = fs::read_dir(parent)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The complete `.{name}.old.*` left by a swap interrupted between its two
/// renames, if any (the newest by modification time).
fn interrupted_swap(parent: &Path, name: &str) -> Option<PathBuf> {
    siblings(parent, name, "old")
        .into_iter()
        .filter(|p| {
            read_manifest(p, &MODEL_DIR_FILES)
                .ok()
                .flatten()
                .is_some_and(|m| m.complete)
        })
        .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
}

/// Saves a checkpoint as `dir/last` or `dir/best`, replacing the previous one
/// only once the new one is complete on disk (see the module docs). Returns
/// the checkpoint's path.
pub fn save_checkpoint(
    dir: &Path,
    which: Checkpoint,
    model: &Sequential,
    spec_text: &str,
    extras: &SaveExtras<'_>,
) -> Result<PathBuf> {
    let json = json_texts(extras)?;
    check_writable(dir)?;
    let name = which.dir_name();
    let target = which.path(dir);
    // Finish a swap that an earlier run left half done.
    if !is_present(&target) {
        if let Some(old) = interrupted_swap(dir, name) {
            fs::rename(&old, &target).map_err(|e| Error::io(&target, e))?;
        }
    }
    let tmp = hidden(dir, name, "tmp");
    fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let written = write_files(&tmp, model, spec_text, extras, &json)
        .and_then(|files| write_manifest(&tmp, true, &files));
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    sync_dir(&tmp);
    let old = hidden(dir, name, "old");
    if is_present(&target) {
        fs::rename(&target, &old).map_err(|e| Error::io(&target, e))?;
    }
    fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
    sync_dir(dir);
    // Clean up: the replaced checkpoint and any debris of interrupted saves.
    for p in siblings(dir, name, "old")
        .into_iter()
        .chain(siblings(dir, name, "tmp"))
    {
        let _ = fs::remove_dir_all(p);
    }
    Ok(target)
}

/// Loads `dir/last` or `dir/best`; when a kill interrupted the swap so that
/// the directory is missing, loads the complete previous checkpoint instead.
pub fn load_checkpoint(dir: &Path, which: Checkpoint) -> Result<LoadedModel> {
    let target = which.path(dir);
    if !is_present(&target) {
        if let Some(old) = interrupted_swap(dir, which.dir_name()) {
            return load_model_dir(&old);
        }
    }
    load_model_dir(&target)
}

/// `; the last complete checkpoint is DIR/last` when there is one, to end an error.
fn last_checkpoint_hint(dir: &Path) -> String {
    let last = Checkpoint::Last.path(dir);
    if is_present(&last.join(MANIFEST_FILE)) {
        format!("; the last complete checkpoint is {}", last.display())
    } else {
        String::new()
    }
}

/// Builds a model from spec text as saved in `model.toml` (TOML, or JSON when
/// the text starts with `{`); `path` names the file in errors.
pub fn model_from_spec_text(path: &Path, text: &str) -> Result<Sequential> {
    let json = text.trim_start().starts_with('{');
    parse_spec(path, text, json, 0)
}

/// Reads `model.toml` of `dir` and builds the model with fresh weights.
pub fn load_spec_text(dir: &Path) -> Result<(Sequential, String)> {
    let path = dir.join(SPEC_FILE);
    let text = read_regular_text(&path, MAX_SPEC_BYTES)?;
    let model = model_from_spec_text(&path, &text)?;
    Ok((model, text))
}

/// Reads an `optimizer.safetensors` file.
pub fn load_optimizer_state(path: &Path) -> Result<OptimizerState> {
    let (tensors, meta) = load_safetensors_with_metadata(path)?;
    optimizer_state_of(path, tensors, meta)
}

fn optimizer_state_of(
    path: &Path,
    tensors: NamedTensors,
    meta: HashMap<String, String>,
) -> Result<OptimizerState> {
    let algorithm = meta
        .get("algorithm")
        .cloned()
        .ok_or_else(|| Error::file(path, "no `algorithm` in the header metadata"))?;
    let steps = meta
        .get("steps")
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Error::file(path, "no valid `steps` in the header metadata"))?;
    let mut tensors: Vec<(String, Vec<f32>)> = tensors
        .into_iter()
        .map(|(n, t)| (n, t.into_vec()))
        .collect();
    // Restore the order the optimizer exported (safetensors sorts by name).
    if let Some(order) = meta
        .get("order")
        .and_then(|o| serde_json::from_str::<Vec<String>>(o).ok())
    {
        tensors.sort_by_key(|(n, _)| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
    }
    Ok(OptimizerState {
        algorithm,
        steps,
        tensors,
    })
}

/// Reads an optional JSON file of a model directory (`None` when absent).
fn read_optional_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Option<T>> {
    if !is_present(path) {
        return Ok(None);
    }
    let text = read_regular_text(path, MAX_JSON_BYTES)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::file(path, format!("not {what}: {e}")))
}

/// Loads a model directory: `model.toml` and `weights.safetensors` (required;
/// the weights may come from PyTorch, see [`crate::model::torch`]), and
/// `training_state.json`, `optimizer.safetensors`, `vocab.json` when present.
/// When a manifest is present every file is checked against it first.
/// Errors name the file at fault; nothing is written.
pub fn load_model_dir(dir: &Path) -> Result<LoadedModel> {
    if !dir.is_dir() {
        return Err(Error::file(
            dir,
            "not a model directory (expected a directory with model.toml and weights.safetensors)",
        ));
    }
    if let Some(m) = read_manifest(dir, &MODEL_DIR_FILES)? {
        verify_manifest(dir, &m, &last_checkpoint_hint(dir))?;
    }
    let (mut model, spec_text) = load_spec_text(dir)?;
    // The spec fixes how large the tensor files can honestly be (f64 is the
    // widest dtype read), so nothing larger is read into memory.
    let (total, _) = model.param_counts();
    let tensor_bytes = (total as u64).saturating_mul(8);
    let weights_path = dir.join(WEIGHTS_FILE);
    let bytes = read_regular(&weights_path, tensor_bytes.saturating_add(MAX_HEADER_BYTES))?;
    let (tensors, _) = decode_safetensors(&bytes, &weights_path)?;
    drop(bytes);
    apply_state_dict(&mut model, &tensors, &weights_path)?;
    drop(tensors);
    let state_path = dir.join(STATE_FILE);
    let state: Option<TrainingState> = read_optional_json(&state_path, "a valid training state")?;
    if let Some(st) = &state {
        st.check().map_err(|m| Error::file(&state_path, m))?;
    }
    let optimizer = {
        let path = dir.join(OPTIMIZER_FILE);
        if is_present(&path) {
            let max = tensor_bytes
                .saturating_mul(MAX_OPTIMIZER_SLOTS)
                .saturating_add(MAX_HEADER_BYTES);
            let bytes = read_regular(&path, max)?;
            let (tensors, meta) = decode_safetensors(&bytes, &path)?;
            Some(optimizer_state_of(&path, tensors, meta)?)
        } else {
            None
        }
    };
    let vocab = read_optional_json(&dir.join(VOCAB_FILE), "valid JSON")?;
    Ok(LoadedModel {
        model,
        spec_text,
        state,
        optimizer,
        vocab,
        path: dir.to_path_buf(),
    })
}
