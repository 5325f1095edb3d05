"""The normalization layers, as torch.nn's: batchnorm (running statistics as buffers, batch
statistics while training), layernorm, rmsnorm, groupnorm and instancenorm."""

from __future__ import annotations

import numpy as np

from nngraph.layers.args import A
from nngraph.layers.checks import need_float, static_dim
from nngraph.layers.registry import LayerCtx, layer


def _channels(ctx: LayerCtx, x: str, what: str, ranks: str = "rank 2 or more") -> int:
    """The static channel count (dim 1) of a float [batch, channels, ...] input."""
    t = ctx.type(x)
    if t.rank < 2:
        ctx.fail(
            f"{what} expects [batch, channels, ...], got {t.rank}-D {t}", expected=f"a tensor of {ranks}"
        )
    need_float(ctx, x, what)
    return static_dim(ctx, x, 1, what, "channel count (dim 1)")


def _affine(ctx: LayerCtx, x: str, shape: tuple[int, ...]) -> list[str]:
    """The learned scale (ones) and bias (zeros) of a normalization, as torch.nn initializes them."""
    return [ctx.param("scale", shape, "ones", like=x), ctx.param("bias", shape, "zeros", like=x)]


def _fixed(ctx: LayerCtx, x: str, c: int, value: float) -> str:
    """A constant [c] vector of x's dtype (the scale and bias of batchnorm(affine=false))."""
    return ctx.scalar(np.full(c, value), x)  # a constant takes the value's shape


