"""Convolution over 1, 2 or more spatial dims (NC... layout)."""

from __future__ import annotations

import numpy as np

from nngraph.errors import ShapeError
from nngraph.graph.types import TensorType
from nngraph.ops.common import (
    need_float,
    need_spatial,
    pad_spatial,
    randn,
    same_dtype,
    window_attrs,
    window_out,
    window_views,
)
from nngraph.ops.registry import Op, Sample, Style, register


def _infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x, w = ts[0], ts[1]
    if w.rank < 3:
        raise ShapeError(
            f"'conv' expects a weight [out_channels, in_channels/groups, *kernel] of rank >= 3, got {w.rank}-D {w}",
            expected="a 3-D weight for 1-D conv, 4-D for 2-D conv",
        )
    n = w.rank - 2
    need_spatial(x, n, "conv", f" (the weight {w} has {n} kernel dims)")
    need_float(x, "conv")
    same_dtype(ts, "conv")
    stride, pads, dilation = window_attrs(attrs, n, "conv")
    kernel = w.shape[2:]
    if not all(isinstance(k, int) for k in kernel):
        raise ShapeError(f"'conv' needs a static kernel size, got weight {w}")
    groups, out_ch, c_per_group = attrs["groups"], w.shape[0], w.shape[1]
    if not isinstance(groups, int) or groups < 1:
        raise ShapeError(f"'conv' groups must be a positive int, got {groups!r}")
    want_c = c_per_group * groups if isinstance(c_per_group, int) else c_per_group
    if x.shape[1] != want_c:
        g = f" x groups {groups} = {want_c}" if groups != 1 else ""
        raise ShapeError(
            f"'conv' input channels do not match the weight: input {x} has {x.shape[1]} channels, "
            f"weight {w} expects {c_per_group}{g}",
            expected="input channels == weight.shape[1] * groups",
        )
    if isinstance(out_ch, int) and out_ch % groups:
        raise ShapeError(f"'conv' groups {groups} does not divide the {out_ch} output channels of weight {w}")
    if len(ts) > 2:
        b = ts[2]
        if b.shape != (out_ch,):
            raise ShapeError(
                f"'conv' bias must be [{out_ch}] (one per output channel of weight {w}), got {b}",
                expected=f"a bias of shape [{out_ch}]",
            )
    return TensorType(x.dtype, (x.shape[0], out_ch) + window_out(x, kernel, stride, pads, dilation, "conv"))


def _lower(ctx, xs, attrs, in_types, out_type):
    n = in_types[1].rank - 2
    stride, pads, dilation = window_attrs(attrs, n, "conv")
    return ctx.emit(
        "Conv",
        xs,
        kernel_shape=list(in_types[1].shape[2:]),
        strides=list(stride),
        pads=list(pads),
        dilations=list(dilation),
        group=attrs["groups"],
    )


def _reference(xs, attrs):
    """Sum over kernel offsets of (strided input window) x (weight tap), group by group."""
    x, w = xs[0].astype(np.float64), xs[1].astype(np.float64)
    n, groups = w.ndim - 2, attrs["groups"]
    stride, pads, dilation = window_attrs(attrs, n, "conv")
    xp = pad_spatial(x, pads)
    views = list(window_views(xp, w.shape[2:], stride, dilation))
    out = np.zeros((x.shape[0], w.shape[0], *views[0][1].shape[2:]))
    cg, og = w.shape[1], w.shape[0] // groups
    for k, view in views:
        for g in range(groups):
            tap = w[(slice(g * og, (g + 1) * og), slice(None), *k)]  # [out/g, in/g]
            out[:, g * og : (g + 1) * og] += np.einsum("nc...,oc->no...", view[:, g * cg : (g + 1) * cg], tap)
    if len(xs) > 2:
        out += xs[2].astype(np.float64).reshape(-1, *[1] * n)
    return out.astype(xs[0].dtype)


def _samples(rng: np.random.Generator) -> list[Sample]:
    def s(x, w, bias=True, **attrs):
        arrays = (randn(rng, *x), randn(rng, *w)) + ((randn(rng, w[0]),) if bias else ())
        return Sample(arrays, attrs)

    return [
        s((2, 3, 6, 6), (4, 3, 3, 3)),
        s((1, 2, 7, 5), (3, 2, 3, 3), bias=False, stride=(2, 2), pads=(1, 1, 1, 1)),
        s((1, 4, 7, 8), (6, 2, 3, 2), dilation=(2, 2), groups=2, pads=(1, 0, 2, 1)),
        s((2, 3, 10), (4, 3, 3), stride=(2,), pads=(1, 2)),
        s((1, 6, 9), (3, 2, 2), bias=False, groups=3, dilation=(2,)),
        s((1, 2, 4, 4), (2, 2, 1, 1), stride=2),
    ]


CONV = register(
    Op(
        name="conv",
        inputs=("x", "w", "b?"),
        attrs={"stride": None, "pads": None, "dilation": None, "groups": 1},
        infer=_infer,
        lower=_lower,
        reference=_reference,
        samples=_samples,
        style=Style("conv", "conv"),
        doc="N-d convolution of x[N, C, *spatial] with w[out, C/groups, *kernel], plus an optional bias",
    )
)
