"""embedding: a [num, dim] table looked up by integer ids (dense(tie=...) can reuse it).

The table takes the model's float dtype (ids carry none): an f64 model looks up f64 rows. A
padding_idx row starts at zero and takes no gradient from the lookup, as torch.nn.Embedding's
(a dense tied to the table still trains it, as in PyTorch).
"""

from __future__ import annotations

from nngraph.core.types import INTS
from nngraph.layers.args import A
from nngraph.layers.registry import LayerCtx, layer


@layer(
    "embedding",
    [
        A("num", "int", required=True),
        A("dim", "int", required=True),
        A("padding_idx", "int", None),
        A("init", "init", "normal"),
    ],
    doc="a lookup table [num, dim] indexed by integer ids; the row padding_idx starts at zero and "
    "takes no gradient",
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
    num, dim, pad = a["num"], a["dim"], a["padding_idx"]
    if num <= 0 or dim <= 0:
        ctx.fail(f"embedding needs positive num and dim, got num={num}, dim={dim}")
    if pad is not None:
        if not -num <= pad < num:
            ctx.fail(
                f"embedding padding_idx must be within the table's {num} rows, got {pad}",
                expected=f"an integer in [{-num}, {num}) (a negative one counts from the end)",
            )
        pad %= num  # as torch.nn.Embedding: -1 is the last row
    # fan_in is the row size, as torch's kaiming init computes it for an Embedding weight
    table = ctx.param(
        "table",
        (num, dim),
        a["init"],
        dim,
        num,
        dtype=ctx.float_dtype(),
        zero_rows=() if pad is None else (pad,),
    )
    return ctx.op("embedding", [table, x], padding_idx=pad)
