"""Backward graphs lower to ONNX that onnxruntime runs with the numbers of the NumPy reference
evaluation: small whole networks, symbolic dims, and max-pool windows with tied maxima."""

from __future__ import annotations

import itertools

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.autodiff.backward import backward
from nngraph.core.ir import Graph
from nngraph.core.types import TensorType
from nngraph.onnx.lower import check, lower
from nngraph.ops.reference import evaluate
from nngraph.ops.registry import get

MLP = """
model MLP {
    input  x: f32[batch, 12]
    h      = x | dense(16) | relu | dense(16) | tanh | dense(8) | sigmoid | dense(8) | gelu | dense(8) | silu
    output logits = h | dense(8) | leaky_relu(alpha=0.1) | dense(5)
}
"""

CNN = """
model CNN {
    input  image: f32[batch, 2, 12, 12]
    h      = image | conv2d(4, kernel=3, padding=same) | batchnorm | relu | maxpool(2)
    h      = h | conv2d(6, kernel=3, stride=2, padding=1, groups=2) | batchnorm | relu | maxpool(3, stride=1, padding=1)
    h      = h | avgpool(2, stride=1) | conv2d(8, kernel=1, bias=false) | global_avgpool | flatten | dropout(0.2)
    output logits = h | dense(5)
}
"""


def op(g: Graph, name: str, inputs: list[str], **attrs) -> str:
    rec = get(name)
    full = rec.full_attrs(attrs)
    return g.add(name, name, inputs, rec.infer([g.type(i) for i in inputs], full), None, full)


def cross_entropy(g: Graph, logits: str) -> str:
    """Mean cross entropy against a new i64 input `label`, from primitives."""
    lt = g.type(logits)
    label = g.add("label", "input", [], TensorType("i64", lt.shape[:-1]), None)
    g.inputs.append(label)
    picked = op(
        g, "mul", [op(g, "log_softmax", [logits], axis=-1), op(g, "one_hot", [label], depth=lt.shape[-1])]
    )
    return op(
        g, "neg", [op(g, "reduce_mean", [op(g, "reduce_sum", [picked], axes=(-1,), keepdims=0)], axes=None)]
    )


def with_gradients(g: Graph, loss: str, wrt: list[str]) -> Graph:
    grads = backward(g, loss, wrt)
    g.outputs = {"loss": loss, **{f"grad/{w}": grads[w] for w in wrt}}
    g.prune()
    return g


