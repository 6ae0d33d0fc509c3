//! The model spec: a TOML (or JSON) file describing a Sequential model with
//! Keras's layer and argument names.
//!
//! ```toml
//! name = "emojify_v2"
//! [input]
//! shape = [10]
//! dtype = "int32"
//!
//! [[layer]]
//! type = "embedding"
//! input_dim = 400001
//! output_dim = 50
//!
//! [[layer]]
//! type = "bidirectional"
//! merge_mode = "concat"
//! [layer.layer]
//! type = "lstm"
//! units = 64
//! ```

use super::sequential::{InputSpec, Sequential};
use crate::init::Initializer;
use crate::kernels::act::Activation;
use crate::layers::{
    ActivationLayer, Dense, DenseConfig, Dropout, DropoutConfig, Embedding, EmbeddingConfig, Layer,
    Masking, TimeDistributed,
};
use crate::recurrent::{Bidirectional, CellConfig, CellKind, MergeMode, RnnBuilder};
use crate::rng::Rng;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Layer types a spec may name.
pub const LAYER_TYPES: &[&str] = &[
    "embedding",
    "lstm",
    "gru",
    "simple_rnn",
    "cudnn_lstm",
    "cudnn_gru",
    "rnn",
    "bidirectional",
    "dense",
    "dropout",
    "activation",
    "time_distributed",
    "masking",
    "conv_lstm2d",
    "batch_normalization",
    "conv3d",
];

type Table = BTreeMap<String, serde_json::Value>;

/// Where a spec came from, for error messages that name the file and line.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// Best-effort line of `key` inside the `index`-th `[[layer]]` block (TOML only).
    fn line_of(&self, index: usize, key: &str) -> Option<usize> {
        let mut seen = 0usize;
        let mut inside = false;
        for (n, line) in self.text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with("[[layer]]") {
                inside = seen == index;
                seen += 1;
                continue;
            }
            if t.starts_with("[[") && !t.starts_with("[[layer") {
                inside = false;
            }
            if inside && (t.starts_with(&format!("{key} ")) || t.starts_with(&format!("{key}="))) {
                return Some(n + 1);
            }
        }
        None
    }

    fn err(&self, index: usize, key: Option<&str>, msg: String) -> Error {
        let at = key
            .and_then(|k| self.line_of(index, k))
            .map_or(format!("layer {}", index + 1), |l| {
                format!("line {l} (layer {})", index + 1)
            });
        Error::file(self.path, format!("{at}: {msg}"))
    }
}

/// Reads one layer table, remembering which arguments were used.
struct Args<'a> {
    table: &'a Table,
    kind: String,
    used: Vec<&'static str>,
}

impl<'a> Args<'a> {
    fn new(table: &'a Table) -> std::result::Result<Self, String> {
        let kind = match table.get("type") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => return Err(format!("`type` must be a string, got {v}")),
            None => {
                return Err(format!(
                    "missing `type`; known types: {}",
                    LAYER_TYPES.join(", ")
                ))
            }
        };
        Ok(Args {
            table,
            kind,
            used: vec!["type", "name"],
        })
    }

    fn get(&mut self, key: &'static str) -> Option<&'a serde_json::Value> {
        self.used.push(key);
        self.table.get(key)
    }

    fn usize(&mut self, key: &'static str) -> std::result::Result<Option<usize>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| format!("`{key}` must be a non-negative integer, got {v}")),
        }
    }

    fn required_usize(&mut self, key: &'static str) -> std::result::Result<usize, String> {
        self.usize(key)?
            .ok_or_else(|| format!("{} layer needs `{key}`", self.kind))
    }

    fn f32(&mut self, key: &'static str, default: f32) -> std::result::Result<f32, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|n| n as f32)
                .ok_or_else(|| format!("`{key}` must be a number, got {v}")),
        }
    }

    fn bool(&mut self, key: &'static str, default: bool) -> std::result::Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("`{key}` must be true or false, got {v}")),
        }
    }

    fn str(&mut self, key: &'static str) -> std::result::Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be a string, got {v}")),
        }
    }

    fn activation(
        &mut self,
        key: &'static str,
        default: Activation,
    ) -> std::result::Result<Activation, String> {
        self.str(key)?.map_or(Ok(default), |s| {
            Activation::parse(s).map_err(|e| e.to_string())
        })
    }

    fn initializer(
        &mut self,
        key: &'static str,
    ) -> std::result::Result<Option<Initializer>, String> {
        self.str(key)?
            .map(|s| Initializer::parse(s).map_err(|e| e.to_string()))
            .transpose()
    }

    fn table(&mut self, key: &'static str) -> std::result::Result<Table, String> {
        match self.get(key) {
            Some(serde_json::Value::Object(m)) => {
                Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            Some(v) => Err(format!("`{key}` must be a table, got {v}")),
            None => Err(format!(
                "{} layer needs a nested `[layer.{key}]` table",
                self.kind
            )),
        }
    }

    /// The first argument that no reader asked for.
    fn unknown(&self) -> Option<&'a str> {
        self.table
            .keys()
            .find(|k| !self.used.contains(&k.as_str()))
            .map(String::as_str)
    }
}

