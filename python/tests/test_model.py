"""Sequential: building, summary, fit/predict/evaluate, state_dict, save/load."""

import json

import numpy as np
import pytest

import gated


def test_from_spec_accepts_toml_json_dict_and_path(spec, tmp_path):
    a = gated.Sequential.from_spec(spec, seed=5)
    spec_dict = {
        "name": "py_lstm",
        "input": {"shape": [5, 1], "dtype": "float32"},
        "layer": [
            {"type": "lstm", "units": 4},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 2},
        ],
    }
    b = gated.Sequential.from_spec(spec_dict, seed=5)
    c = gated.Sequential.from_spec(json.dumps(spec_dict), seed=5)
    path = tmp_path / "spec.toml"
    path.write_text(spec)
    d = gated.Sequential.from_spec(path, seed=5)
    e = gated.Sequential.from_spec(str(path), seed=5)
    ref = a.state_dict()
    for m in (b, c, d, e):
        sd = m.state_dict()
        assert list(sd) == list(ref)
        for k in ref:
            np.testing.assert_array_equal(sd[k], ref[k])
    other = gated.Sequential.from_spec(spec, seed=6).state_dict()
    assert not np.array_equal(other["lstm_1.weight_ih_l0"], ref["lstm_1.weight_ih_l0"])


def test_summary_and_count_params(spec, capsys):
    m = gated.Sequential.from_spec(spec)
    s = m.summary()
    assert capsys.readouterr().out.strip() == s.strip()
    assert 'Model: "py_lstm"' in s
    assert "lstm_1 (LSTM)" in s and "(None, 4)" in s and "96" in s
    assert "Total params: 106" in s
    # Keras: LSTM 4*(4*(1+4)+4) = 96, Dense 4*2+2 = 10.
    assert m.count_params() == 106
    assert m.input_shape == [None, 5, 1]
    assert m.output_shape == [None, 2]


def test_fit_learns_and_history_has_keras_keys(spec, data):
    x, y = data
    m = gated.Sequential.from_spec(spec, seed=0)
    h = m.fit(
        x, y, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
        epochs=30, batch_size=8, lr=0.02, validation_split=0.25, verbose=0,
    )
    assert list(h.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert h.epoch == list(range(30))
    assert all(len(v) == 30 for v in h.history.values())
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.lr == [0.02] * 30
    res = m.evaluate(x, y)
    assert list(res) == ["loss", "accuracy"]
    assert res["accuracy"] > 0.8


def test_fit_with_validation_data_and_early_stopping(spec, data):
    x, y = data
    m = gated.Sequential.from_spec(spec)
    h = m.fit(
        x[:30], y[:30], loss="sparse_categorical_crossentropy",
        validation_data=(x[30:], y[30:]), epochs=50, lr=0.0,
        optimizer="sgd", early_stopping_patience=2, verbose=0,
    )
    # lr 0: nothing improves after the first epoch, so patience 2 stops at epoch 3.
    assert len(h.epoch) == 3
    assert "val_loss" in h.history


def test_predict_returns_an_owned_float32_array(spec, data):
    x, _ = data
    m = gated.Sequential.from_spec(spec)
    p = m.predict(x, batch_size=7)
    assert p.shape == (40, 2) and p.dtype == np.float32
    # Batching changes only the rounding (GEMM blocking); a strided,
    # float64 or nested-list input gives the same outputs.
    np.testing.assert_allclose(p, m.predict(x, batch_size=40), rtol=1e-5, atol=1e-7)
    x64 = np.asfortranarray(x.astype(np.float64))
    np.testing.assert_array_equal(p, m.predict(x64, batch_size=7))
    np.testing.assert_array_equal(p, m.predict(x.tolist(), batch_size=7))


def test_state_dict_round_trip_and_save_load(spec, data, tmp_path):
    x, y = data
    m = gated.Sequential.from_spec(spec, seed=2)
    m.fit(x, y, loss="sparse_categorical_crossentropy", epochs=2, verbose=0)
    sd = m.state_dict()
    assert list(sd) == [
        "lstm_1.weight_ih_l0", "lstm_1.weight_hh_l0", "lstm_1.bias_ih_l0",
        "lstm_1.bias_hh_l0", "dense_1.weight", "dense_1.bias",
    ]
    assert sd["lstm_1.weight_ih_l0"].shape == (16, 1)
    assert not sd["lstm_1.bias_hh_l0"].any()  # Keras's single bias: zeros as bias_hh
    p = m.predict(x)

    other = gated.Sequential.from_spec(spec, seed=99)
    assert not np.array_equal(other.predict(x), p)
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other.predict(x), p)

    m.save(tmp_path / "model")
    loaded = gated.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict(x), p)
    assert loaded.count_params() == m.count_params()


def test_load_state_dict_sums_pytorch_biases(spec, data):
    x, _ = data
    m = gated.Sequential.from_spec(spec, seed=2)
    sd = m.state_dict()
    p = m.predict(x)
    # PyTorch keeps two LSTM biases that only ever appear as their sum.
    half = sd["lstm_1.bias_ih_l0"] / 2
    sd["lstm_1.bias_ih_l0"] = half
    sd["lstm_1.bias_hh_l0"] = sd["lstm_1.bias_hh_l0"] + half
    m.load_state_dict(sd)
    np.testing.assert_allclose(m.predict(x), p, rtol=1e-6, atol=1e-6)


def test_fit_continues_with_the_kept_optimizer(spec, data):
    x, y = data
    no_dropout = spec.replace('type = "dropout"\nrate = 0.2', 'type = "dropout"\nrate = 0.0')
    kw = dict(loss="sparse_categorical_crossentropy", shuffle=False, verbose=0)
    a = gated.Sequential.from_spec(no_dropout, seed=4)
    a.fit(x, y, epochs=1, **kw)
    a.fit(x, y, epochs=1, **kw)
    b = gated.Sequential.from_spec(no_dropout, seed=4)
    b.fit(x, y, epochs=2, **kw)
    # Adam's moments and step count carry over, as in a compiled Keras model.
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    # Another optimizer setting starts afresh.
    c = gated.Sequential.from_spec(no_dropout, seed=4)
    c.fit(x, y, epochs=1, **kw)
    c.fit(x, y, epochs=1, lr=0.001000001, **kw)
    assert not np.array_equal(c.predict(x), b.predict(x))
