"""positional: add a position table to [batch, seq, E], sinusoidal (fixed, any length) or learned.

The learned table is this layer's own parameter rather than `ctx.call("embedding")`: it takes
the input's float dtype (f16 in, f16 table), where an embedding's table is always f32.
"""

from __future__ import annotations

from nngraph.layers.args import A
from nngraph.layers.checks import seq_input
from nngraph.layers.registry import LayerCtx, layer


@layer(
    "positional",
    [
        A("kind", "choice:sinusoidal|learned", "sinusoidal"),
        A("max_len", "int", 512, limit=">= 1"),
        A("init", "init", "zeros"),
    ],
    doc="x + a position table over [batch, seq, E]: sinusoidal (fixed, any length) or learned "
    "(a [max_len, E] table, looked up by position)",
)
def positional(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    seq, e = seq_input(ctx, x, "positional", static_seq=False)
    pos = ctx.op("positions", [x], axis=1)
    if a["kind"] == "sinusoidal":
        table = ctx.op("sinusoid", [pos], dim=e, dtype=ctx.type(x).dtype)
    else:
        if isinstance(seq, int) and seq > a["max_len"]:
            ctx.fail(
                f"positional: sequence length {seq} exceeds max_len={a['max_len']}",
                expected=f"max_len >= {seq}",
            )
        t = ctx.param("table", (a["max_len"], e), a["init"], e, a["max_len"], like=x)
        table = ctx.op("embedding", [t, pos])
    return ctx.op("add", [x, table])
