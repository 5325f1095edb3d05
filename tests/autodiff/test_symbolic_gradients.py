"""Gradients through concat and slice where the sizes are only known at run time (a symbolic
`seq` or `batch`): checked against finite differences and run in onnxruntime by gradcheck."""

from __future__ import annotations

import numpy as np
import pytest

import nngraph as ng
from nngraph.training.gradcheck import gradcheck

TRAIN = """
train M {{
    data = digits
    target t: f32[batch, 3]
    loss = mse(y, t)
    optimizer = sgd(lr=0.1)
}}
"""


def check(model: str, batch: dict) -> None:
    c = ng.compile_source(model + TRAIN.format()).training("grads")
    rows = gradcheck(c, batch, per_param=4)
    assert rows, "no parameters were checked"
    for r in rows:
        assert r.max_rel_fd < 1e-4, r
        assert r.max_rel_onnx < 1e-3, r


@pytest.mark.parametrize("order", ["a, z, b", "z, a, b", "a, b, z"])
def test_concat_gradient_between_symbolic_sizes(order):
    """a and b come from parameters; z's size is symbolic too, so some part's bounds are run-time."""
    model = f"""
model M {{
    input x: f32[batch, seq, 4]
    input z: f32[batch, seq, 2]
    input w: f32[batch, len, 4]
    a = x | dense(2)
    b = w | dense(2, bias=false)
    output y = concat({order}, axis=1) | dense(3) | reduce_mean(axes=[1])
}}
"""
    rng = np.random.default_rng(0)
    batch = {
        "x": rng.normal(size=(3, 5, 4)).astype(np.float32),
        "z": rng.normal(size=(3, 5, 2)).astype(np.float32),
        "w": rng.normal(size=(3, 2, 4)).astype(np.float32),
        "t": rng.normal(size=(3, 3)).astype(np.float32),
    }
    check(model, batch)


@pytest.mark.parametrize(
    "sl", ["step=2", "start=1, step=3", "start=-1, step=-2", "start=-2, end=0, step=-1", "step=-1"]
)
def test_slice_gradient_along_the_batch(sl):
    model = f"""
model M {{
    input x: f32[batch, 4]
    h = x | dense(3)
    s = h | slice(axis=0, {sl}) | reduce_mean(axes=[0], keepdims=1)
    output y = h * s
}}
"""
    rng = np.random.default_rng(1)
    batch = {"x": rng.normal(size=(7, 4)).astype(np.float32), "t": rng.normal(size=(7, 3)).astype(np.float32)}
    check(model, batch)