/// A parsed spec: the model and the file's text (kept for the model directory).
#[derive(Debug)]
pub struct ModelSpec {
    /// The model, freshly initialised.
    pub model: Sequential,
    /// The spec text exactly as read.
    pub text: String,
    /// Whether the text is JSON (else TOML).
    pub json: bool,
}

/// Reads a spec file (TOML, or JSON when the name ends in `.json`) and builds the
/// model with weights drawn from `seed`.
pub fn load_spec(path: &Path, seed: u64) -> Result<ModelSpec> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let json = path.extension().is_some_and(|e| e == "json");
    let model = parse_spec(path, &text, json, seed)?;
    Ok(ModelSpec { model, text, json })
}

/// A TOML parse error on one line: `line L, column C: message` (the toml
/// crate's own display spans several lines with a source snippet).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("not valid TOML: line {line}, column {column}: {msg}")
        }
        None => format!("not valid TOML: {msg}"),
    }
}

/// The most parameters (weights, biases, embedding rows) a spec may ask for,
/// per layer and in total: 2^28, one GiB of f32 weights. A larger spec is an
/// error naming the layer, before anything is allocated.
pub const MAX_PARAMS: usize = 1 << 28;

/// Builds a model from spec text; `path` is used in messages only. At most
/// [`MAX_PARAMS`] parameters.
pub fn parse_spec(path: &Path, text: &str, json: bool, seed: u64) -> Result<Sequential> {
    parse_spec_with_limit(path, text, json, seed, MAX_PARAMS)
}

