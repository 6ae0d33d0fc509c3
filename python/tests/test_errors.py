"""Bad input raises ValueError (shapes, specs, arguments) or OSError (files),
with the CLI's messages; the interpreter never crashes."""

import numpy as np
import pytest

import gated


@pytest.fixture
def model(spec):
    return gated.Sequential.from_spec(spec)


def test_shape_errors(model, data):
    x, y = data
    with pytest.raises(ValueError, match="same count"):
        model.fit(x, y[:3], loss="sparse_categorical_crossentropy", verbose=0)
    with pytest.raises(ValueError, match="input"):
        model.predict(np.zeros((2, 4, 1)))
    with pytest.raises(ValueError, match="input"):
        model.predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="empty axis"):
        model.predict(np.zeros((0, 5, 1)))
    with pytest.raises(ValueError):
        model.fit(x, np.full(40, 7), loss="sparse_categorical_crossentropy", verbose=0)
    with pytest.raises(ValueError):
        model.fit(x, y.astype(np.float32) + 0.5, loss="sparse_categorical_crossentropy",
                  verbose=0)
    with pytest.raises(ValueError, match="not finite|NaN|nan"):
        bad = x.copy()
        bad[0, 0, 0] = np.nan
        model.fit(bad, y, loss="sparse_categorical_crossentropy", verbose=0)


def test_divergence_is_a_floating_point_error(model, data):
    x, y = data
    # A squared error of 1e30 is past float32's range: the loss is inf.
    with pytest.raises(FloatingPointError, match="non-finite"):
        model.fit(x, np.full((40, 2), 1e30), loss="mse", verbose=0)


def test_argument_errors(model, data):
    x, y = data
    sparse = "sparse_categorical_crossentropy"
    cases = [
        (dict(loss="nope"), "unknown loss"),
        (dict(loss=sparse, optimizer="lbfgs"), "optimizer|lbfgs"),
        (dict(loss=sparse, epochs=0), "epochs"),
        (dict(loss=sparse, batch_size=0), "batch_size"),
        (dict(loss=sparse, validation_split=1.5), "validation_split"),
        (dict(loss=sparse, metrics=["f1"]), "f1"),
        (dict(loss=sparse, clipnorm=-1.0), "clipnorm"),
        (dict(loss=sparse, restore_best_weights=True), "early-stopping-patience"),
        (dict(loss=sparse, verbose=7), "verbose"),
        (dict(loss="mse", metrics=["perplexity"]), "cross-entropy"),
        (dict(loss=sparse, validation_data=(x,)), "validation_data"),
        (dict(loss=sparse, validation_data=(x, y), validation_split=0.2), "not both"),
        (dict(loss=sparse, lr_schedule="zigzag"), "schedule|zigzag"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model.fit(x, y, **kwargs)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)
    with pytest.raises(ValueError, match="not an array of numbers"):
        model.predict("abc")
    with pytest.raises(ValueError, match="not been fitted"):
        model.evaluate(x, y)
    with pytest.raises(TypeError):
        model.fit(x, y)  # loss is required, as in Keras's compile


def test_spec_errors(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        gated.Sequential.from_spec("[input]\nshape = 3")
    with pytest.raises(ValueError, match="TOML"):
        gated.Sequential.from_spec("name = = 1\n")
    with pytest.raises(ValueError, match="line"):
        gated.Sequential.from_spec("{ not json")
    with pytest.raises(ValueError, match="unknown top-level key"):
        gated.Sequential.from_spec({"input": {"shape": [3]}, "layers": []})
    with pytest.raises(FileNotFoundError):
        gated.Sequential.from_spec(tmp_path / "missing.toml")
    with pytest.raises(FileNotFoundError):
        gated.Sequential.from_spec("missing.toml")
    with pytest.raises(TypeError):
        gated.Sequential.from_spec(42)
    huge = "[input]\nshape = [3]\n[[layer]]\ntype = \"dense\"\nunits = 100000000000\n"
    with pytest.raises(ValueError):
        gated.Sequential.from_spec(huge)


def test_state_dict_errors(model):
    sd = model.state_dict()
    with pytest.raises(ValueError, match="missing"):
        model.load_state_dict({"x": np.zeros(3)})
    bad = dict(sd)
    bad["dense_1.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict(bad)
    with pytest.raises(ValueError, match="dict"):
        model.load_state_dict([1, 2])
    # Nothing was written by the failed loads.
    after = model.state_dict()
    for k in sd:
        np.testing.assert_array_equal(after[k], sd[k])


def test_file_errors(model, tmp_path):
    with pytest.raises(OSError, match="not a model directory"):
        gated.load(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.toml").write_text("[input]\nshape = [5, 1]\n")
    (tmp_path / "broken" / "weights.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(OSError):
        gated.load(tmp_path / "broken")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        model.save(blocker / "sub")
    with pytest.raises(OSError):
        gated.CharLM.load(tmp_path / "nothing")


def test_charlm_errors():
    with pytest.raises(ValueError, match="cell"):
        gated.CharLM.train("abc" * 100, cell="transformer")
    with pytest.raises(ValueError):
        gated.CharLM.train("ab", seq_len=10, batch_size=2, verbose=0)
    lm = gated.CharLM.train("abcabc" * 50, units=4, layers=1, embedding_dim=3, seq_len=5,
                            batch_size=2, steps=2, val_frac=0.0, train_frac=1.0,
                            verbose=0)
    with pytest.raises(ValueError, match="prime"):
        lm.generate("xyz", 5)
    with pytest.raises(ValueError, match="temperature"):
        lm.generate("a", 5, temperature=0.0)
    with pytest.raises(ValueError):
        lm.generate("a", 5, top_k=0)
