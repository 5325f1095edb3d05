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


# ---- the activations of torch.nn: lowered through primitives where onnxruntime's own kernel has
# no f64 (HardSwish, HardSigmoid, Elu, Selu, Celu, Softplus, Softsign) or the op is past opset 17
# (Mish). At a kink each gradient takes PyTorch's value there.

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _k(ctx, out_type: TensorType, v: float) -> str:
    """A scalar constant in the output's dtype."""
    return ctx.const(np.asarray(v, out_type.np_dtype))


def _clip_lower(lo, hi):
    """ONNX Clip between lo(attrs) and hi(attrs) (it has f32 and f64 kernels)."""
    return lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
        "Clip", [xs[0], _k(ctx, out_type, lo(attrs)), _k(ctx, out_type, hi(attrs))]
    )


def _relu6_of(ctx, x: str, out_type: TensorType) -> str:
    """relu6(x + 3), the ramp both hard activations are made of."""
    z = ctx.emit("Add", [x, _k(ctx, out_type, 3.0)])
    return ctx.emit("Clip", [z, _k(ctx, out_type, 0.0), _k(ctx, out_type, 6.0)])


def _hardsigmoid_lower(ctx, xs, attrs, in_types, out_type):
    return ctx.emit("Div", [_relu6_of(ctx, xs[0], out_type), _k(ctx, out_type, 6.0)])


def _hardswish_lower(ctx, xs, attrs, in_types, out_type):
    return ctx.emit(
        "Div", [ctx.emit("Mul", [xs[0], _relu6_of(ctx, xs[0], out_type)]), _k(ctx, out_type, 6.0)]
    )


def _elu_lower_of(alpha, scale=1.0, inner=1.0):
    """scale * (x where x > 0, else alpha * (exp(x / inner) - 1)): elu, selu and celu."""

    def lower(ctx, xs, attrs, in_types, out_type):
        x, t = xs[0], out_type
        a, s, d = alpha(attrs), scale, inner(attrs) if callable(inner) else inner
        neg = ctx.emit("Min", [x, _k(ctx, t, 0.0)])  # exp of the negative side only: no overflow
        if d != 1.0:
            neg = ctx.emit("Div", [neg, _k(ctx, t, d)])
        e = ctx.emit("Mul", [ctx.emit("Sub", [ctx.emit("Exp", [neg]), _k(ctx, t, 1.0)]), _k(ctx, t, a)])
        y = ctx.emit("Where", [ctx.emit("Greater", [x, _k(ctx, t, 0.0)]), x, e])
        return y if s == 1.0 else ctx.emit("Mul", [y, _k(ctx, t, s)])

    return lower


def _emit_softplus(ctx, z: str, t: TensorType) -> str:
    """log(1 + exp(z)) as max(z, 0) + log(1 + exp(-|z|)): no overflow for large z."""
    tail = ctx.emit("Exp", [ctx.emit("Neg", [ctx.emit("Abs", [z])])])
    return ctx.emit(
        "Add",
        [ctx.emit("Max", [z, _k(ctx, t, 0.0)]), ctx.emit("Log", [ctx.emit("Add", [tail, _k(ctx, t, 1.0)])])],
    )


def _softplus_lower(ctx, xs, attrs, in_types, out_type):
    x, t, beta = xs[0], out_type, float(attrs["beta"])
    z = x if beta == 1.0 else ctx.emit("Mul", [x, _k(ctx, t, beta)])
    sp = _emit_softplus(ctx, z, t)
    if beta != 1.0:
        sp = ctx.emit("Div", [sp, _k(ctx, t, beta)])
    return ctx.emit("Where", [ctx.emit("Greater", [z, _k(ctx, t, float(attrs["threshold"]))]), x, sp])


def _mish_lower(ctx, xs, attrs, in_types, out_type):
    return ctx.emit("Mul", [xs[0], ctx.emit("Tanh", [_emit_softplus(ctx, xs[0], out_type)])])


def _v_softplus(x):
    """softplus as V nodes, stable as the lowering is."""
    return x.f("maximum", 0.0) + ((-x.f("abs")).f("exp") + 1).f("log")


def _elu_ref(x, alpha, inner=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0) / inner))


