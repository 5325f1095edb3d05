"""Pooling over 1, 2 or more spatial dims (NC... layout)."""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from nngraph.core.types import TensorType, onnx_elem_type
from nngraph.errors import ShapeError
from nngraph.ops.common import (
    conv_transpose_to,
    crop_spatial,
    need_float,
    need_spatial,
    pad_spatial,
    randn,
    spatial_ints,
    window_attrs,
    window_out,
    window_views,
)
from nngraph.ops.registry import NO_GRADIENT, REQUIRED, Op, Sample, Style, register


def _windows(attrs: dict, what: str):
    """(kernel, stride, pads) from the attributes; stride None means the kernel."""
    kernel = attrs["kernel"]
    n = 1 if isinstance(kernel, int) else len(kernel)
    kernel = spatial_ints(kernel, n, 1, "kernel", what)
    stride, pads, _ = window_attrs(attrs, n, what, stride_default=kernel)
    return kernel, stride, pads


def _pooled(x: TensorType, attrs: dict, name: str) -> TensorType:
    """The shape rule of pooling x."""
    kernel, stride, pads = _windows(attrs, name)
    need_spatial(x, len(kernel), name, f" (kernel {kernel} has {len(kernel)} dims)")
    need_float(x, name)
    n = len(kernel)
    for i, k in enumerate(kernel):
        if max(pads[i], pads[i + n]) >= k:
            raise ShapeError(
                f"'{name}' pads {pads} must be smaller than the kernel {kernel} (spatial dim {i}) for {x}",
                expected="each pad < the kernel size along its dim",
            )
    return x.with_shape(x.shape[:2] + window_out(x, kernel, stride, pads, (1,) * n, name))


#: the pooling samples: (input shape, attrs)
_CASES = [
    ((2, 3, 6, 6), {"kernel": (2, 2)}),
    ((1, 2, 7, 5), {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1)}),
    ((1, 1, 5, 7), {"kernel": (2, 3), "stride": (1, 2), "pads": (0, 1, 1, 0)}),
    ((2, 3, 9), {"kernel": (3,), "stride": (2,), "pads": (1, 0)}),
    ((1, 2, 8), {"kernel": 2}),
]


def _pool(name: str, onnx_op: str, reduce, doc: str, grad, extra_attrs=None, extra_samples=()) -> Op:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        return _pooled(ts[0], attrs, name)

    def lower(ctx, xs, attrs, in_types, out_type):
        kernel, stride, pads = _windows(attrs, name)
        extra = {"count_include_pad": int(attrs["count_include_pad"])} if "count_include_pad" in attrs else {}
        return ctx.emit(
            onnx_op, xs, kernel_shape=list(kernel), strides=list(stride), pads=list(pads), **extra
        )

    def reference(xs, attrs):
        kernel, stride, pads = _windows(attrs, name)
        x = xs[0].astype(np.float64)
        views = lambda a: [v for _, v in window_views(a, kernel, stride, (1,) * len(kernel))]
        return reduce(x, pads, views, attrs).astype(xs[0].dtype)

    def samples(rng: np.random.Generator) -> list[Sample]:
        return [Sample((randn(rng, *shape),), attrs) for shape, attrs in [*_CASES, *extra_samples]]

    return register(
        Op(
            name=name,
            inputs=("x",),
            attrs={"kernel": REQUIRED, "stride": None, "pads": None, **(extra_attrs or {})},
            infer=infer,
            lower=lower,
            reference=reference,
            samples=samples,
            style=Style("pool", name),
            doc=doc,
            grad=grad,
            attr_kinds={"kernel": "ints", "stride": "ints", "pads": "ints"},  # an int or one per spatial dim
        )
    )


def _max(x, pads, views, attrs):
    return np.maximum.reduce(views(pad_spatial(x, pads, -np.inf)))


def _avg(x, pads, views, attrs):
    taps = views(pad_spatial(x, pads))
    if attrs["count_include_pad"]:
        return sum(taps) / len(taps)
    return sum(taps) / sum(views(pad_spatial(np.ones_like(x[:1, :1]), pads)))


