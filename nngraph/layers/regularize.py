"""dropout: while training, a noise input (fed anew each step) masks elements; identity in inference."""

from __future__ import annotations

from nngraph.layers.args import A
from nngraph.layers.registry import LayerCtx, layer


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
