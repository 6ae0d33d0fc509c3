//! The spec argument of `Sequential.from_spec` and `CharLM.train`: a dict, a
//! TOML or JSON string, or a path to a .toml/.json file.

use std::path::{Path, PathBuf};

use gated::model::spec::{parse_spec, spec_as_toml};
use gated::model::Sequential;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::errors;

/// Spec text, whether it is JSON, and the name used in messages.
pub struct SpecText {
    pub text: String,
    pub json: bool,
    pub label: PathBuf,
}

/// A one-line string without `=`, `[` or `{` cannot be a spec: it is a path.
fn looks_like_spec(s: &str) -> bool {
    let t = s.trim_start();
    s.contains('\n') || s.contains('=') || t.starts_with('{') || t.starts_with('[')
}

impl SpecText {
    pub fn from_py(spec: &Bound<'_, PyAny>) -> PyResult<SpecText> {
        let py = spec.py();
        if spec.cast::<PyDict>().is_ok() {
            let text: String = py
                .import("json")?
                .call_method1("dumps", (spec,))?
                .extract()?;
            return Ok(SpecText {
                text,
                json: true,
                label: PathBuf::from("<spec dict>"),
            });
        }
        if let Ok(s) = spec.cast::<PyString>() {
            let s: String = s.extract()?;
            if looks_like_spec(&s) {
                return Ok(SpecText {
                    json: s.trim_start().starts_with('{'),
                    text: s,
                    label: PathBuf::from("<spec>"),
                });
            }
        }
        let path: PathBuf = spec.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(
                "spec must be a dict, a TOML or JSON string, or a path to a .toml/.json file",
            )
        })?;
        let text =
            std::fs::read_to_string(&path).map_err(|e| errors::os(gated::Error::io(&path, e)))?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Ok(SpecText {
            text,
            json,
            label: path,
        })
    }

    /// The model with weights drawn from `seed`.
    pub fn build(&self, seed: u64) -> PyResult<Sequential> {
        parse_spec(&self.label, &self.text, self.json, seed).map_err(errors::value)
    }

    /// The text for `model.toml`.
    pub fn toml(&self) -> PyResult<String> {
        spec_as_toml(&self.text, self.json, &self.label).map_err(errors::value)
    }
}

/// A copy of `model` (rebuilt from its spec, weights copied), e.g. for a
/// generator that must not share the trained model's state.
pub fn clone_model(model: &Sequential, spec_toml: &str) -> gated::Result<Sequential> {
    let mut copy = gated::model::dir::model_from_spec_text(Path::new("model.toml"), spec_toml)?;
    for (dst, src) in copy.params_mut().into_iter().zip(model.params()) {
        if dst.values.len() != src.values.len() {
            return Err(gated::Error::invalid("model", "does not match its spec"));
        }
        dst.values.copy_from_slice(&src.values);
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::looks_like_spec;

    #[test]
    fn paths_and_specs_are_told_apart() {
        assert!(looks_like_spec("[input]\nshape = [3]"));
        assert!(looks_like_spec("{\"input\": {}}"));
        assert!(!looks_like_spec("specs/lstm.toml"));
    }
}
