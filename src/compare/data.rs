//! Data-set specs for `gated compare` and the loaders behind them.
//!
//! A spec is `LOADER:ARG[,ARG...]`, where each `ARG` is a path or a
//! `key=value` option:
//!
//! | spec | task | input |
//! | --- | --- | --- |
//! | `fashion-mnist:DIR` (also `mnist:DIR`) | 10 classes | each image row is a step: `[28, 28]` |
//! | `ts:TRAIN.ts,TEST.ts` | classes of `@classLabel` | `[T_max, dims]`, zero-padded and masked |
//! | `csv:PATH,target=COL,lookback=L,horizon=H` | regression (MSE, MAE) | `[L, F]` windows, standardised |
//! | `imdb:PATH.npz,num_words=N,maxlen=M` | binary (sentiment) | `[M]` token ids into an Embedding |
//! | `reuters:PATH.npz,num_words=N,maxlen=M` | 46 topics (sparse categorical CE) | `[M]` token ids |
//!
//! Options of `csv`: `features=a|b|c` (default: every column read, the target
//! included), `test=0.2` (the last
//! fraction of the windows, in time order), `scale=standard|minmax`,
//! `skip=COL|COL` (columns to leave out, e.g. a date column — only columns
//! that hold numbers are read, so a text column must be skipped). Options of
//! `imdb`/`reuters`: `num_words` (default 10000), `maxlen` (default 200; longer
//! reviews are truncated, keeping the end, as `pad_sequences` does),
//! `embedding=32` (the Embedding's width).
//!
//! Validation data is a held-out part of the training data: a seeded random
//! part for classification, the last part in time order for `csv`; the test
//! data is the test split (the last part of the series for `csv`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::datasets::{
    load_idx_pair, load_imdb, load_reuters, pad_sequences, read_csv, read_ts, window, Column,
    CsvOptions, LoadOptions, Padding, ScaleKind, Scaler,
};
use crate::{Error, Result, Rng, Tensor};

/// The loaders a spec may name.
pub const LOADERS: &[&str] = &["fashion-mnist", "mnist", "ts", "csv", "imdb", "reuters"];

/// One parsed `--data` spec: the loader, its positional arguments (paths) and
/// its `key=value` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSpec {
    /// One of [`LOADERS`].
    pub loader: String,
    /// Positional arguments (paths), in order.
    pub args: Vec<String>,
    /// `key=value` options.
    pub options: BTreeMap<String, String>,
    /// The spec as written, for messages and the report.
    pub text: String,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid("--data", msg)
}

