"""dropout, dropout2d and alpha_dropout: while training, a noise input (fed anew each step) masks
elements (dropout2d: whole channels); identity in inference. The gradient is the forward's mask,
as the primitives' own gradients give it."""

from __future__ import annotations

import math

from nngraph.layers.args import A
from nngraph.layers.checks import need_float
from nngraph.layers.registry import LayerCtx, layer

#: SELU's scale * alpha: alpha_dropout sets a dropped element to SELU's negative saturation, -this
SELU_ALPHA = 1.6732632423543772848170429916717 * 1.0507009873554804934193349852946


def _keep(ctx: LayerCtx, x: str, p: float, shape: tuple | None = None) -> str:
    """1 where a fresh uniform noise (shaped like x, or `shape`) is >= p, else 0: P(keep) = 1 - p."""
    noise = ctx.noise(x, p, shape)
    return ctx.op("cast", [ctx.op("greater_equal", [noise, ctx.scalar(p, x)])], to=ctx.type(x).dtype)


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
    return ctx.op("mul", [ctx.op("mul", [x, _keep(ctx, x, a["p"])]), ctx.scalar(1.0 / (1.0 - a["p"]), x)])


@layer(
    "dropout2d",
    [A("p", "float", 0.5, limit="in [0, 1)")],
    doc="zero whole channels of [batch, C, H, W] or [batch, C, L] with probability p while training "
    "(scaled by 1/(1-p)), as torch.nn.Dropout2d; identity in inference",
)
def dropout2d(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    need_float(ctx, x, "dropout2d")
    if t.rank not in (3, 4):
        ctx.fail(
            f"dropout2d zeroes channels of [batch, C, H, W] or [batch, C, L], got {t.rank}-D {t}",
            expected="a 3-D or 4-D float tensor with channels on axis 1",
            hint="dropout zeroes single elements of a tensor of any rank" if t.rank == 2 else None,
        )
    p = a["p"]
    if not ctx.training or p == 0:
        return ctx.op("dropout", [x], p=p)
    keep = _keep(ctx, x, p, (*t.shape[:2], *(1,) * (t.rank - 2)))  # one draw per (sample, channel)
    return ctx.op("mul", [ctx.op("mul", [x, keep]), ctx.scalar(1.0 / (1.0 - p), x)])


@layer(
    "alpha_dropout",
    [A("p", "float", 0.5, limit="in [0, 1)")],
    doc="as torch.nn.AlphaDropout, for selu: while training, set each element with probability p to "
    "SELU's saturation value, then rescale and shift so a mean 0 / variance 1 input keeps them; "
    "identity in inference",
)
def alpha_dropout(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    need_float(ctx, x, "alpha_dropout")
    p = a["p"]
    if not ctx.training or p == 0:
        return ctx.op("dropout", [x], p=p)
    keep = _keep(ctx, x, p)
    scale = 1.0 / math.sqrt((SELU_ALPHA * SELU_ALPHA * p + 1) * (1 - p))
    # keep: scale * x + SELU_ALPHA * scale * p; drop: (p - 1) * SELU_ALPHA * scale (torch's a and b)
    kept = ctx.op("mul", [ctx.op("mul", [x, keep]), ctx.scalar(scale, x)])
    shift = ctx.op("mul", [ctx.op("add", [keep, ctx.scalar(p - 1.0, x)]), ctx.scalar(SELU_ALPHA * scale, x)])
    return ctx.op("add", [kept, shift])
