"""prelu: the activation with a learned slope (the parameterless activations are operator records in
nngraph/ops/activation.py, each a layer as it is)."""

from __future__ import annotations

from nngraph.layers.args import A
from nngraph.layers.checks import need_float, static_dim
from nngraph.layers.registry import LayerCtx, layer


@layer(
    "prelu",
    [A("num_parameters", "int", 1, limit=">= 1"), A("init", "float", 0.25)],
    doc="x where x > 0, else a·x with a learned slope a: one in all, or one per channel (axis 1)",
)
def prelu(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    """As torch.nn.PReLU: at x = 0 the input's gradient is the slope and the slope's is 0."""
    (x,) = xs
    need_float(ctx, x, "prelu")
    t, n = ctx.type(x), a["num_parameters"]
    if n != 1:
        if t.rank < 2:
            ctx.fail(
                f"prelu(num_parameters={n}) needs [batch, channels, ...], got {t.rank}-D {t}",
                expected="a tensor of rank 2 or more, or num_parameters=1",
            )
        c = static_dim(ctx, x, 1, "prelu", "channel count (dim 1)")
        if c != n:
            ctx.fail(
                f"prelu(num_parameters={n}) has {n} slopes but {t} has {c} channels (dim 1)",
                expected=f"num_parameters={c} (one per channel) or 1 (one in all)",
            )
    w = ctx.param("weight", (n,), float(a["init"]), like=x)
    if n != 1:
        w = ctx.op("reshape", [w], shape=(1, n) + (1,) * (t.rank - 2))
    positive = ctx.op("greater", [x, ctx.scalar(0.0, x)])
    return ctx.op("where", [positive, x, ctx.op("mul", [x, w])])
