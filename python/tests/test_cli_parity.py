"""The same engine: `fit` ends with the weights `gated train` writes, bit for
bit, and CharLM.train with those of `gated train --text`."""

import json
import struct
import subprocess

import numpy as np
import pytest

import gated


def read_safetensors(path):
    """A safetensors file as name -> array (F32 only), read independently of gated."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + start:8 + n + end], dtype="<f4").reshape(
            info["shape"])
    return out


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


CASES = [
    (
        ["--optimizer", "rmsprop", "--lr", "0.01", "--clipnorm", "1.0", "--validation-split",
         "0.25", "--metrics", "accuracy", "--batch-size", "8", "--epochs", "3"],
        dict(optimizer="rmsprop", lr=0.01, clipnorm=1.0, validation_split=0.25,
             metrics=["accuracy"], batch_size=8, epochs=3),
    ),
    (
        ["--epochs", "6", "--early-stopping-patience", "1", "--restore-best-weights",
         "--monitor", "loss", "--no-shuffle", "--batch-size", "16", "--lr", "0.05"],
        dict(epochs=6, early_stopping_patience=1, restore_best_weights=True, monitor="loss",
             shuffle=False, batch_size=16, lr=0.05),
    ),
]


@pytest.mark.parametrize("flags,kwargs", CASES)
def test_fit_matches_gated_train_bit_for_bit(gated_bin, spec, data, tmp_path, flags, kwargs):
    x, y = data
    seed = 7
    (tmp_path / "spec.toml").write_text(spec)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    run([gated_bin, "train", "--spec", str(tmp_path / "spec.toml"), "--x",
         str(tmp_path / "x.npy"), "--y", str(tmp_path / "y.npy"), "--out",
         str(tmp_path / "out"), "--loss", "sparse_categorical_crossentropy", "--seed",
         str(seed), "--quiet", *flags])
    cli = read_safetensors(tmp_path / "out" / "weights.safetensors")

    model = gated.Sequential.from_spec(spec, seed=seed)
    model.fit(x, y, loss="sparse_categorical_crossentropy", seed=seed, verbose=0, **kwargs)
    py = model.state_dict()
    assert sorted(py) == sorted(cli)
    for name in cli:
        assert py[name].tobytes() == cli[name].tobytes(), name
    # The model trained at all (the comparison is not between two initial states).
    fresh = gated.Sequential.from_spec(spec, seed=seed).state_dict()
    assert any(not np.array_equal(fresh[k], py[k]) for k in py)

    # And the CLI reads what the binding saves, the binding what the CLI saves.
    model.save(tmp_path / "saved")
    run([gated_bin, "predict", "--model", str(tmp_path / "saved"), "--x",
         str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npy")])
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), model.predict(x))
    np.testing.assert_array_equal(gated.load(tmp_path / "out").predict(x), model.predict(x))


TEXT = "the quick brown fox jumps over the lazy dog. " * 40

CHAR_FLAGS = ["--units", "8", "--layers", "2", "--embedding-dim", "4", "--seq-len", "8",
              "--batch-size", "4", "--steps", "30", "--eval-every", "10", "--seed", "3",
              "--dropout", "0.1", "--sample-length", "0"]
CHAR_KWARGS = dict(units=8, layers=2, embedding_dim=4, seq_len=8, batch_size=4, steps=30,
                   eval_every=10, seed=3, dropout=0.1, verbose=0)


def test_charlm_matches_gated_train_text(gated_bin, tmp_path):
    (tmp_path / "input.txt").write_text(TEXT)
    run([gated_bin, "train", "--text", str(tmp_path / "input.txt"), "--out",
         str(tmp_path / "out"), "--quiet", *CHAR_FLAGS])
    cli = read_safetensors(tmp_path / "out" / "weights.safetensors")
    lm = gated.CharLM.train(TEXT, **CHAR_KWARGS)
    py = lm.state_dict()
    assert sorted(py) == sorted(cli)
    for name in cli:
        assert py[name].tobytes() == cli[name].tobytes(), name
    assert len(lm.val_curve) == 3

    # gated generate reads what CharLM.save writes, and samples the same text.
    lm.save(tmp_path / "saved")
    r = run([gated_bin, "generate", "--model", str(tmp_path / "saved"), "--prime", "the",
             "--length", "40", "--temperature", "0.7", "--seed", "5"])
    ours = "".join(lm.generate("the", 40, temperature=0.7, seed=5))
    assert r.stdout == "the" + ours + "\n"
