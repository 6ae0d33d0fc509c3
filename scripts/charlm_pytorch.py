#!/usr/bin/env python3
"""PyTorch reference for `gated train --text`: the same char-level model, data split,
batching, optimizer and number of steps, so the two validation losses can be compared.

Run by hand (PyTorch in a virtual environment outside the repository; CI never runs this):

    ~/venv/bin/python scripts/charlm_pytorch.py --text data.txt --units 512 --layers 2 --steps 300

Model: Embedding(V, E) -> LSTM(E, H, num_layers=L, batch_first) -> Linear(H, V), softmax
cross-entropy at every step. Data: the text's characters, sorted unique chars as the vocabulary,
the first train_frac of the stream for training and the next val_frac for validation (char-rnn's
split). Batching: the training stream is cut into `batch_size` contiguous lanes; chunk k+1 of lane
b continues chunk k, and the LSTM state is carried between chunks (truncated BPTT, detached).
Optimizer: RMSprop(lr, alpha=0.95, eps=1e-8) as char-rnn's rmsprop, gradient clipping by global
norm, learning-rate decay by `lr_decay` every epoch after `lr_decay_after` epochs.
Validation: mean cross-entropy over the whole validation stream cut the same way.
Prints one JSON line at the end: {"val_loss": ..., "train_seconds": ..., "steps": ...}.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn


def lanes(ids, batch, seq_len):
    """[batch, n_chunks*seq_len] inputs and next-char targets, contiguous per lane."""
    per_lane = (len(ids) - 1) // batch
    n_chunks = per_lane // seq_len
    usable = n_chunks * seq_len
    x = torch.stack([ids[b * per_lane: b * per_lane + usable] for b in range(batch)])
    y = torch.stack([ids[b * per_lane + 1: b * per_lane + 1 + usable] for b in range(batch)])
    return x, y, n_chunks


class CharLM(nn.Module):
    def __init__(self, vocab, emb, units, layers, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, units, num_layers=layers, batch_first=True, dropout=dropout)
        self.dense = nn.Linear(units, vocab)

    def forward(self, x, state=None):
        h, state = self.lstm(self.embedding(x), state)
        return self.dense(h), state


def evaluate(model, x, y, n_chunks, seq_len):
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for k in range(n_chunks):
            xb = x[:, k * seq_len:(k + 1) * seq_len]
            yb = y[:, k * seq_len:(k + 1) * seq_len]
            logits, state = model(xb, state)
            total += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1), reduction="sum").item()
            count += yb.numel()
    model.train()
    return total / max(count, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True)
    p.add_argument("--units", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embedding-dim", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--seq-len", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lr-decay", type=float, default=0.97)
    p.add_argument("--lr-decay-after", type=int, default=10)
    p.add_argument("--grad-clip", type=float, default=5.0)
    p.add_argument("--train-frac", type=float, default=0.95)
    p.add_argument("--val-frac", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    text = open(a.text, encoding="utf-8").read()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    n_train = int(len(ids) * a.train_frac)
    n_val = int(len(ids) * a.val_frac)
    tx, ty, t_chunks = lanes(ids[:n_train], a.batch_size, a.seq_len)
    vx, vy, v_chunks = lanes(ids[n_train:n_train + n_val], a.batch_size, a.seq_len)
    model = CharLM(len(vocab), a.embedding_dim, a.units, a.layers, a.dropout)
    opt = torch.optim.RMSprop(model.parameters(), lr=a.lr, alpha=0.95, eps=1e-8)
    state = None
    start = time.time()
    for step in range(a.steps):
        k = step % t_chunks
        epoch = step // t_chunks
        if k == 0:
            state = None
            lr = a.lr * (a.lr_decay ** max(0, epoch - a.lr_decay_after + 1)) if epoch >= a.lr_decay_after else a.lr
            for g in opt.param_groups:
                g["lr"] = lr
        xb = tx[:, k * a.seq_len:(k + 1) * a.seq_len]
        yb = ty[:, k * a.seq_len:(k + 1) * a.seq_len]
        logits, state = model(xb, state)
        state = tuple(s.detach() for s in state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), yb.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        if step % 50 == 0:
            print(f"step {step}: train loss {loss.item():.4f}", flush=True)
    seconds = time.time() - start
    val = evaluate(model, vx, vy, v_chunks, a.seq_len)
    print(json.dumps({"val_loss": val, "val_bpc": val / math.log(2), "train_seconds": seconds, "steps": a.steps}))


if __name__ == "__main__":
    main()
