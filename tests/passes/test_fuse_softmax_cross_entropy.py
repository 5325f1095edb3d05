"""fuse_softmax_cross_entropy: log_softmax, one_hot, sum and mean -> SoftmaxCrossEntropyLoss,
with its closed-form gradient when it runs before autodiff."""

from __future__ import annotations

import numpy as np
from conftest import ROOT
from pass_helpers import ops, run

import nngraph as ng
from nngraph.passes.fusions import fuse_softmax_cross_entropy


def test_softmax_cross_entropy_fusion_and_its_closed_form_gradient():
    m = ng.compile_file(ROOT / "examples" / "digits_mlp.nn")
    fused, plain = m.training("step", level=2), m.training("step", level=0)
    o2, o0 = fused.to_onnx(2), plain.to_onnx(0)
    assert "SoftmaxCrossEntropyLoss" in ops(o2) and "LogSoftmax" not in ops(o2)
    assert "SoftmaxCrossEntropyLoss" not in ops(o0) and "LogSoftmax" in ops(o0)
    rng = np.random.default_rng(0)
    feeds = {
        "image": rng.random((16, 64), dtype=np.float32),
        "label": rng.integers(0, 10, 16),
        "lr": np.array(0.05, np.float32),
        "step": np.array(2),
        **plain.initial,
    }
    feeds.update({k: rng.random((16, 128), dtype=np.float32) for k in plain.interface.noise})
    a, b = run(o0, feeds), run(o2, feeds)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # an eval graph (no backward) gets the forward fusion from the ordinary pipeline
    assert "SoftmaxCrossEntropyLoss" in ops(m.training("eval", level=0).to_onnx(2))


def test_softmax_cross_entropy_says_why_not_after_autodiff():
    """After autodiff the backward graph reads the pieces, which is why the rule runs before it;
    an eval graph has no backward, so the rule applies there."""
    m = ng.compile_file(ROOT / "examples" / "digits_mlp.nn")
    rule = fuse_softmax_cross_entropy.RULE
    step, ev = m.training("step", level=0).graph, m.training("eval", level=0).graph
    (loss,) = [n for n in step.g if rule.match(step, n) is not None]
    assert rule.why_not(step, loss) == "the sum is used elsewhere too"
    assert [rule.why_not(ev, n) for n in ev.g if rule.match(ev, n) is not None] == [None]
