"""maxpool and avgpool over the spatial dims: 1-D, 2-D or 3-D from the input's rank, or insisting on one."""

from __future__ import annotations

from nngraph.layers.args import A
from nngraph.layers.checks import int_tuple, resolve_pads, spatial_rank
from nngraph.layers.registry import Build, LayerCtx, layer


def _pool(op: str, nd: int | None) -> Build:
    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        (x,) = xs
        name = f"{op}{nd}d" if nd else op
        n = spatial_rank(ctx, x, name, nd)
        k = int_tuple(a["kernel"], n, "kernel", ctx, name, 1)
        stride = int_tuple(a["stride"], n, "stride", ctx, name, 1) if a["stride"] is not None else k
        pads = resolve_pads(ctx, a["padding"], k, stride, (1,) * n, n, name)
        if any(p * 2 > kk for p, kk in zip(pads, k + k, strict=True)):
            ctx.fail(
                f"{name}: padding {list(pads[:n])} is more than half the kernel {list(k)}",
                expected="padding <= kernel / 2, as in PyTorch",
            )
        return ctx.op(op, [x], kernel=k, stride=stride, pads=pads)

    return build


_POOL_ARGS = [A("kernel", "ints", required=True), A("stride", "ints", None), A("padding", "padding", 0)]
for _op in ("maxpool", "avgpool"):
    layer(_op, _POOL_ARGS, doc=f"{_op} over the spatial dims (1-D, 2-D or 3-D from the input's rank)")(
        _pool(_op, None)
    )
    for _nd in (1, 2, 3):
        layer(f"{_op}{_nd}d", _POOL_ARGS, doc=f"{_op} over a {_nd}-D input")(_pool(_op, _nd))
