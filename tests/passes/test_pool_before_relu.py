"""pool_before_relu: maxpool(relu(x)) -> relu(maxpool(x)) in a training step's forward graph."""

from __future__ import annotations

import numpy as np
from pass_helpers import run, step_feeds

import nngraph as ng
from nngraph.passes.fusions import pool_before_relu
from nngraph.passes.manager import Runner

POOL_NET = """
model P {
    input  image: f32[batch, 2, 6, 6]
    a      = image | relu | maxpool(2)
    b      = image | conv2d(3, kernel=3, padding=same, bias=false) | relu | maxpool(3, stride=2, padding=1)
    c      = image | relu
    d      = c | maxpool(2)
    output logits = concat(a | flatten, b | flatten, d | flatten, c | flatten, axis=1) | dense(10)
}
train P {
    data = digits
    target label: i64[batch]
    loss = cross_entropy(logits, label)
    optimizer = sgd(lr=0.1)
}
"""


def test_pool_before_relu_keeps_the_step_on_tied_windows():
    """maxpool(relu(x)) -> relu(maxpool(x)), also for overlapping padded windows; a relu whose output
    is read elsewhere too keeps its place. Inputs full of ties (whole windows of equal or negative
    values) give the same loss and new parameters as without the rule."""
    graph = ng.compile_source(POOL_NET).graph  # the forward graph (as the training step's, before autodiff)
    reasons = sorted(str(pool_before_relu.RULE.why_not(graph, n)) for n in graph.nodes_with("maxpool"))
    assert reasons == ["None", "None", "the relu's output is used elsewhere too"]
    c = ng.compile_source(POOL_NET).training("step")
    step = c.graph
    inputs_of_relus = sorted(step.node(step.node(n)["inputs"][0])["op"] for n in step.nodes_with("relu"))
    assert inputs_of_relus == ["input", "maxpool", "maxpool"]
    plain = ng.compile_source(POOL_NET).training("step", runner=Runner(disabled={"pool_before_relu"}))
    feeds = step_feeds(c, 6)
    rng = np.random.default_rng(1)
    feeds["image"] = rng.integers(-2, 2, feeds["image"].shape).astype(np.float32)  # ties and negative windows
    a, b = run(plain.to_onnx(2), feeds), run(c.to_onnx(2, Runner(check=True)), feeds)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_pool_before_relu_leaves_inference_alone():
    onnx_model = ng.compile_source(POOL_NET).to_onnx(2)
    relus = [n for n in onnx_model.graph.node if n.op_type == "Relu"]
    producers = {o: n.op_type for n in onnx_model.graph.node for o in n.output}
    assert all(producers.get(r.input[0]) != "MaxPool" for r in relus)