/// [`parse_spec`] with another parameter limit (per layer and in total), for
/// callers that must bound memory and time more tightly (e.g. fuzzing).
pub fn parse_spec_with_limit(
    path: &Path,
    text: &str,
    json: bool,
    seed: u64,
    max_params: usize,
) -> Result<Sequential> {
    let root: serde_json::Value = if json {
        serde_json::from_str(text)
            .map_err(|e| Error::file(path, format!("line {}: {e}", e.line())))?
    } else {
        let t: toml::Table =
            toml::from_str(text).map_err(|e| Error::file(path, toml_error(text, &e)))?;
        serde_json::to_value(t).map_err(|e| Error::file(path, e.to_string()))?
    };
    let src = Source { path, text };
    let root = root
        .as_object()
        .ok_or_else(|| Error::file(path, "the spec must be a table"))?;
    for k in root.keys() {
        if !["name", "input", "layer"].contains(&k.as_str()) {
            return Err(Error::file(
                path,
                format!("unknown top-level key `{k}`; known: name, input, layer"),
            ));
        }
    }
    let name = root
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("sequential");
    let input = root
        .get("input")
        .and_then(|v| v.as_object())
        .ok_or_else(|| Error::file(path, "missing [input] table with `shape` and `dtype`"))?;
    let shape: Vec<Option<usize>> = input
        .get("shape")
        .and_then(|v| v.as_array())
        .ok_or_else(|| {
            Error::file(
                path,
                "[input] needs `shape = [...]` (per sample, without the batch)",
            )
        })?
        .iter()
        .map(|d| match d {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) if s == "None" || s == "null" => Ok(None),
            v => v
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| Some(n as usize))
                .ok_or_else(|| {
                    Error::file(
                        path,
                        format!(
                            "[input] shape entries must be positive integers or \"None\", got {v}"
                        ),
                    )
                }),
        })
        .collect::<Result<_>>()?;
    let integer = match input
        .get("dtype")
        .and_then(|v| v.as_str())
        .unwrap_or("float32")
    {
        "int32" | "int64" | "int" => true,
        "float32" | "float" => false,
        other => {
            return Err(Error::file(
                path,
                format!("[input] dtype must be \"int32\" or \"float32\", got {other:?}"),
            ))
        }
    };
    let mut model = Sequential::new(name, InputSpec { shape, integer });
    let layers = match root.get("layer") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(_) => {
            return Err(Error::file(
                path,
                "`layer` must be an array of tables ([[layer]])",
            ))
        }
        None => return Err(Error::file(path, "the spec has no [[layer]] tables")),
    };
    let mut counters: HashMap<&'static str, usize> = HashMap::new();
    let mut rng = Rng::new(seed);
    // Parameters of the layers built so far, kept as a running sum: summing
    // the whole model after every layer made long specs quadratic.
    let mut total = 0usize;
    for (index, value) in layers.iter().enumerate() {
        let table: Table = value
            .as_object()
            .ok_or_else(|| src.err(index, None, "each layer must be a table".into()))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let prev = model.output_shape()?;
        let budget = Budget {
            max: max_params,
            used: total,
        };
        let layer = build_layer(&table, &prev, &mut counters, &mut rng, budget)
            .map_err(|(key, msg)| src.err(index, key.as_deref(), msg))?;
        total = total.saturating_add(layer.params().iter().map(|p| p.values.len()).sum());
        model
            .add(layer)
            .map_err(|e| src.err(index, None, e.to_string()))?;
        // The checks before building bound every layer; this one catches an
        // estimate that fell short.
        if total > max_params {
            return Err(src.err(
                index,
                None,
                format!(
                    "the model now has {total} parameters, more than the limit of {max_params}"
                ),
            ));
        }
    }
    Ok(model)
}

/// Error of a layer table: the key at fault (for the line number) and a message.
type LayerErr = (Option<String>, String);

fn at(key: &str, msg: impl Into<String>) -> LayerErr {
    (Some(key.to_string()), msg.into())
}

fn keyed<T>(key: &str, r: std::result::Result<T, String>) -> std::result::Result<T, LayerErr> {
    r.map_err(|m| at(key, m))
}

fn plain<T>(r: Result<T>) -> std::result::Result<T, LayerErr> {
    r.map_err(|e| (None, e.to_string()))
}

fn default_name(kind: &'static str, counters: &mut HashMap<&'static str, usize>) -> String {
    let n = counters.entry(kind).or_insert(0);
    *n += 1;
    format!("{kind}_{n}")
}

fn last_dim(shape: &[Option<usize>], kind: &str) -> std::result::Result<usize, LayerErr> {
    shape.last().copied().flatten().ok_or_else(|| {
        (
            None,
            format!(
                "{kind} needs a known feature size, but the incoming shape is {}",
                super::format_shape(shape)
            ),
        )
    })
}

fn static_kind(kind: &str) -> Option<&'static str> {
    LAYER_TYPES.iter().find(|&&k| k == kind).copied()
}

