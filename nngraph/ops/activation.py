"""Activations: elementwise nonlinearities and the softmax family, all on float tensors."""

from __future__ import annotations

import math

import numpy as np

from nngraph.core.types import TensorType
from nngraph.errors import ShapeError
from nngraph.ops.common import axis_of, need_float, randn
from nngraph.ops.identities import passthrough
from nngraph.ops.registry import Op, Sample, Style, register

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _unary(name: str, ref, lower, doc: str, grad, attrs=None, attr_samples=({},), check=None, **fields) -> Op:
    """Register a shape-preserving float op; `check(t, attrs)` adds attribute checks; `fields` are
    further record fields (attr_kinds, identities, ...).

    grad(ctx, g, x, y) -> the input's gradient, from the upstream gradient g, the input x and
    the output y (all V expressions; reusing y saves recomputing the op).
    """

    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        need_float(ts[0], name)
        if check is not None:
            check(ts[0], attrs)
        return ts[0]

    def samples(rng: np.random.Generator) -> list[Sample]:
        shapes = [(2, 3), (4, 5, 6), (7,), (2, 3, 4, 5)]
        out = [Sample((3 * randn(rng, *s),), dict(a)) for s in shapes for a in attr_samples]
        return out + [Sample((randn(rng, 3, 4).astype(np.float64),), dict(attr_samples[-1]))]

    def reference(xs, attrs):
        x = xs[0]
        return np.asarray(ref(x.astype(np.float64), attrs)).astype(x.dtype)

    return register(
        Op(
            name=name,
            inputs=("x",),
            attrs=dict(attrs or {}),
            infer=infer,
            lower=lower,
            reference=reference,
            samples=samples,
            style=Style("activation", name),
            doc=doc,
            grad=lambda c, g: [grad(c, g, c.x[0], c.y)],
            **fields,
        )
    )


def _simple(onnx_op: str, **onnx_attrs):
    """A lowering to one ONNX node; attribute values are functions of the op's attrs."""
    return lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
        onnx_op, xs, **{k: f(attrs) for k, f in onnx_attrs.items()}
    )


def _lower_gelu(ctx, xs, attrs, in_types, out_type):
    x = xs[0]
    c = lambda v: ctx.const(np.asarray(v, dtype=in_types[0].np_dtype))
    if attrs["approximate"] == "tanh":  # 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3)))
        x3 = ctx.emit("Mul", [ctx.emit("Mul", [x, x]), x])
        inner = ctx.emit("Add", [x, ctx.emit("Mul", [x3, c(0.044715)])])
        t = ctx.emit("Tanh", [ctx.emit("Mul", [inner, c(math.sqrt(2 / math.pi))])])
    else:  # 0.5*x*(1+erf(x/sqrt(2)))
        t = ctx.emit("Erf", [ctx.emit("Mul", [x, c(1 / math.sqrt(2))])])
    return ctx.emit("Mul", [ctx.emit("Mul", [x, c(0.5)]), ctx.emit("Add", [t, c(1.0)])])


def _gelu(x, attrs):
    if attrs["approximate"] == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _gelu_grad(c, g, x, y):
    if c.attrs["approximate"] == "tanh":  # d/dx of 0.5*x*(1+t), t = tanh(k*(x + a*x^3))
        k, a = math.sqrt(2 / math.pi), 0.044715
        t = (k * (x + a * x * x * x)).f("tanh")
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * a * x * x))
    cdf = 0.5 + 0.5 * (x * (1 / math.sqrt(2))).f("erf")
    pdf = (-0.5 * x * x).f("exp") * (1 / math.sqrt(2 * math.pi))
    return g * (cdf + x * pdf)


def _softmax_grad(c, g, x, y):
    ax = c.attrs["axis"] % x.type.rank
    return y * (g - (g * y).sum([ax], keepdims=1))


def _log_softmax_grad(c, g, x, y):
    ax = c.attrs["axis"] % x.type.rank
    return g - y.f("exp") * g.sum([ax], keepdims=1)


def _check_gelu(t, attrs):
    if attrs["approximate"] not in ("none", "tanh"):
        raise ShapeError(f"'gelu' approximate must be 'none' or 'tanh', got {attrs['approximate']!r}")


def _check_axis(name):
    return lambda t, attrs: axis_of(t, attrs["axis"], name)


def _softmax(x, attrs):
    e = np.exp(x - x.max(axis=attrs["axis"], keepdims=True))
    return e / e.sum(axis=attrs["axis"], keepdims=True)


def _log_softmax(x, attrs):
    z = x - x.max(axis=attrs["axis"], keepdims=True)
    return z - np.log(np.exp(z).sum(axis=attrs["axis"], keepdims=True))


RELU = _unary(
    "relu",
    lambda x, a: np.maximum(x, 0),
    _simple("Relu"),
    "max(x, 0)",
    lambda c, g, x, y: g * y.mask("greater"),
)
LEAKY_RELU = _unary(
    "leaky_relu",
    lambda x, a: np.where(x >= 0, x, a["alpha"] * x),
    _simple("LeakyRelu", alpha=lambda a: float(a["alpha"])),
    "x where x >= 0, else alpha*x",
    lambda c, g, x, y: g * (x.mask("greater") * (1 - c.attrs["alpha"]) + c.attrs["alpha"]),
    attrs={"alpha": 0.01},
    attr_samples=({}, {"alpha": 0.2}),
)
SIGMOID = _unary(
    "sigmoid",
    lambda x, a: 1 / (1 + np.exp(-x)),
    _simple("Sigmoid"),
    "1 / (1 + exp(-x))",
    lambda c, g, x, y: g * y * (1 - y),
)
TANH = _unary(
    "tanh", lambda x, a: np.tanh(x), _simple("Tanh"), "hyperbolic tangent", lambda c, g, x, y: g * (1 - y * y)
)
GELU = _unary(
    "gelu",
    _gelu,
    _lower_gelu,
    "Gaussian error linear unit, exact (erf) or the tanh approximation",
    _gelu_grad,
    attrs={"approximate": "none"},
    attr_samples=({}, {"approximate": "tanh"}),
    check=_check_gelu,
    attr_kinds={"approximate": "choice:none|tanh"},
)
SILU = _unary(
    "silu",
    lambda x, a: x / (1 + np.exp(-x)),
    lambda ctx, xs, attrs, in_types, out_type: ctx.emit("Mul", [xs[0], ctx.emit("Sigmoid", xs)]),
    "x * sigmoid(x) (swish)",
    lambda c, g, x, y: g * x.f("sigmoid") * (1 + x - y),  # s + x*s*(1-s), with x*s = y
)
SOFTMAX = _unary(
    "softmax",
    _softmax,
    _simple("Softmax", axis=lambda a: a["axis"]),
    "exp(x) / sum(exp(x)) along one axis",
    _softmax_grad,
    attrs={"axis": -1},
    attr_samples=({}, {"axis": 0}),
    check=_check_axis("softmax"),
)
LOG_SOFTMAX = _unary(
    "log_softmax",
    _log_softmax,
    _simple("LogSoftmax", axis=lambda a: a["axis"]),
    "log(softmax(x)) along one axis, computed stably",
    _log_softmax_grad,
    attrs={"axis": -1},
    attr_samples=({}, {"axis": 0}),
    check=_check_axis("log_softmax"),
)
IDENTITY = _unary(
    "identity",
    lambda x, a: x,
    lambda ctx, xs, attrs, in_types, out_type: xs[0],
    "x unchanged",
    lambda c, g, x, y: g,
    identities=(passthrough,),
)
