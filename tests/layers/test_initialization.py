"""Parameter initialization: seeded and PyTorch-like, each weight with its own fans (recurrent
input weights, grouped convolutions); the seed is checked."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY, param_values

import nngraph as ng


def test_initialization_is_seeded_and_pytorch_like():
    src = "model M {\n input x: f32[batch, 400]\n output o = x | dense(300) | dense(300, init=he_normal)\n}"
    a, b, c = ng.compile_source(src, seed=1), ng.compile_source(src, seed=1), ng.compile_source(src, seed=2)
    pa, pb, pc = param_values(a), param_values(b), param_values(c)
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert not np.array_equal(pa["dense_1.weight"], pc["dense_1.weight"])
    w = pa["dense_1.weight"]  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(w).max() <= 1 / np.sqrt(400) and np.abs(w).max() > 0.9 / np.sqrt(400)
    assert abs(pa["dense_2.weight"].std() - np.sqrt(2 / 300)) < 0.01  # he_normal
    assert not pa["dense_2.bias"].any()


@pytest.mark.parametrize(
    "init, bound", [("he_uniform", np.sqrt(6 / 64)), ("xavier_uniform", np.sqrt(6 / (64 + 64)))]
)
def test_recurrent_input_weights_use_their_own_fan_in(init, bound):
    """Regression: weight_ih under he/xavier init took the hidden width as its fan-in."""
    m = ng.compile_source(
        f"model M {{\n    input x: f32[batch, 5, 64]\n    output y = x | lstm(16, init={init})\n}}\n"
    )
    w = m.graph.node("lstm_1.weight_ih_l0")["value"]
    assert w.shape == (64, 64)
    assert 0.9 * bound < np.abs(w).max() <= bound


def test_xavier_on_a_grouped_convolution_uses_torchs_fans():
    """torch: fan_in = (cin / groups) * k, fan_out = cout * k (the weight's dims 1 and 0)."""
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 16, 8, 8]\n output y = x | conv2d(64, kernel=3, groups=4, init=xavier_normal)\n}\n"
    )
    w = m.graph.node("conv2d_1.weight")["value"]
    assert w.shape == (64, 4, 3, 3)
    want = np.sqrt(2 / (4 * 9 + 64 * 9))
    assert abs(w.std() / want - 1) < 0.06, (w.std(), want)


def test_negative_seed_from_python_is_an_nnerror():
    """Regression: a negative seed from Python was not an NNError."""
    with pytest.raises(ng.NNError, match="seed must be an integer >= 0"):
        ng.compile_source(TINY, seed=-1)
