#!/usr/bin/env python3
"""End-to-end comparison: the commands a user runs, timed as whole processes,
gated against the same work in PyTorch (bench/e2e_torch.py), interleaved.

Usage (by hand, never in CI; PyTorch and numpy in a virtual environment):
    ~/venv/bin/python bench/e2e.py [target/release/gated] [--threads 2] [--rounds 2]
        [--jobs a,b,c,d] [--work DIR] [--json FILE]

Jobs (issue 18, item 4):
  a  gated train --text: Embedding 64 -> LSTM 256 x 2 -> Dense on a generated
     5 MB corpus, 32 lanes x 100 characters, 300 Adam steps (lr 2e-3, clip 5),
     one validation pass at the end, model saved
  b  gated train on arrays: an IMDB-shaped set (25,000 x 80 token ids, vocabulary
     20,000) through Embedding 128 -> LSTM 128 -> Dense 1, one epoch, 10 %
     validation, a checkpoint
  c  gated predict: 100,000 samples through (b)'s model, batch 256
  d  gated generate: 2,000 characters from (a)'s model

Every round runs each job in PyTorch and in gated back to back (alternating
which goes first), so a slow patch of a shared host hits both. Reported: the
median wall time of each side over the rounds, the median of the rounds'
ratios (PyTorch / gated) with their range, and the peak RSS of each process.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
IMDB_SPEC = """name = "imdb_lstm"
[input]
shape = [80]
dtype = "int32"

[[layer]]
type = "embedding"
input_dim = 20000
output_dim = 128

[[layer]]
type = "lstm"
units = 128

[[layer]]
type = "dense"
units = 1
"""


def make_corpus(path, size=5_000_000, seed=1):
    """Pseudo-English: words from a fixed syllable set, sentences, paragraphs."""
    rng = random.Random(seed)
    syll = ["th", "e", "an", "re", "on", "at", "en", "nd", "ti", "es", "or", "te", "of", "ed",
            "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha", "as", "ou", "io", "le"]
    words = ["".join(rng.choice(syll) for _ in range(rng.randint(1, 3))) for _ in range(3000)]
    out, n = [], 0
    while n < size:
        sent = " ".join(rng.choice(words) for _ in range(rng.randint(4, 14)))
        sent = sent[0].upper() + sent[1:] + rng.choice([".", ".", ",", "?", "!", ";"])
        sent += "\n" if rng.random() < 0.15 else " "
        out.append(sent)
        n += len(sent)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(out)[:size])


def make_arrays(work):
    rng = np.random.default_rng(1)
    # Zipf-like ids in 1..19999; the label depends on a few "sentiment" ids.
    def ids(n):
        return np.minimum(rng.zipf(1.3, size=(n, 80)), 19999).astype(np.int32)
    x = ids(25_000)
    y = (np.isin(x, [7, 11, 13, 17]).sum(axis=1) > 3).astype(np.int32)
    np.save(os.path.join(work, "x.npy"), x)
    np.save(os.path.join(work, "y.npy"), y)
    np.save(os.path.join(work, "x_predict.npy"), ids(100_000))
    with open(os.path.join(work, "imdb.toml"), "w") as f:
        f.write(IMDB_SPEC)


def timed(cmd, env):
    """Wall seconds and peak RSS (MiB) of one process, which must succeed."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def commands(job, gated, work, threads):
    py = [sys.executable, os.path.join(HERE, "e2e_torch.py"), "--threads", str(threads)]
    w = lambda *p: os.path.join(work, *p)
    if job == "a":
        return (
            [gated, "train", "--text", w("corpus.txt"), "--out", w("gated_text"),
             "--units", "256", "--layers", "2", "--embedding-dim", "64", "--batch-size", "32",
             "--seq-len", "100", "--steps", "300", "--optimizer", "adam", "--lr", "2e-3",
             "--grad-clip", "5", "--eval-every", "0", "--sample-length", "0"],
            py + ["train-text", w("corpus.txt"), w("torch_text"), "--steps", "300"])
    if job == "b":
        return (
            [gated, "train", "--spec", w("imdb.toml"), "--x", w("x.npy"), "--y", w("y.npy"),
             "--out", w("gated_imdb"), "--loss", "binary_crossentropy", "--from-logits",
             "--epochs", "1", "--batch-size", "32", "--validation-split", "0.1", "--plain"],
            py + ["train-array", w("x.npy"), w("y.npy"), w("torch_imdb")])
    if job == "c":
        return (
            [gated, "predict", "--model", w("gated_imdb"), "--x", w("x_predict.npy"),
             "--out", w("gated_pred.npy"), "--batch-size", "256"],
            py + ["predict", w("torch_imdb"), w("x_predict.npy"), w("torch_pred.npy")])
    if job == "d":
        return (
            [gated, "generate", "--model", w("gated_text"), "--length", "2000"],
            py + ["generate", w("torch_text"), "--length", "2000"])
    raise ValueError(job)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gated", nargs="?", default="target/release/gated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--jobs", default="a,b,c,d")
    ap.add_argument("--work", default="/tmp/gated-e2e")
    ap.add_argument("--json", help="also write the raw timings here")
    a = ap.parse_args()
    gated = os.path.abspath(a.gated)
    os.makedirs(a.work, exist_ok=True)
    if not os.path.exists(os.path.join(a.work, "corpus.txt")):
        make_corpus(os.path.join(a.work, "corpus.txt"))
    if not os.path.exists(os.path.join(a.work, "x_predict.npy")):
        make_arrays(a.work)
    env = dict(os.environ, GATED_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    jobs = [j.strip() for j in a.jobs.split(",") if j.strip()]
    raw = {j: {"torch": [], "gated": []} for j in jobs}
    for rnd in range(a.rounds):
        for job in jobs:
            g_cmd, t_cmd = commands(job, gated, a.work, a.threads)
            order = [("gated", g_cmd), ("torch", t_cmd)]
            if rnd % 2:
                order.reverse()
            for side, cmd in order:
                wall, rss = timed(cmd, env)
                raw[job][side].append({"wall_s": wall, "peak_rss_mib": rss})
                print(f"round {rnd + 1} job {job} {side}: {wall:.2f} s, {rss:.0f} MiB",
                      file=sys.stderr, flush=True)
    print(f"| job | PyTorch (s) | gated (s) | ratio [range] | peak RSS PyTorch / gated (MiB) |")
    print("|---|---|---|---|---|")
    for job in jobs:
        t = [r["wall_s"] for r in raw[job]["torch"]]
        g = [r["wall_s"] for r in raw[job]["gated"]]
        ratios = [x / y for x, y in zip(t, g)]
        rss_t = max(r["peak_rss_mib"] for r in raw[job]["torch"])
        rss_g = max(r["peak_rss_mib"] for r in raw[job]["gated"])
        print(f"| {job} | {statistics.median(t):.2f} | {statistics.median(g):.2f} | "
              f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}] | "
              f"{rss_t:.0f} / {rss_g:.0f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
