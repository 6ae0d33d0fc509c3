"""Writes tests/fixtures/torch_model/: a PyTorch model saved the way a user would
(safetensors.torch.save_file(model.state_dict())), the equivalent gated spec,
inputs and PyTorch's outputs. tests/model_dir.rs runs `gated predict` on it.

Run with: /work/venv/bin/python scripts/make_torch_model_fixture.py
(CI never runs this; the outputs are committed.)
"""

import os

import numpy as np
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "torch_model")

SPEC = """# Embedding(20, 8) -> LSTM(16), last step -> Dense(3); saved from PyTorch.
name = "torch_model"

[input]
shape = [7]
dtype = "int32"

[[layer]]
type = "embedding"
name = "embedding_1"
input_dim = 20
output_dim = 8

[[layer]]
type = "lstm"
name = "lstm_1"
units = 16

[[layer]]
type = "dense"
name = "dense_1"
units = 3
"""


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding_1 = torch.nn.Embedding(20, 8)
        self.lstm_1 = torch.nn.LSTM(8, 16, batch_first=True)
        self.dense_1 = torch.nn.Linear(16, 3)

    def forward(self, ids):
        out, _ = self.lstm_1(self.embedding_1(ids))
        return self.dense_1(out[:, -1, :])


def main():
    torch.manual_seed(7)
    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(3)
    train_x = torch.randint(0, 20, (32, 7), generator=g)
    train_y = torch.randint(0, 3, (32,), generator=g)
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(train_x), train_y)
        loss.backward()
        opt.step()

    x = torch.randint(0, 20, (6, 7), generator=g)
    with torch.no_grad():
        y = model(x)

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "model.toml"), "w") as f:
        f.write(SPEC)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(OUT, "weights.safetensors"))
    np.save(os.path.join(OUT, "x.npy"), x.numpy().astype(np.int32))
    np.save(os.path.join(OUT, "y_torch.npy"), y.numpy().astype(np.float32))
    # Labels for `gated eval`: the argmax of PyTorch's outputs, so accuracy is 1.
    np.save(os.path.join(OUT, "labels.npy"), y.argmax(dim=1).numpy().astype(np.int32))
    ce = torch.nn.functional.cross_entropy(y, y.argmax(dim=1)).item()
    with open(os.path.join(OUT, "eval_loss.txt"), "w") as f:
        f.write(f"{ce:.6f}\n")
    print("keys:", sorted(state))
    print("outputs:", y.shape, "loss on argmax labels:", ce)


if __name__ == "__main__":
    main()
