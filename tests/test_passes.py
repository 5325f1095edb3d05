"""Passes keep numerics (each pass alone and the whole pipeline, forward and training),
keep the graph's invariants, shrink the graph where a rule applies, and stay in the default domain."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from conftest import EXAMPLES, ROOT, random_feeds

import nngraph as ng
from nngraph.core.ir import Graph
from nngraph.core.types import TensorType
from nngraph.onnx.lower import check, lower
from nngraph.passes.fusions import fuse_conv_bias, fuse_gemm
from nngraph.passes.manager import Runner, check_invariants
from nngraph.passes.pipeline import PIPELINES, all_pass_names, optimize

SMALL = [p for p in EXAMPLES if not p.stem.startswith("resnet")]


def run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))


def ops(model) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in model.graph.node:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_every_pass_alone_and_the_pipeline_keep_outputs(path):
    m = ng.compile_file(path)
    feeds = random_feeds(m, 3)
    want = run(m.to_onnx(0), feeds)
    for name in all_pass_names():  # each pass alone: the others disabled
        runner = Runner(disabled=set(all_pass_names()) - {name}, check=True)
        got = run(m.to_onnx(2, runner), feeds)
        for k in want:
            np.testing.assert_allclose(
                got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=f"{path.stem} after {name}"
            )
    got = run(m.to_onnx(2, Runner(check=True)), feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("example", ["digits_mlp.nn", "digits_cnn.nn"])
def test_training_step_unchanged_by_passes(example):
    c = ng.compile_file(ROOT / "examples" / example).training("step")
    rng = np.random.default_rng(0)
    t = c.graph.type("image")
    feeds = {
        "image": rng.random([8 if isinstance(d, str) else d for d in t.shape], dtype=np.float32),
        "label": rng.integers(0, 10, 8),
        "lr": np.array(0.01, np.float32),
        "step": np.array(3),
        **c.initial,
    }
    for name, (_, shape) in c.interface.noise.items():
        feeds[name] = rng.random([8 if isinstance(d, str) else d for d in shape], dtype=np.float32)
    o0, o2 = c.to_onnx(0), c.to_onnx(2, Runner(check=True))
    layout = {"Reshape", "Transpose", "Unsqueeze", "Squeeze", "Shape"}  # metadata, or cheap copies
    compute = lambda m: sum(n.op_type not in layout for n in m.graph.node)
    assert compute(o2) < compute(o0)
    a, b = run(o0, feeds), run(o2, feeds)
    assert set(a) == set(b) and "loss" in a
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_fusions_shrink_the_graph_where_they_apply():
    mlp = ng.compile_file(ROOT / "examples" / "mlp.nn")
    o0, o2 = ops(mlp.to_onnx(0)), ops(mlp.to_onnx(2))
    assert o0["MatMul"] == 3 and o0["Add"] == 3 and "Gemm" not in o0
    assert o2.get("Gemm") == 3 and "MatMul" not in o2 and "Add" not in o2
    cnn = ng.compile_file(ROOT / "examples" / "cnn.nn")
    assert ops(cnn.to_onnx(0))["BatchNormalization"] == 2 and "BatchNormalization" not in ops(cnn.to_onnx(2))
    # the backward graph: transposes folded into Gemm's transA/transB
    step = ng.compile_file(ROOT / "examples" / "digits_mlp.nn").training("step")
    s0, s2 = ops(step.to_onnx(0)), ops(step.to_onnx(2))
    assert s2.get("Transpose", 0) < s0.get("Transpose", 0) and s2["Gemm"] >= 6


def test_simplify_cse_and_folding():
    src = "model M {\n input x: f32[batch, 4]\n a = (x * 1 + 0) | relu\n b = x | relu\n output o = a + b * (2 * 3)\n}"
    m = ng.compile_source(src)
    o2 = ops(m.to_onnx(2))
    assert o2.get("Relu") == 1  # relu(x) computed once
    assert o2.get("Mul", 0) == 1 and o2.get("Add") == 1  # x*1 and +0 gone, 2*3 folded
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(run(m.to_onnx(2), {"x": x})["o"], np.maximum(x, 0) * 7, rtol=1e-6)


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


def test_passes_emit_only_default_domain_and_leave_the_input_graph_alone():
    m = ng.compile_file(ROOT / "examples" / "digits_cnn.nn")
    snapshot = copy.deepcopy(m.graph)
    for model in (m.to_onnx(2), m.training("step").to_onnx(2)):
        assert all(n.domain == "" for n in model.graph.node)
    assert set(snapshot.g) == set(m.graph.g)
    w = "conv2d_1.weight"
    assert np.array_equal(snapshot.node(w)["value"], m.graph.node(w)["value"])


def test_pipeline_levels_are_ordered():
    assert not PIPELINES[0].steps
    assert set(all_pass_names()) >= {
        "dce",
        "cse",
        "fold_constants",
        "simplify",
        "fuse_gemm",
        "fold_batchnorm",
    }


def nngraph(*args):
    return subprocess.run([sys.executable, "-m", "nngraph.cli", *args], capture_output=True, text=True)


def test_cli_report_dump_and_disable(tmp_path):
    mlp = str(ROOT / "examples" / "mlp.nn")
    r = nngraph("compile", mlp, "-o", str(tmp_path / "m.onnx"), "--report")
    assert r.returncode == 0 and "fuse_gemm" in r.stdout and "nodes before" in r.stdout
    r = nngraph("compile", mlp, "--dump-after", "fuse_gemm")
    assert r.returncode == 0 and "= gemm(" in r.stdout and "[fused by fuse_gemm from 2 nodes]" in r.stdout
    r = nngraph("compile", mlp, "-o", str(tmp_path / "d.onnx"), "--disable", "fuse_gemm")
    assert r.returncode == 0
    assert "Gemm" not in {n.op_type for n in __import__("onnx").load(tmp_path / "d.onnx").graph.node}
    r = nngraph("compile", mlp, "--disable", "fuse_gem")
    assert r.returncode == 1 and "did you mean 'fuse_gemm'?" in r.stderr
    r = nngraph(
        "compile", str(ROOT / "examples" / "digits_cnn.nn"), "--train", "-O0", "-o", str(tmp_path / "s.onnx")
    )
    assert r.returncode == 0, r.stderr


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


def step_feeds(c, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = c.graph.type("image")
    feeds = {
        "image": rng.standard_normal([batch if isinstance(d, str) else d for d in t.shape]).astype(
            np.float32
        ),
        "label": rng.integers(0, 10, batch),
        "lr": np.array(0.1, np.float32),
        "step": np.array(1),
        **c.initial,
    }
    for name, (_, shape) in c.interface.noise.items():
        feeds[name] = rng.random([batch if isinstance(d, str) else d for d in shape], dtype=np.float32)
    return feeds


def test_conv_as_gemm_gathers_patches_and_keeps_the_step():
    """The weight gradients of strided and dilated convs become gathered patches + one GEMM; the
    grouped one says why it keeps the rule's form; loss and every new parameter match the step
    without the rule."""
    from nngraph.passes.fusions import conv_as_gemm

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
    from nngraph.passes.fusions import fuse_batchnorm_train

    m = ng.compile_source(BN_NET)
    g = m.training("step", level=0).graph
    roots = [n for n in g.g if fuse_batchnorm_train.RULE.match(g, n) is not None]
    assert len(roots) == 2
    assert {fuse_batchnorm_train.RULE.why_not(g, n) for n in roots} == {
        "the centred input is used elsewhere too"
    }
    assert all(fuse_batchnorm_train.RULE.why_not(m.graph, n) == "no match" for n in m.graph.g)


CONV1D_NET = """
model C1 {
    input image: f32[batch, 64]
    s = image | reshape([batch, 4, 16])
    a = s | conv1d(6, kernel=3, padding=same) | batchnorm | relu
    b = a | conv1d(6, kernel=5, stride=2, padding=2, bias=false) | batchnorm | relu | maxpool(2)
    output logits = b | flatten | dense(10)
}
train C1 {
    data = digits
    target label: i64[batch]
    loss = cross_entropy(logits, label)
    optimizer = sgd(lr=0.1, momentum=0.9)
}
"""


def test_training_fusions_on_1d_convolutions_and_3d_batchnorm():
    m = ng.compile_source(CONV1D_NET)
    fused = m.training("step", level=2).to_onnx(2, Runner(check=True))
    plain_c = m.training("step", level=2, runner=Runner(disabled={"fuse_batchnorm_train"}))
    plain = plain_c.to_onnx(2, Runner(disabled={"conv_as_gemm"}))
    assert ops(fused)["BatchNormalization"] == 2 and "BatchNormalization" not in ops(plain)
    assert len(gemms(fused)) == 2
    feeds = step_feeds(plain_c, 5)
    a, b = run(plain, feeds), run(fused, feeds)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_conv_as_gemm_with_two_convs_reading_one_input():
    """Two branches convolve the same tensor alike: both weight gradients become GEMMs over the
    one input's patches, gathered once, and the step is unchanged."""
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
    src = CONV_NET.replace("f32[batch, 2, 9, 9]", "f32[batch, 2, 120, 120]")
    graph = ng.compile_source(src).training("step").graph
    reasons = sorted(str(conv_gemm_rule().why_not(graph, n)) for n in graph.nodes_with("conv_grad_weight"))
    # stride 2 to 60 x 60: the first conv's patches hold 2 ch x 9 taps x 3600 = 64,800 values per
    # sample (under the limit); the second's 6 ch x 6 taps x 3600 = 129,600
    assert reasons[0] == "None" and reasons[1] == "grouped convolutions keep the rule's per-group products"
    assert reasons[2].startswith("the patches would hold 129,600 values per sample")


