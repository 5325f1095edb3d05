"""fuse_gemm: MatMul (+ Add of a bias) -> Gemm, transposes folded into transA/transB."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT
from pass_helpers import ops, run

import nngraph as ng
from nngraph.passes.fusions import fuse_gemm


def test_fuse_gemm_shrinks_the_graph_where_it_applies():
    mlp = ng.compile_file(ROOT / "examples" / "mlp.nn")
    o0, o2 = ops(mlp.to_onnx(0)), ops(mlp.to_onnx(2))
    assert o0["MatMul"] == 3 and o0["Add"] == 3 and "Gemm" not in o0
    assert o2.get("Gemm") == 3 and "MatMul" not in o2 and "Add" not in o2
    # the backward graph: transposes folded into Gemm's transA/transB
    step = ng.compile_file(ROOT / "examples" / "digits_mlp.nn").training("step")
    s0, s2 = ops(step.to_onnx(0)), ops(step.to_onnx(2))
    assert s2.get("Transpose", 0) < s0.get("Transpose", 0) and s2["Gemm"] >= 6


def test_gemm_check_says_why_not():
    m = ng.compile_source("model M {\n input t: f32[batch, seq, 8]\n output o = t | dense(4)\n}")
    add = next(n for n in m.graph.g if m.graph.node(n)["op"] == "add")
    assert fuse_gemm.RULE.why_not(m.graph, add) == "Gemm takes 2-D operands only"


@pytest.mark.parametrize("dtype", ["i64", "i32"])
def test_an_integer_matmul_stays_a_matmul_and_runs_at_every_level(dtype):
    """onnxruntime has no integer Gemm: fusing one wrote a model that compiled and could not run."""
    src = (
        f"model M {{\n input a: {dtype}[batch, 3]\n input b: {dtype}[3, 2]\n"
        " output o = matmul(a, a | transpose([1, 0]))\n output p = matmul(a, b) + 1\n}"
    )
    m = ng.compile_source(src)
    mm = next(n for n in m.graph.g if m.graph.node(n)["op"] == "matmul")
    assert "integer Gemm" in fuse_gemm.RULE.why_not(m.graph, mm)
    np_t = np.int64 if dtype == "i64" else np.int32
    a, b = np.arange(6, dtype=np_t).reshape(2, 3), np.arange(6, dtype=np_t).reshape(3, 2)
    for level in (0, 1, 2):
        out = run(m.to_onnx(level), {"a": a, "b": b})
        np.testing.assert_array_equal(out["o"], a @ a.T)
        np.testing.assert_array_equal(out["p"], a @ b + 1)
