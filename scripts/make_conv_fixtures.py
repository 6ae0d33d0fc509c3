#!/usr/bin/env python3
"""Writes PyTorch reference tensors for the conv layers (ConvLSTM2D,
BatchNormalization, Conv3D).

Run with `/work/venv/bin/python scripts/make_conv_fixtures.py` from the
repository root; the files land in tests/fixtures/conv/ and are read by
tests/conv_parity.rs (CI never runs this script).

PyTorch has no ConvLSTM, so the reference is written here with `F.conv2d` for
the input convolution (the layer's padding) and the recurrent convolution
(always 'same'), gate blocks i, f, g, o, Keras semantics (zero initial state,
one bias, go_backwards returns outputs in processing order). Tensors are
channels-last as in Keras and gated; the reference permutes to channels-first
for torch. Inputs and weights are drawn in float32, the forward and backward
passes run in float64 and are stored as float32. Every file holds the inputs,
the parameters, a random upstream gradient `up`, the output `y` and the
autograd gradients of sum(y * up).
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "conv")
rng = np.random.default_rng(20261126)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def t64(a):
    return torch.tensor(a.astype(np.float64), requires_grad=True)


def f32(t):
    return t.detach().numpy().astype(np.float32)


def save(name, tensors):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + ".safetensors")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path)
    print(path, os.path.getsize(path), "bytes")


def conv_lstm(x, w_ih, w_hh, b, padding, go_backwards, return_sequences):
    """x [B, T, H, W, C] channels-last; returns (y, h_n, c_n) channels-last."""
    f = w_hh.shape[1]
    xc = x.permute(0, 1, 4, 2, 3)  # B, T, C, H, W
    steps = range(x.shape[1])
    if go_backwards:
        steps = reversed(steps)
    h = c = None
    outs = []
    for t in steps:
        z = F.conv2d(xc[:, t], w_ih, b, padding=padding)
        if h is None:
            h = torch.zeros(z.shape[0], f, z.shape[2], z.shape[3], dtype=z.dtype)
            c = torch.zeros_like(h)
        z = z + F.conv2d(h, w_hh, None, padding="same")
        i, fg, g, o = z.chunk(4, dim=1)
        i, fg, g, o = torch.sigmoid(i), torch.sigmoid(fg), torch.tanh(g), torch.sigmoid(o)
        c = fg * c + i * g
        h = o * torch.tanh(c)
        outs.append(h)
    cl = lambda a: a.permute(0, 2, 3, 1)  # noqa: E731  B, H, W, f
    y = torch.stack([cl(o) for o in outs], dim=1) if return_sequences else cl(h)
    return y, cl(h), cl(c)


def convlstm_fixture(name, b, t, hh, ww, c, f, k, padding, go_backwards, return_sequences):
    kh, kw = k
    x = t64(randn(b, t, hh, ww, c))
    w_ih = t64(randn(4 * f, c, kh, kw, scale=0.4))
    w_hh = t64(randn(4 * f, f, kh, kw, scale=0.3))
    bias = t64(randn(4 * f, scale=0.5))
    y, h_n, c_n = conv_lstm(x, w_ih, w_hh, bias, padding, go_backwards, return_sequences)
    up = randn(*y.shape)
    (y * torch.tensor(up.astype(np.float64))).sum().backward()
    save(name, {
        "x": f32(x), "weight_ih": f32(w_ih), "weight_hh": f32(w_hh), "bias": f32(bias),
        "up": up, "y": f32(y), "h_n": f32(h_n), "c_n": f32(c_n),
        "dx": f32(x.grad), "dweight_ih": f32(w_ih.grad), "dweight_hh": f32(w_hh.grad),
        "dbias": f32(bias.grad),
    })


def batchnorm_fixture(name, shape, momentum, eps):
    c = shape[-1]
    x = t64(randn(*shape, scale=2.0) + 0.5)
    weight = t64(randn(c, scale=0.5) + 1.0)
    bias = t64(randn(c, scale=0.5))
    bn = torch.nn.BatchNorm3d(c, eps=eps, momentum=1.0 - momentum).double()
    bn.train()
    with torch.no_grad():
        bn.weight.copy_(weight)
        bn.bias.copy_(bias)
    y = bn(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)
    up = randn(*y.shape)
    (y * torch.tensor(up.astype(np.float64))).sum().backward()
    save(name, {
        "x": f32(x), "weight": f32(weight), "bias": f32(bias), "up": up, "y": f32(y),
        "dx": f32(x.grad), "dweight": f32(bn.weight.grad), "dbias": f32(bn.bias.grad),
        "running_mean": f32(bn.running_mean), "running_var": f32(bn.running_var),
    })


def conv3d_fixture(name, shape, f, k, padding, act):
    c = shape[-1]
    x = t64(randn(*shape))
    w = t64(randn(f, c, *k, scale=0.3))
    b = t64(randn(f, scale=0.5))
    z = F.conv3d(x.permute(0, 4, 1, 2, 3), w, b, padding=padding).permute(0, 2, 3, 4, 1)
    y = {"sigmoid": torch.sigmoid, "linear": lambda a: a}[act](z)
    up = randn(*y.shape)
    (y * torch.tensor(up.astype(np.float64))).sum().backward()
    save(name, {
        "x": f32(x), "weight": f32(w), "bias": f32(b), "up": up, "y": f32(y),
        "dx": f32(x.grad), "dweight": f32(w.grad), "dbias": f32(b.grad),
    })


if __name__ == "__main__":
    torch.manual_seed(0)
    convlstm_fixture("convlstm_same_seq", 2, 3, 6, 5, 2, 3, (3, 3), "same", False, True)
    convlstm_fixture("convlstm_valid_last_backwards", 2, 3, 6, 5, 2, 3, (3, 3), "valid", True, False)
    convlstm_fixture("convlstm_same_even_kernel", 1, 4, 5, 4, 1, 2, (2, 2), "same", False, True)
    batchnorm_fixture("batchnorm_train", (2, 3, 4, 5, 3), 0.99, 1e-3)
    conv3d_fixture("conv3d_same_sigmoid", (2, 3, 5, 4, 2), 2, (3, 3, 3), "same", "sigmoid")
    conv3d_fixture("conv3d_valid_linear", (2, 4, 5, 4, 3), 2, (2, 3, 2), "valid", "linear")
