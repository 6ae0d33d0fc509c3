"""The GIL is released while training; Ctrl-C stops fit after a step with a
KeyboardInterrupt and leaves a usable model."""

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import gated


def test_fit_releases_the_gil(spec):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (256, 5, 1)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int32)
    model = gated.Sequential.from_spec(spec)
    done = threading.Event()
    spins = 0

    def train():
        try:
            model.fit(x, y, loss="sparse_categorical_crossentropy", epochs=40, verbose=0)
        finally:
            done.set()

    t = threading.Thread(target=train)
    start = time.perf_counter()
    t.start()
    while not done.is_set():
        spins += 1
    t.join()
    elapsed = time.perf_counter() - start
    # With the GIL held through fit, this loop could not run while it trains
    # (a switch interval of 5 ms would let it in a handful of times at most).
    assert elapsed > 0.05
    assert spins > 10_000, (spins, elapsed)


INTERRUPT = textwrap.dedent("""
    import os, signal, threading, time
    import numpy as np
    import gated
    spec = '''[input]
    shape = [5, 1]
    [[layer]]
    type = "lstm"
    units = 8
    [[layer]]
    type = "dense"
    units = 2
    '''
    x = np.random.default_rng(0).uniform(-1, 1, (64, 5, 1)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int32)
    m = gated.Sequential.from_spec(spec)
    before = m.state_dict()
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    t0 = time.perf_counter()
    try:
        m.fit(x, y, loss="sparse_categorical_crossentropy", epochs=1_000_000, verbose=0)
        print("NOT INTERRUPTED")
    except KeyboardInterrupt:
        after = m.state_dict()
        changed = any(not np.array_equal(before[k], after[k]) for k in before)
        finite = all(np.isfinite(v).all() for v in after.values())
        p = m.predict(x)
        # The model keeps training from where it stopped.
        m.fit(x, y, loss="sparse_categorical_crossentropy", epochs=1, verbose=0)
        print("INTERRUPTED", round(time.perf_counter() - t0, 2), changed, finite, p.shape)
""").replace("\\n    ", "\\n")


def test_ctrl_c_stops_fit_with_keyboard_interrupt():
    r = subprocess.run([sys.executable, "-c", INTERRUPT], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    assert words[0] == "INTERRUPTED", r.stdout
    assert float(words[1]) < 30
    assert words[2:5] == ["True", "True", "(64,"]


CHAR_INTERRUPT = textwrap.dedent("""
    import os, signal, threading
    import gated
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    try:
        gated.CharLM.train("abcd" * 500, units=8, layers=1, seq_len=8, batch_size=4,
                           steps=10_000_000, eval_every=0, verbose=0)
        print("NOT INTERRUPTED")
    except KeyboardInterrupt as e:
        print("INTERRUPTED", "".join(e.model.generate("a", 3, argmax=True)).__len__())
""")


def test_ctrl_c_stops_charlm_training_and_keeps_the_model():
    r = subprocess.run([sys.executable, "-c", CHAR_INTERRUPT], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["INTERRUPTED", "3"], r.stdout
