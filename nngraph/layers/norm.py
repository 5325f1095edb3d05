"""batchnorm (running statistics as buffers, batch statistics while training) and layernorm."""

from __future__ import annotations

from nngraph.layers.args import A
from nngraph.layers.checks import static_dim
from nngraph.layers.registry import LayerCtx, layer


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
    c = static_dim(ctx, x, 1, "batchnorm", "channel count (dim 1)")
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


@layer("layernorm", [A("eps", "float", 1e-5, limit="> 0")], doc="layer normalization over the last axis")
def layernorm(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    d = static_dim(ctx, x, -1, "layernorm", "feature size (last dim)")
    scale = ctx.param("scale", (d,), "ones", like=x)
    bias = ctx.param("bias", (d,), "zeros", like=x)
    return ctx.op("layernorm", [x, scale, bias], eps=a["eps"])
