//! Shared by the parity tests: the PyTorch reference tensors under
//! `tests/fixtures/`, read with the project's own safetensors reader (tested
//! on its own in tests/io.rs).

use gated::io::weights::load_safetensors_with_metadata;
use gated::Tensor;
use std::collections::HashMap;

/// One fixture file's tensors and header metadata.
pub struct Fixture {
    file: String,
    tensors: HashMap<String, Tensor>,
    metadata: HashMap<String, String>,
}

impl Fixture {
    /// Reads `tests/fixtures/{dir}/{file}`; panics naming the file when it
    /// cannot.
    pub fn open(dir: &str, file: &str) -> Self {
        let file = format!("{}/tests/fixtures/{dir}/{file}", env!("CARGO_MANIFEST_DIR"));
        let (tensors, metadata) =
            load_safetensors_with_metadata(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        Fixture {
            file,
            tensors: tensors.into_iter().collect(),
            metadata,
        }
    }

    /// Tensor `key`; panics naming the file and the key when it is missing.
    pub fn get(&self, key: &str) -> Tensor {
        self.tensors
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{}: no tensor {key}", self.file))
    }

    /// Header metadata `key`; panics naming the file when it is missing.
    #[allow(dead_code)] // not every parity test has metadata
    pub fn meta(&self, key: &str) -> &str {
        self.metadata
            .get(key)
            .unwrap_or_else(|| panic!("{}: no metadata {key:?}", self.file))
    }
}
