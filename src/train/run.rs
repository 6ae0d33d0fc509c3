//! What defines a training run, recorded in every checkpoint so that
//! `--resume` continues only the run the checkpoint belongs to.
//!
//! A run is its spec (the checkpoint's own `model.toml`), its data files (size
//! and hash), its seed and the settings that change the arithmetic of a step
//! (loss, optimizer, learning rate, batch size, clipping, ...). The number of
//! epochs is not part of it: resuming with more epochs trains longer, as
//! Keras's `initial_epoch` does. Each fresh start also gets an id, written to
//! `DIR/run.json` before training, so that a checkpoint left by an earlier run
//! is not mistaken for the latest one's.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::io::atomic::write_atomic;
use crate::io::regular::{is_present, read_regular_text};
use crate::{Error, Result};

/// `DIR/run.json`: the identity of the latest run started in DIR.
pub const RUN_FILE: &str = "run.json";

/// The identity of a training run (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RunIdentity {
    /// Unique per fresh start: start time in nanoseconds and process id.
    pub id: String,
    /// The data files by role (`--x`, `--y`, `--text`): `"<bytes> bytes, fnv1a64 <hex>"`.
    pub data: BTreeMap<String, String>,
    /// Settings that change the arithmetic, by flag name (`--seed`, `--lr`, ...).
    pub settings: BTreeMap<String, String>,
}

impl RunIdentity {
    /// A new identity with a fresh id.
    pub fn new(data: BTreeMap<String, String>, settings: BTreeMap<String, String>) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        RunIdentity {
            id: format!("{nanos}-{}", std::process::id()),
            data,
            settings,
        }
    }

    /// What differs between the run `self` recorded and the run `now` asks
    /// for, one phrase each (empty when they agree); ids are not compared.
    pub fn differences(&self, now: &RunIdentity) -> Vec<String> {
        let mut out = Vec::new();
        for (what, before, after) in [
            ("data file", &self.data, &now.data),
            ("setting", &self.settings, &now.settings),
        ] {
            let keys: std::collections::BTreeSet<&String> =
                before.keys().chain(after.keys()).collect();
            for k in keys {
                match (before.get(k), after.get(k)) {
                    (Some(b), Some(a)) if a == b => {}
                    (b, a) => out.push(format!(
                        "{what} {k}: {} in the checkpoint, {} now",
                        b.map_or("not set", String::as_str),
                        a.map_or("not set", String::as_str)
                    )),
                }
            }
        }
        out
    }
}

/// Writes `dir/run.json` for a run about to start.
pub fn write_run_file(dir: &Path, run: &RunIdentity) -> Result<()> {
    let path = dir.join(RUN_FILE);
    let text = serde_json::to_string_pretty(run).map_err(|e| Error::file(&path, e.to_string()))?;
    write_atomic(&path, text.as_bytes())
}

/// Reads `dir/run.json`, `None` when absent (directories of older versions).
pub fn read_run_file(dir: &Path) -> Result<Option<RunIdentity>> {
    let path = dir.join(RUN_FILE);
    if !is_present(&path) {
        return Ok(None);
    }
    let text = read_regular_text(&path, 1 << 20)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::file(&path, format!("not a valid run record: {e}")))
}

/// The differences between two spec texts (TOML), as `path: old in the
/// checkpoint, new now` phrases; at most `limit` of them.
pub fn spec_differences(checkpoint: &str, now: &str, limit: usize) -> Vec<String> {
    let (Ok(a), Ok(b)) = (
        checkpoint.parse::<toml::Value>(),
        now.parse::<toml::Value>(),
    ) else {
        return if checkpoint == now {
            Vec::new()
        } else {
            vec!["the spec text differs".to_string()]
        };
    };
    let mut out = Vec::new();
    diff_values("", &a, &b, &mut out, limit);
    out
}

fn short(v: Option<&toml::Value>) -> String {
    match v {
        None => "absent".to_string(),
        Some(toml::Value::Table(_)) => "a table".to_string(),
        Some(toml::Value::Array(a)) if a.iter().any(|x| x.is_table()) => {
            format!("{} entries", a.len())
        }
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 40 {
                format!("{}...", s.chars().take(40).collect::<String>())
            } else {
                s
            }
        }
    }
}

fn diff_values(path: &str, a: &toml::Value, b: &toml::Value, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit || a == b {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (toml::Value::Table(ta), toml::Value::Table(tb)) => {
            let keys: std::collections::BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
            for k in keys {
                match (ta.get(k), tb.get(k)) {
                    (Some(x), Some(y)) => diff_values(&join(k), x, y, out, limit),
                    (x, y) => {
                        if out.len() < limit {
                            out.push(format!(
                                "{}: {} in the checkpoint, {} now",
                                join(k),
                                short(x),
                                short(y)
                            ));
                        }
                    }
                }
            }
        }
        (toml::Value::Array(xa), toml::Value::Array(xb))
            if xa.len() == xb.len() && xa.iter().any(|x| x.is_table()) =>
        {
            for (i, (x, y)) in xa.iter().zip(xb).enumerate() {
                diff_values(&format!("{path}[{i}]"), x, y, out, limit);
            }
        }
        _ => out.push(format!(
            "{path}: {} in the checkpoint, {} now",
            short(Some(a)),
            short(Some(b))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "[input]\nshape = [5, 3]\n\
        [[layer]]\ntype = \"lstm\"\nunits = 16\n\
        [[layer]]\ntype = \"dense\"\nunits = 1\n";

    #[test]
    fn spec_differences_name_the_path_and_both_values() {
        assert!(spec_differences(SPEC, SPEC, 5).is_empty());
        // Formatting alone is no difference.
        let spaced = SPEC.replace("units = 16", "units   =   16");
        assert!(spec_differences(SPEC, &spaced, 5).is_empty());
        let wider = SPEC.replace("units = 16", "units = 32");
        assert_eq!(
            spec_differences(SPEC, &wider, 5),
            ["layer[0].units: 16 in the checkpoint, 32 now"]
        );
        let act = SPEC.replace("units = 1\n", "units = 1\nactivation = \"sigmoid\"\n");
        assert_eq!(
            spec_differences(SPEC, &act, 5),
            ["layer[1].activation: absent in the checkpoint, \"sigmoid\" now"]
        );
        let more = format!("{SPEC}[[layer]]\ntype = \"dense\"\nunits = 2\n");
        assert_eq!(
            spec_differences(SPEC, &more, 5),
            ["layer: 2 entries in the checkpoint, 3 entries now"]
        );
    }

    #[test]
    fn identities_differ_by_data_and_settings_not_id() {
        let data = |h: &str| BTreeMap::from([("--x".to_string(), h.to_string())]);
        let settings = |lr: &str| BTreeMap::from([("--lr".to_string(), lr.to_string())]);
        let a = RunIdentity::new(data("10 bytes"), settings("0.001"));
        let mut b = RunIdentity::new(data("10 bytes"), settings("0.001"));
        b.id = "other".into();
        assert!(a.differences(&b).is_empty());
        let c = RunIdentity::new(data("12 bytes"), settings("0.01"));
        assert_eq!(
            a.differences(&c),
            [
                "data file --x: 10 bytes in the checkpoint, 12 bytes now",
                "setting --lr: 0.001 in the checkpoint, 0.01 now"
            ]
        );
    }
}
