"""The registry walk, one operator at a time: its record is complete, its ONNX lowering run by
onnxruntime matches its NumPy reference, it has a gradient rule, and the rule matches central
finite differences of the reference (float64)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from nngraph.autodiff.backward import backward
from nngraph.core.ir import Graph
from nngraph.core.types import TensorType, dtype_name
from nngraph.onnx.single_op import single_op_model
from nngraph.ops.reference import evaluate_nodes
from nngraph.ops.registry import NO_GRADIENT, Style, all_ops

OPS = all_ops()


# ---- the record, the shape rule and the lowering ---------------------------------------------


def run_sample(op, sample):
    model, out_type = single_op_model(op, list(sample.inputs), sample.attrs)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {f"x{i}": a for i, a in enumerate(sample.inputs)})
    return got, out_type


@pytest.mark.parametrize("name", sorted(OPS))
def test_record_is_complete(name):
    """Every rule of the record: shape, lowering, reference, samples, style, doc, a gradient (a
    rule, NO_GRADIENT or a decomposition), and well-formed FLOP and identity fields."""
    op = OPS[name]
    for part in ("infer", "lower", "reference", "samples"):
        assert callable(getattr(op, part)), f"{name} has no {part} rule"
    assert isinstance(op.style, Style) and op.style.category, f"{name} has no diagram style"
    assert op.doc, f"{name} has no doc line"
    assert op.grad is NO_GRADIENT or callable(op.grad) or (op.grad is None and callable(op.decompose)), (
        f"{name} needs a gradient rule, NO_GRADIENT or a decomposition, has grad={op.grad!r}"
    )
    assert op.flops is None or callable(op.flops)
    assert all(callable(f) for f in op.identities), f"{name}: an identity is not a function"
    assert len(op.samples(np.random.default_rng(0))) >= 2, f"{name} needs several sample shapes"


@pytest.mark.parametrize("name", sorted(OPS))
def test_lowering_matches_reference(name):
    op = OPS[name]
    for sample in op.samples(np.random.default_rng(1)):
        got, out_type = run_sample(op, sample)
        want = op.reference(list(sample.inputs), op.full_attrs(sample.attrs))
        assert tuple(got.shape) == tuple(out_type.shape), (
            f"{name}: shape rule says {out_type}, ORT gave {got.shape}"
        )
        assert got.dtype == out_type.np_dtype
        tol = 1e-5 if got.dtype != np.float16 else 1e-2
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"{name} {sample.attrs}")


# ---- the gradient rule -----------------------------------------------------------------------


def as64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def op_graph(op, arrays, attrs, rng):
    """x0..xn -> op -> y; loss = sum(y * r) for a fixed random r."""
    g = Graph("grad_test")
    xs = []
    for i, a in enumerate(arrays):
        xs.append(g.add(f"x{i}", "input", [], TensorType(dtype_name(a.dtype), a.shape), None))
        g.inputs.append(xs[-1])
    full = op.full_attrs(attrs)
    y = g.add("y", op.name, xs, op.infer([g.type(x) for x in xs], full), None, full)
    yt = g.type(y)
    r = rng.standard_normal(yt.shape).astype(yt.np_dtype)
    rn = g.add("r", "const", [], yt, None, value=r)
    prod = g.add("prod", "mul", [y, rn], yt, None, {})
    loss = g.add("loss", "reduce_sum", [prod], TensorType(yt.dtype, ()), None, {"axes": None, "keepdims": 0})
    return g, xs, loss, r


@pytest.mark.parametrize(
    "name", sorted(n for n in OPS if OPS[n].grad is not NO_GRADIENT and (OPS[n].grad or OPS[n].decompose))
)
def test_gradient_matches_finite_differences(name):
    op = OPS[name]
    rng = np.random.default_rng(3)
    for sample in op.samples(np.random.default_rng(2)):
        arrays = [as64(a) for a in sample.inputs]
        if not any(a.dtype.kind == "f" for a in arrays) or op.infer(
            [TensorType(dtype_name(a.dtype), a.shape) for a in arrays], op.full_attrs(sample.attrs)
        ).dtype not in ("f32", "f64"):
            continue
        g, xs, loss, r = op_graph(op, arrays, sample.attrs, rng)
        wrt = [
            x
            for i, (x, a) in enumerate(zip(xs, arrays, strict=True))
            if a.dtype.kind == "f" and i not in op.no_grad_inputs  # e.g. batchnorm's running statistics
        ]
        grads = backward(g, loss, wrt)
        feeds = dict(zip(xs, arrays, strict=True))
        got = evaluate_nodes(g, feeds, [grads[w] for w in wrt])
        full = op.full_attrs(sample.attrs)

        def f(vals, full=full, r=r):
            return float(np.sum(op.reference(vals, full) * r))

        for w, gw in zip(wrt, got, strict=True):
            i = xs.index(w)
            a = arrays[i]
            assert gw.shape == a.shape
            idx = rng.choice(a.size, size=min(a.size, 12), replace=False)
            for j in idx:
                eps = 1e-6 * max(1.0, abs(a.flat[j]))
                hi, lo = [v.copy() for v in arrays], [v.copy() for v in arrays]
                hi[i].flat[j] += eps
                lo[i].flat[j] -= eps
                fd = (f(hi) - f(lo)) / (2 * eps)
                assert abs(gw.flat[j] - fd) <= 1e-4 * max(1.0, abs(fd)), (
                    f"{name} {sample.attrs}: d/dx{i}[{j}] symbolic {gw.flat[j]} vs finite difference {fd}"
                )


@pytest.mark.parametrize("name", sorted(n for n in OPS if OPS[n].grad is NO_GRADIENT))
def test_backward_stops_at_an_op_without_gradient(name):
    """Regression: nine records spelled "no gradient" as a string that autodiff then called
    (`TypeError: 'str' object is not callable` on embedding_grad); NO_GRADIENT ends the walk."""
    op = OPS[name]
    sample = next(
        (s for s in op.samples(np.random.default_rng(2)) if any(a.dtype.kind == "f" for a in s.inputs)), None
    )
    if sample is None:
        pytest.skip(f"{name} takes no float input")
    arrays = [as64(a) for a in sample.inputs]
    out_t = op.infer([TensorType(dtype_name(a.dtype), a.shape) for a in arrays], op.full_attrs(sample.attrs))
    if out_t.dtype not in ("f32", "f64"):
        pytest.skip(f"{name} gives {out_t.dtype}")
    g, xs, loss, _ = op_graph(op, arrays, sample.attrs, np.random.default_rng(3))
    floats = [x for x, a in zip(xs, arrays, strict=True) if a.dtype.kind == "f"]
    grads = backward(g, loss, floats)
    for x in floats:  # the loss depends on x only through an op without gradient: zero
        assert g.node(grads[x])["op"] == "const" and not g.node(grads[x])["value"].any()
