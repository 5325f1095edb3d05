"""embedding: a [num, dim] table looked up by integer ids (dense(tie=...) can reuse it)."""

from __future__ import annotations

from nngraph.core.types import INTS
from nngraph.layers.args import A
from nngraph.layers.registry import LayerCtx, layer


@layer(
    "embedding",
    [A("num", "int", required=True), A("dim", "int", required=True), A("init", "init", "normal")],
    doc="a lookup table [num, dim] indexed by integer ids",
)
def embedding(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    if t.dtype not in INTS:
        ctx.fail(
            f"embedding needs integer ids, got {t}",
            expected="an i32 or i64 input",
            hint="declare the input as i64[...]",
        )
    if a["num"] <= 0 or a["dim"] <= 0:
        ctx.fail(f"embedding needs positive num and dim, got num={a['num']}, dim={a['dim']}")
    # fan_in is the row size, as torch's kaiming init computes it for an Embedding weight
    table = ctx.param("table", (a["num"], a["dim"]), a["init"], a["dim"], a["num"], like=None)
    return ctx.op("embedding", [table, x])
