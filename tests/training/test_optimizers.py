"""Optimizer variants, clipping and schedules against PyTorch and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nngraph as ng
from nngraph.runtime.stepper import Stepper
from nngraph.training.schedules import learning_rate
from nngraph.training.spec import Setting

SRC = """
model M {{
    input x: f32[batch, 5]
    output o = x | dense(7) | tanh | dense(3)
}}
train M {{
    data = digits
    target t: i64[batch]
    loss = cross_entropy(o, t)
    optimizer = {opt}
    {extra}
}}
"""


def steps(opt: str, extra: str = "", n: int = 10):
    c = ng.compile_source(SRC.format(opt=opt, extra=extra), "o.nn").training("step")
    st = Stepper(c.to_onnx().SerializeToString(), c.initial)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 5)).astype(np.float32), rng.integers(0, 3, 8)) for _ in range(n)]
    losses = []
    for i, (x, t) in enumerate(batches, 1):
        losses.append(
            float(st.run({"x": x, "t": t, "lr": np.array(0.1, np.float32), "step": np.array(i)})["loss"])
        )
    return c, st, batches, losses


def torch_run(c, batches, make_opt, clip=None):
    torch = pytest.importorskip("torch")
    w1, b1, w2, b2 = (
        torch.tensor(c.initial[k].copy(), requires_grad=True)
        for k in ("dense_1.weight", "dense_1.bias", "dense_2.weight", "dense_2.bias")
    )
    opt = make_opt(torch, [w1, b1, w2, b2])
    losses = []
    for x, t in batches:
        opt.zero_grad()
        out = torch.tanh(torch.tensor(x) @ w1 + b1) @ w2 + b2
        loss = torch.nn.functional.cross_entropy(out, torch.tensor(t))
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_([w1, b1, w2, b2], clip)
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize(
    "opt,make",
    [
        ("sgd(lr=0.1)", lambda t, p: t.optim.SGD(p, lr=0.1)),
        (
            "sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=0.01)",
            lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        ),
        (
            "adam(lr=0.1, beta1=0.8, weight_decay=0.01)",
            lambda t, p: t.optim.Adam(p, lr=0.1, betas=(0.8, 0.999), weight_decay=0.01),
        ),
        ("adamw(lr=0.1)", lambda t, p: t.optim.AdamW(p, lr=0.1)),
    ],
)
def test_optimizers_match_pytorch(opt, make):
    c, _, batches, ours = steps(opt)
    np.testing.assert_allclose(ours, torch_run(c, batches, make), rtol=1e-4)


def test_clip_norm_matches_pytorch():
    c, _, batches, ours = steps("sgd(lr=0.1)", "clip_norm = 0.05")
    np.testing.assert_allclose(
        ours, torch_run(c, batches, lambda t, p: t.optim.SGD(p, lr=0.1), clip=0.05), rtol=1e-4
    )


def test_schedules():
    s = lambda name, **a: Setting(name, a, None)
    assert learning_rate(0.1, s("constant"), 5, 0, 100) == 0.1
    assert learning_rate(0.1, s("step", every=2, gamma=0.5), 1, 5, 100) == pytest.approx(0.1 * 0.25)
    assert learning_rate(0.1, s("cosine", min_lr=0.0), 1, 0, 100) == pytest.approx(0.1)
    assert learning_rate(0.1, s("cosine", min_lr=0.0), 51, 0, 100) == pytest.approx(0.05)
    assert learning_rate(0.1, s("warmup", steps=10), 5, 0, 100) == pytest.approx(0.05)
    assert learning_rate(0.1, s("warmup_cosine", steps=10, min_lr=0.0), 10, 0, 100) == pytest.approx(0.1)
    mid = learning_rate(0.1, s("warmup_cosine", steps=10, min_lr=0.0), 55, 0, 100)
    assert mid == pytest.approx(0.05 * (1 + math.cos(math.pi * 45 / 90)))


def test_early_stopping_stops(tmp_path):
    from nngraph.runtime.data import load_digits

    src = (
        "model M {\n input image: f32[batch, 64]\n output logits = image | dense(10)\n}\n"
        "train M {\n data = digits\n target label: i64[batch]\n loss = cross_entropy(logits, label)\n"
        " optimizer = sgd(lr=0.0)\n epochs = 50\n metrics = [accuracy]\n"
        " early_stopping = early_stopping(metric=accuracy, patience=2)\n}\n"
    )
    result = ng.compile_source(src, "e.nn").trainer().fit(dataset=load_digits(flat=True))
    assert result.epochs == 3  # lr 0 never improves: the first epoch sets the best, two more exhaust patience