MAXPOOL = _pool(
    "maxpool",
    "MaxPool",
    _max,
    "the maximum over each kernel window (padding never wins)",
    lambda c, g: [c.x[0].f("maxpool_grad", c.y, g, **c.attrs)],
)
AVGPOOL = _pool(
    "avgpool",
    "AveragePool",
    _avg,
    "the mean over each kernel window; count_include_pad=1 divides by the full kernel size, as PyTorch",
    lambda c, g: [g.f("avgpool_grad", c.x[0], **c.attrs)],
    extra_attrs={"count_include_pad": 1},
    extra_samples=[
        ((1, 2, 7, 5), {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1), "count_include_pad": 0})
    ],
)


def _global_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x = ts[0]
    if x.rank < 3:
        raise ShapeError(
            f"'global_avgpool' expects an input [batch, channels, *spatial] of rank >= 3, got {x.rank}-D {x}",
            expected="an input of rank >= 3",
        )
    need_float(x, "global_avgpool")
    return x.with_shape(x.shape[:2] + (1,) * (x.rank - 2))


GLOBAL_AVGPOOL = register(
    Op(
        name="global_avgpool",
        inputs=("x",),
        attrs={},
        infer=_global_infer,
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit("GlobalAveragePool", xs),
        reference=lambda xs, attrs: (
            xs[0].mean(axis=tuple(range(2, xs[0].ndim)), keepdims=True, dtype=np.float64).astype(xs[0].dtype)
        ),
        samples=lambda rng: [Sample((randn(rng, *s),)) for s in [(2, 3, 4, 5), (1, 4, 7), (2, 2, 3, 1, 2)]],
        style=Style("pool", "global avg"),
        doc="the mean over all spatial dims: [N, C, *spatial] -> [N, C, 1, ...]",
        grad=lambda c, g: [_global_avgpool_grad(c, g, c.x[0])],
    )
)


def _global_avgpool_grad(c, g, x):
    spatial = x.type.shape[2:]
    if all(isinstance(d, int) for d in spatial):
        return g.f("broadcast_like", x) * (1 / math.prod(spatial))
    return g.f("broadcast_like", x) / x.f("dim_size", axes=tuple(range(2, x.type.rank)), dtype=x.type.dtype)


# ---- backward ------------------------------------------------------------------
#
# Where the windows tile the input (stride == kernel, no padding, static spatial dims) both
# gradients are elementwise on nearest-neighbour upsampled tensors, which onnxruntime runs fast;
# otherwise they take a slower general form (a scatter for max, a transposed convolution for avg).


def _tiles(attrs: dict, x: TensorType) -> bool:
    kernel, stride, pads = _windows(attrs, "pool")
    return stride == kernel and not any(pads) and all(isinstance(d, int) for d in x.shape[2:])


def _up(ctx, t: str, kernel) -> str:
    """Nearest-neighbour upsampling by the kernel: each pooled value copied over its window."""
    scales = ctx.const(np.asarray([1, 1, *kernel], dtype=np.float32), hint="scales")
    return ctx.emit(
        "Resize",
        [t, "", scales],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )


