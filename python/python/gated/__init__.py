"""gated: gated RNNs (SimpleRNN, LSTM, GRU) computed in Rust, with Keras's
``fit``/``predict``/``evaluate``/``summary`` and PyTorch's ``state_dict``.

>>> import gated
>>> model = gated.Sequential.from_spec("spec.toml")        # doctest: +SKIP
>>> history = model.fit(x, y, loss="mse", epochs=5)        # doctest: +SKIP
>>> model.save("runs/model")                               # doctest: +SKIP

Model directories are the CLI's: ``gated.load(dir)`` reads what ``gated train``
writes, and ``gated predict --model DIR`` reads what ``model.save(dir)`` writes.
"""

from ._gated import CharLM, CharStream, History, Sequential, __version__, load

__all__ = ["CharLM", "CharStream", "History", "Sequential", "load", "__version__"]
