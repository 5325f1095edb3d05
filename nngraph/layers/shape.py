"""reshape with dim names (batch) as well as numbers; the other shape layers are primitives."""

from __future__ import annotations

from nngraph.core.dims import canonical
from nngraph.errors import NNError
from nngraph.layers.args import A, Symbol, SymDim
from nngraph.layers.registry import LayerCtx, layer


@layer(
    "reshape",
    [A("shape", "shape", required=True)],
    doc="reshape to a list of dims: numbers, -1 for the rest, dim names such as batch, or dims such "
    "as x.shape[2] * 2",
)
def reshape(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    target = []
    stated: dict[int, str] = {}  # position -> the symbolic dim written there, which -1 must infer
    for i, d in enumerate(a["shape"]):
        if isinstance(d, SymDim):  # x.shape[2] * 2: copied where the input has it, else inferred
            if i < t.rank and canonical(t.shape[i]) == d.expr:
                target.append(0)
            else:
                target.append(-1)
                stated[i] = d.expr
        elif isinstance(d, Symbol):
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
    written = "[" + ", ".join(_written(d) for d in a["shape"]) + "]"
    if target.count(-1) > 1:
        ctx.fail(
            "reshape can infer only one dim (-1, or a dim name or symbolic dim not at its input position), "
            f"but {written} has {target.count(-1)}",
            expected="at most one unknown dim",
            hint="reshape in two steps, each moving one symbolic dim (transpose brings a dim to its place)"
            if stated
            else None,
        )
    try:
        y = ctx.op("reshape", [x], shape=tuple(target))
    except NNError as e:  # say the target as written (batch), not in ONNX's encoding (0 copies a dim)
        e.message = e.message.replace(f"[{','.join(map(str, target))}]", written)
        raise
    for i, want in stated.items():
        got = ctx.type(y).shape[i]
        if canonical(got) != want:
            ctx.fail(
                f"reshape of {t} into {written}: dim {i} works out to {got}, not {want}",
                expected="a target with the input's number of elements",
            )
    return y


def _written(d) -> str:
    return d.name if isinstance(d, Symbol) else d.expr if isinstance(d, SymDim) else str(d)