def _tiled(ctx, x: str, x_type: TensorType, kernel, body) -> str:
    """body(x cut to the windows' cover) -> gradient there, zero-padded back to x's size."""
    n, spatial = len(kernel), x_type.shape[2:]
    cover = [d // k * k for d, k in zip(spatial, kernel, strict=True)]
    if cover != list(spatial):
        x = ctx.emit("Slice", [x, ctx.ints([0] * n), ctx.ints(cover), ctx.ints(list(range(2, n + 2)))])
    gx = body(x)
    if cover != list(spatial):
        gx = ctx.emit(
            "Pad",
            [gx, ctx.ints([0] * (n + 2) + [0, 0] + [d - c for d, c in zip(spatial, cover, strict=True)])],
        )
    return gx


def _cast(ctx, t: str, dtype: str) -> str:
    return ctx.emit("Cast", [t], to=onnx_elem_type(dtype))


def _fill(dtype: str, v: int):
    """ConstantOfShape's value attribute."""
    return helper.make_tensor("value", onnx_elem_type(dtype), [1], [v])


def _maxpool_grad_lower(ctx, xs, attrs, in_types, out_type):
    """Tiling windows: g goes where x equals its window's maximum, FIRST maximum only (row-major), as
    PyTorch and MaxPool's Indices do. The first is found without Indices (10x slower, blocks NCHWc):
    score = hit * (K - position in window) is largest at the first hit; MaxPool(score) picks it.
    Overlapping or padded windows, or symbolic spatial dims: MaxPool's Indices (first maximum too)
    and ScatterElements(add), about 1.7x slower on a [64, 32, 28, 28] input."""
    x, y, g = xs
    kernel, stride, pads = _windows(attrs, "maxpool_grad")
    dt = out_type.dtype
    if _tiles(attrs, in_types[0]):
        k = math.prod(kernel)
        rank = np.arange(k, 0, -1, dtype=out_type.np_dtype).reshape(1, 1, *kernel)
        ranks = ctx.const(np.tile(rank, (1, 1, *in_types[1].shape[2:])), hint="window_rank")

        def body(xc):
            hit = _cast(ctx, ctx.emit("Equal", [xc, _up(ctx, y, kernel)]), dt)
            score = ctx.emit("Mul", [hit, ranks])
            best = ctx.emit("MaxPool", [score], kernel_shape=list(kernel), strides=list(kernel))
            first = _cast(ctx, ctx.emit("Equal", [score, _up(ctx, best, kernel)]), dt)
            return ctx.emit("Mul", [first, _up(ctx, g, kernel)])

        return _tiled(ctx, x, in_types[0], kernel, body)
    _, idx = ctx.emit_multi(
        "MaxPool", [x], 2, kernel_shape=list(kernel), strides=list(stride), pads=list(pads)
    )
    flat = ctx.ints([-1])
    size = ctx.emit("Reshape", [ctx.emit("Size", [x]), flat])
    zeros = ctx.emit("ConstantOfShape", [size], value=_fill(dt, 0))
    out = ctx.emit(
        "ScatterElements",
        [zeros, ctx.emit("Reshape", [idx, flat]), ctx.emit("Reshape", [g, flat])],
        axis=0,
        reduction="add",
    )
    return ctx.emit("Reshape", [out, ctx.emit("Shape", [x])])


def _avgpool_grad_lower(ctx, xs, attrs, in_types, out_type):
    """Tiling windows: g / K upsampled. Otherwise g divided by each window's count, then a transposed
    convolution with a ones kernel over [N*C, 1, *pooled]."""
    g, x = xs
    kernel, stride, pads = _windows(attrs, "avgpool_grad")
    n, k, dt = len(kernel), math.prod(kernel), out_type.np_dtype
    inv_k = ctx.const(np.asarray(1 / k, dtype=dt))
    if _tiles(attrs, in_types[1]):
        return _tiled(ctx, x, in_types[1], kernel, lambda xc: ctx.emit("Mul", [_up(ctx, g, kernel), inv_k]))
    if attrs["count_include_pad"] or not any(pads):
        g = ctx.emit("Mul", [g, inv_k])
    else:  # count = K * AveragePool(ones) with padding counted, per window, from x's run-time size
        spatial = ctx.emit("Slice", [ctx.emit("Shape", [x]), ctx.ints([2]), ctx.ints([n + 2])])
        ones = ctx.emit(
            "ConstantOfShape",
            [ctx.emit("Concat", [ctx.ints([1, 1]), spatial], axis=0)],
            value=_fill(out_type.dtype, 1),
        )
        frac = ctx.emit(
            "AveragePool",
            [ones],
            kernel_shape=list(kernel),
            strides=list(stride),
            pads=list(pads),
            count_include_pad=1,
        )
        g = ctx.emit("Div", [g, ctx.emit("Mul", [frac, ctx.const(np.asarray(k, dtype=dt))])])
    g1 = ctx.emit("Reshape", [g, ctx.ints([-1, 1] + [0] * n)])
    ones_k = ctx.const(np.ones((1, 1, *kernel), dtype=dt), hint="ones_kernel")
    gx = conv_transpose_to(ctx, g1, ones_k, x, in_types[1], kernel, stride, pads, (1,) * n, 1)
    return ctx.emit("Reshape", [gx, ctx.emit("Shape", [x])])


def _maxpool_grad_ref(xs, attrs):
    """Each window's gradient to its first maximum (np.argmax order: row-major), padding never wins."""
    x, _, g = xs
    kernel, stride, pads = _windows(attrs, "maxpool_grad")
    xp = pad_spatial(x.astype(np.float64), pads, -np.inf)
    ones = (1,) * len(kernel)
    first = np.argmax(np.stack([v for _, v in window_views(xp, kernel, stride, ones)]), axis=0)
    gp = np.zeros_like(xp)
    for j, (_, view) in enumerate(window_views(gp, kernel, stride, ones)):
        view += np.where(first == j, g, 0)
    return crop_spatial(gp, pads).astype(g.dtype)


def _avgpool_grad_ref(xs, attrs):
    g, x = xs
    kernel, stride, pads = _windows(attrs, "avgpool_grad")
    ones = (1,) * len(kernel)
    if attrs["count_include_pad"]:
        count = math.prod(kernel)
    else:
        count = sum(
            v for _, v in window_views(pad_spatial(np.ones_like(x[:1, :1]), pads), kernel, stride, ones)
        )
    gp = pad_spatial(np.zeros(x.shape), pads)
    for _, view in window_views(gp, kernel, stride, ones):
        view += g / count
    return crop_spatial(gp, pads).astype(g.dtype)


_GRAD_CASES = [
    *_CASES,
    ((1, 2, 7, 5), {"kernel": (2, 2)}),  # windows tile, but not all of x
    ((1, 2, 4, 4, 6), {"kernel": (2, 2, 3)}),
    ((2, 3, 5, 5), {"kernel": (3, 3), "stride": (1, 1), "pads": (1, 1, 1, 1)}),
]


def _grad_samples(rng: np.random.Generator, name: str) -> list[Sample]:
    """Small integers for x, so windows hold tied maxima (as ReLU zeros and integer pixels do)."""
    extra = [
        ((1, 2, 7, 5), {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1), "count_include_pad": 0})
    ]
    out = []
    for shape, attrs in _GRAD_CASES + (extra if name == "avgpool_grad" else []):
        x = rng.integers(0, 3, shape).astype(np.float32)
        y = MAXPOOL.reference([x], MAXPOOL.full_attrs({k: v for k, v in attrs.items() if k in MAXPOOL.attrs}))
        g = randn(rng, *y.shape)
        out.append(Sample((x, y, g) if name == "maxpool_grad" else (g, x), attrs))
    return out


