"""Normalization (inference form) and dropout (the identity at inference)."""

from __future__ import annotations

import numpy as np

from nngraph.core.types import TensorType
from nngraph.errors import ShapeError
from nngraph.ops.common import need_float, need_rank, randn, same_dtype
from nngraph.ops.identities import passthrough
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
    r = x.type.rank
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
        no_grad_inputs=(3, 4),  # the running mean and variance
    )
)


# ---- batch norm on batch statistics: made by the fuse_batchnorm_train pass ----------------------
#
# batchnorm_train(x, scale, bias, mean, var) takes x's own batch mean and (biased) variance, which
# the graph computes anyway for the running statistics: ONNX BatchNormalization in inference form
# then normalizes with them, in one node that every provider runs alike. (Training mode would
# compute them a second time; and versions of onnxruntime's CUDA kernel take the training path
# only when the five outputs of opset <= 13 are asked for, so with opset 15's three they normalize
# with the mean and variance inputs.) Its gradient is the closed form through the statistics, so
# mean and var take none: they must be x's (the pass guarantees it).


def _bn_train_ref(xs, attrs):
    """As the operator means it: the statistics are x's own, whatever mean and var say."""
    x, scale, bias = (a.astype(np.float64) for a in xs[:3])
    axes = (0, *range(2, x.ndim))
    col = lambda a: a.reshape(-1, *[1] * (x.ndim - 2))
    z = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + attrs["eps"])
    return (z * col(scale) + col(bias)).astype(xs[0].dtype)


def _bn_train_samples(rng: np.random.Generator) -> list[Sample]:
    def s(shape, **attrs):
        c = shape[1]
        x = 3 * randn(rng, *shape) + 1
        axes = (0, *range(2, len(shape)))
        stats = (x.mean(axes).astype(x.dtype), x.var(axes).astype(x.dtype))
        return Sample((x, randn(rng, c), randn(rng, c), *stats), attrs)

    return [s((6, 3)), s((2, 5, 6)), s((2, 3, 4, 5)), s((3, 2, 3, 3), eps=1e-3)]


def _bn_train_grad(c, g):
    """The closed form, as PyTorch's: dx = scale * rstd * (g - mean(g) - xhat * mean(g * xhat)),
    means over every axis but the channels, with xhat = (x - mean(x)) * rstd. Written so that only
    a few passes run over the full tensor: sum(g) and sum(g * xc) (xc = x - mean(x), shared with the
    forward statistics), then dx = k * (g - mean(g) - xc * (mean(g * xc) / (var + eps)))."""
    x, scale, _, mean, var = c.x
    r = x.type.rank
    axes = [0, *range(2, r)]
    col = lambda v: v.f("reshape", shape=(1, -1) + (1,) * (r - 2))
    xc = x - col(mean)
    shifted = col(var) + c.attrs["eps"]
    rstd = 1 / shifted.f("sqrt")
    n = x.f("dim_size", axes=tuple(axes), dtype=x.type.dtype)
    sum_g, sum_gxc = g.sum(axes, keepdims=1), (g * xc).sum(axes, keepdims=1)
    mean_g, coef = sum_g / n, (sum_gxc / n) / shifted
    gx = (rstd * col(scale)) * (g - mean_g - xc * coef)
    shape = (x.type.shape[1],)
    return [gx, (sum_gxc * rstd).f("reshape", shape=shape), sum_g.f("reshape", shape=shape), None, None]


BATCHNORM_TRAIN = register(
    Op(
        name="batchnorm_train",
        inputs=("x", "scale", "bias", "mean", "var"),
        attrs={"eps": 1e-5},
        infer=_bn_infer("batchnorm_train", ("scale", "bias", "mean", "var")),
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
            "BatchNormalization", xs, epsilon=float(attrs["eps"])
        ),
        reference=_bn_train_ref,
        samples=_bn_train_samples,
        style=Style("norm", "batchnorm"),
        doc="(x - mean) / sqrt(var + eps) * scale + bias, where mean and var are x's own (biased) "
        "statistics over all axes but 1",
        grad=_bn_train_grad,
        internal=True,
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
    last = [x.type.rank - 1]
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
        identities=(passthrough,),  # the op is the inference form: training builds a mask instead
    )
)
