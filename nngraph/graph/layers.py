"""Built-in layers: composites built from primitive operators, plus every primitive as a layer.

A layer's `build(ctx, xs, args)` makes its parameters with `ctx.param` and its
nodes with `ctx.op`; it never knows about ONNX, gradients or diagrams, which
come from the primitive operators' records.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nngraph.core.types import FLOATS, INTS, TensorType
from nngraph.errors import NNError
from nngraph.layers.args import ArgSpec, Symbol
from nngraph.ops import registry


class LayerCtx(Protocol):
    def op(self, name: str, inputs: list[str], **attrs: Any) -> str: ...
    def param(
        self,
        local: str,
        shape: tuple[int, ...],
        init: str,
        fan_in: int = 0,
        fan_out: int = 0,
        trainable: bool = True,
        like: str | None = None,
    ) -> str: ...
    def type(self, node: str) -> TensorType: ...
    def fail(self, message: str, expected: str | None = None, hint: str | None = None) -> None: ...
    def dims(self) -> set[str]: ...
    @property
    def training(self) -> bool: ...
    def update(self, buffer: str, value: str) -> None: ...
    def latest(self, buffer: str) -> str: ...
    def noise(self, like: str, p: float) -> str: ...
    def scalar(self, value: float, like: str) -> str: ...
    def shared(self, instance: str, local: str) -> str: ...
    def call(self, kind: str, xs: list[str], name: str | None = None, **args: Any) -> str: ...


@dataclass
class LayerDef:
    name: str
    n_tensors: int | None  # None: one or more
    params: list[ArgSpec]
    build: Callable[[LayerCtx, list[str], dict[str, Any]], str]
    doc: str = ""


LAYERS: dict[str, LayerDef] = {}


def layer(name: str, params: list[ArgSpec], n_tensors: int | None = 1, doc: str = ""):
    def deco(fn):
        LAYERS[name] = LayerDef(name, n_tensors, params, fn, doc)
        return fn

    return deco


def A(name: str, kind: str, default: Any = None, required: bool = False, limit: str | None = None) -> ArgSpec:
    return ArgSpec(name, kind, default, required, limit)


def _tuple(
    v: int | list[int], n: int, what: str, ctx: LayerCtx, layer: str = "", minimum: int | None = None
) -> tuple[int, ...]:
    """n ints from one int or a list of n; each at least `minimum` when given."""
    if isinstance(v, int):
        v = (v,) * n
    if len(v) != n:
        ctx.fail(
            f"'{what}' needs {n} values for a {n}-D layer, got {len(v)}",
            expected=f"an integer or a list of {n} integers",
        )
    if minimum is not None and any(i < minimum for i in v):
        shown = v[0] if len(set(v)) == 1 else list(v)
        ctx.fail(f"{layer}: {what} must be {minimum} or more, got {shown}", expected=f"{what} >= {minimum}")
    return tuple(v)


def _need_float(ctx: LayerCtx, x: str, what: str) -> None:
    t = ctx.type(x)
    if t.dtype not in FLOATS:
        ctx.fail(
            f"{what} needs a float input, got {t}",
            expected="an f16, f32 or f64 tensor",
            hint="integer ids go through an embedding; other inputs can be declared f32",
        )


def _static_dim(ctx: LayerCtx, x: str, axis: int, what: str, role: str) -> int:
    t = ctx.type(x)
    d = t.shape[axis]
    if not isinstance(d, int):
        ctx.fail(
            f"{what} needs a fixed {role}, but {t} has '{d}' there",
            expected=f"an input whose {role} is a number",
        )
    return d


def _spatial_rank(ctx: LayerCtx, x: str, what: str, nd: int | None) -> int:
    t = ctx.type(x)
    ranks = (nd + 2,) if nd else (3, 4)
    if t.rank not in ranks:
        layout = {3: "[batch, channels, length]", 4: "[batch, channels, height, width]"}
        want = " or ".join(f"{r}-D {layout[r]}" for r in ranks)
        hint = (
            "a dense output is [batch, features]; use reshape([batch, C, H, W]) to give it channels and space"
            if t.rank == 2
            else None
        )
        ctx.fail(f"{what} expects a {want} input, got {t.rank}-D {t}", expected=f"a {want} tensor", hint=hint)
    return t.rank - 2


# ---- dense and convolution -----------------------------------------------------


@layer(
    "dense",
    [
        A("units", "int", required=True),
        A("bias", "bool", True),
        A("init", "init", "default"),
        A("tie", "layer", None),
    ],
    doc="y = x W + b over the last axis; x is [batch, features] or [batch, seq, features]; "
    "tie=emb uses the transposed table of the embedding emb as W",
)
def dense(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    if t.rank not in (2, 3):
        hint = "add '| flatten' before dense to make it [batch, features]" if t.rank >= 4 else None
        ctx.fail(
            f"dense expects [batch, features] or [batch, seq, features], got {t.rank}-D {t}",
            expected="a 2-D or 3-D input",
            hint=hint,
        )
    if a["units"] <= 0:
        ctx.fail(f"dense needs a positive number of units, got {a['units']}", expected="units >= 1")
    _need_float(ctx, x, "dense")
    fin = _static_dim(ctx, x, -1, "dense", "feature size (last dim)")
    if a["tie"] is not None:  # weight tying: the transposed table of an embedding applied above
        table = ctx.shared(a["tie"], "table")
        want = (a["units"], fin)
        if ctx.type(table).shape != want:
            ctx.fail(
                f"dense({a['units']}) on {fin} features cannot tie to '{a['tie']}', whose table is "
                f"{ctx.type(table)}",
                expected=f"an embedding with table f32[{want[0]},{want[1]}]",
            )
        w = ctx.op("transpose", [table], perm=(1, 0))
    else:
        w = ctx.param("weight", (fin, a["units"]), a["init"], fin, a["units"], like=x)
    y = ctx.op("matmul", [x, w])
    if a["bias"]:
        b = ctx.param(
            "bias", (a["units"],), "default" if a["init"] == "default" else "zeros", fin, a["units"], like=x
        )
        y = ctx.op("add", [y, b])
    return y


def _conv(nd: int | None):
    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        (x,) = xs
        name = f"conv{nd}d"
        n = _spatial_rank(ctx, x, name, nd)
        cin = _static_dim(ctx, x, 1, name, "channel count (dim 1)")
        _need_float(ctx, x, name)
        cout, groups = a["channels"], a["groups"]
        if cout <= 0 or groups <= 0:
            ctx.fail(f"{name} needs positive channels and groups, got channels={cout}, groups={groups}")
        if cin % groups or cout % groups:
            ctx.fail(
                f"{name}: groups={groups} must divide both the input channels ({cin}) and the output channels ({cout})",
                expected="groups that divide both channel counts",
            )
        k = _tuple(a["kernel"], n, "kernel", ctx, name, 1)
        stride = _tuple(a["stride"], n, "stride", ctx, name, 1)
        dil = _tuple(a["dilation"], n, "dilation", ctx, name, 1)
        pads = _pads(ctx, a["padding"], k, stride, dil, n, name)
        fan_in = cin // groups * math.prod(k)
        w = ctx.param("weight", (cout, cin // groups, *k), a["init"], fan_in, cout * math.prod(k), like=x)
        inputs = [x, w]
        if a["bias"]:
            inputs.append(
                ctx.param(
                    "bias", (cout,), "default" if a["init"] == "default" else "zeros", fan_in, cout, like=x
                )
            )
        return ctx.op("conv", inputs, stride=stride, pads=pads, dilation=dil, groups=groups)

    return build


def _pads(ctx: LayerCtx, padding, k, stride, dil, n: int, what: str) -> tuple[int, ...]:
    if padding == "valid":
        return (0,) * (2 * n)
    if padding == "same":
        if any(s != 1 for s in stride):
            ctx.fail(
                f"{what}: padding=same needs stride 1 (as in PyTorch), got stride {list(stride)}",
                expected="stride=1, or an explicit integer padding",
            )
        total = [d * (kk - 1) for kk, d in zip(k, dil, strict=True)]
        return tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
    p = _tuple(padding, n, "padding", ctx)
    if any(v < 0 for v in p):
        ctx.fail(f"{what}: padding must not be negative, got {list(p)}")
    return p + p


_CONV_ARGS = [
    A("channels", "int", required=True),
    A("kernel", "ints", required=True),
    A("stride", "ints", 1),
    A("padding", "padding", 0),
    A("dilation", "ints", 1),
    A("groups", "int", 1),
    A("bias", "bool", True),
    A("init", "init", "default"),
]
layer("conv1d", _CONV_ARGS, doc="1-D convolution over [batch, channels, length]")(_conv(1))
layer("conv2d", _CONV_ARGS, doc="2-D convolution over [batch, channels, height, width]")(_conv(2))


# ---- pooling -----------------------------------------------------------------------


def _pool(op: str, nd: int | None):
    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        (x,) = xs
        name = f"{op}{nd}d" if nd else op
        n = _spatial_rank(ctx, x, name, nd)
        k = _tuple(a["kernel"], n, "kernel", ctx, name, 1)
        stride = _tuple(a["stride"], n, "stride", ctx, name, 1) if a["stride"] is not None else k
        pads = _pads(ctx, a["padding"], k, stride, (1,) * n, n, name)
        if any(p * 2 > kk for p, kk in zip(pads, k + k, strict=True)):
            ctx.fail(
                f"{name}: padding {list(pads[:n])} is more than half the kernel {list(k)}",
                expected="padding <= kernel / 2, as in PyTorch",
            )
        return ctx.op(op, [x], kernel=k, stride=stride, pads=pads)

    return build


_POOL_ARGS = [A("kernel", "ints", required=True), A("stride", "ints", None), A("padding", "padding", 0)]
for _op in ("maxpool", "avgpool"):
    layer(_op, _POOL_ARGS, doc=f"{_op} over the spatial dims (1-D or 2-D from the input's rank)")(
        _pool(_op, None)
    )
    for _nd in (1, 2):
        layer(f"{_op}{_nd}d", _POOL_ARGS, doc=f"{_op} over a {_nd}-D input")(_pool(_op, _nd))


# ---- normalization and embedding -------------------------------------------------


@layer(
    "batchnorm",
    [A("eps", "float", 1e-5, limit="> 0"), A("momentum", "float", 0.1, limit="in [0, 1]")],
    doc="batch normalization over channel axis 1; running statistics are buffers",
)
def batchnorm(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    if t.rank < 2:
        ctx.fail(
            f"batchnorm expects [batch, channels, ...], got {t.rank}-D {t}",
            expected="a tensor of rank 2 or more",
        )
    c = _static_dim(ctx, x, 1, "batchnorm", "channel count (dim 1)")
    scale = ctx.param("scale", (c,), "ones", like=x)
    bias = ctx.param("bias", (c,), "zeros", like=x)
    mean = ctx.param("running_mean", (c,), "zeros", trainable=False, like=x)
    var = ctx.param("running_var", (c,), "ones", trainable=False, like=x)
    if not ctx.training:
        return ctx.op("batchnorm", [x, scale, bias, mean, var], eps=a["eps"])
    return _batchnorm_train(ctx, x, scale, bias, mean, var, a["eps"], a["momentum"])


def _batchnorm_train(ctx: LayerCtx, x, scale, bias, mean, var, eps: float, momentum: float) -> str:
    """Batch statistics from primitives (so gradients come from their rules), as PyTorch does:
    normalize with the biased variance, update the running variance with the unbiased one."""
    t = ctx.type(x)
    c = t.shape[1]
    axes = tuple(i for i in range(t.rank) if i != 1)
    as_channels = (1, c) + (1,) * (t.rank - 2)
    mu = ctx.op("reduce_mean", [x], axes=axes, keepdims=1)
    xc = ctx.op("sub", [x, mu])
    v = ctx.op("reduce_mean", [ctx.op("mul", [xc, xc])], axes=axes, keepdims=1)
    eps_c = ctx.scalar(eps, x)
    inv = ctx.op("div", [ctx.scalar(1.0, x), ctx.op("sqrt", [ctx.op("add", [v, eps_c])])])
    y = ctx.op("mul", [ctx.op("mul", [xc, inv]), ctx.op("reshape", [scale], shape=as_channels)])
    y = ctx.op("add", [y, ctx.op("reshape", [bias], shape=as_channels)])
    n = ctx.op("dim_size", [x], axes=axes, dtype=t.dtype)
    unbiased = ctx.op(
        "mul",
        [ctx.op("reshape", [v], shape=(c,)), ctx.op("div", [n, ctx.op("sub", [n, ctx.scalar(1.0, x)])])],
    )
    keep, m = ctx.scalar(1.0 - momentum, x), ctx.scalar(momentum, x)
    blend = lambda old, new: ctx.op("add", [ctx.op("mul", [old, keep]), ctx.op("mul", [new, m])])
    # a batchnorm applied twice (shared) updates its statistics twice, in order, as PyTorch does
    ctx.update(mean, blend(ctx.latest(mean), ctx.op("reshape", [mu], shape=(c,))))
    ctx.update(var, blend(ctx.latest(var), unbiased))
    return y


@layer(
    "dropout",
    [A("p", "float", 0.5)],
    doc="zero each element with probability p while training (scaled by 1/(1-p)); identity in inference",
)
def dropout(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    if not 0 <= a["p"] < 1:
        ctx.fail(f"dropout probability must be in [0, 1), got {a['p']}", expected="0 <= p < 1")
    if not ctx.training or a["p"] == 0:
        return ctx.op("dropout", [x], p=a["p"])
    keep = ctx.op(
        "cast", [ctx.op("greater_equal", [ctx.noise(x, a["p"]), ctx.scalar(a["p"], x)])], to=ctx.type(x).dtype
    )
    return ctx.op("mul", [ctx.op("mul", [x, keep]), ctx.scalar(1.0 / (1.0 - a["p"]), x)])


@layer("layernorm", [A("eps", "float", 1e-5, limit="> 0")], doc="layer normalization over the last axis")
def layernorm(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    d = _static_dim(ctx, x, -1, "layernorm", "feature size (last dim)")
    scale = ctx.param("scale", (d,), "ones", like=x)
    bias = ctx.param("bias", (d,), "zeros", like=x)
    return ctx.op("layernorm", [x, scale, bias], eps=a["eps"])


@layer(
    "embedding",
    [A("num", "int", required=True), A("dim", "int", required=True), A("init", "init", "normal")],
    doc="a lookup table [num, dim] indexed by integer ids",
)
def embedding(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    if t.dtype not in INTS:
        ctx.fail(
            f"embedding needs integer ids, got {t}",
            expected="an i32 or i64 input",
            hint="declare the input as i64[...]",
        )
    if a["num"] <= 0 or a["dim"] <= 0:
        ctx.fail(f"embedding needs positive num and dim, got num={a['num']}, dim={a['dim']}")
    # fan_in is the row size, as torch's kaiming init computes it for an Embedding weight
    table = ctx.param("table", (a["num"], a["dim"]), a["init"], a["dim"], a["num"], like=None)
    return ctx.op("embedding", [table, x])


# ---- shape -------------------------------------------------------------------------


@layer(
    "reshape",
    [A("shape", "shape", required=True)],
    doc="reshape to a list of dims: numbers, -1 for the rest, or dim names such as batch",
)
def reshape(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    target = []
    for i, d in enumerate(a["shape"]):
        if isinstance(d, Symbol):
            if i < t.rank and t.shape[i] == d.name:
                target.append(0)  # ONNX: copy the input's dim
            elif d.name in ctx.dims():
                target.append(-1)
            else:
                ctx.fail(
                    f"unknown dim '{d.name}' in reshape", expected="a number, -1, or a dim name of the inputs"
                )
        else:
            if d == 0 or d < -1:
                ctx.fail(f"bad dim {d} in reshape", expected="a positive number, -1, or a dim name")
            target.append(d)
    if target.count(-1) > 1:
        ctx.fail(
            "reshape can infer only one dim (-1 or a dim name not at its input position)",
            expected="at most one unknown dim",
        )
    try:
        return ctx.op("reshape", [x], shape=tuple(target))
    except NNError as e:  # say the target as written (batch), not in ONNX's encoding (0 copies a dim)
        written = "[" + ", ".join(d.name if isinstance(d, Symbol) else str(d) for d in a["shape"]) + "]"
        e.message = e.message.replace(f"[{','.join(map(str, target))}]", written)
        raise


# ---- every other primitive operator is a layer as it is ------------------------------
#
# What a .nn call may pass comes from the operator's record: `internal` ops are not layers,
# `attr_kind` / `attr_limits` say how each attribute is written and checked.


def _primitive(op: registry.Op) -> LayerDef:
    params = []
    for attr, default in op.attrs.items():
        required = default is registry.REQUIRED
        params.append(
            ArgSpec(
                attr, op.attr_kind(attr), None if required else default, required, op.attr_limits.get(attr)
            )
        )
    variadic = any(i.startswith("*") for i in op.inputs)
    n = None if variadic else len([i for i in op.inputs if not i.endswith("?")])

    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        kinds = {spec.name: spec.kind for spec in params}
        a = {
            k: tuple(v) if isinstance(v, list) else (v,) if kinds[k] == "ints" and isinstance(v, int) else v
            for k, v in a.items()
        }
        return ctx.op(op.name, xs, **a)

    return LayerDef(op.name, n, params, build, op.doc)


def all_layers() -> dict[str, LayerDef]:
    from nngraph.graph import losses, sequence  # noqa: F401  (register the loss, metric and sequence layers)

    for name, op in registry.all_ops().items():
        if name not in LAYERS and not op.internal:  # a layer of the op's own name wraps it
            LAYERS[name] = _primitive(op)
    return LAYERS
