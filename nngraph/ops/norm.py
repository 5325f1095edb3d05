"""Normalization (inference form) and dropout (the identity at inference)."""

from __future__ import annotations

import numpy as np

from nngraph.autodiff.backward import NOT_DIFFERENTIABLE
from nngraph.errors import ShapeError
from nngraph.graph.types import TensorType
from nngraph.ops.common import need_float, need_rank, randn, same_dtype
from nngraph.ops.registry import Op, Sample, Style, register


def _need_params(what: str, x: TensorType, params: list[TensorType], names: tuple[str, ...], dim) -> None:
    for name, p in zip(names, params, strict=True):
        if p.shape != (dim,):
            raise ShapeError(
                f"'{what}' {name} must be [{dim}] to match {x}, got {p}",
                expected=f"1-D parameters of length {dim}",
            )


def _bn_infer(what: str, params: tuple[str, ...]):
    """The shape rule of a batchnorm over channel axis 1 with these per-channel parameters."""

    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        x = ts[0]
        need_rank(x, (2, 3, 4), what, "[batch, channels, ...]")
        need_float(x, what)
        same_dtype(ts, what)
        _need_params(what, x, ts[1:], params, x.shape[1])
        return x

    return infer


def _batchnorm_ref(xs, attrs):
    x, scale, bias, mean, var = (a.astype(np.float64) for a in xs)
    col = lambda a: a.reshape(-1, *[1] * (x.ndim - 2))
    return ((x - col(mean)) / np.sqrt(col(var) + attrs["eps"]) * col(scale) + col(bias)).astype(xs[0].dtype)


def _batchnorm_samples(rng: np.random.Generator) -> list[Sample]:
    def s(shape, **attrs):
        c = shape[1]
        params = (randn(rng, c), randn(rng, c), randn(rng, c), np.abs(randn(rng, c)) + 0.5)
        return Sample((3 * randn(rng, *shape) + 1, *params), attrs)

    return [s((4, 3)), s((2, 5, 6)), s((2, 3, 4, 5)), s((1, 2, 3, 3), eps=1e-3)]


def _batchnorm_grad(c, g):
    """Inference form: the statistics are constants, so y is affine in x; none flows to mean and var."""
    x, scale, bias, mean, var = c.x
    g, r = c.v(g), x.type.rank
    col = lambda v: v.f("reshape", shape=(-1,) + (1,) * (r - 2))  # [C] against [N, C, ...]
    inv = 1 / (var + c.attrs["eps"]).f("sqrt")
    axes = [0, *range(2, r)]
    xhat = (x - col(mean)) * col(inv)
    return [g * col(scale * inv), (g * xhat).sum(axes), g.sum(axes), None, None]


BATCHNORM = register(
    Op(
        name="batchnorm",
        inputs=("x", "scale", "bias", "mean", "var"),
        attrs={"eps": 1e-5},
        infer=_bn_infer("batchnorm", ("scale", "bias", "mean", "var")),
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
            "BatchNormalization", xs, epsilon=float(attrs["eps"])
        ),
        reference=_batchnorm_ref,
        samples=_batchnorm_samples,
        style=Style("norm", "batchnorm"),
        doc="(x - mean) / sqrt(var + eps) * scale + bias over channel axis 1, running statistics given",
        grad=_batchnorm_grad,
    )
)


# ---- batch norm on batch statistics: made by the fuse_batchnorm_train pass ----------------------


def bn_train_node(ctx, xs: list[str], eps: float, dtype, rank: int) -> list[str]:
    """One ONNX BatchNormalization in training mode for x, scale, bias: [y, batch mean, batch
    variance (biased)]. With momentum 0 its "running" outputs are the batch's own statistics, so
    the running-statistics update and the gradient read them instead of reducing x again; the
    batchnorm_train and batch_stat nodes of one x share this node.

    onnxruntime writes those two outputs into the buffers of the mean and variance inputs (its
    kernel aliases them), so the placeholders must be buffers of this node alone: an initializer
    would be overwritten, and equal ones are merged (two batchnorms' means then shared one buffer).
    They are zeros made from x's first [C] values, which no other node computes."""

    def build() -> list[str]:
        x = xs[0]
        lead = [0, *range(2, rank)]
        first = ctx.emit("Slice", [x, ctx.ints([0] * len(lead)), ctx.ints([1] * len(lead)), ctx.ints(lead)])
        first = ctx.emit("Reshape", [first, ctx.ints([-1])])
        zeros = ctx.emit("Mul", [first, ctx.const(np.zeros((), dtype))])
        other = ctx.emit("Sub", [first, first])
        return ctx.emit_multi(
            "BatchNormalization", [*xs, zeros, other], 3, epsilon=eps, momentum=0.0, training_mode=1
        )

    return ctx.shared(("BatchNormalization", *xs, eps), build)


