#!/usr/bin/env python3
"""The PyTorch side of bench/e2e.py: the same four jobs as the gated commands,
written the way a PyTorch user would write them (tensor slicing, Adam,
clip_grad_norm_, a validation pass, torch.save). Not run by CI.

    python bench/e2e_torch.py train-text CORPUS OUT [--steps 300]
    python bench/e2e_torch.py train-array X.npy Y.npy OUT
    python bench/e2e_torch.py predict MODEL_DIR X.npy OUT.npy
    python bench/e2e_torch.py generate MODEL_DIR --length 2000

Each job matches its gated command (see bench/e2e.py for both command lines):
(a) char LM: Embedding 64 -> LSTM 256 x 2 -> Linear, 32 lanes x 100
    characters, Adam lr 2e-3, clip 5, 300 steps carrying the state across
    chunks, 95/5 train/validation split of the text, one validation pass at the
    end, weights and vocabulary saved;
(b) IMDB-shaped: Embedding(20000, 128) -> LSTM 128 -> Linear 1, BCE with
    logits, Adam 1e-3, batch 32, one epoch over the first 90 % (shuffled),
    validation on the last 10 %, weights saved;
(c) inference of (b)'s model on an array, batch 256, predictions saved as .npy;
(d) sampling 2,000 characters from (a)'s model at temperature 1.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn


class CharLM(nn.Module):
    def __init__(self, vocab, emb=64, units=256, layers=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, units, num_layers=layers, batch_first=True)
        self.dense = nn.Linear(units, vocab)

    def forward(self, x, state=None):
        h, state = self.lstm(self.embedding(x), state)
        return self.dense(h), state


class ImdbLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(20000, 128)
        self.lstm = nn.LSTM(128, 128, batch_first=True)
        self.dense = nn.Linear(128, 1)

    def forward(self, x):
        h, _ = self.lstm(self.embedding(x))
        return self.dense(h[:, -1])


def lanes(ids, batch, seq):
    """char-rnn batching: `batch` contiguous lanes, chunks of `seq` steps."""
    n = (len(ids) - 1) // (batch * seq) * (batch * seq)
    x = torch.tensor(ids[:n]).view(batch, -1)
    y = torch.tensor(ids[1:n + 1]).view(batch, -1)
    return list(zip(x.split(seq, dim=1), y.split(seq, dim=1)))


def train_text(a):
    text = open(a.corpus, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = [index[c] for c in text]
    n_train = int(len(ids) * 0.95)
    train, val = lanes(ids[:n_train], 32, 100), lanes(ids[n_train:], 32, 100)
    torch.manual_seed(0)
    model = CharLM(len(chars))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    state = None
    for step in range(a.steps):
        if step % len(train) == 0:
            state = None
        x, y = train[step % len(train)]
        opt.zero_grad()
        out, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = loss_fn(out.reshape(-1, len(chars)), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if (step + 1) % 10 == 0:
            print(f"step {step + 1}/{a.steps}: train loss {loss.item():.4f}", flush=True)
    model.eval()
    total, state = 0.0, None
    with torch.no_grad():
        for x, y in val:
            out, state = model(x, state)
            total += loss_fn(out.reshape(-1, len(chars)), y.reshape(-1)).item()
    print(f"validation loss {total / max(len(val), 1):.4f}")
    os.makedirs(a.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(a.out, "model.pt"))
    json.dump({"chars": chars}, open(os.path.join(a.out, "vocab.json"), "w"))


def train_array(a):
    x = torch.from_numpy(np.load(a.x).astype(np.int64))
    y = torch.from_numpy(np.load(a.y).astype(np.float32)).view(-1, 1)
    n_val = int(len(x) * 0.1)
    x_train, y_train, x_val, y_val = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
    torch.manual_seed(0)
    model = ImdbLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    order = torch.randperm(len(x_train))
    t0, total, batches = time.time(), 0.0, 0
    for start in range(0, len(order), 32):
        rows = order[start:start + 32]
        opt.zero_grad()
        loss = loss_fn(model(x_train[rows]), y_train[rows])
        loss.backward()
        opt.step()
        total, batches = total + loss.item(), batches + 1
    model.eval()
    with torch.no_grad():
        val = sum(loss_fn(model(x_val[s:s + 32]), y_val[s:s + 32]).item() * len(x_val[s:s + 32])
                  for s in range(0, len(x_val), 32)) / len(x_val)
    print(f"loss {total / batches:.4f} - val_loss {val:.4f} - {time.time() - t0:.1f}s")
    os.makedirs(a.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(a.out, "model.pt"))


def predict(a):
    model = ImdbLSTM()
    model.load_state_dict(torch.load(os.path.join(a.model, "model.pt")))
    model.eval()
    x = torch.from_numpy(np.load(a.x).astype(np.int64))
    out = []
    with torch.no_grad():
        for s in range(0, len(x), 256):
            out.append(model(x[s:s + 256]))
    np.save(a.out, torch.cat(out).numpy())


def generate(a):
    chars = json.load(open(os.path.join(a.model, "vocab.json")))["chars"]
    model = CharLM(len(chars))
    model.load_state_dict(torch.load(os.path.join(a.model, "model.pt")))
    model.eval()
    torch.manual_seed(0)
    c, state, text = torch.tensor([[chars.index("\n") if "\n" in chars else 0]]), None, []
    with torch.no_grad():
        for _ in range(a.length):
            out, state = model(c, state)
            p = torch.softmax(out[0, -1] / a.temperature, dim=-1)
            c = torch.multinomial(p, 1).view(1, 1)
            text.append(chars[c.item()])
    print("".join(text))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None)
    sub = ap.add_subparsers(dest="job", required=True)
    p = sub.add_parser("train-text")
    p.add_argument("corpus")
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=300)
    p = sub.add_parser("train-array")
    p.add_argument("x")
    p.add_argument("y")
    p.add_argument("out")
    p = sub.add_parser("predict")
    p.add_argument("model")
    p.add_argument("x")
    p.add_argument("out")
    p = sub.add_parser("generate")
    p.add_argument("model")
    p.add_argument("--length", type=int, default=2000)
    p.add_argument("--temperature", type=float, default=1.0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    {"train-text": train_text, "train-array": train_array, "predict": predict,
     "generate": generate}[a.job](a)


if __name__ == "__main__":
    main()