/// Whether a comma-separated token starts a new spec: the text before its
/// first `:` is a loader-like word (letters, digits, `-`, `_`).
fn loader_prefix(token: &str) -> Option<&str> {
    let (head, _) = token.split_once(':')?;
    (!head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    .then_some(head)
}

/// Parses `--data` values. Each value may hold several specs separated by
/// commas: a comma-separated token that looks like `word:...` starts a new
/// spec, any other token belongs to the spec before it (so
/// `ts:A.ts,B.ts,csv:x.csv,target=y` is two specs).
pub fn parse_data_specs(values: &[String]) -> Result<Vec<DataSpec>> {
    let mut specs: Vec<DataSpec> = Vec::new();
    for value in values {
        let mut current: Option<DataSpec> = None;
        for token in value.split(',') {
            let token = token.trim();
            if token.is_empty() {
                continue;
            }
            let arg = if let Some(head) = loader_prefix(token) {
                let loader = head.to_ascii_lowercase();
                if !LOADERS.contains(&loader.as_str()) {
                    return Err(bad(format!(
                        "unknown loader '{head}' in '{token}'; known: {}",
                        LOADERS.join(", ")
                    )));
                }
                specs.extend(current.take());
                current = Some(DataSpec {
                    loader,
                    args: Vec::new(),
                    options: BTreeMap::new(),
                    text: String::new(),
                });
                &token[head.len() + 1..]
            } else {
                token
            };
            let Some(spec) = current.as_mut() else {
                return Err(bad(format!(
                    "'{token}' does not start with a loader; write LOADER:ARGS with LOADER one of {}",
                    LOADERS.join(", ")
                )));
            };
            if !spec.text.is_empty() {
                spec.text.push(',');
            } else {
                spec.text = format!("{}:", spec.loader);
            }
            spec.text.push_str(arg);
            if arg.is_empty() {
                continue;
            }
            match arg.split_once('=') {
                Some((k, v)) => {
                    spec.options
                        .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
                None => spec.args.push(arg.to_string()),
            }
        }
        specs.extend(current);
    }
    if specs.is_empty() {
        return Err(bad(
            "no data set given; e.g. --data fashion-mnist:/usr/share/datasets/fashion-mnist",
        ));
    }
    for s in &specs {
        s.check_options()?;
    }
    Ok(specs)
}

impl DataSpec {
    fn allowed_options(&self) -> &'static [&'static str] {
        match self.loader.as_str() {
            "csv" => &[
                "target", "lookback", "horizon", "features", "test", "scale", "skip",
            ],
            "imdb" | "reuters" => &["num_words", "maxlen", "embedding"],
            _ => &[],
        }
    }

    fn check_options(&self) -> Result<()> {
        let allowed = self.allowed_options();
        for k in self.options.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(bad(format!(
                    "'{}': unknown option '{k}' for the {} loader{}",
                    self.text,
                    self.loader,
                    if allowed.is_empty() {
                        " (it takes none)".to_string()
                    } else {
                        format!("; known: {}", allowed.join(", "))
                    }
                )));
            }
        }
        let want = match self.loader.as_str() {
            "ts" => 2,
            _ => 1,
        };
        if self.args.len() != want {
            let usage = match self.loader.as_str() {
                "ts" => "ts:TRAIN.ts,TEST.ts",
                "csv" => "csv:PATH.csv,target=COL,lookback=L,horizon=H",
                "imdb" => "imdb:PATH.npz,num_words=N,maxlen=M",
                "reuters" => "reuters:PATH.npz,num_words=N,maxlen=M",
                _ => "fashion-mnist:DIR (the folder of the four IDX files)",
            };
            return Err(bad(format!(
                "'{}' gives {} path(s), the {} loader takes {want}: {usage}",
                self.text,
                self.args.len(),
                self.loader
            )));
        }
        Ok(())
    }

    /// A short name for files and headings: the loader and the file or folder name.
    pub fn short_name(&self) -> String {
        let stem = self
            .args
            .first()
            .map(|a| {
                let p = Path::new(a);
                let s = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                s.trim_end_matches("_TRAIN").to_string()
            })
            .unwrap_or_default();
        let raw = match self.loader.as_str() {
            "fashion-mnist" | "mnist" => self.loader.clone(),
            _ if stem.is_empty() => self.loader.clone(),
            _ => format!("{}-{stem}", self.loader),
        };
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    }

    fn usize_opt(&self, key: &str, default: Option<usize>) -> Result<usize> {
        match self.options.get(key) {
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| bad(format!("'{}': {key}={v} is not a whole number", self.text))),
            None => default.ok_or_else(|| {
                bad(format!(
                    "'{}': the {} loader needs {key}=...",
                    self.text, self.loader
                ))
            }),
        }
    }

    /// Errors when a path of the spec does not exist.
    pub fn check_paths(&self) -> Result<()> {
        (0..self.args.len()).try_for_each(|i| self.path(i).map(|_| ()))
    }

    fn path(&self, i: usize) -> Result<PathBuf> {
        let p = PathBuf::from(&self.args[i]);
        if !p.exists() {
            return Err(Error::file(
                &p,
                format!("not found (data set '{}')", self.text),
            ));
        }
        Ok(p)
    }
}

/// What a data set asks the model to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// One of `classes` classes; sparse categorical cross-entropy, accuracy.
    Classes(usize),
    /// Two classes as one sigmoid output; binary cross-entropy, accuracy.
    Binary,
    /// Real targets (`horizon` values); MSE loss, MAE metric. `scale` turns a
    /// scaled MAE back into the target's original units.
    Regression {
        /// Values per sample.
        horizon: usize,
        /// The target column's scale (standard deviation or range).
        scale: f32,
    },
}

