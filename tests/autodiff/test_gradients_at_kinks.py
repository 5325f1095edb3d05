"""Gradients where a function has a kink and the input sits exactly on it. Finite differences
cannot judge these; the reference is PyTorch's convention, written out in NumPy: a tie between
the arguments of max/min splits the gradient in half, leaky_relu takes slope alpha at 0, and the
tied maxima of a reduction share its gradient evenly (torch.amax). Zero-initialized layers put
inputs exactly on these kinks on the first step."""

from __future__ import annotations

import numpy as np
import pytest

import nngraph as ng
from nngraph.runtime.stepper import Stepper

TRAIN = "train M {{\n data = digits\n target t: {t}\n loss = {loss}\n optimizer = sgd(lr=0.1)\n}}\n"
X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
T = np.array([[1, 0], [1, 1], [0, 1], [1, 1]], np.float32)


def grads(body: str, target: str, loss: str, feeds: dict) -> dict:
    src = f"model M {{\n    input x: {body}\n}}\n" + TRAIN.format(t=target, loss=loss)
    c = ng.compile_source(src).training("grads")
    return Stepper(c.to_onnx().SerializeToString(), c.initial).run(feeds)


def test_binary_cross_entropy_at_a_zero_logit_steps_toward_the_target():
    """d/dy mean(BCEWithLogits) = (sigmoid(y) - t) / size: at y = 0, 0.5 - t (the max(x, 0) in the
    stable form gave all of a tie to x, 1 - t: positive targets pulled nothing)."""
    out = grads(
        "f32[batch, 3]\n    output y = x | dense(2, init=zeros)",
        "f32[batch, 2]",
        "binary_cross_entropy(y, t)",
        {"x": X, "t": T},
    )
    dy = (0.5 - T) / T.size
    np.testing.assert_allclose(out["grad/dense_1.bias"], dy.sum(0), rtol=1e-6)
    np.testing.assert_allclose(out["grad/dense_1.weight"], X.T @ dy, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_a_tie_of_maximum_or_minimum_splits_the_gradient(op):
    out = grads(
        f"f32[batch, 3]\n    h = x | dense(2, init=zeros)\n    output y = {op}(h, h * 0)",
        "f32[batch, 2]",
        "mse(y, t)",
        {"x": X, "t": T},
    )
    dy = 2 * (0 - T) / T.size  # y = 0 everywhere
    # half reaches h directly, half through h * 0 (which passes nothing back to h)
    np.testing.assert_allclose(out["grad/dense_1.bias"], 0.5 * dy.sum(0), rtol=1e-6)


def test_leaky_relu_at_zero_has_slope_alpha():
    out = grads(
        "f32[batch, 3]\n    output y = x | dense(2, init=zeros) | leaky_relu(alpha=0.1)",
        "f32[batch, 2]",
        "mse(y, t)",
        {"x": X, "t": T},
    )
    dy = 2 * (0 - T) / T.size
    np.testing.assert_allclose(out["grad/dense_1.bias"], 0.1 * dy.sum(0), rtol=1e-6)


def test_tied_maxima_share_the_gradient_of_reduce_max():
    x = np.array([[5, 5, 5, 5], [1, 2, 2, 0]], np.float32)
    out = grads(
        "f32[batch, 4]\n    output y = reduce_max(x + (x | dense(4, bias=false, init=zeros)), axes=[1], keepdims=0)",
        "f32[batch]",
        "mse(y, t)",
        {"x": x, "t": np.zeros(2, np.float32)},
    )
    y = x.max(1)
    hit = (x == y[:, None]).astype(np.float32)
    dz = (2 * y / 2)[:, None] * hit / hit.sum(1, keepdims=True)  # d loss / d (x + xW)
    np.testing.assert_allclose(out["grad/dense_1.weight"], x.T @ dz, rtol=1e-6)
