"""The pools of issue 15 (item 4) against torch.nn with the module's own defaults: the adaptive
pools on awkward sizes (7 -> 3, 10 -> 4, 11 -> 3: overlapping windows of several lengths; 3 -> 5:
more outputs than inputs), global_maxpool, maxpool's dilation and ceil_mode, avgpool's ceil_mode
and count_include_pad, in 1-D, 2-D and 3-D. The forward to 1e-5 and the input's gradient to 1e-4
in f32, run in onnxruntime. The max pools also run on small integers, so windows hold tied
maxima: the gradient must go to the first one (row-major), as PyTorch's does."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.autodiff.backward import backward
from nngraph.core.types import TensorType
from nngraph.errors import NNError
from nngraph.onnx.lower import check, lower

torch = pytest.importorskip("torch")
nn = torch.nn


def run(call: str, x: np.ndarray, dims: str | None = None):
    """y = x | call, loss = sum(y * r): nngraph's y and d/dx, from onnxruntime."""
    dims = dims or ", ".join(["batch", *map(str, x.shape[1:])])
    m = ng.compile_source(f"model M {{\n    input x: f32[{dims}]\n    output y = x | {call}\n}}")
    g = m.graph
    y = g.outputs["y"]
    yt = g.type(y)
    r = np.random.default_rng(1).standard_normal([x.shape[0], *yt.shape[1:]]).astype(np.float32)
    rn = g.add("r", "input", [], yt, None)
    prod = g.add("prod", "mul", [y, rn], yt, None, {})
    loss = g.add("loss", "reduce_sum", [prod], TensorType("f32", ()), None, {"axes": None, "keepdims": 0})
    assert not g.params(trainable=True)
    grads = backward(g, loss, ["x"])
    g.inputs = ["x", rn]
    g.outputs = {"y": y, "grad/x": grads["x"]}
    g.prune()
    model = lower(g, g.inputs)
    check(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip(g.outputs, sess.run(None, {"x": x, "r": r}), strict=True))
    return got, r


