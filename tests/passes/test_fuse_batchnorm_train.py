"""fuse_batchnorm_train: batch norm on batch statistics, written in primitives, -> one
BatchNormalization (inference form over the batch's statistics) with the closed-form gradient."""

from __future__ import annotations

import numpy as np
from pass_helpers import CONV1D_NET, ops, run, step_feeds

import nngraph as ng
from nngraph.passes.fusions import fuse_batchnorm_train
from nngraph.passes.manager import Runner

BN_NET = """
model BnNet {
    input  image: f32[batch, 2, 6, 6]
    a      = image | conv2d(4, kernel=3, padding=same, bias=false) | batchnorm | relu
    b      = a | flatten | dense(8) | batchnorm(eps=1e-3, momentum=0.2) | relu
    output logits = b | dense(10)
}
train BnNet {
    data = digits
    target label: i64[batch]
    loss = cross_entropy(logits, label)
    optimizer = sgd(lr=0.1, momentum=0.9)   # not adam: the dense bias before a batchnorm has a zero
}                                           # gradient, which adam's g / sqrt(v) turns into noise
"""


def test_batchnorm_train_fusion_closed_form_gradient_keeps_the_step():
    """Both batchnorms (4-D after a conv, 2-D after a dense) become BatchNormalization in training
    mode with the closed-form gradient: far fewer nodes; loss, parameters and running statistics
    as without the rule."""
    m = ng.compile_source(BN_NET)
    fused = m.training("step", level=2)
    plain = m.training("step", level=2, runner=Runner(disabled={"fuse_batchnorm_train"}))
    f2, p2 = fused.to_onnx(2, Runner(check=True)), plain.to_onnx(2)
    assert ops(f2).get("BatchNormalization") == 2 and "BatchNormalization" not in ops(p2)
    assert len(f2.graph.node) < len(p2.graph.node) - 40
    feeds = step_feeds(fused, 7)
    a, b = run(p2, feeds), run(f2, feeds)
    assert any(k.endswith("running_var") for k in a)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_batchnorm_train_fusion_says_why_not():
    """After autodiff the backward graph reads the pieces (the centred input, the normalized one),
    which is why the rule runs before autodiff; on the inference graph there is nothing to match."""
    m = ng.compile_source(BN_NET)
    g = m.training("step", level=0).graph
    roots = [n for n in g.g if fuse_batchnorm_train.RULE.match(g, n) is not None]
    assert len(roots) == 2
    assert {fuse_batchnorm_train.RULE.why_not(g, n) for n in roots} == {
        "the centred input is used elsewhere too"
    }
    assert all(fuse_batchnorm_train.RULE.why_not(m.graph, n) == "no match" for n in m.graph.g)


def test_batchnorm_train_is_batchnormalization_in_inference_form():
    """The fused batchnorm normalizes with the graph's own batch statistics through
    BatchNormalization in inference form, which every provider runs alike (versions of
    onnxruntime's CUDA kernel run training mode only when opset 13's five outputs are asked for,
    and with three normalize with the mean and variance inputs). x is reduced once: the
    statistics' nodes are shared with the running-statistics update and the gradient.
    (From a bug: onnxruntime's CUDA kernel ignores training_mode at opset 15 and later, so the
    training-mode form would have normalized with the placeholder statistics.)"""
    model = ng.compile_source(CONV1D_NET).training("step", level=2).to_onnx(2)
    bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    assert len(bns) == 2
    assert all(a.name != "training_mode" or a.i == 0 for n in bns for a in n.attribute)
    assert all(len(n.output) == 1 for n in bns)
    means = sum(n.op_type == "ReduceMean" for n in model.graph.node)
    assert means == 2 * len(bns)  # mean and variance per batchnorm, once each
