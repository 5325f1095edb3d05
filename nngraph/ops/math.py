"""Elementwise math beyond + - * /: unary functions, pow/max/min, comparisons, where, cast.

These are the building blocks of losses, optimizers and gradient rules.
"""

from __future__ import annotations

import math

import numpy as np

from nngraph.core.types import DTYPES, TensorType, onnx_elem_type
from nngraph.errors import ShapeError
from nngraph.ops.common import broadcast_shapes, need_float, randn, same_dtype
from nngraph.ops.identities import passthrough
from nngraph.ops.registry import NO_GRADIENT, Op, Sample, Style, register

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _one(onnx_op: str):
    return lambda ctx, xs, attrs, in_types, out_type: ctx.emit(onnx_op, xs)


def _unary(name: str, onnx_op: str, ref, grad, positive: bool = False, lower=None) -> Op:
    def infer(ts, attrs):
        need_float(ts[0], name)
        return ts[0]

    def samples(rng):
        f = (lambda a: np.abs(a) + 0.3) if positive else (lambda a: a)
        return [
            Sample((f(randn(rng, 3, 4)),)),
            Sample((f(randn(rng, 2, 3, 5)),)),
            Sample((f(randn(rng, 6)).astype(np.float64),)),
        ]

    return register(
        Op(
            name,
            ("x",),
            {},
            infer,
            lower or _one(onnx_op),
            lambda xs, a: np.asarray(ref(xs[0].astype(np.float64))).astype(xs[0].dtype),
            samples,
            Style("elementwise", name),
            f"{name}(x), elementwise",
            grad,
        )
    )


NEG = _unary("neg", "Neg", np.negative, lambda c, g: [-g])
EXP = _unary("exp", "Exp", np.exp, lambda c, g: [g * c.y])
LOG = _unary("log", "Log", np.log, lambda c, g: [g / c.x[0]], positive=True)
SQRT = _unary("sqrt", "Sqrt", np.sqrt, lambda c, g: [g / (c.y * 2.0)], positive=True)
ABS = _unary("abs", "Abs", np.abs, lambda c, g: [g * c.x[0].f("sign")])
SIGN = _unary("sign", "Sign", np.sign, NO_GRADIENT)


def _erf_grad(c, g):  # d/dx erf(x) = 2/sqrt(pi) * exp(-x^2)
    x = c.x[0]
    return [g * ((-(x * x)).f("exp") * (2 / math.sqrt(math.pi)))]


def _lower_erf(ctx, xs, attrs, in_types, out_type):
    """onnxruntime's CPU Erf is float32 only: other float types go through float32."""
    if in_types[0].dtype == "f32":
        return ctx.emit("Erf", xs)
    y = ctx.emit("Erf", [ctx.emit("Cast", xs, to=onnx_elem_type("f32"))])
    return ctx.emit("Cast", [y], to=onnx_elem_type(in_types[0].dtype))


ERF = _unary("erf", "Erf", _erf, _erf_grad, lower=_lower_erf)


def _binary(
    name: str,
    onnx_op: str,
    ref,
    grad,
    out_dtype: str | None = None,
    positive_a: bool = False,
    category: str = "elementwise",
) -> Op:
    def infer(ts, attrs):
        dt = same_dtype(ts, name)
        return TensorType(out_dtype or dt, broadcast_shapes(ts[0], ts[1], name))

    def samples(rng):
        f = (lambda a: np.abs(a) + 0.5) if positive_a else (lambda a: a)
        return [
            Sample((f(randn(rng, 3, 4)), randn(rng, 3, 4))),
            Sample((f(randn(rng, 2, 3, 5)), randn(rng, 5))),
            Sample((f(randn(rng, 4, 1)).astype(np.float64), randn(rng, 1, 3).astype(np.float64))),
        ]

    def reference(xs, a):
        out = ref(xs[0], xs[1])
        return out.astype(DTYPES[out_dtype]) if out_dtype else out.astype(xs[0].dtype)

    return register(
        Op(
            name,
            ("a", "b"),
            {},
            infer,
            _one(onnx_op),
            reference,
            samples,
            Style(category, name),
            f"{name}(a, b), elementwise with broadcasting",
            grad,
        )
    )