def torch_run(module, x: np.ndarray, r: np.ndarray):
    xt = torch.tensor(x, requires_grad=True)
    out = module(xt)
    (out * torch.tensor(r)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy()


def close(a, b, tol: float, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol, err_msg=what)


def inputs(shape, ties: bool) -> np.ndarray:
    rng = np.random.default_rng(0)
    if ties:  # small integers: tied maxima in nearly every window
        return rng.integers(0, 3, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def check_parity(call: str, module, shape, ties: bool = False) -> None:
    x = inputs(shape, ties)
    got, r = run(call, x)
    y, gx = torch_run(module, x, r)
    assert got["y"].shape == y.shape, f"{call}: {got['y'].shape} vs torch {y.shape}"
    close(got["y"], y, 1e-5, f"{call} forward")
    close(got["grad/x"], gx, 1e-4, f"{call} d/dx")


ADAPTIVE = [
    # (call, torch module, input shape)
    ("adaptive_{}pool(3)", "Adaptive{}Pool2d(3)", (2, 3, 7, 7)),
    ("adaptive_{}pool(4)", "Adaptive{}Pool2d(4)", (2, 3, 10, 10)),
    ("adaptive_{}pool([4, 3])", "Adaptive{}Pool2d((4, 3))", (2, 3, 10, 6)),
    ("adaptive_{}pool2d([5, 7])", "Adaptive{}Pool2d((5, 7))", (2, 2, 3, 5)),
    ("adaptive_{}pool([5, 4])", "Adaptive{}Pool2d((5, 4))", (1, 2, 13, 6)),
    ("adaptive_{}pool(4)", "Adaptive{}Pool2d(4)", (2, 2, 8, 8)),  # tiles: a pooling
    ("adaptive_{}pool(1)", "Adaptive{}Pool2d(1)", (2, 2, 5, 4)),
    ("adaptive_{}pool(3)", "Adaptive{}Pool1d(3)", (2, 3, 11)),
    ("adaptive_{}pool1d(4)", "Adaptive{}Pool1d(4)", (2, 3, 10)),
    ("adaptive_{}pool(6)", "Adaptive{}Pool1d(6)", (2, 2, 4)),
    ("adaptive_{}pool3d([2, 3, 4])", "Adaptive{}Pool3d((2, 3, 4))", (2, 2, 5, 4, 6)),
    ("adaptive_{}pool(2)", "Adaptive{}Pool3d(2)", (1, 2, 3, 4, 5)),
]


@pytest.mark.parametrize(
    "call,module,shape", ADAPTIVE, ids=[f"{c.format('avg')}-{s}" for c, _, s in ADAPTIVE]
)
def test_adaptive_avgpool_matches_torch(call, module, shape):
    check_parity(call.format("avg"), eval("nn." + module.format("Avg")), shape)


@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize(
    "call,module,shape", ADAPTIVE, ids=[f"{c.format('max')}-{s}" for c, _, s in ADAPTIVE]
)
def test_adaptive_maxpool_matches_torch(call, module, shape, ties):
    check_parity(call.format("max"), eval("nn." + module.format("Max")), shape, ties)


@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize(
    "module,shape",
    [(lambda: nn.AdaptiveMaxPool2d(1), (2, 3, 5, 6)), (lambda: nn.AdaptiveMaxPool1d(1), (2, 3, 7))],
    ids=["2d", "1d"],
)
def test_global_maxpool_matches_torch(module, shape, ties):
    check_parity("global_maxpool", module(), shape, ties)


def test_global_maxpool_runs_on_symbolic_spatial_dims():
    x = inputs((2, 3, 4, 5), ties=True)
    got, r = run("global_maxpool", x, dims="batch, 3, h, w")
    y, gx = torch_run(nn.AdaptiveMaxPool2d(1), x, r)
    close(got["y"], y, 1e-5, "forward")
    close(got["grad/x"], gx, 1e-4, "d/dx")


MAXPOOL = [
    ("maxpool(3, dilation=2)", lambda: nn.MaxPool2d(3, dilation=2), (2, 3, 9, 8)),
    (
        "maxpool(3, stride=1, padding=1, dilation=[2, 1])",
        lambda: nn.MaxPool2d(3, 1, 1, dilation=(2, 1)),
        (2, 2, 8, 7),
    ),
    ("maxpool(2, ceil_mode=true)", lambda: nn.MaxPool2d(2, ceil_mode=True), (2, 3, 7, 7)),
    (
        "maxpool(3, stride=2, padding=1, ceil_mode=true)",
        lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
        (2, 3, 8, 8),
    ),
    (
        "maxpool(3, stride=2, padding=1, dilation=2, ceil_mode=true)",
        lambda: nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
        (2, 2, 10, 9),
    ),
    ("maxpool1d(3, stride=2, dilation=2)", lambda: nn.MaxPool1d(3, 2, dilation=2), (2, 3, 12)),
    # ceil_mode's end padding reaches the kernel size here: the lowering pads explicitly
    (
        "maxpool(2, stride=2, padding=1, dilation=3, ceil_mode=true)",
        lambda: nn.MaxPool1d(2, 2, 1, 3, ceil_mode=True),
        (2, 3, 9),
    ),
    ("maxpool(2)", lambda: nn.MaxPool2d(2), (2, 3, 6, 6)),  # the defaults are unchanged
    (
        "maxpool3d(3, stride=2, padding=1, dilation=[1, 2, 1], ceil_mode=true)",
        lambda: nn.MaxPool3d(3, 2, 1, dilation=(1, 2, 1), ceil_mode=True),
        (1, 2, 6, 7, 6),
    ),
]


@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("call,module,shape", MAXPOOL, ids=[c for c, _, _ in MAXPOOL])
def test_maxpool_dilation_and_ceil_mode_match_torch(call, module, shape, ties):
    check_parity(call, module(), shape, ties)


AVGPOOL = [
    # torch's default count_include_pad=True is nngraph's
    ("avgpool(3, stride=2, padding=1)", lambda: nn.AvgPool2d(3, 2, 1), (2, 3, 7, 7)),
    (
        "avgpool(3, stride=2, padding=1, count_include_pad=false)",
        lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        (2, 3, 7, 7),
    ),
    ("avgpool(2, ceil_mode=true)", lambda: nn.AvgPool2d(2, ceil_mode=True), (2, 3, 7, 5)),
    (
        "avgpool(3, stride=2, padding=1, ceil_mode=true)",
        lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True),
        (2, 3, 8, 8),
    ),
    (
        "avgpool(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false)",
        lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        (2, 3, 8, 7),
    ),
    (
        "avgpool([3, 2], stride=[2, 1], padding=[1, 1], ceil_mode=true)",
        lambda: nn.AvgPool2d((3, 2), (2, 1), 1, ceil_mode=True),
        (2, 2, 6, 5),
    ),
    (
        "avgpool1d(4, stride=3, padding=2, ceil_mode=true)",
        lambda: nn.AvgPool1d(4, 3, 2, ceil_mode=True),
        (2, 3, 10),
    ),
    (
        "avgpool1d(4, stride=3, padding=2, ceil_mode=true, count_include_pad=false)",
        lambda: nn.AvgPool1d(4, 3, 2, ceil_mode=True, count_include_pad=False),
        (2, 3, 10),
    ),
    (
        "avgpool3d(3, stride=2, padding=1, ceil_mode=true)",
        lambda: nn.AvgPool3d(3, 2, 1, ceil_mode=True),
        (1, 2, 6, 5, 6),
    ),
]


@pytest.mark.parametrize("call,module,shape", AVGPOOL, ids=[c for c, _, _ in AVGPOOL])
def test_avgpool_ceil_mode_and_count_include_pad_match_torch(call, module, shape):
    check_parity(call, module(), shape)


@pytest.mark.parametrize(
    "call,dims,message",
    [
        (
            "adaptive_avgpool(3)",
            "batch, 3, h, 7",
            "adaptive_avgpool needs fixed spatial dims .* has 'h' there",
        ),
        ("adaptive_maxpool([2, 2, 2])", "batch, 3, 7, 7", "'size' needs 2 values for a 2-D layer, got 3"),
        ("adaptive_maxpool(0)", "batch, 3, 7, 7", "adaptive_maxpool: size must be 1 or more, got 0"),
        (
            "adaptive_avgpool2d(2)",
            "batch, 3, 7",
            r"adaptive_avgpool2d expects a 4-D \[batch, channels, height, width\]",
        ),
        ("maxpool(2, ceil_mode=true)", "batch, 3, h, 7", "'maxpool' with ceil_mode needs fixed spatial dims"),
        ("maxpool(2, dilation=0)", "batch, 3, 7, 7", "maxpool: dilation must be 1 or more, got 0"),
        ("avgpool(2, dilation=2)", "batch, 3, 7, 7", "'avgpool' has no argument 'dilation'"),
        (
            "maxpool(3, dilation=4)",
            "batch, 3, 7, 7",
            r"kernel 3 \(dilated to 9\) is larger than the padded input 7",
        ),
    ],
)
def test_bad_pool_arguments_are_nngraph_errors(call, dims, message):
    with pytest.raises(NNError, match=message):
        ng.compile_source(f"model M {{\n    input x: f32[{dims}]\n    output y = x | {call}\n}}")


@pytest.mark.parametrize(
    "call",
    [
        "maxpool(3, stride=2, padding=1)",
        "maxpool(3, stride=2, padding=1, dilation=2, ceil_mode=true)",
        "avgpool(3, stride=2, padding=1, ceil_mode=true)",
        "adaptive_maxpool(3)",
        "adaptive_avgpool(3)",
        "global_maxpool",
    ],
)
def test_an_f16_training_step_runs_through_the_pool(call, capfd):
    """Regression: overlapping maxpool windows failed in an f16 training step, onnxruntime has
    no f16 ScatterElements(add) ("MLFloat16 data type is not supported"); the sum runs in f32."""
    src = (
        "model M {\n    input image: f16[batch, 1, 8, 8]\n"
        f"    output logits = image | conv2d(2, kernel=3, padding=1) | {call} | flatten | dense(3)\n}}\n"
        "train M {\n    data = digits\n    target label: i64[batch]\n    loss = cross_entropy(logits, label)\n"
        "    optimizer = sgd(lr=0.1)\n}\n"
    )
    model = ng.compile_source(src).training("step").to_onnx(2)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        shape = [3 if not isinstance(d, int) else d for d in i.shape]
        if "int64" in i.type:
            feeds[i.name] = rng.integers(0, 3, shape)
        else:
            dtype = np.float16 if "float16" in i.type else np.float32
            feeds[i.name] = np.asarray(rng.random(shape), dtype=dtype)
    outs = sess.run(None, feeds)
    assert all(np.isfinite(o.astype(np.float64)).all() for o in outs if o.dtype.kind == "f")
    assert "Could not find a CPU kernel" not in capfd.readouterr().err
