"""Built-in layers: the 1-D layers' shapes, one_hot's depth, and the compiler's own operators
kept out of the names a .nn file can call."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_model

import nngraph as ng
from nngraph.errors import NNError


@pytest.mark.parametrize(
    "call,shape",
    [
        ("conv1d(4, kernel=3)", ("batch", 4, 14)),
        ("conv1d(4, kernel=3, stride=2, padding=1, dilation=2)", ("batch", 4, 7)),
        ("maxpool(2)", ("batch", 2, 8)),
        ("avgpool1d(4, stride=2, padding=2)", ("batch", 2, 9)),
        ("transpose([0, 2, 1])", ("batch", 16, 2)),
        ("slice(axis=2, start=2, end=10)", ("batch", 2, 8)),
        ("flatten", ("batch", 32)),
        ("softmax(axis=1)", ("batch", 2, 16)),
    ],
)
def test_sequence_layers_shapes(call, shape):
    m = ng.compile_source(f"model M {{\n input x: f32[batch, 2, 16]\n output o = x | {call}\n}}")
    assert m.graph.type(m.graph.outputs["o"]).shape == shape
    out = run_model(m, x=np.ones((3, 2, 16), np.float32))["o"]
    assert out.shape == tuple(3 if d == "batch" else d for d in shape)


@pytest.mark.parametrize("name", ["batchnorm_train", "conv_patches", "conv_gemm_grad_weight"])
def test_operators_the_compiler_makes_are_not_layers(name):
    """Operators made by passes and gradient rules are no names a .nn file can call."""
    src = f"model M {{\n    input x: f32[batch, 2, 4, 4]\n    output y = x | {name}\n}}\n"
    with pytest.raises(NNError, match="unknown layer"):
        ng.compile_source(src)


def test_one_hot_takes_an_integer_depth():
    m = ng.compile_source("model M {\n    input x: i64[batch]\n    output y = x | one_hot(depth=5)\n}\n")
    assert m.graph.type(m.graph.outputs["y"]).shape == ("batch", 5)