def _grad_infer(name: str, x_at: int):
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        x = ts[x_at]
        y = _pooled(x, attrs, name)
        for t in ts:
            if t is not x and t.shape != y.shape:
                raise ShapeError(f"'{name}' needs pooled tensors of {y}, got {t}")
        return x

    return infer


def _grad_op(name: str, inputs, x_at: int, lower, reference, doc: str, extra_attrs=None) -> Op:
    return register(
        Op(
            name=name,
            inputs=inputs,
            attrs={"kernel": REQUIRED, "stride": None, "pads": None, **(extra_attrs or {})},
            infer=_grad_infer(name, x_at),
            lower=lower,
            reference=reference,
            samples=lambda rng: _grad_samples(rng, name),
            style=Style("pool", name.replace("_", " ")),
            doc=doc,
            grad=NO_GRADIENT,
            internal=True,
        )
    )


MAXPOOL_GRAD = _grad_op(
    "maxpool_grad",
    ("x", "y", "g"),
    0,
    _maxpool_grad_lower,
    _maxpool_grad_ref,
    "the input gradient of maxpool: each window's g to its first maximum (x, and y = maxpool(x))",
)
AVGPOOL_GRAD = _grad_op(
    "avgpool_grad",
    ("g", "x"),
    1,
    _avgpool_grad_lower,
    _avgpool_grad_ref,
    "the input gradient of avgpool: each window's g shared over its elements (x: shape only)",
    extra_attrs={"count_include_pad": 1},
)
