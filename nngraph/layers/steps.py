"""last_step and mean_steps: reduce a [batch, seq, features] sequence over time to [batch, features]."""

from __future__ import annotations

from nngraph.layers.registry import LayerCtx, layer


@layer(
    "last_step",
    [],
    doc="the last position of [batch, seq, features], as [batch, features]",
)
def last_step(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    if t.rank != 3:
        ctx.fail(f"last_step expects [batch, seq, features], got {t}", expected="a 3-D tensor")
    return ctx.op("reshape", [ctx.op("slice", [x], axis=1, start=-1, end=None)], shape=(0, -1))


@layer("mean_steps", [], doc="the mean over the positions of [batch, seq, features], as [batch, features]")
def mean_steps(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    if ctx.type(x).rank != 3:
        ctx.fail(f"mean_steps expects [batch, seq, features], got {ctx.type(x)}", expected="a 3-D tensor")
    return ctx.op("reduce_mean", [x], axes=(1,), keepdims=0)
