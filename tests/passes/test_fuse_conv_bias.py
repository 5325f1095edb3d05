"""fuse_conv_bias: conv(x, w) + b -> conv(x, w, b) when b is a per-channel constant."""

from __future__ import annotations

import numpy as np
from pass_helpers import run

import nngraph as ng
from nngraph.core.ir import Graph
from nngraph.core.types import TensorType
from nngraph.onnx.lower import check, lower
from nngraph.passes.fusions import fuse_conv_bias, fuse_gemm
from nngraph.passes.manager import Runner, check_invariants
from nngraph.passes.pipeline import optimize


def test_conv_bias_rule_and_why_not():
    g = Graph("t")
    x = g.add("x", "input", [], TensorType("f32", ("batch", 2, 5, 5)), None)
    g.inputs.append(x)
    w = g.add(
        "w",
        "param",
        [],
        TensorType("f32", (3, 2, 3, 3)),
        None,
        value=np.ones((3, 2, 3, 3), np.float32),
        trainable=True,
    )
    conv = g.add(
        "conv",
        "conv",
        [x, w],
        TensorType("f32", ("batch", 3, 3, 3)),
        None,
        {"stride": (1, 1), "pads": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1},
    )
    b = g.add(
        "b",
        "const",
        [],
        TensorType("f32", (3, 1, 1)),
        None,
        value=np.arange(3, dtype=np.float32).reshape(3, 1, 1),
    )
    y = g.add("y", "add", [conv, b], TensorType("f32", ("batch", 3, 3, 3)), None, {})
    g.outputs["y"] = y
    check_invariants(g)
    assert fuse_conv_bias.RULE.why_not(g, y) is None
    assert fuse_gemm.RULE.why_not(g, y) == "no match"
    xv = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32)
    before = run(lower(g), {"x": xv})["y"]
    g2 = optimize(g, 2, Runner(check=True))
    assert [d["op"] for _, d in g2.g.nodes(data=True) if d["op"] not in ("input", "param", "const")] == [
        "conv"
    ]
    model = lower(g2)
    check(model)
    np.testing.assert_allclose(run(model, {"x": xv})["y"], before, rtol=1e-6)


def test_conv_bias_says_why_not_when_the_bias_is_an_input():
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 2, 5, 5]\n input b: f32[3, 1, 1]\n"
        " output o = (x | conv2d(3, kernel=3, bias=false)) + b\n}"
    )
    (add,) = m.graph.nodes_with("add")
    assert fuse_conv_bias.RULE.why_not(m.graph, add) == "the bias is not a constant"
