#!/usr/bin/env python3
"""Write PyTorch reference fixtures for the RNN layers to tests/fixtures/rnn/.

Run from the repository root:

    /work/venv/bin/python scripts/make_rnn_fixtures.py

Each case is one .safetensors file holding the inputs, every parameter under
its PyTorch state_dict name, the forward outputs and the gradients of

    loss = (out * g_out).sum() + (h_n * g_h).sum() [+ (c_n * g_c).sum()]

with respect to the input, the initial state(s) and every parameter.
Everything is float32 and computed on the CPU; each case is seeded on its own
so a single file can be regenerated independently.  See
tests/fixtures/rnn/README.md for the tensor names.
"""

import os
import sys

import torch
from safetensors.torch import save_file

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "rnn")
BASE_SEED = 20240607

MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]
SIZES = [(1, 1, 3, 5), (5, 7, 3, 5), (2, 4, 16, 32)]  # (batch, seq_len, input, hidden)
LARGE = (2, 4, 16, 32)  # only with num_layers=1, to keep the files small


def build(mode, input_size, hidden, num_layers, bidirectional):
    kw = dict(num_layers=num_layers, bias=True, batch_first=True, bidirectional=bidirectional)
    if mode == "RNN_TANH":
        return torch.nn.RNN(input_size, hidden, nonlinearity="tanh", **kw)
    if mode == "RNN_RELU":
        return torch.nn.RNN(input_size, hidden, nonlinearity="relu", **kw)
    if mode == "LSTM":
        return torch.nn.LSTM(input_size, hidden, **kw)
    if mode == "GRU":
        return torch.nn.GRU(input_size, hidden, **kw)
    raise ValueError(mode)


def file_name(mode, num_layers, bidirectional, b, t, i, h):
    stem = mode.lower()
    direction = "bi" if bidirectional else "uni"
    return f"{stem}_l{num_layers}_{direction}_b{b}_t{t}_i{i}_h{h}.safetensors"


def make_case(index, mode, num_layers, bidirectional, size):
    b, t, i, h = size
    d = 2 if bidirectional else 1
    torch.manual_seed(BASE_SEED + index)
    m = build(mode, i, h, num_layers, bidirectional).float()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.startswith("bias"):
                p.uniform_(-1.0, 1.0)

    x = torch.randn(b, t, i, dtype=torch.float32, requires_grad=True)
    h0 = torch.randn(num_layers * d, b, h, dtype=torch.float32, requires_grad=True)
    is_lstm = mode == "LSTM"
    if is_lstm:
        c0 = torch.randn(num_layers * d, b, h, dtype=torch.float32, requires_grad=True)
        out, (h_n, c_n) = m(x, (h0, c0))
    else:
        out, h_n = m(x, h0)

    g_out = torch.randn(b, t, d * h, dtype=torch.float32)
    g_h = torch.randn(num_layers * d, b, h, dtype=torch.float32)
    loss = (out * g_out).sum() + (h_n * g_h).sum()
    if is_lstm:
        g_c = torch.randn(num_layers * d, b, h, dtype=torch.float32)
        loss = loss + (c_n * g_c).sum()
    loss.backward()

    def c(tensor):
        return tensor.detach().to(torch.float32).contiguous().clone()

    tensors = {"x": c(x), "h0": c(h0), "g_out": g_out.contiguous(), "g_h": g_h.contiguous()}
    if is_lstm:
        tensors["c0"] = c(c0)
        tensors["g_c"] = g_c.contiguous()
    for name, p in m.named_parameters():
        tensors[name] = c(p)
        tensors["grad." + name] = c(p.grad)
    tensors["out"] = c(out)
    tensors["h_n"] = c(h_n)
    if is_lstm:
        tensors["c_n"] = c(c_n)
    tensors["grad_x"] = c(x.grad)
    tensors["grad_h0"] = c(h0.grad)
    if is_lstm:
        tensors["grad_c0"] = c(c0.grad)

    metadata = {
        "mode": mode,
        "num_layers": str(num_layers),
        "bidirectional": "true" if bidirectional else "false",
        "batch": str(b),
        "seq_len": str(t),
        "input_size": str(i),
        "hidden_size": str(h),
        "batch_first": "true",
        "seed": str(BASE_SEED + index),
        "loss": "(out*g_out).sum() + (h_n*g_h).sum()" + (" + (c_n*g_c).sum()" if is_lstm else ""),
        "generator": "scripts/make_rnn_fixtures.py, torch " + torch.__version__,
    }
    path = os.path.join(OUT_DIR, file_name(mode, num_layers, bidirectional, b, t, i, h))
    save_file(tensors, path, metadata=metadata)
    return path


def main():
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    index = 0
    total = 0
    for mode in MODES:
        for num_layers in [1, 2]:
            for bidirectional in [False, True]:
                for size in SIZES:
                    if size == LARGE and num_layers != 1:
                        continue
                    path = make_case(index, mode, num_layers, bidirectional, size)
                    total += os.path.getsize(path)
                    index += 1
    print(f"wrote {index} files, {total} bytes, to {os.path.normpath(OUT_DIR)}", file=sys.stderr)


if __name__ == "__main__":
    main()