def _check_clip(t, attrs):
    if not attrs["min"] < attrs["max"]:
        raise ShapeError(
            f"'clip' needs min < max, got min={attrs['min']:g}, max={attrs['max']:g}", expected="min < max"
        )


def _check_nonzero(name, attr):
    def check(t, attrs):
        if attrs[attr] == 0:
            raise ShapeError(f"'{name}' divides by {attr}, which must not be 0", expected=f"{attr} != 0")

    return check


def _hardswish_grad(c, g, x, y):  # PyTorch: 0 up to -3, x/3 + 1/2 inside, 1 from 3 on
    inside = x.mask("greater", -3.0) * x.mask("less", 3.0)
    return g * (inside * (x * (1 / 3) + 0.5) + x.mask("greater_equal", 3.0))


def _softplus_grad(c, g, x, y):  # sigmoid(beta x), 1 where beta x > threshold (as PyTorch)
    z = x * float(c.attrs["beta"])
    above = z.mask("greater", float(c.attrs["threshold"]))
    return g * (above + (1 - above) * z.f("sigmoid"))


def _mish_grad(c, g, x, y):  # tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), sp = softplus(x)
    t = _v_softplus(x).f("tanh")
    return g * (t + x * x.f("sigmoid") * (1 - t * t))


def _elu_grad(c, g, x, y):  # at 0 the negative side's alpha, as PyTorch
    pos = x.mask("greater")
    return g * (pos + (1 - pos) * (y + float(c.attrs["alpha"])))


def _selu_grad(c, g, x, y):
    pos = x.mask("greater")
    return g * (pos * _SELU_SCALE + (1 - pos) * (y + _SELU_SCALE * _SELU_ALPHA))


def _celu_grad(c, g, x, y):
    pos = x.mask("greater")
    return g * (pos + (1 - pos) * (y * (1 / float(c.attrs["alpha"])) + 1))


RELU6 = _unary(
    "relu6",
    lambda x, a: np.clip(x, 0, 6),
    _clip_lower(lambda a: 0.0, lambda a: 6.0),
    "min(max(x, 0), 6)",
    lambda c, g, x, y: g * x.mask("greater", 0.0) * x.mask("less", 6.0),  # 0 at 0 and 6, as PyTorch
)
CLIP = _unary(
    "clip",
    lambda x, a: np.clip(x, a["min"], a["max"]),
    _clip_lower(lambda a: float(a["min"]), lambda a: float(a["max"])),
    "min(max(x, min), max), torch's hardtanh",
    lambda c, g, x, y: g * x.mask("greater", float(c.attrs["min"])) * x.mask("less", float(c.attrs["max"])),
    attrs={"min": -1.0, "max": 1.0},
    attr_samples=({}, {"min": -0.5, "max": 2.0}),
    check=_check_clip,
)
HARDSIGMOID = _unary(
    "hardsigmoid",
    lambda x, a: np.clip(x + 3, 0, 6) / 6,
    _hardsigmoid_lower,
    "relu6(x + 3) / 6",
    lambda c, g, x, y: g * (x.mask("greater", -3.0) * x.mask("less", 3.0) * (1 / 6)),
)
HARDSWISH = _unary(
    "hardswish",
    lambda x, a: x * np.clip(x + 3, 0, 6) / 6,
    _hardswish_lower,
    "x * relu6(x + 3) / 6",
    _hardswish_grad,
)
ELU = _unary(
    "elu",
    lambda x, a: _elu_ref(x, a["alpha"]),
    _elu_lower_of(lambda a: float(a["alpha"])),
    "x where x > 0, else alpha * (exp(x) - 1)",
    _elu_grad,
    attrs={"alpha": 1.0},
    attr_samples=({}, {"alpha": 0.5}),
)
SELU = _unary(
    "selu",
    lambda x, a: _SELU_SCALE * _elu_ref(x, _SELU_ALPHA),
    _elu_lower_of(lambda a: _SELU_ALPHA, _SELU_SCALE),
    "scale * elu(x, alpha) with the self-normalizing constants",
    _selu_grad,
)
CELU = _unary(
    "celu",
    lambda x, a: _elu_ref(x, a["alpha"], a["alpha"]),
    _elu_lower_of(lambda a: float(a["alpha"]), inner=lambda a: float(a["alpha"])),
    "x where x > 0, else alpha * (exp(x / alpha) - 1)",
    _celu_grad,
    attrs={"alpha": 1.0},
    attr_samples=({}, {"alpha": 0.5}),
    check=_check_nonzero("celu", "alpha"),
)
SOFTPLUS = _unary(
    "softplus",
    lambda x, a: np.where(a["beta"] * x > a["threshold"], x, np.logaddexp(0, a["beta"] * x) / a["beta"]),
    _softplus_lower,
    "log(1 + exp(beta * x)) / beta, x where beta * x > threshold",
    _softplus_grad,
    attrs={"beta": 1.0, "threshold": 20.0},
    attr_samples=({}, {"beta": 2.0, "threshold": 4.0}),
    check=_check_nonzero("softplus", "beta"),
)
MISH = _unary(
    "mish",
    lambda x, a: x * np.tanh(np.logaddexp(0, x)),
    _mish_lower,
    "x * tanh(softplus(x))",
    _mish_grad,
)