/// Builds the recurrent-layer builder of an lstm/gru/simple_rnn/cudnn_*/rnn
/// table, taking its parameters (`directions` times one direction's) from
/// `budget` before anything is allocated.
fn rnn_builder(
    a: &mut Args<'_>,
    input: usize,
    kind: &'static str,
    budget: &mut Budget,
    directions: usize,
) -> std::result::Result<RnnBuilder, LayerErr> {
    let cell_kind = match kind {
        "lstm" | "cudnn_lstm" => CellKind::Lstm,
        "gru" | "cudnn_gru" => CellKind::Gru,
        "simple_rnn" => CellKind::SimpleRnn,
        _ => return Err(at("type", format!("{kind} is not a recurrent layer"))),
    };
    let units = keyed("units", a.required_usize("units"))?;
    let gates = match cell_kind {
        CellKind::Lstm => 4,
        CellKind::Gru => 3,
        _ => 1,
    };
    // Kernel, recurrent kernel and (at most two) biases of every gate.
    budget.take(
        "units",
        &[
            directions,
            gates,
            units,
            input.saturating_add(units).saturating_add(2),
        ],
    )?;
    let mut c = CellConfig::new(cell_kind, input, units);
    c.activation = keyed("activation", a.activation("activation", Activation::Tanh))?;
    c.recurrent_activation = keyed(
        "recurrent_activation",
        a.activation("recurrent_activation", Activation::Sigmoid),
    )?;
    c.use_bias = keyed("use_bias", a.bool("use_bias", true))?;
    c.unit_forget_bias = keyed("unit_forget_bias", a.bool("unit_forget_bias", true))?;
    c.reset_after = keyed("reset_after", a.bool("reset_after", true))?;
    c.two_biases = keyed(
        "two_biases",
        a.bool("two_biases", kind.starts_with("cudnn")),
    )?;
    c.dropout = keyed("dropout", a.f32("dropout", 0.0))?;
    c.recurrent_dropout = keyed("recurrent_dropout", a.f32("recurrent_dropout", 0.0))?;
    if let Some(i) = keyed("kernel_initializer", a.initializer("kernel_initializer"))? {
        c.kernel_initializer = i;
    }
    if let Some(i) = keyed(
        "recurrent_initializer",
        a.initializer("recurrent_initializer"),
    )? {
        c.recurrent_initializer = i;
    }
    if let Some(i) = keyed("bias_initializer", a.initializer("bias_initializer"))? {
        c.bias_initializer = i;
    }
    plain(c.validate())?;
    let mut b = RnnBuilder {
        configs: vec![c],
        options: Default::default(),
        name: String::new(),
        seed: 0,
    };
    b.options.return_sequences = keyed("return_sequences", a.bool("return_sequences", false))?;
    b.options.go_backwards = keyed("go_backwards", a.bool("go_backwards", false))?;
    b.options.stateful = keyed("stateful", a.bool("stateful", false))?;
    Ok(b)
}

/// The parameters a model may still take: `max` in all, `used` by the layers
/// before the one being built. Every layer's count (or an upper bound of it)
/// is taken from its arguments before the layer allocates anything, so a spec
/// over the limit fails without the memory of the layers it did build.
#[derive(Debug, Clone, Copy)]
struct Budget {
    max: usize,
    used: usize,
}

impl Budget {
    /// Takes the product of `factors` parameters, or fails naming `key` when
    /// they do not fit.
    fn take(&mut self, key: &str, factors: &[usize]) -> std::result::Result<(), LayerErr> {
        let n = factors.iter().fold(1usize, |acc, &f| acc.saturating_mul(f));
        let after = self.used.saturating_add(n);
        if after > self.max {
            let over = if n == usize::MAX { "over " } else { "" };
            let msg = if self.used == 0 {
                format!(
                    "the layer would have {over}{n} parameters, more than the limit of {}",
                    self.max
                )
            } else {
                format!(
                    "the layer would have {over}{n} parameters; with the {} of the layers \
                     before it that is more than the limit of {}",
                    self.used, self.max
                )
            };
            return Err(at(key, msg));
        }
        self.used = after;
        Ok(())
    }
}

