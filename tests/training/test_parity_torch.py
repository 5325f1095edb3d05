"""Parity with PyTorch: the same initial weights, batches and dropout masks give the same
losses for 50 steps (SGD with momentum and Adam), for the digits MLP and CNN, to 1e-4.

The MLP runs free: both sides train on their own for 50 steps. The CNN is synchronized
before every step (PyTorch gets nngraph's parameters and optimizer state), then both
take one step and the losses and new parameters are compared: a max-pool window whose two
largest values differ by float32 noise sends its gradient to a different pixel on either
side, and over many free steps that alone parts the curves, as it parts PyTorch float32
from PyTorch float64 (see ../shared/notes/training-step-performance.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import nngraph as ng
from nngraph.runtime.data import load_digits
from nngraph.runtime.stepper import Stepper

torch = pytest.importorskip("torch")

STEPS = 50
OPTIMIZERS = {"sgd": "sgd(lr=0.01, momentum=0.9)", "adam": "adam(lr=0.001)"}


def model_text(example: str) -> str:
    text = (ROOT / "examples" / example).read_text()
    return text[: text.index("train ")]


def compile_with(example: str, opt: str):
    src = model_text(example) + (
        "train M {\n data = digits\n target label: i64[batch]\n loss = cross_entropy(logits, label)\n"
        f" optimizer = {OPTIMIZERS[opt]}\n batch = 32\n metrics = [accuracy]\n}}\n"
    )
    name = src.split("model ")[1].split()[0]
    return ng.compile_source(src.replace("train M", f"train {name}"), example)


class TorchMLP(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.l1, self.l2, self.l3 = (torch.nn.Linear(*w[f"dense_{i}.weight"].shape) for i in (1, 2, 3))
        for i, layer in enumerate((self.l1, self.l2, self.l3), 1):
            layer.weight.data = torch.tensor(w[f"dense_{i}.weight"].T.copy())
            layer.bias.data = torch.tensor(w[f"dense_{i}.bias"])

    def named(self):
        return {
            f"dense_{i}.{k}": (getattr(layer, k if k == "bias" else "weight"), k == "weight")
            for i, layer in enumerate((self.l1, self.l2, self.l3), 1)
            for k in ("weight", "bias")
        }

    def forward(self, x, keep):
        h = torch.relu(self.l1(x)) * keep["dropout_1.noise"] / 0.9
        return self.l3(torch.relu(self.l2(h)))


class TorchCNN(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        conv = lambda name, pad: self._conv(w, name, pad)
        self.stem = conv("conv2d_1", 1)
        self.c1, self.c2 = conv("residual_1/conv2d_1", 1), conv("residual_1/conv2d_2", 1)
        self.b1, self.b2 = (self._bn(w, f"residual_1/batchnorm_{i}") for i in (1, 2))
        self.fc = torch.nn.Linear(*w["dense_1.weight"].shape)
        self.fc.weight.data = torch.tensor(w["dense_1.weight"].T.copy())
        self.fc.bias.data = torch.tensor(w["dense_1.bias"])

    @staticmethod
    def _conv(w, name, pad):
        weight = w[f"{name}.weight"]
        bias = f"{name}.bias" in w  # no bias before a batchnorm, whose batch mean cancels it
        c = torch.nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], padding=pad, bias=bias)
        c.weight.data = torch.tensor(weight)
        if bias:
            c.bias.data = torch.tensor(w[f"{name}.bias"])
        return c

    @staticmethod
    def _bn(w, name):
        b = torch.nn.BatchNorm2d(len(w[f"{name}.scale"]))
        b.weight.data, b.bias.data = torch.tensor(w[f"{name}.scale"]), torch.tensor(w[f"{name}.bias"])
        return b

    def named(self):
        out = {
            "conv2d_1.weight": (self.stem.weight, False),
            "conv2d_1.bias": (self.stem.bias, False),
            "dense_1.weight": (self.fc.weight, True),
            "dense_1.bias": (self.fc.bias, False),
        }
        for i, (c, b) in enumerate(((self.c1, self.b1), (self.c2, self.b2)), 1):
            out[f"residual_1/conv2d_{i}.weight"] = (c.weight, False)
            out[f"residual_1/batchnorm_{i}.scale"] = (b.weight, False)
            out[f"residual_1/batchnorm_{i}.bias"] = (b.bias, False)
        return out

    def forward(self, x, keep):
        h = torch.relu(self.stem(x))
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(h)))))
        h = torch.nn.functional.max_pool2d(torch.relu(h + y), 2).flatten(1)
        return self.fc(h * keep["dropout_1.noise"] / 0.75)


CASES = [("digits_mlp.nn", TorchMLP, True, False), ("digits_cnn.nn", TorchCNN, False, True)]


def sync(ref, optim, state: dict, step: int, opt: str, params: list[str]) -> None:
    """Give PyTorch nngraph's parameters and optimizer state (whose slots are flat vectors over
    all parameters, in the interface's order)."""
    offsets, start = {}, 0
    for name in params:
        offsets[name] = (start, state[name].size)
        start += state[name].size
    with torch.no_grad():
        for name, (p, transposed) in ref.named().items():
            p.copy_(torch.tensor(state[name].T if transposed else state[name]))
            if step == 1:
                continue
            lo, n = offsets[name]

            def slot(k, name=name, lo=lo, n=n, transposed=transposed):
                v = state[f"optimizer.{k}"][lo : lo + n].reshape(state[name].shape)
                return torch.tensor(v.T if transposed else v)

            if opt == "sgd":
                optim.state[p]["momentum_buffer"] = slot("momentum")
            else:
                optim.state[p].update(
                    step=torch.tensor(float(step - 1)), exp_avg=slot("m"), exp_avg_sq=slot("v")
                )


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("example,net,flat,synced", CASES, ids=["mlp", "cnn"])
def test_losses_match_pytorch(example, net, flat, synced, opt):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    m = compile_with(example, opt)
    c = m.training("step")
    stepper = Stepper(c.to_onnx().SerializeToString(), c.initial)
    ref = net({k: v.copy() for k, v in c.initial.items()})
    ref.train()
    spec = m.train_spec()
    optim = (
        torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9)
        if opt == "sgd"
        else torch.optim.Adam(ref.parameters(), lr=0.001)
    )
    data = load_digits(flat=flat)
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    batches = data.batches(spec.batch, seed=0, epoch=0)
    for step in range(1, STEPS + 1):
        try:
            b = next(batches)
        except StopIteration:
            batches = data.batches(spec.batch, seed=0, epoch=step)
            b = next(batches)
        n = len(b["label"])
        # Jitter the pixels: digits are integers, so background windows hold exact float32 ties
        # that make even PyTorch float32 and float64 drift apart by 1% within 50 steps.
        b["image"] = b["image"] + np.random.default_rng(step).normal(0, 0.05, b["image"].shape).astype(
            np.float32
        )
        noise = {
            k: rng.random([d if isinstance(d, int) else n for d in shape], dtype=np.float32)
            for k, (_, shape) in c.interface.noise.items()
        }
        before = stepper.state()
        out = stepper.run(
            {**b, **noise, "lr": np.array(spec.optimizer.args["lr"], np.float32), "step": np.array(step)}
        )
        ours.append(float(out["loss"]))
        keep = {k: torch.tensor((v >= c.interface.noise[k][0]).astype(np.float32)) for k, v in noise.items()}
        if synced:
            sync(ref, optim, before, step, opt, c.interface.params)
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            ref(torch.tensor(b["image"]), keep), torch.tensor(b["label"])
        )
        loss.backward()
        optim.step()
        theirs.append(float(loss.detach()))
        if synced:
            after = stepper.state()
            for name, (p, transposed) in ref.named().items():
                want = p.detach().numpy().T if transposed else p.detach().numpy()
                assert np.abs(after[name] - want).max() <= 1e-3 * np.abs(want).max(), (name, step)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < ours[0]
