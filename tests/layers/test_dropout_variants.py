"""dropout2d and alpha_dropout of issue 15 (item 9). Random layers cannot match torch bitwise, so:
given the noise the training step feeds, the output and the input's gradient are the formula's
(the gradient is the forward's mask, scaled); over many draws the statistics are torch's
(dropout2d zeroes whole channels, a fraction p of them, and keeps the rest scaled by 1/(1-p), as
torch.nn.Dropout2d; alpha_dropout keeps mean 0 and variance 1 of a selu-normalised input and
takes torch.nn.AlphaDropout's two affine maps); and inference is the identity."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.autodiff.backward import backward
from nngraph.core.types import TensorType
from nngraph.errors import NNError
from nngraph.frontend import build_graph, load_text
from nngraph.onnx.lower import check, lower
from nngraph.training.gradcheck import gradcheck

torch = pytest.importorskip("torch")


def train_run(call: str, x: np.ndarray, seed: int = 0):
    """y = x | call in a training build, loss = sum(y * r): (y, d/dx, the noise fed, r)."""
    dims = ", ".join(["batch", *map(str, x.shape[1:])])
    built = build_graph(
        load_text(f"model M {{\n    input x: f32[{dims}]\n    output y = x | {call}\n}}", "t.nn"),
        training=True,
    )
    g = built.graph
    (noise,) = built.noise
    y = g.outputs["y"]
    yt = g.type(y)
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(x.shape).astype(np.float32)
    rn = g.add("r", "input", [], yt, None)
    prod = g.add("prod", "mul", [y, rn], yt, None, {})
    loss = g.add("loss", "reduce_sum", [prod], TensorType("f32", ()), None, {"axes": None, "keepdims": 0})
    grads = backward(g, loss, ["x"])
    g.inputs = [*g.inputs, rn]
    g.outputs = {"y": y, "dx": grads["x"]}
    g.prune()
    model = lower(g, g.inputs)
    check(model)
    nshape = [x.shape[0], *g.type(noise).shape[1:]]
    u = rng.random(nshape, dtype=np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got_y, got_dx = sess.run(None, {"x": x, "r": r, noise: u})
    return got_y, got_dx, u, r


def close(a, b, tol, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("shape", [(64, 16, 3, 5), (64, 16, 7)])
def test_dropout2d_zeroes_whole_channels_as_torch(shape):
    p = 0.3
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32) + 3.0  # no zeros of its own
    y, dx, u, r = train_run(f"dropout2d({p})", x)
    assert u.shape == shape[:2] + (1,) * (len(shape) - 2)  # one draw per sample and channel
    keep = (u >= p).astype(np.float32)
    close(y, x * keep / (1 - p), 1e-6, "forward: the fed mask, scaled by 1/(1-p)")
    close(dx, r * keep / (1 - p), 1e-6, "d/dx: the same mask")
    # channel-wise pattern and rate, as torch's
    axes = tuple(range(2, len(shape)))
    zero = (y == 0).all(axis=axes)
    assert (zero | (y != 0).all(axis=axes)).all(), "a channel is either zeroed or kept whole"
    assert abs(zero.mean() - p) < 0.06
    module = torch.nn.Dropout2d(p) if len(shape) == 4 else torch.nn.Dropout1d(p)  # [N, C, L]: 1d in torch
    want = module(torch.tensor(x)).numpy()
    tzero = (want == 0).all(axis=axes)
    assert abs(tzero.mean() - p) < 0.06
    close(want[~tzero] / x[~tzero], np.full(want[~tzero].shape, 1 / (1 - p)), 1e-5, "torch's kept scale")
    close(y[~zero] / x[~zero], np.full(y[~zero].shape, 1 / (1 - p)), 1e-5, "nngraph's kept scale")


SELU_ALPHA = 1.6732632423543772 * 1.0507009873554805


def test_alpha_dropout_keeps_a_selu_normalised_input_normalised_as_torch():
    p = 0.2
    x = (
        np.random.default_rng(2).standard_normal((400, 500)).astype(np.float32)
    )  # selu's fixed point: mean 0, var 1
    y, dx, u, r = train_run(f"alpha_dropout({p})", x)
    keep = u >= p
    a = 1 / math.sqrt((SELU_ALPHA**2 * p + 1) * (1 - p))
    b = SELU_ALPHA * a * p
    close(y, np.where(keep, a * x + b, b - SELU_ALPHA * a), 1e-5, "forward: the fed mask")
    close(dx, r * keep * a, 1e-5, "d/dx: the same mask, scaled")
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.02
    assert abs((~keep).mean() - p) < 0.01
    # torch's AlphaDropout: the same dropped value, the same affine map of the kept ones
    want = torch.nn.AlphaDropout(p)(torch.tensor(x)).numpy()
    dropped = np.isclose(want, b - SELU_ALPHA * a, rtol=0, atol=1e-6)
    assert abs(dropped.mean() - p) < 0.01
    close(want[~dropped], a * x[~dropped] + b, 1e-5, "torch keeps a * x + b")
    assert abs(want.mean() - y.mean()) < 0.02 and abs(want.var() - y.var()) < 0.03


@pytest.mark.parametrize(
    "call", ["dropout2d(0.4)", "alpha_dropout(0.4)", "dropout2d(0.0)", "alpha_dropout(0.0)"]
)
def test_inference_is_the_identity(call):
    m = ng.compile_source(f"model M {{\n    input x: f32[batch, 3, 4, 5]\n    output y = x | {call}\n}}")
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5)).astype(np.float32)
    (y,) = ort.InferenceSession(m.onnx.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    close(y, x, 0, call)


@pytest.mark.parametrize("layer", ["dropout2d(0.25)", "alpha_dropout(0.25)"])
def test_the_training_step_feeds_their_noise(layer):
    """The step's noise for dropout2d is [batch, C, 1, 1], sized from the batch; gradients check."""
    src = (
        f"model M {{\n    input x: f32[batch, 4, 3, 3]\n    output y = x | conv2d(4, kernel=1) | {layer} | flatten\n}}\n"
        "train M {\n    data = digits\n    target t: f32[batch, 36]\n    loss = mse(y, t)\n    optimizer = sgd(lr=0.1)\n}\n"
    )
    c = ng.compile_source(src).training("grads")
    (noise,) = [n for n in c.graph.inputs if n.endswith(".noise")]
    want = ("batch", 4, 1, 1) if layer.startswith("dropout2d") else ("batch", 4, 3, 3)
    assert c.graph.type(noise).shape == want
    rng = np.random.default_rng(0)
    batch = {"x": rng.random((3, 4, 3, 3), np.float32), "t": rng.random((3, 36), np.float32)}
    rows = gradcheck(c, batch, per_param=4)
    assert max(r.max_rel_fd for r in rows) < 1e-3


@pytest.mark.parametrize(
    "src,message",
    [
        (
            "input x: f32[batch, 8]\noutput y = x | dropout2d",
            r"dropout2d zeroes channels of \[batch, C, H, W\] or \[batch, C, L\], got 2-D f32\[batch,8\]",
        ),
        ("input x: f32[batch, 2, 3, 4, 5]\noutput y = x | dropout2d", r"got 5-D"),
        (
            "input x: f32[batch, 2, 3]\noutput y = x | dropout2d(1.0)",
            r"argument 'p' of 'dropout2d' must be in \[0, 1\), got 1",
        ),
        (
            "input x: f32[batch, 2, 3]\noutput y = x | alpha_dropout(-0.1)",
            r"argument 'p' of 'alpha_dropout' must be in \[0, 1\)",
        ),
        (
            "input x: i64[batch, 2, 3]\noutput y = x | alpha_dropout",
            r"alpha_dropout needs a float input, got i64",
        ),
    ],
)
def test_bad_dropout_calls_are_reported(src, message):
    with pytest.raises(NNError, match=message):
        ng.compile_source("model M {\n" + src + "\n}\n")
