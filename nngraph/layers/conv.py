"""conv1d, conv2d, conv3d and conv_transpose1d/2d/3d: convolution over [batch, channels, ...]
with PyTorch's weight layouts."""

from __future__ import annotations

import math

from nngraph.layers.args import A
from nngraph.layers.checks import int_tuple, need_float, resolve_pads, spatial_rank, static_dim
from nngraph.layers.registry import Build, LayerCtx, layer


def _channels(ctx: LayerCtx, x: str, a: dict, name: str) -> tuple[int, int, int]:
    """(input channels, output channels, groups), checked: groups divide both."""
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
    return cin, cout, groups


def _bias(ctx: LayerCtx, x: str, a: dict, cout: int, fan_in: int) -> list[str]:
    if not a["bias"]:
        return []
    init = "default" if a["init"] == "default" else "zeros"
    return [ctx.param("bias", (cout,), init, fan_in, cout, like=x)]


def _conv(nd: int) -> Build:
    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        (x,) = xs
        name = f"conv{nd}d"
        n = spatial_rank(ctx, x, name, nd)
        cin, cout, groups = _channels(ctx, x, a, name)
        k = int_tuple(a["kernel"], n, "kernel", ctx, name, 1)
        stride = int_tuple(a["stride"], n, "stride", ctx, name, 1)
        dil = int_tuple(a["dilation"], n, "dilation", ctx, name, 1)
        pads = resolve_pads(ctx, a["padding"], k, stride, dil, n, name)
        fan_in = cin // groups * math.prod(k)
        w = ctx.param("weight", (cout, cin // groups, *k), a["init"], fan_in, cout * math.prod(k), like=x)
        inputs = [x, w, *_bias(ctx, x, a, cout, fan_in)]
        return ctx.op("conv", inputs, stride=stride, pads=pads, dilation=dil, groups=groups)

    return build


def _conv_transpose(nd: int) -> Build:
    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        """Weight [in, out/groups, *kernel]; torch's fans are its dims 1 and 0 times the kernel,
        so the default bound is 1/sqrt(out/groups * kernel)."""
        (x,) = xs
        name = f"conv_transpose{nd}d"
        n = spatial_rank(ctx, x, name, nd)
        cin, cout, groups = _channels(ctx, x, a, name)
        k = int_tuple(a["kernel"], n, "kernel", ctx, name, 1)
        stride = int_tuple(a["stride"], n, "stride", ctx, name, 1)
        dil = int_tuple(a["dilation"], n, "dilation", ctx, name, 1)
        pad = int_tuple(a["padding"], n, "padding", ctx, name, 0)
        extra = int_tuple(a["output_padding"], n, "output_padding", ctx, name, 0)
        bad = [i for i in range(n) if extra[i] >= max(stride[i], dil[i])]
        if bad:
            ctx.fail(
                f"{name}: output_padding {list(extra)} must be smaller than the stride {list(stride)} "
                f"or the dilation {list(dil)} in each dim (not in dim {bad[0]})",
                expected="output_padding < max(stride, dilation), as in PyTorch",
            )
        for d in range(2, n + 2):  # the gradient's shapes are worked out from the sizes
            static_dim(ctx, x, d, name, f"spatial size (dim {d})")
        fan_in, fan_out = cout // groups * math.prod(k), cin * math.prod(k)
        w = ctx.param("weight", (cin, cout // groups, *k), a["init"], fan_in, fan_out, like=x)
        inputs = [x, w, *_bias(ctx, x, a, cout, fan_in)]
        return ctx.op(
            "conv_transpose",
            inputs,
            stride=stride,
            pads=pad + pad,
            output_padding=extra,
            dilation=dil,
            groups=groups,
        )

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
_CONV_TRANSPOSE_ARGS = [
    A("channels", "int", required=True),
    A("kernel", "ints", required=True),
    A("stride", "ints", 1),
    A("padding", "ints", 0),
    A("output_padding", "ints", 0),
    A("dilation", "ints", 1),
    A("groups", "int", 1),
    A("bias", "bool", True),
    A("init", "init", "default"),
]
_SPACE = {
    1: "[batch, channels, length]",
    2: "[batch, channels, height, width]",
    3: "[batch, channels, depth, height, width]",
}
for _nd in (1, 2, 3):
    layer(f"conv{_nd}d", _CONV_ARGS, doc=f"{_nd}-D convolution over {_SPACE[_nd]}")(_conv(_nd))
    layer(
        f"conv_transpose{_nd}d",
        _CONV_TRANSPOSE_ARGS,
        doc=f"{_nd}-D transposed convolution over {_SPACE[_nd]}, as torch.nn.ConvTranspose{_nd}d",
    )(_conv_transpose(_nd))
