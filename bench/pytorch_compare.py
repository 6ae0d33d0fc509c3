#!/usr/bin/env python3
"""Run the benchmark configurations (A-E, as `gated bench --help` lists them) in PyTorch and in `gated bench`, print one table.

Usage (by hand, never in CI):
    /work/venv/bin/python bench/pytorch_compare.py [path/to/gated] [--threads 2]
        [--config A,B,B-GRU,B-RNN,C,D,E] [--repeats N] [--rounds R]

Each PyTorch configuration runs in its own subprocess (so its peak RSS is its
own), once with oneDNN (the default) and once with torch.backends.mkldnn
disabled; gated runs each configuration in a child process too.
Ratio = PyTorch median / gated median, against PyTorch's default (oneDNN on) for
A-D and against the faster of the two PyTorch variants for E.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CONFIGS = ["A", "B", "B-GRU", "B-RNN", "C", "D", "E"]
DIMS = {"A": (32, 10), "B": (32, 80), "B-GRU": (32, 80), "B-RNN": (32, 80),
        "C": (32, 100), "D": (64, 50), "E": (1, 1)}
REPEATS = {"A": 30, "B": 30, "B-GRU": 30, "B-RNN": 30, "C": 10, "D": 5, "E": 300}


def forward_flops(cfg):
    b, t = DIMS[cfg]
    layer = lambda g, i, h: 2 * g * h * (i + h) * b * t
    return {
        "A": layer(4, 50, 128) + layer(4, 128, 128),
        "B": layer(4, 128, 128), "B-GRU": layer(3, 128, 128), "B-RNN": layer(1, 128, 128),
        "C": layer(4, 64, 512) + layer(4, 512, 512), "E": layer(4, 64, 512) + layer(4, 512, 512),
        "D": layer(4, 1024, 1024),
    }[cfg]


def worker(cfg, threads, mkldnn, repeats, warmup):
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    b, t = DIMS[cfg]

    class Last(nn.Module):
        """Output of an nn.RNN/LSTM/GRU; `last` keeps only the final step."""
        def __init__(self, rnn, last):
            super().__init__()
            self.rnn, self.last = rnn, last

        def forward(self, x):
            y, _ = self.rnn(x)
            return y[:, -1] if self.last else y

    if cfg == "A":
        model = nn.Sequential(nn.Embedding(20000, 50), Last(nn.LSTM(50, 128, batch_first=True), False),
                              nn.Dropout(0.5), Last(nn.LSTM(128, 128, batch_first=True), True),
                              nn.Dropout(0.5), nn.Linear(128, 5))
        x = torch.randint(0, 20000, (b, t))
        y = torch.randint(0, 5, (b,))
        loss_fn = nn.CrossEntropyLoss()
    elif cfg in ("B", "B-GRU", "B-RNN"):
        rnn = {"B": nn.LSTM, "B-GRU": nn.GRU, "B-RNN": nn.RNN}[cfg](128, 128, batch_first=True)
        model = nn.Sequential(nn.Embedding(20000, 128), Last(rnn, True), nn.Linear(128, 1))
        x = torch.randint(0, 20000, (b, t))
        y = torch.randint(0, 2, (b, 1)).float()
        loss_fn = nn.BCEWithLogitsLoss()
    elif cfg in ("C", "E"):
        model = nn.Sequential(nn.Embedding(65, 64), Last(nn.LSTM(64, 512, batch_first=True), False),
                              Last(nn.LSTM(512, 512, batch_first=True), False), nn.Linear(512, 65))
        x = torch.randint(0, 65, (b, t))
        y = torch.randint(0, 65, (b, t))
        ce = nn.CrossEntropyLoss()
        loss_fn = lambda out, y: ce(out.reshape(-1, 65), y.reshape(-1))
    elif cfg == "D":
        model = Last(nn.LSTM(1024, 1024, batch_first=True), False)
        x = torch.randn(b, t, 1024)
        y = None
        loss_fn = lambda out, y: out.sum()
    model.train()

    def timed(fn, n, w):
        for _ in range(w):
            fn()
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    with torch.backends.mkldnn.flags(enabled=mkldnn):
        res = {"config": cfg, "mkldnn": mkldnn}
        if cfg == "E":
            emb, l1, l2, lin = model[0], model[1].rnn, model[2].rnn, model[3]
            state = {"c": torch.randint(0, 65, (1, 1)), "s1": None, "s2": None}

            def gen():
                with torch.no_grad():
                    h = emb(state["c"])
                    h, state["s1"] = l1(h, state["s1"])
                    h, state["s2"] = l2(h, state["s2"])
                    p = torch.softmax(lin(h[:, -1]), dim=-1)
                    state["c"] = torch.multinomial(p, 1)
            s = timed(gen, repeats, warmup * 10)
            res["infer"] = s
        else:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)

            def step():
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()

            def infer():
                with torch.no_grad():
                    model(x)
            res["train"] = timed(step, repeats, warmup)
            res["infer"] = timed(infer, repeats, warmup)
        res["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(res))


def med(xs):
    return statistics.median(xs) if xs else None


def summarize(cfg, torch_rounds, gated_rounds):
    """One table row from every round of one configuration."""
    kind = "infer" if cfg == "E" else "train"
    mult = 1.0 if cfg == "E" else 3.0
    on = [med(t[True][kind]) for t in torch_rounds]
    off = [med(t[False][kind]) for t in torch_rounds]
    gm = [g[kind]["median_ms"] for g in gated_rounds]
    # E is compared with the faster PyTorch variant, the others with oneDNN on.
    ref = [min(x, y) if cfg == "E" else x for x, y in zip(on, off)]
    ratios = [r / g for r, g in zip(ref, gm)]
    ref_m, gm_m = med(ref), med(gm)
    return dict(cfg=cfg, on=med(on), off=med(off), gated=gm_m, ratio=med(ratios),
                ratio_lo=min(ratios), ratio_hi=max(ratios),
                gf_torch=forward_flops(cfg) * mult / (ref_m * 1e-3) / 1e9,
                gf_gated=forward_flops(cfg) * mult / (gm_m * 1e-3) / 1e9,
                rss_torch=max(t[True]["peak_rss_kib"] for t in torch_rounds) / 1024,
                rss_torch_off=max(t[False]["peak_rss_kib"] for t in torch_rounds) / 1024,
                rss_gated=max((g.get("peak_rss_kib") or 0) for g in gated_rounds) / 1024,
                i_on=med([med(t[True]["infer"]) for t in torch_rounds]),
                i_off=med([med(t[False]["infer"]) for t in torch_rounds]),
                i_gated=med([g["infer"]["median_ms"] for g in gated_rounds]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gated", nargs="?", default="target/release/gated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", default=",".join(CONFIGS))
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed steps per configuration (A-D; E always times 300 characters)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--no-mkldnn", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every configuration this many times, PyTorch and gated back to back "
                         "each round, and report the median round (robust to a slow patch of a "
                         "shared host)")
    ap.add_argument("--json", help="also write all raw results to this file")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    if a.worker:
        worker(a.worker, a.threads, not a.no_mkldnn, a.repeats or REPEATS[a.worker], a.warmup)
        return
    cfgs = [c.strip().upper() for c in a.config.split(",") if c.strip()]
    raw = {"torch": {c: [] for c in cfgs}, "gated": {c: [] for c in cfgs}}

    def repeats(cfg):
        # E times single characters (well under a millisecond): it keeps its
        # default of 300 whatever --repeats says, so that a handful of
        # characters just after the warm-up does not stand for the rate.
        return None if cfg == "E" else a.repeats
    # Round by round, each configuration runs in PyTorch and in gated back to
    # back, so a slow patch of a shared host hits both sides of a round.
    for rnd in range(a.rounds):
        for cfg in cfgs:
            torch_res = {}
            for mk in (True, False):
                cmd = [sys.executable, __file__, "--worker", cfg, "--threads", str(a.threads),
                       "--warmup", str(a.warmup)]
                if repeats(cfg):
                    cmd += ["--repeats", str(repeats(cfg))]
                if not mk:
                    cmd.append("--no-mkldnn")
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                torch_res[mk] = json.loads(out.strip().splitlines()[-1])
            cmd = [a.gated, "bench", "--json", "--config", cfg, "--threads", str(a.threads),
                   "--warmup", str(a.warmup)]
            if repeats(cfg):
                cmd += ["--repeats", str(repeats(cfg))]
            g = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)[0]
            raw["torch"][cfg].append(torch_res)
            raw["gated"][cfg].append(g)
            print(f"round {rnd + 1}/{a.rounds}: {cfg} done", file=sys.stderr)
    rows = [summarize(cfg, raw["torch"][cfg], raw["gated"][cfg]) for cfg in cfgs]
    rounds = "" if a.rounds == 1 else (
        f"; {a.rounds} rounds: times are medians of the rounds' medians, ratio the median of the "
        f"rounds' ratios (range in brackets)")
    print(f"threads: {a.threads}; medians in ms; training step (forward + backward + Adam) for A-D, "
          f"ms per generated character for E; ratio = PyTorch / gated (E: vs the faster PyTorch)"
          f"{rounds}")
    print("| config | PyTorch oneDNN on | PyTorch oneDNN off | gated | ratio | GFLOP/s PyTorch | GFLOP/s gated "
          "| infer PyTorch on/off | infer gated | peak RSS PyTorch on/off (MiB) | peak RSS gated (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        spread = "" if a.rounds == 1 else f" [{r['ratio_lo']:.2f}-{r['ratio_hi']:.2f}]"
        print(f"| {r['cfg']} | {r['on']:.3f} | {r['off']:.3f} | {r['gated']:.3f} | {r['ratio']:.2f}{spread} "
              f"| {r['gf_torch']:.1f} | {r['gf_gated']:.1f} | {r['i_on']:.3f} / {r['i_off']:.3f} "
              f"| {r['i_gated']:.3f} | {r['rss_torch']:.0f} / {r['rss_torch_off']:.0f} | {r['rss_gated']:.0f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