/// A data set ready for training: train, validation and test tensors.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The spec it came from.
    pub spec: DataSpec,
    /// Short name for files and headings.
    pub name: String,
    /// A one-line description for the report.
    pub description: String,
    /// The task.
    pub task: Task,
    /// Training inputs (`[N, T, F]` floats, or `[N, T]` token ids).
    pub x_train: Tensor,
    /// Training targets.
    pub y_train: Tensor,
    /// Validation inputs, held out of the training data.
    pub x_val: Tensor,
    /// Validation targets.
    pub y_val: Tensor,
    /// Test inputs.
    pub x_test: Tensor,
    /// Test targets.
    pub y_test: Tensor,
    /// `Some(vocabulary, width)` when the inputs are token ids for an Embedding.
    pub embedding: Option<(usize, usize)>,
    /// Whether padded steps (all zeros) should be masked.
    pub masked: bool,
}

/// Rows `idx` of a tensor (samples on the first axis).
pub fn take_rows(t: &Tensor, idx: &[usize]) -> Result<Tensor> {
    let n = t.shape().first().copied().unwrap_or(0);
    let row = t.len().checked_div(n).unwrap_or(0);
    let mut out = Vec::with_capacity(idx.len() * row);
    for &i in idx {
        if i >= n {
            return Err(Error::invalid("row", format!("{i} of {n}")));
        }
        out.extend_from_slice(&t.data()[i * row..(i + 1) * row]);
    }
    let mut shape = t.shape().to_vec();
    if let Some(s) = shape.first_mut() {
        *s = idx.len();
    }
    Tensor::from_vec(&shape, out)
}

/// Pads `[N, T, D]` with zeros at the end of the time axis to `[N, t, D]`.
fn pad_time(x: &Tensor, t: usize) -> Result<Tensor> {
    let (n, t0, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    if t0 == t {
        return Ok(x.clone());
    }
    let mut out = vec![0.0; n * t * d];
    for i in 0..n {
        out[i * t * d..i * t * d + t0 * d].copy_from_slice(&x.data()[i * t0 * d..(i + 1) * t0 * d]);
    }
    Tensor::from_vec(&[n, t, d], out)
}

fn labels(y: &[i64]) -> Result<Tensor> {
    crate::datasets::labels_to_tensor(y)
}

/// Shuffles `0..n` with `seed`, keeps at most `max` and splits off the last
/// `val_fraction` (at least one sample) as validation: `(train, val)` indices.
fn shuffled_split(
    n: usize,
    max: Option<usize>,
    val_fraction: f64,
    seed: u64,
    what: &str,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut idx: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut idx);
    idx.truncate(max.unwrap_or(n).min(n));
    let n = idx.len();
    let n_val = ((n as f64 * val_fraction).round() as usize).max(1);
    if n_val >= n {
        return Err(bad(format!(
            "{what}: {n} training samples are too few to hold out a validation part"
        )));
    }
    let val = idx.split_off(n - n_val);
    Ok((idx, val))
}

fn cap_test(n: usize, max: Option<usize>, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if let Some(m) = max.filter(|&m| m < n) {
        Rng::new(seed ^ 0x7e57).shuffle(&mut idx);
        idx.truncate(m);
        idx.sort_unstable();
    }
    idx
}

/// Which samples go where: indices into the training file's samples
/// (`train`, `val`) and into the test file's (`test`).
struct Split {
    train: Vec<usize>,
    val: Vec<usize>,
    test: Vec<usize>,
}

impl Split {
    /// A shuffled hold-out of `n_train` training samples ([`shuffled_split`])
    /// and a test set of `n_test` capped by the budget ([`cap_test`]).
    fn shuffled(n_train: usize, n_test: usize, budget: &Budget, what: &str) -> Result<Split> {
        let (train, val) = shuffled_split(
            n_train,
            budget.max_samples,
            budget.validation,
            budget.seed,
            what,
        )?;
        let test = cap_test(n_test, budget.max_samples, budget.seed);
        Ok(Split { train, val, test })
    }

