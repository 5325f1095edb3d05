"""dense: y = x W + b over the last axis (W stored [in, units]), optionally tied to an embedding."""

from __future__ import annotations

from nngraph.layers.args import A
from nngraph.layers.checks import need_float, static_dim
from nngraph.layers.registry import LayerCtx, layer


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
    need_float(ctx, x, "dense")
    fin = static_dim(ctx, x, -1, "dense", "feature size (last dim)")
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