@layer(
    "batchnorm",
    [
        A("eps", "float", 1e-5, limit="> 0"),
        A("momentum", "float", 0.1, limit="in [0, 1]"),
        A("affine", "bool", True),
        A("track_running_stats", "bool", True),
    ],
    doc="batch normalization over channel axis 1; running statistics are buffers",
)
def batchnorm(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    """As torch.nn.BatchNorm1d/2d: affine=false has no scale and bias; track_running_stats=false
    has no running statistics and normalizes with the batch's own in evaluation too."""
    (x,) = xs
    c = _channels(ctx, x, "batchnorm")
    if a["affine"]:
        scale, bias = _affine(ctx, x, (c,))
    else:
        scale, bias = _fixed(ctx, x, c, 1.0), _fixed(ctx, x, c, 0.0)
    if not a["track_running_stats"]:
        return _batch_normalized(ctx, x, scale, bias, a["eps"])[0]
    mean = ctx.param("running_mean", (c,), "zeros", trainable=False, like=x)
    var = ctx.param("running_var", (c,), "ones", trainable=False, like=x)
    if not ctx.training:
        return ctx.op("batchnorm", [x, scale, bias, mean, var], eps=a["eps"])
    y, mu, v, d = _batch_normalized(ctx, x, scale, bias, a["eps"])
    _update_running(ctx, d, mean, var, mu, v, a["momentum"])
    return y


def _batch_normalized(ctx: LayerCtx, x, scale, bias, eps: float) -> tuple[str, str, str, str]:
    """x normalized with its batch statistics, from primitives (so gradients come from their
    rules; the fuse_batchnorm_train pass makes one operator of them), as PyTorch does: with the
    biased variance. Returns y, the mean [1, C, 1...], that variance and the shifted input d.

    The statistics are taken of d = x - k, k one value per channel (ops/norm.py channel_shift):
    m = mean(d), xc = d - m, var = mean(xc^2) (two passes), mean = k + m. x - k is exact where x
    lies far from 0, so xc is as accurate as the spread of x allows."""
    t = ctx.type(x)
    c = t.shape[1]
    axes = tuple(i for i in range(t.rank) if i != 1)
    as_channels = (1, c) + (1,) * (t.rank - 2)
    k = ctx.op("channel_shift", [x])
    d = ctx.op("sub", [x, k])
    m = ctx.op("reduce_mean", [d], axes=axes, keepdims=1)
    xc = ctx.op("sub", [d, m])
    v = ctx.op("reduce_mean", [ctx.op("mul", [xc, xc])], axes=axes, keepdims=1)
    eps_c = ctx.scalar(eps, x)
    inv = ctx.op("div", [ctx.scalar(1.0, x), ctx.op("sqrt", [ctx.op("add", [v, eps_c])])])
    y = ctx.op("mul", [ctx.op("mul", [xc, inv]), ctx.op("reshape", [scale], shape=as_channels)])
    y = ctx.op("add", [y, ctx.op("reshape", [bias], shape=as_channels)])
    return y, ctx.op("add", [k, m]), v, d


def _update_running(ctx: LayerCtx, x, mean, var, mu, v, momentum: float) -> None:
    """running = (1 - momentum) * running + momentum * batch, with the unbiased batch variance,
    as PyTorch updates them. x gives the count per channel: the shifted input, whose count the
    fused gradient takes too, so that the two are one node."""
    t = ctx.type(x)
    c = t.shape[1]
    axes = tuple(i for i in range(t.rank) if i != 1)
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


def _trailing_shape(ctx: LayerCtx, x: str, k: int, what: str) -> tuple[int, ...]:
    """The static sizes of the last k dims of x, which a norm over them takes its parameters' shape from."""
    t = ctx.type(x)
    if k > t.rank:
        ctx.fail(
            f"{what}(axes={k}) normalizes over the last {k} axes, but {t} has {t.rank}",
            expected=f"axes from 1 to {t.rank}",
        )
    need_float(ctx, x, what)
    role = "feature size (last dim)" if k == 1 else f"normalized shape (the last {k} dims)"
    return tuple(static_dim(ctx, x, i, what, role) for i in range(-k, 0))


@layer(
    "layernorm",
    [A("eps", "float", 1e-5, limit="> 0"), A("axes", "int", 1, limit=">= 1")],
    doc="layer normalization over the last `axes` axes",
)
def layernorm(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    """As torch.nn.LayerNorm(normalized_shape = the last `axes` dims of x)."""
    (x,) = xs
    shape = _trailing_shape(ctx, x, a["axes"], "layernorm")
    return ctx.op("layernorm", [x, *_affine(ctx, x, shape)], eps=a["eps"], axes=a["axes"])


@layer(
    "rmsnorm",
    [
        A("eps", "float", None, limit="> 0"),
        A("axes", "int", 1, limit=">= 1"),
        A("elementwise_affine", "bool", True),
    ],
    doc="root-mean-square normalization over the last `axes` axes",
)
def rmsnorm(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    """As torch.nn.RMSNorm(normalized_shape = the last `axes` dims): without eps, the machine
    epsilon of x's dtype, as torch's eps=None (f32: 1.19e-7)."""
    (x,) = xs
    shape = _trailing_shape(ctx, x, a["axes"], "rmsnorm")
    eps = a["eps"] if a["eps"] is not None else float(np.finfo(ctx.type(x).np_dtype).eps)
    scale = [ctx.param("scale", shape, "ones", like=x)] if a["elementwise_affine"] else []
    return ctx.op("rmsnorm", [x, *scale], eps=eps, axes=a["axes"])


@layer(
    "groupnorm",
    [
        A("groups", "int", required=True, limit=">= 1"),
        A("eps", "float", 1e-5, limit="> 0"),
        A("affine", "bool", True),
    ],
    doc="group normalization: per sample, over groups of channels (axis 1) and the other axes",
)
def groupnorm(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    """As torch.nn.GroupNorm(groups, C): C is x's dim 1, which groups must divide."""
    (x,) = xs
    c, g = _channels(ctx, x, "groupnorm"), a["groups"]
    if c % g:
        t = ctx.type(x)
        fits = [d for d in range(1, c + 1) if c % d == 0]
        ctx.fail(
            f"groupnorm(groups={g}) splits the {c} channels of {t} into equal groups, but {c} is not divisible by {g}",
            expected="a number of groups that divides the channel count",
            hint=f"{c} channels split into {', '.join(map(str, fits))} groups",
        )
    params = _affine(ctx, x, (c,)) if a["affine"] else []
    return ctx.op("groupnorm", [x, *params], groups=g, eps=a["eps"])


@layer(
    "instancenorm",
    [A("eps", "float", 1e-5, limit="> 0"), A("affine", "bool", False)],
    doc="instance normalization: per sample and channel, over the spatial axes",
)
def instancenorm(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    """As torch.nn.InstanceNorm1d/2d with their defaults (track_running_stats=False): the
    statistics are each sample's own, in training and in evaluation."""
    (x,) = xs
    t = ctx.type(x)
    if t.rank not in (3, 4):
        hint = (
            "a dense output is [batch, features]; reshape it to [batch, C, length] first"
            if t.rank == 2
            else None
        )
        ctx.fail(
            f"instancenorm expects a 3-D [batch, channels, length] or 4-D [batch, channels, height, width] "
            f"input, got {t.rank}-D {t}",
            expected="a 3-D or 4-D tensor",
            hint=hint,
        )
    need_float(ctx, x, "instancenorm")
    params = (
        _affine(ctx, x, (static_dim(ctx, x, 1, "instancenorm", "channel count (dim 1)"),))
        if a["affine"]
        else []
    )
    return ctx.op("instancenorm", [x, *params], eps=a["eps"])