    /// `"N training, N validation, N test {unit}"`, for descriptions.
    fn counts(&self, unit: &str) -> String {
        format!(
            "{} training, {} validation, {} test {unit}",
            self.train.len(),
            self.val.len(),
            self.test.len()
        )
    }
}

impl Prepared {
    /// The sets chosen by `split`: training and validation rows of `(x, y)`,
    /// test rows of `(xt, yt)`; no embedding, no masking.
    fn assemble(
        spec: &DataSpec,
        description: String,
        task: Task,
        (x, y): (&Tensor, &Tensor),
        (xt, yt): (&Tensor, &Tensor),
        split: &Split,
    ) -> Result<Prepared> {
        Ok(Prepared {
            name: spec.short_name(),
            description,
            task,
            x_train: take_rows(x, &split.train)?,
            y_train: take_rows(y, &split.train)?,
            x_val: take_rows(x, &split.val)?,
            y_val: take_rows(y, &split.val)?,
            x_test: take_rows(xt, &split.test)?,
            y_test: take_rows(yt, &split.test)?,
            embedding: None,
            masked: false,
            spec: spec.clone(),
        })
    }
}

/// How much of each data set to use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// At most this many training samples (before validation is held out) and
    /// this many test samples; `None`: all.
    pub max_samples: Option<usize>,
    /// Fraction of the training samples held out for validation.
    pub validation: f64,
    /// Seed of the shuffles.
    pub seed: u64,
}

/// Loads and prepares one data set.
pub fn load(spec: &DataSpec, budget: &Budget) -> Result<Prepared> {
    match spec.loader.as_str() {
        "fashion-mnist" | "mnist" => load_idx(spec, budget),
        "ts" => load_ts(spec, budget),
        "csv" => load_csv(spec, budget),
        "imdb" | "reuters" => load_tokens(spec, budget),
        other => Err(bad(format!("unknown loader '{other}'"))),
    }
}

fn find_idx(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::file(
        dir,
        format!("has no {stem} or {stem}.gz (an IDX folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)"),
    ))
}

fn load_idx(spec: &DataSpec, budget: &Budget) -> Result<Prepared> {
    let dir = spec.path(0)?;
    if !dir.is_dir() {
        return Err(Error::file(
            &dir,
            "is not a folder (give the folder of the IDX files)",
        ));
    }
    let (x, y) = load_idx_pair(
        find_idx(&dir, "train-images-idx3-ubyte")?,
        find_idx(&dir, "train-labels-idx1-ubyte")?,
    )?;
    let (xt, yt) = load_idx_pair(
        find_idx(&dir, "t10k-images-idx3-ubyte")?,
        find_idx(&dir, "t10k-labels-idx1-ubyte")?,
    )?;
    let split = Split::shuffled(x.shape()[0], xt.shape()[0], budget, &spec.text)?;
    let classes = y.iter().chain(&yt).copied().max().unwrap_or(0).max(0) as usize + 1;
    let yt_all = labels(&yt)?;
    let y_all = labels(&y)?;
    let (rows, cols) = (x.shape()[1], x.shape()[2]);
    let description = format!(
        "IDX images read row by row: {rows} steps of {cols} pixels in [0, 1], {classes} classes; {}",
        split.counts("samples")
    );
    Prepared::assemble(
        spec,
        description,
        Task::Classes(classes),
        (&x, &y_all),
        (&xt, &yt_all),
        &split,
    )
}

