#!/usr/bin/env python3
"""Writes PyTorch reference tensors for the non-recurrent layers.

Run with `/work/venv/bin/python scripts/make_layer_fixtures.py` from the
repository root; the files land in tests/fixtures/layers/ and are read by
tests/layers_parity.rs (CI never runs this script).

Inputs and weights are drawn in float32; the reference forward and backward
passes run in float64 (torch autograd) and are stored as float32, so the Rust
side is compared against values free of PyTorch's own rounding. Every file
holds the inputs, the parameters, a random upstream gradient `up`, the output
`y` and the gradients of sum(y * up).
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "layers")
rng = np.random.default_rng(20261126)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def t64(a):
    return torch.tensor(a.astype(np.float64), requires_grad=True)


def f32(t):
    return t.detach().numpy().astype(np.float32)


def save(name, tensors):
    path = os.path.join(OUT, name + ".safetensors")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path)
    print(path, os.path.getsize(path), "bytes")


def linear(name, x_shape, units, act=None):
    fin = x_shape[-1]
    lin = torch.nn.Linear(fin, units).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(randn(units, fin, scale=0.5).astype(np.float64)))
        lin.bias.copy_(torch.tensor(randn(units, scale=0.5).astype(np.float64)))
    x = t64(randn(*x_shape))
    y = lin(x)
    if act is not None:
        y = act(y)
    up = randn(*y.shape)
    (y * torch.tensor(up.astype(np.float64))).sum().backward()
    save(name, {
        "x": f32(x), "weight": f32(lin.weight), "bias": f32(lin.bias), "up": up,
        "y": f32(y), "dx": f32(x.grad), "dweight": f32(lin.weight.grad), "dbias": f32(lin.bias.grad),
    })


def embedding():
    emb = torch.nn.Embedding(9, 4).double()
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(randn(9, 4).astype(np.float64)))
    # Repeated ids (3 and 0 several times) and one unused id (8).
    ids = np.array([[3, 0, 5, 3], [1, 3, 0, 7], [0, 0, 2, 6]], dtype=np.int64)
    y = emb(torch.tensor(ids))
    up = randn(*y.shape)
    (y * torch.tensor(up.astype(np.float64))).sum().backward()
    save("embedding", {
        "ids": ids.astype(np.float32), "weight": f32(emb.weight), "up": up,
        "y": f32(y), "dweight": f32(emb.weight.grad),
    })


def activations():
    funcs = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softsign": F.softsign,
        "relu": torch.relu,
        # Keras 2's hard_sigmoid, not torch's hardsigmoid (which is x/6 + 1/2).
        "hard_sigmoid": lambda v: torch.clamp(0.2 * v + 0.5, 0.0, 1.0),
        "linear": lambda v: v * 1.0,
    }
    out = {}
    for name, fn in funcs.items():
        x = t64(randn(3, 8, scale=3.0))
        y = fn(x)
        up = randn(*y.shape)
        (y * torch.tensor(up.astype(np.float64))).sum().backward()
        out.update({f"{name}.x": f32(x), f"{name}.up": up, f"{name}.y": f32(y), f"{name}.dx": f32(x.grad)})
    # Softmax over the last axis, 2-D and 3-D; one row with large logits.
    for name, shape in (("softmax2d", (4, 6)), ("softmax3d", (2, 3, 5))):
        xa = randn(*shape, scale=2.0)
        if name == "softmax2d":
            xa[1] += 80.0
        x = t64(xa)
        y = torch.softmax(x, dim=-1)
        up = randn(*y.shape)
        (y * torch.tensor(up.astype(np.float64))).sum().backward()
        out.update({f"{name}.x": f32(x), f"{name}.up": up, f"{name}.y": f32(y), f"{name}.dx": f32(x.grad)})
    save("activations", out)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    linear("linear_2d", (3, 5), 4)
    linear("linear_3d", (2, 3, 5), 4)
    linear("linear_3d_tanh", (2, 4, 6), 3, act=torch.tanh)
    embedding()
    activations()