fn build_layer(
    table: &Table,
    prev: &[Option<usize>],
    counters: &mut HashMap<&'static str, usize>,
    rng: &mut Rng,
    mut budget: Budget,
) -> std::result::Result<Box<dyn Layer>, LayerErr> {
    let mut a = Args::new(table).map_err(|m| at("type", m))?;
    let kind = static_kind(&a.kind).ok_or_else(|| {
        at(
            "type",
            format!(
                "unknown layer type {:?}; known: {}",
                a.kind,
                LAYER_TYPES.join(", ")
            ),
        )
    })?;
    let explicit_name = keyed("name", a.str("name"))?.map(str::to_string);
    let default_kind = match kind {
        "cudnn_lstm" => "cu_dnnlstm",
        "cudnn_gru" => "cu_dnngru",
        "conv_lstm2d" => "conv_lst_m2d",
        k => k,
    };
    let name = explicit_name.unwrap_or_else(|| default_name(default_kind, counters));
    let seed = rng.next_u64();
    let layer: Box<dyn Layer> = match kind {
        "embedding" => {
            let input_dim = keyed("input_dim", a.required_usize("input_dim"))?;
            let output_dim = keyed("output_dim", a.required_usize("output_dim"))?;
            budget.take("input_dim", &[input_dim, output_dim])?;
            let mut cfg = EmbeddingConfig::new(input_dim, output_dim);
            cfg = cfg
                .mask_zero(keyed("mask_zero", a.bool("mask_zero", false))?)
                .trainable(keyed("trainable", a.bool("trainable", true))?);
            if let Some(i) = keyed(
                "embeddings_initializer",
                a.initializer("embeddings_initializer"),
            )? {
                cfg = cfg.embeddings_initializer(i);
            }
            Box::new(plain(Embedding::new(name, cfg, &mut Rng::new(seed)))?)
        }
        "lstm" | "gru" | "simple_rnn" | "cudnn_lstm" | "cudnn_gru" => {
            let input = last_dim(prev, kind)?;
            let trainable = keyed("trainable", a.bool("trainable", true))?;
            let mut layer = plain(
                rnn_builder(&mut a, input, kind, &mut budget, 1)?
                    .name(&name)
                    .seed(seed)
                    .build(),
            )?;
            if !trainable {
                layer
                    .params_mut()
                    .into_iter()
                    .for_each(|p| p.set_trainable(false));
            }
            Box::new(layer)
        }
        "rnn" => {
            let input = last_dim(prev, kind)?;
            let cells = match a.get("cells") {
                Some(serde_json::Value::Array(c)) if !c.is_empty() => c.clone(),
                _ => return Err(at("cells", "rnn layer needs `cells = [{ type = \"lstm\", units = 32 }, ...]` (StackedRNNCells)")),
            };
            let mut configs = Vec::new();
            let mut width = input;
            for cell in &cells {
                let t: Table = cell
                    .as_object()
                    .ok_or(at("cells", "each cell must be a table".to_string()))?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut ca = Args::new(&t).map_err(|m| at("cells", m))?;
                let ck = static_kind(&ca.kind).ok_or_else(|| {
                    at(
                        "cells",
                        format!(
                            "unknown cell type {:?}; known: lstm, gru, simple_rnn",
                            ca.kind
                        ),
                    )
                })?;
                let b = rnn_builder(&mut ca, width, ck, &mut budget, 1)
                    .map_err(|(_, m)| at("cells", m))?;
                if let Some(k) = ca.unknown() {
                    return Err(at(
                        "cells",
                        format!("unknown argument `{k}` for a {ck} cell"),
                    ));
                }
                width = b.configs[0].units;
                configs.extend(b.configs);
            }
            let mut b = crate::recurrent::StackedRnnCells::new(configs)
                .name(&name)
                .seed(seed);
            b.options.return_sequences =
                keyed("return_sequences", a.bool("return_sequences", false))?;
            b.options.go_backwards = keyed("go_backwards", a.bool("go_backwards", false))?;
            b.options.stateful = keyed("stateful", a.bool("stateful", false))?;
            Box::new(plain(b.build())?)
        }
        "bidirectional" => {
            let merge = plain(MergeMode::parse(
                keyed("merge_mode", a.str("merge_mode"))?.unwrap_or("concat"),
            ))?;
            if merge == MergeMode::None {
                return Err(at("merge_mode", "merge_mode \"none\" gives two outputs, which a Sequential model cannot pass on"));
            }
            let inner = keyed("layer", a.table("layer"))?;
            let mut ia = Args::new(&inner).map_err(|m| at("layer", m))?;
            let ik = static_kind(&ia.kind)
                .ok_or_else(|| at("layer", format!("unknown wrapped layer type {:?}", ia.kind)))?;
            let input = last_dim(prev, kind)?;
            let inner_name = keyed("layer", ia.str("name"))?
                .map(str::to_string)
                .unwrap_or_else(|| default_name(ik, counters));
            let b =
                rnn_builder(&mut ia, input, ik, &mut budget, 2).map_err(|(_, m)| at("layer", m))?;
            if let Some(k) = ia.unknown() {
                return Err(at(
                    "layer",
                    format!("unknown argument `{k}` for the wrapped {ik} layer"),
                ));
            }
            Box::new(plain(Bidirectional::named(
                &name,
                b.name(&inner_name).seed(seed),
                merge,
            ))?)
        }
        "dense" => {
            let input = last_dim(prev, kind)?;
            if a.table.get("activation").and_then(|v| v.as_str()) == Some("softmax") {
                return Err(at(
                    "activation",
                    "a softmax Dense is written as a dense layer followed by a layer with \
                     type = \"activation\" and activation = \"softmax\" (training then fuses \
                     the softmax into the cross-entropy loss, as Keras does)",
                ));
            }
            let units = keyed("units", a.required_usize("units"))?;
            budget.take("units", &[input.saturating_add(1), units])?;
            let mut cfg = DenseConfig::new(units)
                .activation(keyed(
                    "activation",
                    a.activation("activation", Activation::Linear),
                )?)
                .use_bias(keyed("use_bias", a.bool("use_bias", true))?);
            if let Some(i) = keyed("kernel_initializer", a.initializer("kernel_initializer"))? {
                cfg = cfg.kernel_initializer(i);
            }
            if let Some(i) = keyed("bias_initializer", a.initializer("bias_initializer"))? {
                cfg = cfg.bias_initializer(i);
            }
            Box::new(plain(Dense::new(name, input, cfg, &mut Rng::new(seed)))?)
        }
        "dropout" => {
            let rate = keyed("rate", a.f32("rate", f32::NAN))?;
            if rate.is_nan() {
                return Err(at("rate", "dropout layer needs `rate`"));
            }
            Box::new(plain(Dropout::new(
                name,
                DropoutConfig::new(rate).seed(seed),
                &mut Rng::new(seed),
            ))?)
        }
        "activation" => {
            let act = keyed("activation", a.str("activation"))?.ok_or(at(
                "activation",
                "activation layer needs `activation`".to_string(),
            ))?;
            Box::new(plain(ActivationLayer::from_name(name, act))?)
        }
        "masking" => Box::new(Masking::new(
            name,
            keyed("mask_value", a.f32("mask_value", 0.0))?,
        )),
        "time_distributed" => {
            let inner = keyed("layer", a.table("layer"))?;
            // The wrapped layer sees one step: drop the time axis.
            let mut step_shape: Vec<Option<usize>> = prev.to_vec();
            if step_shape.len() >= 3 {
                step_shape.remove(1);
            }
            let inner_layer = build_layer(&inner, &step_shape, counters, rng, budget)
                .map_err(|(_, m)| at("layer", m))?;
            Box::new(TimeDistributed::new(name, inner_layer))
        }
        "conv_lstm2d" => {
            use crate::conv::{kernel_size_arg, padding_arg, ConvLstm2d, ConvLstm2dConfig};
            let channels = last_dim(prev, kind)?;
            let k = keyed("kernel_size", kernel_size_arg(a.get("kernel_size"), 2, 3))?;
            let filters = keyed("filters", a.required_usize("filters"))?;
            let fan_in = channels.saturating_add(filters).saturating_add(1);
            budget.take("filters", &[4, filters, k[0], k[1], fan_in])?;
            let mut cfg = ConvLstm2dConfig::new(filters, (k[0], k[1]))
                .padding(keyed("padding", a.str("padding").and_then(padding_arg))?)
                .return_sequences(keyed(
                    "return_sequences",
                    a.bool("return_sequences", false),
                )?)
                .go_backwards(keyed("go_backwards", a.bool("go_backwards", false))?)
                .activation(keyed(
                    "activation",
                    a.activation("activation", Activation::Tanh),
                )?)
                .recurrent_activation(keyed(
                    "recurrent_activation",
                    a.activation("recurrent_activation", Activation::Sigmoid),
                )?)
                .unit_forget_bias(keyed("unit_forget_bias", a.bool("unit_forget_bias", true))?)
                .dropout(
                    keyed("dropout", a.f32("dropout", 0.0))?,
                    keyed("recurrent_dropout", a.f32("recurrent_dropout", 0.0))?,
                )
                .seed(seed);
            if let Some(i) = keyed("kernel_initializer", a.initializer("kernel_initializer"))? {
                cfg.kernel_initializer = i;
            }
            if let Some(i) = keyed(
                "recurrent_initializer",
                a.initializer("recurrent_initializer"),
            )? {
                cfg.recurrent_initializer = i;
            }
            if let Some(i) = keyed("bias_initializer", a.initializer("bias_initializer"))? {
                cfg.bias_initializer = i;
            }
            Box::new(plain(ConvLstm2d::new(
                name,
                channels,
                cfg,
                &mut Rng::new(seed),
            ))?)
        }
        "batch_normalization" => {
            use crate::conv::{BatchNormConfig, BatchNormalization};
            let channels = last_dim(prev, kind)?;
            budget.take("type", &[4, channels])?;
            let d = BatchNormConfig::default();
            let cfg = BatchNormConfig {
                momentum: keyed("momentum", a.f32("momentum", d.momentum))?,
                epsilon: keyed("epsilon", a.f32("epsilon", d.epsilon))?,
            };
            Box::new(plain(BatchNormalization::new(name, channels, cfg))?)
        }
        "conv3d" => {
            use crate::conv::{kernel_size_arg, padding_arg, Conv3d, Conv3dConfig};
            let channels = last_dim(prev, kind)?;
            let k = keyed("kernel_size", kernel_size_arg(a.get("kernel_size"), 3, 3))?;
            let filters = keyed("filters", a.required_usize("filters"))?;
            let fan_in = channels.saturating_add(1);
            budget.take("filters", &[filters, k[0], k[1], k[2], fan_in])?;
            let mut cfg = Conv3dConfig::new(filters, (k[0], k[1], k[2]))
                .padding(keyed("padding", a.str("padding").and_then(padding_arg))?)
                .activation(keyed(
                    "activation",
                    a.activation("activation", Activation::Linear),
                )?);
            if let Some(i) = keyed("kernel_initializer", a.initializer("kernel_initializer"))? {
                cfg.kernel_initializer = i;
            }
            if let Some(i) = keyed("bias_initializer", a.initializer("bias_initializer"))? {
                cfg.bias_initializer = i;
            }
            Box::new(plain(Conv3d::new(
                name,
                channels,
                cfg,
                &mut Rng::new(seed),
            ))?)
        }
        _ => return Err(at("type", format!("unknown layer type {kind:?}"))),
    };
    if let Some(k) = a.unknown() {
        let known: Vec<&str> = a.used.iter().copied().filter(|k| *k != "type").collect();
        return Err(at(
            k,
            format!(
                "unknown argument `{k}` for a {kind} layer; known: {}",
                known.join(", ")
            ),
        ));
    }
    Ok(layer)
}

/// The path of the spec file inside a model directory.
pub fn spec_path(dir: &Path) -> PathBuf {
    dir.join("model.toml")
}

/// The spec text as TOML, for `model.toml` (JSON specs are converted); `path`
/// names the source in errors.
pub fn spec_as_toml(text: &str, json: bool, path: &Path) -> Result<String> {
    if !json {
        return Ok(text.to_string());
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::file(path, e.to_string()))?;
    toml::to_string_pretty(&value)
        .map_err(|e| Error::file(path, format!("cannot be written as model.toml: {e}")))
}
