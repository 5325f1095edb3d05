"""maxpool, avgpool and the adaptive pools over the spatial dims: 1-D, 2-D or 3-D from the
input's rank, or insisting on one."""

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
        dilation = int_tuple(a.get("dilation", 1), n, "dilation", ctx, name, 1)
        pads = resolve_pads(ctx, a["padding"], k, stride, dilation, n, name)
        if any(p * 2 > kk for p, kk in zip(pads, k + k, strict=True)):
            ctx.fail(
                f"{name}: padding {list(pads[:n])} is more than half the kernel {list(k)}",
                expected="padding <= kernel / 2, as in PyTorch",
            )
        attrs = {"kernel": k, "stride": stride, "pads": pads}
        if any(d != 1 for d in dilation):
            attrs["dilation"] = dilation
        if a["ceil_mode"]:
            attrs["ceil_mode"] = 1
        if not a.get("count_include_pad", True):
            attrs["count_include_pad"] = 0
        return ctx.op(op, [x], **attrs)

    return build


_WINDOW_ARGS = [A("kernel", "ints", required=True), A("stride", "ints", None), A("padding", "padding", 0)]
_POOL_ARGS = {
    "maxpool": [*_WINDOW_ARGS, A("dilation", "ints", 1), A("ceil_mode", "bool", False)],
    "avgpool": [*_WINDOW_ARGS, A("ceil_mode", "bool", False), A("count_include_pad", "bool", True)],
}
for _op in ("maxpool", "avgpool"):
    layer(_op, _POOL_ARGS[_op], doc=f"{_op} over the spatial dims (1-D, 2-D or 3-D from the input's rank)")(
        _pool(_op, None)
    )
    for _nd in (1, 2, 3):
        layer(f"{_op}{_nd}d", _POOL_ARGS[_op], doc=f"{_op} over a {_nd}-D input")(_pool(_op, _nd))


def _adaptive(op: str, nd: int | None) -> Build:
    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        (x,) = xs
        name = f"{op}{nd}d" if nd else op
        n = spatial_rank(ctx, x, name, nd)
        size = int_tuple(a["size"], n, "size", ctx, name, 1)
        t = ctx.type(x)
        if not all(isinstance(d, int) for d in t.shape[2:]):
            ctx.fail(
                f"{name} needs fixed spatial dims (its windows depend on them), but {t} has "
                f"{', '.join(repr(d) for d in t.shape[2:] if not isinstance(d, int))} there",
                expected="an input whose spatial dims are numbers",
            )
        return ctx.op(op, [x], size=size)

    return build


for _op in ("adaptive_maxpool", "adaptive_avgpool"):
    _args = [A("size", "ints", required=True)]
    layer(_op, _args, doc=f"{_op} to an output size (1-D, 2-D or 3-D from the input's rank)")(
        _adaptive(_op, None)
    )
    for _nd in (1, 2, 3):
        layer(f"{_op}{_nd}d", _args, doc=f"{_op} over a {_nd}-D input")(_adaptive(_op, _nd))