def _softsign_lower(ctx, xs, attrs, in_types, out_type):  # onnxruntime's Softsign has no f64 kernel
    one = ctx.const(np.asarray(1, out_type.np_dtype))
    return ctx.emit("Div", [xs[0], ctx.emit("Add", [one, ctx.emit("Abs", xs)])])


SOFTSIGN = _unary(
    "softsign",
    lambda x, a: x / (1 + np.abs(x)),  # the NumPy reference, in float64
    _softsign_lower,
    "x / (1 + |x|)",
    lambda c, g, x, y: g / ((1 + x.f("abs")) * (1 + x.f("abs"))),  # the gradient, in the V algebra
)


def _glu_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    (t,) = ts
    need_float(t, "glu")
    ax = axis_of(t, attrs["axis"], "glu")
    d = t.shape[ax]
    if not isinstance(d, int) or d % 2:
        size = f"'{d}', not a number" if not isinstance(d, int) else f"{d}, odd"
        raise ShapeError(
            f"'glu' splits axis {attrs['axis']} of {t} in halves, but its size is {size}",
            expected="an even, fixed size along the axis",
        )
    return TensorType(t.dtype, t.shape[:ax] + (d // 2,) + t.shape[ax + 1 :])


def _glu_lower(ctx, xs, attrs, in_types, out_type):
    ax = attrs["axis"] % in_types[0].rank
    h = in_types[0].shape[ax] // 2
    a, b = ctx.emit_multi("Split", [xs[0], ctx.ints([h, h])], 2, axis=ax)
    return ctx.emit("Mul", [a, ctx.emit("Sigmoid", [b])])


def _glu_ref(xs, attrs):
    a, b = np.split(xs[0].astype(np.float64), 2, axis=attrs["axis"])
    return (a / (1 + np.exp(-b))).astype(xs[0].dtype)


def _glu_grad(c, g, x, y):  # y = a s, s = sigmoid(b): da = g s, db = g a s (1 - s) = g y (1 - s)
    ax = c.attrs["axis"] % x.type.rank
    h = x.type.shape[ax] // 2
    s = x.f("slice", axis=ax, start=h, end=2 * h).f("sigmoid")
    return (g * s).f("concat", g * y * (1 - s), axis=ax)


def _glu_samples(rng: np.random.Generator) -> list[Sample]:
    cases = [((2, 6), -1), ((4, 6, 5), 1), ((4, 3), 0), ((2, 3, 2, 4), -1)]
    out = [Sample((3 * randn(rng, *s),), {"axis": ax}) for s, ax in cases]
    return out + [Sample((randn(rng, 3, 4).astype(np.float64),), {})]


GLU = register(
    Op(
        name="glu",
        inputs=("x",),
        attrs={"axis": -1},
        infer=_glu_infer,
        lower=_glu_lower,
        reference=_glu_ref,
        samples=_glu_samples,
        style=Style("activation", "glu"),
        doc="a * sigmoid(b), a and b the two halves of x along axis",
        grad=lambda c, g: [_glu_grad(c, g, c.x[0], c.y)],
    )
)
