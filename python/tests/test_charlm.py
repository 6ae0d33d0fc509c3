"""CharLM: training, streaming generation, save/load."""

import types

import numpy as np

import gated

TEXT = "abcd" * 300


def small_lm(**kw):
    args = dict(units=16, layers=1, embedding_dim=4, seq_len=8, batch_size=4, steps=150,
                lr=0.02, val_frac=0.0, train_frac=1.0, eval_every=0, verbose=0)
    args.update(kw)
    return gated.CharLM.train(TEXT, **args)


def test_learns_a_cycle_and_streams_it(tmp_path):
    lm = small_lm()
    assert lm.vocab == "abcd"
    stream = lm.generate("a", 12, argmax=True)
    assert isinstance(stream, gated.CharStream)
    first = next(stream)
    assert first == "b"
    assert first + "".join(stream) == "bcdabcdabcda"
    # Sampled text is reproducible by seed.
    a = "".join(lm.generate("ab", 50, temperature=1.0, top_k=3, seed=1))
    b = "".join(lm.generate("ab", 50, temperature=1.0, top_k=3, seed=1))
    assert a == b and len(a) == 50 and set(a) <= set("abcd")

    lm.save(tmp_path / "lm")
    again = gated.CharLM.load(tmp_path / "lm")
    assert "".join(again.generate("a", 12, argmax=True)) == "bcdabcdabcda"
    # A char model directory is a model directory too.
    assert gated.load(tmp_path / "lm").count_params() == lm.count_params()


def test_verbose_prints_the_cli_lines(capsys):
    small_lm(steps=4, eval_every=2, verbose=1, sample_length=5)
    out = capsys.readouterr().out
    assert "step 2/4: train loss" in out and "step 4/4" in out
    assert "--- sample greedy ---" in out


def test_text_from_a_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    a = small_lm(steps=3).state_dict()
    b = gated.CharLM.train(path, units=16, layers=1, embedding_dim=4, seq_len=8,
                           batch_size=4, steps=3, lr=0.02, val_frac=0.0, train_frac=1.0,
                           eval_every=0, verbose=0).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
