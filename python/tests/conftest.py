"""Shared fixtures: a small LSTM classifier spec and data, and the CLI binary."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

SPEC = """name = "py_lstm"
[input]
shape = [5, 1]
dtype = "float32"
[[layer]]
type = "lstm"
units = 4
[[layer]]
type = "dropout"
rate = 0.2
[[layer]]
type = "dense"
units = 2
"""


@pytest.fixture
def spec():
    return SPEC


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (40, 5, 1)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int32)
    return x, y


@pytest.fixture(scope="session")
def gated_bin():
    """The CLI built from the core: $GATED_BIN, else target/release/gated or
    target/debug/gated under the repository. CI sets GATED_BIN, so there a
    missing binary fails instead of skipping."""
    explicit = os.environ.get("GATED_BIN")
    if explicit:
        assert Path(explicit).is_file(), f"GATED_BIN={explicit} does not exist"
        return explicit
    for profile in ("release", "debug"):
        candidate = ROOT / "target" / profile / "gated"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("gated")
    if found:
        return found
    pytest.skip("no gated binary: run `cargo build --release` or set GATED_BIN")