def run_both(g: Graph, feeds: dict[str, np.ndarray]) -> tuple[dict, dict]:
    model = lower(g)
    check(model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
    return got, evaluate(g, feeds)


def assert_close(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for name, w in want.items():
        assert got[name].shape == w.shape, name
        err = np.abs(got[name] - w).max(initial=0.0)
        assert err <= 1e-4 * max(1.0, np.abs(w).max(initial=0.0)), f"{name}: max error {err}"


def feeds_for(g: Graph, dims: dict[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for i in g.inputs:
        t = g.type(i)
        shape = [d if isinstance(d, int) else dims[d] for d in t.shape]
        if t.dtype == "i64":
            out[i] = rng.integers(0, 5, shape).astype(np.int64)
        else:
            out[i] = rng.standard_normal(shape).astype(t.np_dtype)
    return out


@pytest.mark.parametrize("source", [MLP, CNN, "transformer"], ids=["mlp", "cnn", "transformer"])
def test_network_gradients_match_reference(source, root):
    m = (
        ng.compile_file(root / "examples" / "transformer.nn")
        if source == "transformer"
        else ng.compile_source(source)
    )
    g = m.graph
    (logits,) = g.outputs.values()
    loss = cross_entropy(g, logits)
    wrt = g.params(trainable=True) + [i for i in g.inputs if g.type(i).dtype == "f32"]
    with_gradients(g, loss, wrt)
    rng = np.random.default_rng(0)
    for dims in ({"batch": 3, "seq": 4}, {"batch": 1, "seq": 2}):
        assert_close(*run_both(g, feeds_for(g, dims, rng)))


def test_symbolic_spatial_dims():
    """Strided conv, padded pools, slices and concat over run-time sizes: the dynamic lowerings."""
    g = Graph("symbolic")
    x = g.add("x", "input", [], TensorType("f32", ("batch", 3, "h", "w")), None)
    g.inputs.append(x)
    rng = np.random.default_rng(1)
    param = lambda name, shape: g.add(
        name,
        "param",
        [],
        TensorType("f32", shape),
        None,
        value=rng.standard_normal(shape).astype(np.float32),
        trainable=True,
    )
    w, w2 = param("w", (4, 3, 3, 3)), param("w2", (4, 5))
    h = op(g, "conv", [x, w], stride=(2, 2), pads=(1, 1, 1, 1))
    h = op(g, "avgpool", [h], kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1), count_include_pad=0)
    h = op(g, "maxpool", [op(g, "relu", [h])], kernel=(2, 2), stride=(1, 1))
    h = op(
        g,
        "concat",
        [op(g, "slice", [h], axis=3, start=0, end=1), op(g, "slice", [h], axis=3, start=-2)],
        axis=3,
    )
    h = op(g, "slice", [h], axis=2, start=1, end=-1)
    h = op(g, "flatten", [op(g, "global_avgpool", [h])])
    loss = op(g, "reduce_sum", [op(g, "matmul", [h, w2])], axes=None)
    loss = op(g, "reduce_sum", [op(g, "mul", [loss, loss])], axes=None)
    with_gradients(g, loss, [x, w, w2])
    for dims in ({"batch": 2, "h": 17, "w": 13}, {"batch": 1, "h": 14, "w": 16}):
        assert_close(*run_both(g, feeds_for(g, dims, rng)))


def first_max_grad(x: np.ndarray, g: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """Brute force: each window's gradient to its first maximum in row-major order, padding excluded."""
    out = np.zeros(x.shape)
    n, c, oh, ow = g.shape
    for b, ch, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        best = None
        for di, dj in itertools.product(range(k), range(k)):
            r, q = i * s - p + di, j * s - p + dj
            if (
                0 <= r < x.shape[2]
                and 0 <= q < x.shape[3]
                and (best is None or x[b, ch, r, q] > x[b, ch, best[0], best[1]])
            ):
                best = (r, q)
        out[b, ch, best[0], best[1]] += g[b, ch, i, j]
    return out


def test_maxpool_ties_go_to_the_first_maximum():
    """Integer pixels and ReLU zeros tie; both the tiling (fast) and the overlapping form send each
    window's gradient to its first maximum only, as PyTorch does."""
    rng = np.random.default_rng(2)
    xv = rng.integers(0, 4, (2, 3, 9, 8)).astype(np.float32)
    g = Graph("ties")
    x = g.add("x", "input", [], TensorType("f32", xv.shape), None)
    g.inputs.append(x)
    rv = [rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 4, 4), (2, 3, 5, 4))]
    r = [g.add(f"r{i}", "const", [], TensorType("f32", v.shape), None, value=v) for i, v in enumerate(rv)]
    relu = op(
        g,
        "relu",
        [op(g, "sub", [x, g.add("one", "const", [], TensorType("f32", ()), None, value=np.float32(1))])],
    )
    a = op(g, "maxpool", [relu], kernel=(2, 2))
    b = op(g, "maxpool", [x], kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1))
    dot = lambda t, rt: op(g, "reduce_sum", [op(g, "mul", [t, rt])], axes=None)
    loss = op(g, "add", [dot(a, r[0]), dot(b, r[1])])
    with_gradients(g, loss, [x])
    got, want = run_both(g, {x: xv})
    assert_close(got, want)
    relu_v = np.maximum(xv - 1, 0)
    expect = (xv > 1) * first_max_grad(relu_v, rv[0], 2, 2, 0) + first_max_grad(xv, rv[1], 3, 2, 1)
    np.testing.assert_allclose(got["grad/x"], expect, rtol=1e-5, atol=1e-5)
