"""conv1d and conv2d: convolution over [batch, channels, ...] with PyTorch's weight layout."""

from __future__ import annotations

import math

from nngraph.layers.args import A
from nngraph.layers.checks import int_tuple, need_float, resolve_pads, spatial_rank, static_dim
from nngraph.layers.registry import Build, LayerCtx, layer


def _conv(nd: int | None) -> Build:
    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        (x,) = xs
        name = f"conv{nd}d"
        n = spatial_rank(ctx, x, name, nd)
        cin = static_dim(ctx, x, 1, name, "channel count (dim 1)")
        need_float(ctx, x, name)
        cout, groups = a["channels"], a["groups"]
        if cout <= 0 or groups <= 0:
            ctx.fail(f"{name} needs positive channels and groups, got channels={cout}, groups={groups}")
        if cin % groups or cout % groups:
            ctx.fail(
                f"{name}: groups={groups} must divide both the input channels ({cin}) and the output channels ({cout})",
                expected="groups that divide both channel counts",
            )
        k = int_tuple(a["kernel"], n, "kernel", ctx, name, 1)
        stride = int_tuple(a["stride"], n, "stride", ctx, name, 1)
        dil = int_tuple(a["dilation"], n, "dilation", ctx, name, 1)
        pads = resolve_pads(ctx, a["padding"], k, stride, dil, n, name)
        fan_in = cin // groups * math.prod(k)
        w = ctx.param("weight", (cout, cin // groups, *k), a["init"], fan_in, cout * math.prod(k), like=x)
        inputs = [x, w]
        if a["bias"]:
            inputs.append(
                ctx.param(
                    "bias", (cout,), "default" if a["init"] == "default" else "zeros", fan_in, cout, like=x
                )
            )
        return ctx.op("conv", inputs, stride=stride, pads=pads, dilation=dil, groups=groups)

    return build


_CONV_ARGS = [
    A("channels", "int", required=True),
    A("kernel", "ints", required=True),
    A("stride", "ints", 1),
    A("padding", "padding", 0),
    A("dilation", "ints", 1),
    A("groups", "int", 1),
    A("bias", "bool", True),
    A("init", "init", "default"),
]
layer("conv1d", _CONV_ARGS, doc="1-D convolution over [batch, channels, length]")(_conv(1))
layer("conv2d", _CONV_ARGS, doc="2-D convolution over [batch, channels, height, width]")(_conv(2))