fn load_ts(spec: &DataSpec, budget: &Budget) -> Result<Prepared> {
    let train = read_ts(spec.path(0)?)?;
    let test = read_ts(spec.path(1)?)?;
    if train.class_labels.is_empty() || train.class_labels != test.class_labels {
        return Err(bad(format!(
            "'{}': both files need the same @classLabel list (train {:?}, test {:?})",
            spec.text, train.class_labels, test.class_labels
        )));
    }
    let (d, dt) = (train.x.shape()[2], test.x.shape()[2]);
    if d != dt {
        return Err(bad(format!(
            "'{}': train has {d} dimensions, test {dt}",
            spec.text
        )));
    }
    let t = train.x.shape()[1].max(test.x.shape()[1]);
    // Missing values (`?` or NaN; read_ts refuses infinities) would poison
    // training: they are read as 0, like the padding, and the description
    // says how many there were.
    let mut missing = 0usize;
    let mut clean = |x: Tensor| -> Result<Tensor> {
        let shape = x.shape().to_vec();
        let mut v = x.into_vec();
        for e in v.iter_mut().filter(|e| e.is_nan()) {
            *e = 0.0;
            missing += 1;
        }
        Tensor::from_vec(&shape, v)
    };
    let x = clean(pad_time(&train.x, t)?)?;
    let xt = clean(pad_time(&test.x, t)?)?;
    let missing = match missing {
        0 => String::new(),
        m => format!(", {m} missing values read as 0"),
    };
    let split = Split::shuffled(x.shape()[0], xt.shape()[0], budget, &spec.text)?;
    let classes = train.class_labels.len();
    let y = labels(&train.labels)?;
    let yt = labels(&test.labels)?;
    let lo = train
        .lengths
        .iter()
        .chain(&test.lengths)
        .min()
        .copied()
        .unwrap_or(0);
    let description = format!(
        "{}: {d} dimensions, lengths {lo} to {t} (zero-padded to {t} and masked{missing}), {classes} classes; {}",
        train.problem_name.clone().unwrap_or_else(|| "UCR/UEA .ts".into()),
        split.counts("samples")
    );
    let sets = Prepared::assemble(
        spec,
        description,
        Task::Classes(classes),
        (&x, &y),
        (&xt, &yt),
        &split,
    )?;
    Ok(Prepared {
        masked: true,
        ..sets
    })
}

fn column(s: &str) -> Column {
    match s.parse::<usize>() {
        Ok(i) => Column::Index(i),
        Err(_) => Column::Name(s.to_string()),
    }
}

/// Reads a CSV, leaving out the `skip` columns (which may hold text, e.g. dates).
fn read_csv_skipping(path: &Path, skip: &[String]) -> Result<crate::datasets::CsvTable> {
    if skip.is_empty() {
        return read_csv(path, &CsvOptions::default());
    }
    // A skip list implies a header (the columns are named there).
    let opts = CsvOptions {
        header: Some(true),
        ..CsvOptions::default()
    };
    let skip: Vec<Column> = skip.iter().map(|s| column(s)).collect();
    crate::datasets::read_csv_skipping(path, &opts, &skip)
}