def _bn_train_lower(ctx, xs, attrs, in_types, out_type):
    """Normalized with the batch's own (biased) statistics, as ONNX training mode does."""
    return bn_train_node(ctx, xs, float(attrs["eps"]), out_type.np_dtype, in_types[0].rank)[0]


def _bn_train_ref(xs, attrs):
    x, scale, bias = (a.astype(np.float64) for a in xs)
    axes = (0, *range(2, x.ndim))
    col = lambda a: a.reshape(-1, *[1] * (x.ndim - 2))
    z = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + attrs["eps"])
    return (z * col(scale) + col(bias)).astype(xs[0].dtype)


def _bn_train_samples(rng: np.random.Generator) -> list[Sample]:
    def s(shape, **attrs):
        c = shape[1]
        return Sample((3 * randn(rng, *shape) + 1, randn(rng, c), randn(rng, c)), attrs)

    return [s((6, 3)), s((2, 5, 6)), s((2, 3, 4, 5)), s((3, 2, 3, 3), eps=1e-3)]


def _stat(c, x, scale, bias, which: str):
    """The batch's mean or (biased) variance as a [1, C, 1, ...] column: read from the forward's
    BatchNormalization, not reduced again."""
    s = c.v(c.op("batch_stat", [x, scale, bias], eps=c.attrs["eps"], stat=which))
    return s.f("reshape", shape=(1, -1) + (1,) * (x.type.rank - 2))


def _bn_train_grad(c, g):
    """The closed form, as PyTorch's: dx = scale * rstd * (g - mean(g) - xhat * mean(g * xhat)),
    means over every axis but the channels, with xhat = (x - mean(x)) * rstd. Written so that only
    a few passes run over the full tensor: sum(g) and sum(g * xc) (xc = x - mean(x), the mean and
    variance the forward's own), then dx = k * (g - mean(g) - xc * (mean(g * xc) / (var + eps)))."""
    x, scale, bias = c.x
    g, r = c.v(g), x.type.rank
    axes = [0, *range(2, r)]
    col = lambda v: v.f("reshape", shape=(-1,) + (1,) * (r - 2))
    xc = x - _stat(c, x, scale, bias, "mean")
    shifted = _stat(c, x, scale, bias, "var") + c.attrs["eps"]
    rstd = 1 / shifted.f("sqrt")
    n = x.f("dim_size", axes=tuple(axes), dtype=x.type.dtype)
    sum_g, sum_gxc = g.sum(axes, keepdims=1), (g * xc).sum(axes, keepdims=1)
    mean_g, coef = sum_g / n, (sum_gxc / n) / shifted
    gx = (rstd * col(scale)) * (g - mean_g - xc * coef)
    shape = (x.type.shape[1],)
    return [gx, (sum_gxc * rstd).f("reshape", shape=shape), sum_g.f("reshape", shape=shape)]


BATCHNORM_TRAIN = register(
    Op(
        name="batchnorm_train",
        inputs=("x", "scale", "bias"),
        attrs={"eps": 1e-5},
        infer=_bn_infer("batchnorm_train", ("scale", "bias")),
        lower=_bn_train_lower,
        reference=_bn_train_ref,
        samples=_bn_train_samples,
        style=Style("norm", "batchnorm"),
        doc="(x - mean) / sqrt(var + eps) * scale + bias with the batch's own statistics over all axes but 1",
        grad=_bn_train_grad,
    )
)


def _stat_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    if attrs["stat"] not in ("mean", "var"):
        raise ShapeError(f"'batch_stat' stat must be 'mean' or 'var', got {attrs['stat']!r}")
    x = _bn_infer("batch_stat", ("scale", "bias"))(ts, attrs)
    return TensorType(x.dtype, (x.shape[1],))