def _pow_grad(c, g):
    a, b = c.x
    da = g * (b * a.f("pow", b - 1.0))
    db = g * (c.y * a.f("log"))
    return [c.unbroadcast(da, a), c.unbroadcast(db, b)]


def _select_grad(wins: str, wins_or_ties: str):
    """g to the input that was selected; at a tie half to each, as PyTorch does (all to one side
    made binary_cross_entropy's max(x, 0) step the wrong way at a logit of exactly 0)."""

    def grad(c, g):
        a, b = c.x
        ga = g * ((a.mask(wins, b) + a.mask(wins_or_ties, b)) * 0.5)
        gb = g - ga
        return [c.unbroadcast(ga, a), c.unbroadcast(gb, b)]

    return grad


POW = _binary("pow", "Pow", np.power, _pow_grad, positive_a=True)
MAXIMUM = _binary("maximum", "Max", np.maximum, _select_grad("greater", "greater_equal"))
MINIMUM = _binary("minimum", "Min", np.minimum, _select_grad("less", "less_equal"))
_cmp = lambda: NO_GRADIENT
GREATER = _binary("greater", "Greater", np.greater, _cmp(), out_dtype="bool", category="compare")
GREATER_EQUAL = _binary(
    "greater_equal", "GreaterOrEqual", np.greater_equal, _cmp(), out_dtype="bool", category="compare"
)
LESS = _binary("less", "Less", np.less, _cmp(), out_dtype="bool", category="compare")
LESS_EQUAL = _binary("less_equal", "LessOrEqual", np.less_equal, _cmp(), out_dtype="bool", category="compare")
EQUAL = _binary("equal", "Equal", np.equal, _cmp(), out_dtype="bool", category="compare")


def _where_infer(ts, attrs):
    c, a, b = ts
    if c.dtype != "bool":
        raise ShapeError(
            f"'where' needs a bool condition, got {c}", expected="a bool tensor, e.g. from greater(a, b)"
        )
    dt = same_dtype([a, b], "where")
    shape = broadcast_shapes(TensorType(dt, broadcast_shapes(a, b, "where")), c.with_shape(c.shape), "where")
    return TensorType(dt, shape)


def _where_grad(c, g):
    """Selection as a multiply by the condition cast to g's dtype, faster than Where on onnxruntime."""
    cond, a, b = c.x
    ga = g * cond.f("cast", to=g.type.dtype)
    gb = g - ga
    return [None, c.unbroadcast(ga, a), c.unbroadcast(gb, b)]


WHERE = register(
    Op(
        "where",
        ("cond", "a", "b"),
        {},
        _where_infer,
        _one("Where"),
        lambda xs, a: np.where(xs[0], xs[1], xs[2]),
        lambda rng: [
            Sample((randn(rng, 3, 4) > 0, randn(rng, 3, 4), randn(rng, 3, 4))),
            Sample((randn(rng, 2, 1) > 0, randn(rng, 2, 5), randn(rng, 5))),
        ],
        Style("elementwise", "where"),
        "cond ? a : b, elementwise with broadcasting",
        _where_grad,
    )
)


def _cast_infer(ts, attrs):
    if attrs["to"] not in DTYPES:
        raise ShapeError(f"unknown dtype '{attrs['to']}' in cast", expected="one of " + ", ".join(DTYPES))
    return TensorType(attrs["to"], ts[0].shape)


def _cast_grad(c, g):
    src = c.x[0].type.dtype
    if src.startswith("f") and c.out_type.dtype.startswith("f"):
        return [g.f("cast", to=src)]
    return [None]


CAST = register(
    Op(
        "cast",
        ("x",),
        {"to": "f32"},
        _cast_infer,
        lambda ctx, xs, attrs, it, ot: ctx.emit("Cast", xs, to=onnx_elem_type(attrs["to"])),
        lambda xs, a: xs[0].astype(DTYPES[a["to"]]),
        lambda rng: [
            Sample((randn(rng, 3, 4) > 0,), {"to": "f32"}),
            Sample((randn(rng, 2, 3),), {"to": "f64"}),
            Sample((np.arange(6, dtype=np.int64).reshape(2, 3),), {"to": "f32"}),
        ],
        Style("elementwise", "cast"),
        "convert to another dtype",
        _cast_grad,
        identities=(passthrough,),  # a cast to the dtype it has
    )
)