fn load_csv(spec: &DataSpec, budget: &Budget) -> Result<Prepared> {
    let path = spec.path(0)?;
    let skip: Vec<String> = spec
        .options
        .get("skip")
        .map(|s| s.split('|').map(str::to_string).collect())
        .unwrap_or_default();
    let table = read_csv_skipping(&path, &skip)?;
    let target = column(
        spec.options
            .get("target")
            .ok_or_else(|| bad(format!("'{}': the csv loader needs target=COL", spec.text)))?,
    );
    let target_idx = table.column_index(&target)?;
    let lookback = spec.usize_opt("lookback", None)?;
    let horizon = spec.usize_opt("horizon", Some(1))?;
    if lookback == 0 || horizon == 0 || lookback.saturating_add(horizon) > 1 << 20 {
        return Err(bad(format!(
            "'{}': lookback and horizon must be between 1 and 2^20",
            spec.text
        )));
    }
    let test_fraction: f64 = match spec.options.get("test") {
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|f| *f > 0.0 && *f < 1.0)
            .ok_or_else(|| {
                bad(format!(
                    "'{}': test={v} is not a fraction in (0, 1)",
                    spec.text
                ))
            })?,
        None => 0.2,
    };
    let kind = match spec.options.get("scale").map(String::as_str) {
        None | Some("standard") => ScaleKind::Standard,
        Some("minmax") => ScaleKind::MinMax,
        Some(v) => {
            return Err(bad(format!(
                "'{}': scale={v}; use standard or minmax",
                spec.text
            )))
        }
    };
    let features: Vec<Column> = match spec.options.get("features").map(String::as_str) {
        None => (0..table.cols()).map(Column::Index).collect(),
        Some(list) => list.split('|').map(column).collect(),
    };
    let names = table.column_names(&features)?;
    let feats = table.select(&features)?;
    let t = table.rows();
    // Windows whose target lies in the last `test_fraction` of the rows are test.
    let n = t
        .checked_sub(lookback + horizon - 1)
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            bad(format!(
                "'{}': {t} rows are too few for lookback {lookback} + horizon {horizon}",
                spec.text
            ))
        })?;
    let n_test = ((n as f64 * test_fraction).round() as usize).max(1);
    let n_trainval = n.saturating_sub(n_test);
    let n_val = ((n_trainval as f64 * budget.validation).round() as usize).max(1);
    if n_trainval <= n_val {
        return Err(bad(format!(
            "'{}': {n} windows are too few for a training, validation and test part",
            spec.text
        )));
    }
    // The scaler sees only the rows the training windows cover.
    let train_rows = (n_trainval - n_val) + lookback + horizon - 1;
    let scaler = Scaler::fit(kind, &feats, Some(train_rows), names.clone())?;
    let scaled = scaler.transform(&feats)?;
    let tscaler = Scaler::fit(
        kind,
        &table.select(std::slice::from_ref(&target))?,
        Some(train_rows),
        vec![table.names()[target_idx].clone()],
    )?;
    let y_scaled = tscaler.transform_column(0, &Tensor::from_vec(&[t], table.column(&target)?)?)?;
    let (x, y) = window(&scaled, y_scaled.data(), lookback, horizon)?;
    let mut split = Split {
        train: (0..n_trainval - n_val).collect(),
        val: (n_trainval - n_val..n_trainval).collect(),
        test: (n_trainval..n).collect(),
    };
    if let Some(m) = budget.max_samples {
        // Keep the most recent training windows.
        let drop = split.train.len().saturating_sub(m);
        split.train.drain(..drop);
    }
    let description = format!(
        "{} rows of {} ({}), target '{}', windows of {lookback} steps predicting the next {horizon}; \
         {kind:?} scaling fitted on the training rows; {} in time order",
        t,
        path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        names.join(", "),
        table.names()[target_idx],
        split.counts("windows")
    );
    let task = Task::Regression {
        horizon,
        scale: tscaler.scale[0],
    };
    Prepared::assemble(spec, description, task, (&x, &y), (&x, &y), &split)
}