def _stat_ref(xs, attrs):
    x = xs[0].astype(np.float64)
    axes = (0, *range(2, x.ndim))
    return (x.mean(axes) if attrs["stat"] == "mean" else x.var(axes)).astype(xs[0].dtype)


BATCH_STAT = register(
    Op(
        name="batch_stat",
        inputs=("x", "scale", "bias"),
        attrs={"eps": 1e-5, "stat": "mean"},
        infer=_stat_infer,
        lower=lambda ctx, xs, attrs, in_types, out_type: bn_train_node(
            ctx, xs, float(attrs["eps"]), out_type.np_dtype, in_types[0].rank
        )[1 if attrs["stat"] == "mean" else 2],
        reference=_stat_ref,
        samples=lambda rng: [
            Sample(smp.inputs, {**smp.attrs, "stat": stat})
            for smp in _bn_train_samples(rng)
            for stat in ("mean", "var")
        ],
        style=Style("norm", "batch statistics"),
        doc="the mean or biased variance of x over every axis but 1, as batchnorm_train normalizes with "
        "(scale and bias name the batchnorm_train whose ONNX node computes it)",
        grad=NOT_DIFFERENTIABLE,
    )
)


def _layernorm_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x = ts[0]
    if x.rank < 1:
        raise ShapeError(f"'layernorm' needs a tensor of rank >= 1, got {x}", expected="[..., features]")
    need_float(x, "layernorm")
    same_dtype(ts, "layernorm")
    _need_params("layernorm", x, ts[1:], ("scale", "bias"), x.shape[-1])
    return x


def _layernorm_ref(xs, attrs):
    x, scale, bias = (a.astype(np.float64) for a in xs)
    z = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + attrs["eps"])
    return (z * scale + bias).astype(xs[0].dtype)


def _layernorm_samples(rng: np.random.Generator) -> list[Sample]:
    def s(*shape, **attrs):
        return Sample((2 * randn(rng, *shape) + 1, randn(rng, shape[-1]), randn(rng, shape[-1])), attrs)

    return [s(4, 8), s(2, 3, 5), s(2, 2, 3, 6), s(7, eps=1e-3)]


def _layernorm_grad(c, g):
    """dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)) with gh = g * scale, means over the last axis."""
    x, scale, _ = c.x
    g, last = c.v(g), [x.type.rank - 1]
    xc = x - x.mean(last, keepdims=1)
    rstd = 1 / ((xc * xc).mean(last, keepdims=1) + c.attrs["eps"]).f("sqrt")
    xhat = xc * rstd
    gh = g * scale
    gx = rstd * (gh - gh.mean(last, keepdims=1) - xhat * (gh * xhat).mean(last, keepdims=1))
    lead = range(x.type.rank - 1)
    return [gx, (g * xhat).sum(lead), g.sum(lead)]


LAYERNORM = register(
    Op(
        name="layernorm",
        inputs=("x", "scale", "bias"),
        attrs={"eps": 1e-5},
        infer=_layernorm_infer,
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
            "LayerNormalization", xs, axis=-1, epsilon=float(attrs["eps"])
        ),
        reference=_layernorm_ref,
        samples=_layernorm_samples,
        style=Style("norm", "layernorm"),
        doc="normalize over the last axis to mean 0 / variance 1, then scale and shift",
        grad=_layernorm_grad,
    )
)


def _dropout_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    p = attrs["p"]
    if not (isinstance(p, (int, float)) and 0 <= p < 1):
        raise ShapeError(
            f"'dropout' p must be in [0, 1), got {p!r}", expected="a drop probability such as 0.1"
        )
    return ts[0]


DROPOUT = register(
    Op(
        name="dropout",
        inputs=("x",),
        attrs={"p": 0.5},
        infer=_dropout_infer,
        lower=lambda ctx, xs, attrs, in_types, out_type: xs[0],
        reference=lambda xs, attrs: xs[0],
        samples=lambda rng: [
            Sample((randn(rng, 2, 3),)),
            Sample((randn(rng, 4, 5, 6),), {"p": 0.1}),
            Sample((randn(rng, 3),), {"p": 0.0}),
        ],
        style=Style("regularize", "dropout"),
        doc="zero elements with probability p while training; the identity at inference",
        grad=lambda c, g: [g],
    )
)
