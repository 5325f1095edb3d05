"""reshape with dim names (batch) as well as numbers; the other shape layers are primitives."""

from __future__ import annotations

from nngraph.errors import NNError
from nngraph.layers.args import A, Symbol
from nngraph.layers.registry import LayerCtx, layer


@layer(
    "reshape",
    [A("shape", "shape", required=True)],
    doc="reshape to a list of dims: numbers, -1 for the rest, or dim names such as batch",
)
def reshape(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    target = []
    for i, d in enumerate(a["shape"]):
        if isinstance(d, Symbol):
            if i < t.rank and t.shape[i] == d.name:
                target.append(0)  # ONNX: copy the input's dim
            elif d.name in ctx.dims():
                target.append(-1)
            else:
                ctx.fail(
                    f"unknown dim '{d.name}' in reshape", expected="a number, -1, or a dim name of the inputs"
                )
        else:
            if d == 0 or d < -1:
                ctx.fail(f"bad dim {d} in reshape", expected="a positive number, -1, or a dim name")
            target.append(d)
    if target.count(-1) > 1:
        ctx.fail(
            "reshape can infer only one dim (-1 or a dim name not at its input position)",
            expected="at most one unknown dim",
        )
    try:
        return ctx.op("reshape", [x], shape=tuple(target))
    except NNError as e:  # say the target as written (batch), not in ONNX's encoding (0 copies a dim)
        written = "[" + ", ".join(d.name if isinstance(d, Symbol) else str(d) for d in a["shape"]) + "]"
        e.message = e.message.replace(f"[{','.join(map(str, target))}]", written)
        raise