fn load_tokens(spec: &DataSpec, budget: &Budget) -> Result<Prepared> {
    let path = spec.path(0)?;
    let num_words = spec.usize_opt("num_words", Some(10_000))?;
    let maxlen = spec.usize_opt("maxlen", Some(200))?;
    let width = spec.usize_opt("embedding", Some(32))?;
    if num_words < 4 || maxlen == 0 || width == 0 {
        return Err(bad(format!(
            "'{}': num_words must be at least 4, maxlen and embedding at least 1",
            spec.text
        )));
    }
    let opts = LoadOptions {
        num_words: Some(num_words),
        seed: 113 ^ budget.seed,
        ..LoadOptions::default()
    };
    let reuters = spec.loader == "reuters";
    let (train, test) = if reuters {
        load_reuters(&path, &opts)?
    } else {
        load_imdb(&path, &opts)?
    };
    let x = pad_sequences(&train.x, Some(maxlen), Padding::Pre, Padding::Pre, 0.0);
    let xt = pad_sequences(&test.x, Some(maxlen), Padding::Pre, Padding::Pre, 0.0);
    let split = Split::shuffled(train.x.len(), test.x.len(), budget, &spec.text)?;
    let top = train
        .y
        .iter()
        .chain(&test.y)
        .copied()
        .max()
        .unwrap_or(0)
        .max(0) as usize
        + 1;
    if train.y.iter().chain(&test.y).any(|&v| v < 0) {
        return Err(Error::file(&path, "has negative labels"));
    }
    let task = if reuters {
        // Keras's Reuters has 46 topics; a file may not use them all.
        Task::Classes(top.max(46))
    } else if top <= 2 {
        Task::Binary
    } else {
        Task::Classes(top)
    };
    let y = labels(&train.y)?;
    let yt = labels(&test.y)?;
    let description = format!(
        "{}: the {num_words} most frequent words, padded/truncated to {maxlen} tokens, \
         Embedding({num_words}, {width}); {}",
        if reuters {
            "Reuters newswire topics"
        } else {
            "IMDB review sentiment"
        },
        split.counts("samples")
    );
    let sets = Prepared::assemble(spec, description, task, (&x, &y), (&xt, &yt), &split)?;
    Ok(Prepared {
        embedding: Some((num_words, width)),
        ..sets
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(v: &str) -> Result<Vec<DataSpec>> {
        parse_data_specs(&[v.to_string()])
    }

    /// The hold-out is a disjoint, seeded shuffle of the training samples,
    /// the test set is capped by the budget, and `assemble` takes exactly
    /// those rows (training/validation from one pair, test from the other).
    #[test]
    fn split_and_assemble_take_the_chosen_rows() {
        let budget = Budget {
            max_samples: Some(10),
            validation: 0.2,
            seed: 5,
        };
        let split = Split::shuffled(30, 25, &budget, "t").unwrap();
        assert_eq!(
            (split.train.len(), split.val.len(), split.test.len()),
            (8, 2, 10)
        );
        let mut seen: Vec<usize> = split.train.iter().chain(&split.val).copied().collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 10, "training and validation overlap");
        assert!(split.test.windows(2).all(|w| w[0] < w[1]) && split.test[9] < 25);
        assert_eq!(
            split.counts("rows"),
            "8 training, 2 validation, 10 test rows"
        );
        let again = Split::shuffled(30, 25, &budget, "t").unwrap();
        assert_eq!((&again.train, &again.test), (&split.train, &split.test));

        let col = |n: usize, base: f32| {
            Tensor::from_vec(&[n, 1], (0..n).map(|i| base + i as f32).collect()).unwrap()
        };
        let (x, y, xt, yt) = (
            col(30, 0.0),
            col(30, 100.0),
            col(25, 1000.0),
            col(25, 2000.0),
        );
        let spec = parse_data_specs(&["csv:a.csv,target=0".to_string()])
            .unwrap()
            .remove(0);
        let p = Prepared::assemble(
            &spec,
            "d".into(),
            Task::Binary,
            (&x, &y),
            (&xt, &yt),
            &split,
        )
        .unwrap();
        let rows =
            |idx: &[usize], base: f32| idx.iter().map(|&i| base + i as f32).collect::<Vec<_>>();
        assert_eq!(p.x_train.data(), rows(&split.train, 0.0));
        assert_eq!(p.y_val.data(), rows(&split.val, 100.0));
        assert_eq!(p.x_test.data(), rows(&split.test, 1000.0));
        assert_eq!(p.y_test.data(), rows(&split.test, 2000.0));
        assert!(p.embedding.is_none() && !p.masked);

        let too_few = Budget {
            max_samples: Some(1),
            ..budget
        };
        assert!(Split::shuffled(30, 25, &too_few, "t").is_err());
    }

    #[test]
    fn splits_specs_on_loader_prefixes() {
        let s = specs("ts:a_TRAIN.ts,b_TEST.ts,csv:x.csv,target=y,lookback=4").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].args, vec!["a_TRAIN.ts", "b_TEST.ts"]);
        assert_eq!(s[0].short_name(), "ts-a");
        assert_eq!(s[1].options["target"], "y");
        assert_eq!(s[1].text, "csv:x.csv,target=y,lookback=4");
    }

    #[test]
    fn rejects_bad_specs() {
        for (v, want) in [
            ("foo:bar", "unknown loader 'foo'"),
            ("x.csv", "does not start with a loader"),
            ("ts:a.ts", "takes 2"),
            ("fashion-mnist:d,lookback=3", "unknown option 'lookback'"),
        ] {
            let e = specs(v).unwrap_err().to_string();
            assert!(e.contains(want), "{v}: {e}");
        }
    }
}
