"""fold_batchnorm: an inference batchnorm after a convolution folds into its weight and bias."""

from __future__ import annotations

from conftest import ROOT
from pass_helpers import ops

import nngraph as ng
from nngraph.passes.fusions import fold_batchnorm


def test_fold_batchnorm_removes_the_batchnorms_of_an_inference_cnn():
    cnn = ng.compile_file(ROOT / "examples" / "cnn.nn")
    assert ops(cnn.to_onnx(0))["BatchNormalization"] == 2 and "BatchNormalization" not in ops(cnn.to_onnx(2))


def test_fold_batchnorm_says_why_not():
    """A training (eval) graph's parameters are inputs, and a convolution read elsewhere too keeps
    its own weights."""
    c = ng.compile_file(ROOT / "examples" / "digits_cnn.nn").training("eval", level=0)
    bns = [n for n in c.graph.g if c.graph.node(n)["op"] == "batchnorm"]
    assert len(bns) == 2
    assert {fold_batchnorm.RULE.why_not(c.graph, n) for n in bns} == {
        "parameters are inputs (a training graph): nothing to fold into"
    }
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 2, 5, 5]\n c = x | conv2d(3, kernel=3)\n output o = (c | batchnorm) + c\n}"
    )
    (bn,) = m.graph.nodes_with("batchnorm")
    assert fold_batchnorm.RULE.why_not(m.graph, bn) == "the convolution's output is used elsewhere too"
