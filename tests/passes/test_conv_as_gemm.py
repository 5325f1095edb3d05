"""conv_as_gemm: a convolution's weight gradient -> one GEMM over its input's gathered patches
(training graphs only, and only where the patches stay small)."""

from __future__ import annotations

import numpy as np
from pass_helpers import gemms, ops, run, step_feeds

import nngraph as ng
from nngraph.passes.fusions import conv_as_gemm
from nngraph.passes.manager import Runner

CONV_NET = """
model ConvNet {
    input  image: f32[batch, 2, 9, 9]
    a      = image | conv2d(6, kernel=3, stride=2, padding=1) | relu
    b      = a | conv2d(6, kernel=[3, 2], dilation=2, padding=same, bias=false) | relu
    c      = b | conv2d(6, kernel=3, groups=2, padding=same) | flatten
    output logits = c | dense(10)
}
train ConvNet {
    data = digits
    target label: i64[batch]
    loss = cross_entropy(logits, label)
    optimizer = sgd(lr=0.1, momentum=0.9)
}
"""


def test_conv_as_gemm_gathers_patches_and_keeps_the_step():
    """The weight gradients of strided and dilated convs become gathered patches + one GEMM; the
    grouped one says why it keeps the rule's form; loss and every new parameter match the step
    without the rule."""
    c = ng.compile_source(CONV_NET).training("step")
    graph = c.graph
    reasons = sorted(
        (graph.node(n)["attrs"]["groups"], str(conv_as_gemm.RULE.why_not(graph, n)))
        for n in graph.nodes_with("conv_grad_weight")
    )
    assert reasons == [
        (1, "None"),
        (1, "None"),
        (2, "grouped convolutions keep the rule's per-group products"),
    ]
    fused = c.to_onnx(2, Runner(check=True))
    plain = c.to_onnx(2, Runner(disabled={"conv_as_gemm"}))
    # plain: 3 forward Convs and 3 patch Convs inside conv_grad_weight; fused: the 3 forward Convs,
    # the grouped conv's patch Conv, and one patch Gather (of whole batch rows) per rewritten gradient
    assert ops(plain)["Conv"] == 6 and ops(fused)["Conv"] == 4
    gathers = [n for n in fused.graph.node if n.op_type == "Gather" and "conv_as_gemm" in n.name]
    assert len(gathers) == 2 and all(a.i == 1 for n in gathers for a in n.attribute if a.name == "axis")
    assert len(gemms(fused)) == 2  # one GEMM per weight gradient
    feeds = step_feeds(c, 5)
    a, b = run(plain, feeds), run(fused, feeds)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_conv_as_gemm_leaves_inference_alone():
    m = ng.compile_source(CONV_NET)
    assert not any("conv_as_gemm" in n.name for n in m.to_onnx(2).graph.node)


def test_conv_as_gemm_with_two_convs_reading_one_input():
    """Two branches convolve the same tensor alike: both weight gradients become GEMMs over the
    one input's patches, gathered once, and the step is unchanged. (From a bug: the rule, which
    then rewrote each gradient's forward conv too, paired every gradient with the first conv
    reading the input, so two convs of one tensor were mispaired.)"""
    src = CONV_NET.replace(
        "    c      = b | conv2d(6, kernel=3, groups=2, padding=same) | flatten\n",
        "    c      = (b | conv2d(6, kernel=3, padding=same)) + (b | conv2d(6, kernel=3, padding=same) | relu)\n"
        "             | flatten\n",
    )
    c = ng.compile_source(src).training("step")
    fused = c.to_onnx(2, Runner(check=True))
    plain = c.to_onnx(2, Runner(disabled={"conv_as_gemm"}))
    assert len(gemms(fused)) == 4
    # the forward convs stay Convs (4) and no patch Conv is left; the two convs of b share its
    # patches (cse): three gathers for four gradients
    assert ops(fused)["Conv"] == 4 == ops(plain)["Conv"] - 4
    assert sum(n.op_type == "Gather" and "conv_as_gemm" in n.name for n in fused.graph.node) == 3
    feeds = step_feeds(c, 3)
    a, b = run(plain, feeds), run(fused, feeds)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_conv_as_gemm_keeps_conv_where_patches_would_be_large():
    """Added when training memory grew with the kernel size on large images: the patches are
    bounded per sample, and the check says so."""
    src = CONV_NET.replace("f32[batch, 2, 9, 9]", "f32[batch, 2, 120, 120]")
    graph = ng.compile_source(src).training("step").graph
    reasons = sorted(str(conv_as_gemm.RULE.why_not(graph, n)) for n in graph.nodes_with("conv_grad_weight"))
    # stride 2 to 60 x 60: the first conv's patches hold 2 ch x 9 taps x 3600 = 64,800 values per
    # sample (under the limit); the second's 6 ch x 6 taps x 3600 = 129,600
    assert reasons[0] == "None" and reasons[1] == "grouped convolutions keep the rule's per-group products"
    assert reasons[2].startswith("the patches would hold 129,600 values per sample")
