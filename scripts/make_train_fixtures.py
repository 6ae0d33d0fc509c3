#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for gated's `train` module.

Run from the repository root with a Python that has torch, numpy and safetensors:

    /work/venv/bin/python scripts/make_train_fixtures.py

It writes three small files under tests/fixtures/train/, read by tests/train_parity.rs:

- optim.safetensors: two fixed parameter tensors ([3,4] and [5]), ten fixed gradients for each,
  and, for every optimizer case, torch.optim's parameters after step 1 and after step 10.
  The metadata entry "cases" is a JSON list of {"name", "optimizer", "hyper"} records.
- loss.safetensors: for every loss case, the input, the target, the loss value and
  d(loss)/d(input) from autograd. The metadata entry "cases" lists {"name", "loss"}.
- clip.safetensors: gradients before and after torch.nn.utils.clip_grad_norm_ and the
  returned norm, for one case that clips and one that does not.

CI never runs this script; the fixtures are committed.
"""

import json
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "train")
STEPS = 10


def optim_fixtures():
    g = torch.Generator().manual_seed(1234)
    p0 = torch.randn(3, 4, generator=g)
    p1 = torch.randn(5, generator=g)
    grads0 = [torch.randn(3, 4, generator=g) for _ in range(STEPS)]
    grads1 = [torch.randn(5, generator=g) for _ in range(STEPS)]
    # A zero gradient element at one step exercises the sign/zero paths.
    grads0[3][1, 2] = 0.0

    cases = [
        ("sgd", "sgd", dict(lr=0.1)),
        ("sgd_wd", "sgd", dict(lr=0.1, weight_decay=0.05)),
        ("sgd_momentum", "sgd", dict(lr=0.1, momentum=0.9)),
        ("sgd_momentum_wd", "sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.05)),
        ("sgd_nesterov", "sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
        ("sgd_nesterov_wd", "sgd", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.01)),
        ("rmsprop", "rmsprop", dict(lr=0.01, alpha=0.99, eps=1e-8)),
        ("rmsprop_keras", "rmsprop", dict(lr=0.001, alpha=0.9, eps=1e-7)),
        ("rmsprop_wd", "rmsprop", dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.05)),
        ("adagrad", "adagrad", dict(lr=0.1, eps=1e-10)),
        ("adagrad_keras", "adagrad", dict(lr=0.05, initial_accumulator_value=0.1, eps=1e-7)),
        ("adagrad_wd", "adagrad", dict(lr=0.1, eps=1e-10, weight_decay=0.05)),
        ("adagrad_lr_decay", "adagrad", dict(lr=0.1, lr_decay=0.1, eps=1e-10)),
        ("adam", "adam", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
        ("adam_keras", "adam", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-7)),
        ("adam_wd", "adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.05)),
        ("adamw", "adamw", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
        ("adamw_wd", "adamw", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.3)),
        ("adadelta", "adadelta", dict(lr=1.0, rho=0.9, eps=1e-6)),
        ("adadelta_wd", "adadelta", dict(lr=0.5, rho=0.95, eps=1e-7, weight_decay=0.05)),
    ]
    ctors = {
        "sgd": torch.optim.SGD,
        "rmsprop": torch.optim.RMSprop,
        "adagrad": torch.optim.Adagrad,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "adadelta": torch.optim.Adadelta,
    }
    tensors = {"p0_init": p0.clone(), "p1_init": p1.clone()}
    for k in range(STEPS):
        tensors[f"p0_grad_{k}"] = grads0[k].clone()
        tensors[f"p1_grad_{k}"] = grads1[k].clone()
    meta = []
    for name, kind, hyper in cases:
        a = p0.clone().requires_grad_(True)
        b = p1.clone().requires_grad_(True)
        opt = ctors[kind]([a, b], foreach=False, **hyper)
        for k in range(STEPS):
            a.grad = grads0[k].clone()
            b.grad = grads1[k].clone()
            opt.step()
            if k == 0:
                tensors[f"{name}/p0_step1"] = a.detach().clone()
                tensors[f"{name}/p1_step1"] = b.detach().clone()
        tensors[f"{name}/p0_step10"] = a.detach().clone()
        tensors[f"{name}/p1_step10"] = b.detach().clone()
        h = dict(hyper)
        if "betas" in h:
            h["beta1"], h["beta2"] = h.pop("betas")
        meta.append({"name": name, "optimizer": kind, "hyper": h})
    save_file(tensors, os.path.join(OUT, "optim.safetensors"), metadata={"cases": json.dumps(meta)})


def loss_fixtures():
    g = torch.Generator().manual_seed(99)
    tensors = {}
    meta = []

    def record(name, loss_name, x, y, fn):
        xi = x.clone().requires_grad_(True)
        loss = fn(xi, y)
        loss.backward()
        grad = xi.grad.clone()
        tensors[f"{name}/input"] = x.clone()
        tensors[f"{name}/target"] = y.clone().float()
        tensors[f"{name}/loss"] = loss.detach().reshape(1).clone()
        tensors[f"{name}/grad"] = grad
        meta.append({"name": name, "loss": loss_name})

    # BCE from logits, including large magnitudes for stability.
    x = torch.randn(4, 3, generator=g) * 3
    x[0, 0], x[1, 1], x[2, 2] = 40.0, -40.0, 0.0
    y = torch.rand(4, 3, generator=g)
    y[0] = torch.tensor([1.0, 0.0, 1.0])
    record("bce_logits", "bce_logits", x, y, torch.nn.functional.binary_cross_entropy_with_logits)

    # BCE from probabilities, with exact 0 and 1 to exercise torch's log clamp at -100.
    p = torch.rand(4, 3, generator=g) * 0.98 + 0.01
    p[0, 0], p[0, 1], p[1, 0], p[1, 1] = 0.0, 1.0, 1.0, 0.0
    y = (torch.rand(4, 3, generator=g) > 0.5).float()
    y[0, 0], y[0, 1], y[1, 0], y[1, 1] = 1.0, 0.0, 1.0, 0.0
    y[3] = torch.tensor([0.25, 0.5, 0.75])
    record("bce_probs", "bce_probs", p, y, torch.nn.functional.binary_cross_entropy)

    # Categorical cross-entropy with one-hot and soft targets.
    x = torch.randn(4, 5, generator=g) * 2
    y = torch.zeros(4, 5)
    y[0, 2] = 1.0
    y[1, 0] = 1.0
    y[2] = torch.softmax(torch.randn(5, generator=g), 0)
    y[3] = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.0])
    record("cce", "cce", x, y, torch.nn.functional.cross_entropy)

    # Sparse categorical cross-entropy on [N, C].
    x = torch.randn(6, 5, generator=g) * 2
    x[0, 1] = 60.0
    y = torch.tensor([1, 0, 4, 2, 2, 3])
    record("sparse_2d", "sparse_cce", x, y.float(), lambda a, t: torch.nn.functional.cross_entropy(a, t.long()))

    # Sparse categorical cross-entropy on [B, T, C]; torch wants classes in dim 1.
    x = torch.randn(2, 3, 4, generator=g) * 2
    y = torch.tensor([[0, 3, 1], [2, 2, 0]])
    record(
        "sparse_3d",
        "sparse_cce",
        x,
        y.float(),
        lambda a, t: torch.nn.functional.cross_entropy(a.permute(0, 2, 1), t.long()),
    )

    x = torch.randn(3, 4, generator=g)
    y = torch.randn(3, 4, generator=g)
    record("mse", "mse", x, y, torch.nn.functional.mse_loss)

    x = torch.randn(3, 4, generator=g)
    y = torch.randn(3, 4, generator=g)
    y[0, 0] = x[0, 0]
    y[2, 3] = x[2, 3]
    record("mae", "mae", x, y, torch.nn.functional.l1_loss)

    save_file(tensors, os.path.join(OUT, "loss.safetensors"), metadata={"cases": json.dumps(meta)})


def clip_fixtures():
    g = torch.Generator().manual_seed(7)
    tensors = {}
    for name, max_norm in [("clip", 1.0), ("noclip", 100.0)]:
        a = torch.zeros(3, 4, requires_grad=True)
        b = torch.zeros(5, requires_grad=True)
        a.grad = torch.randn(3, 4, generator=g) * 2
        b.grad = torch.randn(5, generator=g) * 2
        tensors[f"{name}/g0_before"] = a.grad.clone()
        tensors[f"{name}/g1_before"] = b.grad.clone()
        norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm, foreach=False)
        tensors[f"{name}/g0_after"] = a.grad.clone()
        tensors[f"{name}/g1_after"] = b.grad.clone()
        tensors[f"{name}/norm"] = norm.reshape(1).clone()
        tensors[f"{name}/max_norm"] = torch.tensor([max_norm])
    save_file(tensors, os.path.join(OUT, "clip.safetensors"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    optim_fixtures()
    loss_fixtures()
    clip_fixtures()
    print("wrote", sorted(os.listdir(OUT)))
