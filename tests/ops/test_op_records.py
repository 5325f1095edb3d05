"""Every operator record is whole, and the facts other stages read from it hold: FLOP counts,
which ops a .nn file may call (and how their attributes are written and bounded), the algebraic
identities the simplify pass applies, and the inputs that take no gradient by design."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import nngraph
from nngraph.autodiff.backward import GradCtx
from nngraph.core.emit import Emitter
from nngraph.core.ir import Graph
from nngraph.core.types import FLOATS, TensorType, dtype_name
from nngraph.errors import NNError
from nngraph.ops import registry
from nngraph.ops.reference import evaluate
from nngraph.ops.registry import REQUIRED
from nngraph.passes.cleanup import simplify

OPS = registry.all_ops()
CALLABLE = sorted(n for n, op in OPS.items() if not op.internal)
INTERNAL = sorted(n for n, op in OPS.items() if op.internal)


def type_of(a: np.ndarray) -> TensorType:
    return TensorType(dtype_name(a.dtype), a.shape)


# ---- no_grad_inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n, op in OPS.items() if op.no_grad_inputs))
def test_no_grad_inputs_get_none_from_the_rule(name):
    """A declared input is a float input (else it would need no declaring) that the rule leaves out."""
    op = OPS[name]
    sample = op.samples(np.random.default_rng(0))[0]
    g = Graph("no_grad")
    e = Emitter(g, registry.get)
    xs = [e.input(f"x{i}", type_of(a)) for i, a in enumerate(sample.inputs)]
    y = e.op(name, xs, **sample.attrs)
    ctx = GradCtx(g, y)
    result = op.grad(ctx, ctx.v(e.const(np.ones(g.type(y).shape), y)))
    for i in op.no_grad_inputs:
        assert g.type(xs[i]).dtype in FLOATS, f"{name} input {i} is not a float input"
        assert result[i] is None, f"{name}'s rule gives input {i} a gradient"


# ---- flops --------------------------------------------------------------------------------------


def _matmul_flops(xs, attrs):
    out = np.matmul(xs[0], xs[1])
    return 2 * out.size * xs[0].shape[-1]  # 2 * M * N * K, batch dims included in M


def _gemm_flops(xs, attrs):
    a = xs[0].T if attrs.get("transA") else xs[0]
    b = xs[1].T if attrs.get("transB") else xs[1]
    (m, k), n = a.shape, b.shape[1]
    return 2 * m * n * k


def _conv_flops(xs, attrs):
    out = OPS["conv"].reference(list(xs), OPS["conv"].full_attrs(attrs))
    w = xs[1]
    return 2 * out.size * w.shape[1] * math.prod(w.shape[2:])  # channels per group x kernel


def _conv_transpose_flops(xs, attrs):
    w = xs[1]
    return 2 * xs[0].size * w.shape[1] * math.prod(w.shape[2:])  # each input element x its group's outputs


#: the FLOP count of every counted op, computed from the arrays
FLOPS = {
    "matmul": _matmul_flops,
    "gemm": _gemm_flops,
    "conv": _conv_flops,
    "conv_transpose": _conv_transpose_flops,
}


def test_the_counted_ops_are_the_ones_checked_here():
    assert {n for n, op in OPS.items() if op.flops is not None} == set(FLOPS)


@pytest.mark.parametrize("name", sorted(FLOPS))
def test_flops_match_the_arithmetic(name):
    op = OPS[name]
    for s in op.samples(np.random.default_rng(0)):
        attrs = op.full_attrs(s.attrs)
        ts = [type_of(a) for a in s.inputs]
        got = op.flops(ts, attrs, op.infer(ts, attrs))
        assert got == FLOPS[name](s.inputs, s.attrs), f"{name} {[t.shape for t in ts]} {s.attrs}"


def test_flops_take_symbolic_dims_as_1():
    a, b = TensorType("f32", ("batch", "seq", 3)), TensorType("f32", (3, 4))
    out = OPS["matmul"].infer([a, b], {})
    assert OPS["matmul"].flops([a, b], {}, out) == 2 * 4 * 3


# ---- internal ops, attribute kinds and limits -----------------------------------------------


def _value(v) -> str:
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return v if isinstance(v, str) else repr(v)


def _call_source(name: str, attrs: dict | None = None, call: str | None = None) -> str:
    """A model calling `name` on the tensors of its first sample with no rank-0 input."""
    op = OPS[name]
    sample = next(s for s in op.samples(np.random.default_rng(0)) if all(a.ndim for a in s.inputs))
    attrs = dict(sample.attrs if attrs is None else attrs)
    args = [f"x{i}" for i in range(len(sample.inputs))]
    args += [f"{k}={_value(v)}" for k, v in attrs.items() if v is not None]
    call = call or f"{name}({', '.join(args)})"
    lines = ["model Call {"]
    for i, a in enumerate(sample.inputs):
        if re.search(rf"\bx{i}\b", call):
            lines.append(f"    input x{i}: {dtype_name(a.dtype)}[{', '.join(map(str, a.shape))}]")
    lines += [f"    output y = {call}", "}"]
    return "\n".join(lines)


#: ops a layer of the same name wraps, making the op's other tensors as its parameters
LAYER_CALLS = {
    "batchnorm": "batchnorm(x0)",
    "layernorm": "layernorm(x0)",
    "rmsnorm": "rmsnorm(x0)",
    "groupnorm": "groupnorm(x0, groups=3)",
    "instancenorm": "instancenorm(x0)",
    "embedding": "embedding(x1, 10, 4)",
}


@pytest.mark.parametrize("name", CALLABLE)
def test_every_non_internal_op_is_a_layer(name):
    model = nngraph.compile_source(_call_source(name, call=LAYER_CALLS.get(name)))
    assert any(model.graph.node(n)["op"] == name for n in model.graph.g)


@pytest.mark.parametrize("name", INTERNAL)
def test_every_internal_op_is_refused_in_a_nn_file(name):
    with pytest.raises(NNError, match=f"unknown layer '{name}'"):
        nngraph.compile_source(_call_source(name))


@pytest.mark.parametrize("name", CALLABLE)
def test_attribute_kinds_are_declared_where_the_default_does_not_tell(name):
    op = OPS[name]
    assert set(op.attr_kinds) <= set(op.attrs) and set(op.attr_limits) <= set(op.attrs)
    for attr, default in op.attrs.items():
        if default is REQUIRED or default is None:
            assert attr in op.attr_kinds, f"{name}.{attr} has no default to read its kind from"
        kind = op.attr_kind(attr)
        assert kind in ("int", "ints", "float", "str", "bool") or kind.startswith("choice:"), kind


def _outside(limit: str):
    """A number the limit refuses: 'in [0, 1]' -> 2, '>= 1' -> 0, '> 0' -> 0."""
    if m := re.fullmatch(r"in \[(\S+), (\S+)\]", limit):
        return int(m[2]) + 1
    if m := re.fullmatch(r"> (\S+)", limit):
        return int(m[1])
    m = re.fullmatch(r">= (\S+)", limit)
    return int(m[1]) - 1


LIMITED = [(n, a) for n in CALLABLE for a in OPS[n].attr_limits]


@pytest.mark.parametrize("name,attr", LIMITED, ids=[f"{n}.{a}" for n, a in LIMITED])
def test_attribute_limits_are_checked_in_a_nn_call(name, attr):
    op = OPS[name]
    sample = next(s for s in op.samples(np.random.default_rng(0)) if all(a.ndim for a in s.inputs))
    nngraph.compile_source(_call_source(name))
    with pytest.raises(NNError, match=re.escape(attr)):
        nngraph.compile_source(_call_source(name, {**sample.attrs, attr: _outside(op.attr_limits[attr])}))


# ---- identities ---------------------------------------------------------------------------------


def _graph(build):
    """x: f32[2, 3] -> build(emitter, x) -> neg -> output y; the neg keeps the node off the outputs."""
    g = Graph("identity")
    e = Emitter(g, registry.get)
    x = e.input("x", TensorType("f32", (2, 3)))
    node = build(e, x)
    g.outputs["y"] = e.op("neg", [node])
    return g, node


def _transposes(e, x, inner, outer):
    return e.op("transpose", [e.op("transpose", [x], perm=inner)], perm=outer)


def _binary(op: str, slot: int, value: float):
    def build(e, x):
        c = e.const(value, x)
        return e.op(op, [x, c] if slot == 1 else [c, x])

    return build


#: (op, index in its identities, a graph where that identity rewrites the node)
IDENTITY_CASES = [
    ("add", 0, _binary("add", 1, 0.0)),
    ("add", 1, _binary("add", 0, 0.0)),
    ("sub", 0, _binary("sub", 1, 0.0)),
    ("mul", 0, _binary("mul", 1, 1.0)),
    ("mul", 1, _binary("mul", 0, 1.0)),
    ("div", 0, _binary("div", 1, 1.0)),
    ("identity", 0, lambda e, x: e.op("identity", [x])),
    ("dropout", 0, lambda e, x: e.op("dropout", [x], p=0.3)),
    ("cast", 0, lambda e, x: e.op("cast", [x], to="f32")),
    ("broadcast_like", 0, lambda e, x: e.op("broadcast_like", [x, e.op("exp", [x])])),
    ("reshape_like", 0, lambda e, x: e.op("reshape_like", [x, e.op("exp", [x])])),
    ("transpose", 0, lambda e, x: _transposes(e, x, (1, 0), (1, 0))),  # cancel: x
    (
        "transpose",
        0,
        lambda e, x: _transposes(e, e.op("reshape", [x], shape=(1, 2, 3)), (1, 0, 2), (0, 2, 1)),
    ),  # one
    ("reshape", 0, lambda e, x: e.op("reshape", [e.op("reshape", [x], shape=(3, 2))], shape=(6,))),
    ("reshape", 0, lambda e, x: e.op("reshape", [e.op("flatten", [x], axis=0)], shape=(3, 2))),
]


def test_every_identity_has_a_case():
    declared = {(n, i) for n, op in OPS.items() for i in range(len(op.identities))}
    assert declared == {(n, i) for n, i, _ in IDENTITY_CASES}


@pytest.mark.parametrize(
    "name,index,build", IDENTITY_CASES, ids=[f"{n}-{i}-{k}" for k, (n, i, _) in enumerate(IDENTITY_CASES)]
)
def test_identity_rewrite_keeps_the_value(name, index, build):
    """The identity answers on its case, and after simplify the graph is smaller and computes the
    same outputs as the NumPy reference did before."""
    g, node = _graph(build)
    assert g.node(node)["op"] == name
    assert OPS[name].identities[index](g, node) is not None, f"{name}'s identity {index} did not answer"
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)}
    want = evaluate(g, feeds)
    before = g.g.number_of_nodes()
    assert simplify(g)
    assert g.g.number_of_nodes() < before
    got = evaluate(g, feeds)
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-6)


@pytest.mark.parametrize(
    "name,build",
    [
        ("mul", lambda e, x: e.op("mul", [x, e.const(2.0, x)])),  # not the unit
        ("mul", lambda e, x: e.op("mul", [x, e.const(np.ones((4, 2, 3)), x)])),  # broadcasts x
        ("cast", lambda e, x: e.op("cast", [x], to="f64")),
        ("transpose", lambda e, x: e.op("transpose", [e.op("exp", [x])], perm=(1, 0))),
        ("reshape", lambda e, x: e.op("reshape", [e.op("reshape", [x], shape=(3, 2))], shape=(0, 2))),
    ],
)
def test_identity_declines_where_it_does_not_hold(name, build):
    g, node = _graph(build)
    assert all(f(g, node) is None for f in OPS[name].identities)
