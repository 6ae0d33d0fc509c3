"""PyTorch interchange: torch state dicts load unchanged; ours load into torch.
Skipped where torch is not installed (CI installs numpy and pytest only)."""

import numpy as np
import pytest

import gated

torch = pytest.importorskip("torch")


class Net(torch.nn.Module):
    """The spec's model with the spec's layer names."""

    def __init__(self):
        super().__init__()
        self.lstm_1 = torch.nn.LSTM(1, 4, batch_first=True)
        self.dense_1 = torch.nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.lstm_1(x)
        return self.dense_1(out[:, -1])


def test_torch_state_dict_loads_and_predicts_alike(spec, data):
    x, _ = data
    torch.manual_seed(0)
    net = Net().eval()
    model = gated.Sequential.from_spec(spec)
    model.load_state_dict(net.state_dict())  # torch tensors, two LSTM biases
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-6)


def test_our_state_dict_loads_into_torch(spec, data):
    x, y = data
    model = gated.Sequential.from_spec(spec, seed=3)
    model.fit(x, y, loss="sparse_categorical_crossentropy", epochs=2, verbose=0)
    net = Net().eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-6)