def gemms(model) -> list:
    """The weight-gradient GEMMs conv_as_gemm made."""
    return [
        n for n in model.graph.node if n.op_type == "MatMul" and "conv_grad_weight/conv_as_gemm" in n.name
    ]


def conv_gemm_rule():
    from nngraph.passes.fusions import conv_as_gemm

    return conv_as_gemm.RULE


@pytest.mark.parametrize(
    "example", ["digits_lstm.nn", "digits_gru.nn", "digits_transformer.nn", "char_lm.nn"]
)
def test_passes_keep_the_gradients_of_sequence_models(example):
    """Loss and every gradient of the -O2 gradients model equal -O0's. (Gradients, not the Adam
    step: attention's key bias has a zero gradient, float noise that Adam scales up to lr.)"""
    m = ng.compile_file(ROOT / "examples" / example)
    c0, c2 = m.training("grads", level=0), m.training("grads", level=2)
    rng = np.random.default_rng(0)
    feeds = dict(c0.initial)
    for n in c0.interface.inputs + c0.interface.targets:
        t = c0.graph.type(n)
        shape = [4 if isinstance(d, str) else d for d in t.shape]
        is_int = t.dtype.startswith("i")
        feeds[n] = (
            rng.integers(0, 10, shape).astype(t.np_dtype) if is_int else rng.random(shape, dtype=np.float32)
        )
    for name, (_, shape) in c0.interface.noise.items():
        feeds[name] = rng.random([4 if isinstance(d, str) else d for d in shape], dtype=np.float32)

    def outputs(model):
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        names = {i.name for i in sess.get_inputs()}
        got = sess.run(None, {k: v for k, v in feeds.items() if k in names})
        return dict(zip([o.name for o in sess.get_outputs()], got, strict=True))

    a, b = outputs(c0.to_onnx(0)), outputs(c2.to_onnx(2, Runner(check=True)))
    assert any(k.startswith("grad/") for k in a) and set(a) == set(b)
    for k in a:
        scale = max(1.0, float(np.abs(a[k]).max()))
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-5 * scale, err_msg=k)


def test_batchnorm_train_is_batchnormalization_in_inference_form():
    """The fused batchnorm normalizes with the graph's own batch statistics through
    BatchNormalization in inference form, which every provider runs alike (versions of
    onnxruntime's CUDA kernel run training mode only when opset 13's five outputs are asked for,
    and with three normalize with the mean and variance inputs). x is reduced once: the
    statistics' nodes are shared with the running-statistics update and the gradient."""
    model = ng.compile_source(CONV1D_NET).training("step", level=2).to_onnx(2)
    bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    assert len(bns) == 2
    assert all(a.name != "training_mode" or a.i == 0 for n in bns for a in n.attribute)
    assert all(len(n.output) == 1 for n in bns)
    means = sum(n.op_type == "ReduceMean" for n in model.graph.node)
    assert means == 2 * len(bns)  # mean and variance per batchnorm, once each


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
    from nngraph.passes.fusions import pool_before_relu

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
