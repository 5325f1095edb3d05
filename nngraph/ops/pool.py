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


def _windows(attrs: dict, what: str, spatial=None):
    """(kernel, stride, pads, dilation) from the attributes; stride None means the kernel.

    With ceil_mode the end pads grow by `_ceil_extra`, so that the floor rule (and every lowering
    and gradient written for it) gives PyTorch's ceil-mode windows; `spatial` is then x's spatial
    dims, which must be numbers."""
    kernel = attrs["kernel"]
    n = 1 if isinstance(kernel, int) else len(kernel)
    kernel = spatial_ints(kernel, n, 1, "kernel", what)
    stride, pads, dilation = window_attrs(attrs, n, what, stride_default=kernel)
    if attrs.get("ceil_mode"):
        extra = _ceil_extra(spatial, kernel, stride, pads, dilation, what)
        pads = pads[:n] + tuple(p + e for p, e in zip(pads[n:], extra, strict=True))
    return kernel, stride, pads, dilation


def _ceil_extra(spatial, kernel, stride, pads, dilation, what: str) -> tuple[int, ...]:
    """The end padding ceil_mode adds per spatial dim, PyTorch's rule: the output size rounds up,
    except that the last window must start inside the input or its begin padding."""
    n = len(kernel)
    if spatial is None or len(spatial) != n or not all(isinstance(d, int) for d in spatial):
        raise ShapeError(
            f"'{what}' with ceil_mode needs fixed spatial dims, got {list(spatial or [])}",
            expected="an input whose spatial dims are numbers",
        )
    extra = []
    for i, (d, k, s, dl) in enumerate(zip(spatial, kernel, stride, dilation, strict=True)):
        pb, pe = pads[i], pads[i + n]
        span = d + pb + pe - dl * (k - 1) - 1
        if span < 0:  # no window fits; window_out says so
            extra.append(0)
            continue
        out = -(-span // s) + 1
        if (out - 1) * s >= d + pb:
            out -= 1
        extra.append(max(0, (out - 1) * s + dl * (k - 1) + 1 - (d + pb + pe)))
    return tuple(extra)


def _pooled(x: TensorType, attrs: dict, name: str) -> TensorType:
    """The shape rule of pooling x."""
    kernel = attrs["kernel"]
    n = 1 if isinstance(kernel, int) else len(kernel)
    need_spatial(x, n, name, f" (kernel {spatial_ints(kernel, n, 1, 'kernel', name)} has {n} dims)")
    need_float(x, name)
    kernel, _, given, _ = _windows({**attrs, "ceil_mode": 0}, name)
    for i, k in enumerate(kernel):
        if max(given[i], given[i + n]) >= k:
            raise ShapeError(
                f"'{name}' pads {given} must be smaller than the kernel {kernel} (spatial dim {i}) for {x}",
                expected="each pad < the kernel size along its dim",
            )
    if attrs.get("ceil_mode") and not all(isinstance(d, int) for d in x.shape[2:]):
        raise ShapeError(
            f"'{name}' with ceil_mode needs fixed spatial dims, got {x}",
            expected="an input whose spatial dims are numbers",
            hint="declare the input with fixed spatial dims, or leave ceil_mode off",
        )
    kernel, stride, pads, dilation = _windows(attrs, name, x.shape[2:])
    return x.with_shape(x.shape[:2] + window_out(x, kernel, stride, pads, dilation, name))


#: the pooling samples: (input shape, attrs)
_CASES = [
    ((2, 3, 6, 6), {"kernel": (2, 2)}),
    ((1, 2, 7, 5), {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1)}),
    ((1, 1, 5, 7), {"kernel": (2, 3), "stride": (1, 2), "pads": (0, 1, 1, 0)}),
    ((2, 3, 9), {"kernel": (3,), "stride": (2,), "pads": (1, 0)}),
    ((1, 2, 8), {"kernel": 2}),
]


def _pool(name: str, lower, reduce, doc: str, grad, extra_attrs: dict, extra_samples=()) -> Op:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        return _pooled(ts[0], attrs, name)

    def reference(xs, attrs):
        x = xs[0].astype(np.float64)
        return reduce(x, attrs, _windows(attrs, name, x.shape[2:])).astype(xs[0].dtype)

    def samples(rng: np.random.Generator) -> list[Sample]:
        return [Sample((randn(rng, *shape),), attrs) for shape, attrs in [*_CASES, *extra_samples]]

    attrs = {"kernel": REQUIRED, "stride": None, "pads": None, **extra_attrs}
    return register(
        Op(
            name=name,
            inputs=("x",),
            attrs=attrs,
            infer=infer,
            lower=lower,
            reference=reference,
            samples=samples,
            style=Style("pool", name),
            doc=doc,
            grad=grad,
            # an int or one per spatial dim
            attr_kinds={k: "ints" for k in ("kernel", "stride", "pads", "dilation") if k in attrs},
        )
    )


def _given_pads(attrs: dict, what: str) -> tuple[int, ...]:
    """The pads as given, before ceil_mode extends them."""
    return _windows({**attrs, "ceil_mode": 0}, what)[2]


def _ort_max_pads(ctx, x: str, kernel, pads, dtype):
    """onnxruntime's MaxPool takes pads below the kernel size only; ceil_mode with a dilation can
    need more at the ends, which go into an explicit Pad of -inf. Returns (x, pads, that Pad's
    widths per spatial dim)."""
    n = len(kernel)
    over = tuple(max(0, pads[n + i] - (k - 1)) for i, k in enumerate(kernel))
    if any(over):
        widths = ctx.ints([0] * (n + 2) + [0, 0, *over])
        x = ctx.emit("Pad", [x, widths, ctx.const(np.asarray(-np.inf, dtype=dtype))])
        pads = pads[:n] + tuple(p - o for p, o in zip(pads[n:], over, strict=True))
    return x, pads, over


def _dilations(dilation) -> dict:
    return {"dilations": list(dilation)} if any(d != 1 for d in dilation) else {}


def _maxpool_lower(ctx, xs, attrs, in_types, out_type):
    kernel, stride, pads, dilation = _windows(attrs, "maxpool", in_types[0].shape[2:])
    x, pads, _ = _ort_max_pads(ctx, xs[0], kernel, pads, out_type.np_dtype)
    return ctx.emit(
        "MaxPool",
        [x],
        kernel_shape=list(kernel),
        strides=list(stride),
        pads=list(pads),
        **_dilations(dilation),
    )


def _avgpool_lower(ctx, xs, attrs, in_types, out_type):
    kernel, stride, pads, _ = _windows(attrs, "avgpool", in_types[0].shape[2:])
    x, n, include = xs[0], len(kernel), int(attrs["count_include_pad"])
    given = _given_pads(attrs, "avgpool")
    if include and pads != given:
        # ceil_mode windows past the end padding: PyTorch counts the given padding, not beyond it
        if any(given):
            x = ctx.emit("Pad", [x, ctx.ints([0, 0, *given[:n], 0, 0, *given[n:]])])
        pads, include = (0,) * n + tuple(p - q for p, q in zip(pads[n:], given[n:], strict=True)), 0
    return ctx.emit(
        "AveragePool",
        [x],
        kernel_shape=list(kernel),
        strides=list(stride),
        pads=list(pads),
        count_include_pad=include,
    )


def _max(x, attrs, geometry):
    kernel, stride, pads, dilation = geometry
    return np.maximum.reduce(
        [v for _, v in window_views(pad_spatial(x, pads, -np.inf), kernel, stride, dilation)]
    )


def _avg_count(spatial, attrs: dict, geometry) -> np.ndarray:
    """PyTorch's divisor of each avgpool window, [1, 1, *pooled]: the elements of x it covers, and
    with count_include_pad the given padding too (not the end padding ceil_mode adds)."""
    kernel, stride, pads, _ = geometry
    n = len(kernel)
    mask = np.ones((1, 1, *spatial))
    if attrs["count_include_pad"]:
        given = _given_pads(attrs, "avgpool")
        mask = pad_spatial(mask, given, 1.0)
        pads = (0,) * n + tuple(p - q for p, q in zip(pads[n:], given[n:], strict=True))
    mask = pad_spatial(mask, pads, 0.0)
    return sum(v for _, v in window_views(mask, kernel, stride, (1,) * n))


def _avg(x, attrs, geometry):
    kernel, stride, pads, dilation = geometry
    taps = [v for _, v in window_views(pad_spatial(x, pads), kernel, stride, dilation)]
    return sum(taps) / _avg_count(x.shape[2:], attrs, geometry)


_MAX_SAMPLES = [
    ((1, 2, 9, 8), {"kernel": (3, 2), "dilation": (2, 3)}),
    ((2, 2, 9), {"kernel": (3,), "stride": (2,), "pads": (1, 1), "dilation": (2,)}),
    ((1, 2, 7, 6), {"kernel": (2, 2), "ceil_mode": 1}),
    ((1, 2, 8, 7), {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1), "ceil_mode": 1}),
    # ceil_mode's end padding reaches the kernel size: an explicit Pad of -inf
    ((1, 2, 9), {"kernel": (2,), "stride": (2,), "pads": (1, 1), "dilation": (3,), "ceil_mode": 1}),
]
_AVG_SAMPLES = [
    ((1, 2, 7, 5), {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1), "count_include_pad": 0}),
    ((1, 2, 7, 6), {"kernel": (2, 2), "ceil_mode": 1}),
    ((1, 2, 8, 7), {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1), "ceil_mode": 1}),
    (
        (2, 2, 8, 7),
        {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1), "ceil_mode": 1, "count_include_pad": 0},
    ),
    ((2, 3, 10), {"kernel": (4,), "stride": (3,), "pads": (2, 2), "ceil_mode": 1}),
]

MAXPOOL = _pool(
    "maxpool",
    _maxpool_lower,
    _max,
    "the maximum over each kernel window (padding never wins); dilation spaces the window's taps, "
    "ceil_mode=1 rounds the output size up as PyTorch",
    lambda c, g: [c.x[0].f("maxpool_grad", c.y, g, **c.attrs)],
    {"dilation": None, "ceil_mode": 0},
    _MAX_SAMPLES,
)
AVGPOOL = _pool(
    "avgpool",
    _avgpool_lower,
    _avg,
    "the mean over each kernel window; count_include_pad=1 divides by the full kernel size, as PyTorch "
    "(with ceil_mode=1, windows past the end padding count the part inside it)",
    lambda c, g: [g.f("avgpool_grad", c.x[0], **c.attrs)],
    {"count_include_pad": 1, "ceil_mode": 0},
    _AVG_SAMPLES,
)


def _global_infer(name: str):
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        x = ts[0]
        if x.rank < 3:
            raise ShapeError(
                f"'{name}' expects an input [batch, channels, *spatial] of rank >= 3, got {x.rank}-D {x}",
                expected="an input of rank >= 3",
            )
        need_float(x, name)
        return x.with_shape(x.shape[:2] + (1,) * (x.rank - 2))

    return infer


_GLOBAL_SHAPES = [(2, 3, 4, 5), (1, 4, 7), (2, 2, 3, 1, 2)]

GLOBAL_AVGPOOL = register(
    Op(
        name="global_avgpool",
        inputs=("x",),
        attrs={},
        infer=_global_infer("global_avgpool"),
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit("GlobalAveragePool", xs),
        reference=lambda xs, attrs: (
            xs[0].mean(axis=tuple(range(2, xs[0].ndim)), keepdims=True, dtype=np.float64).astype(xs[0].dtype)
        ),
        samples=lambda rng: [Sample((randn(rng, *s),)) for s in _GLOBAL_SHAPES],
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


def _spatial_axes(a: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, a.ndim))


GLOBAL_MAXPOOL = register(
    Op(
        name="global_maxpool",
        inputs=("x",),
        attrs={},
        infer=_global_infer("global_maxpool"),
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit("GlobalMaxPool", xs),
        reference=lambda xs, attrs: xs[0].max(axis=_spatial_axes(xs[0]), keepdims=True),
        samples=lambda rng: [Sample((randn(rng, *s),)) for s in _GLOBAL_SHAPES],
        style=Style("pool", "global max"),
        doc="the maximum over all spatial dims: [N, C, *spatial] -> [N, C, 1, ...]",
        grad=lambda c, g: [c.x[0].f("global_maxpool_grad", g)],
    )
)


def _global_maxpool_grad_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x, g = ts
    y = _global_infer("global_maxpool_grad")([x], attrs)
    if g.shape != y.shape:
        raise ShapeError(f"'global_maxpool_grad' needs a pooled gradient of {y}, got {g}")
    return x


def _global_maxpool_grad_lower(ctx, xs, attrs, in_types, out_type):
    """g to the first maximum of each [n, c] plane: ArgMax (its first index) over the flattened
    spatial dims and ScatterElements, for symbolic spatial dims too."""
    x, g = xs
    flat = ctx.emit("Reshape", [x, ctx.ints([0, 0, -1])])
    first = ctx.emit("ArgMax", [flat], axis=2, keepdims=1, select_last_index=0)
    zeros = ctx.emit("ConstantOfShape", [ctx.emit("Shape", [flat])], value=_fill(out_type.dtype, 0))
    gx = ctx.emit("ScatterElements", [zeros, first, ctx.emit("Reshape", [g, ctx.ints([0, 0, 1])])], axis=2)
    return ctx.emit("Reshape", [gx, ctx.emit("Shape", [x])])


def _global_maxpool_grad_ref(xs, attrs):
    x, g = xs
    flat = x.reshape(*x.shape[:2], -1)
    gx = np.zeros(flat.shape, dtype=g.dtype)
    np.put_along_axis(gx, flat.argmax(axis=-1)[..., None], g.reshape(*x.shape[:2], 1), axis=-1)
    return gx.reshape(x.shape)


def _global_grad_samples(rng: np.random.Generator) -> list[Sample]:
    """Small integers for x, so planes hold tied maxima."""
    out = []
    for shape in _GLOBAL_SHAPES:
        x = rng.integers(0, 3, shape).astype(np.float32)
        out.append(Sample((x, randn(rng, *shape[:2], *(1,) * (len(shape) - 2)))))
    return out


GLOBAL_MAXPOOL_GRAD = register(
    Op(
        name="global_maxpool_grad",
        inputs=("x", "g"),
        attrs={},
        infer=_global_maxpool_grad_infer,
        lower=_global_maxpool_grad_lower,
        reference=_global_maxpool_grad_ref,
        samples=_global_grad_samples,
        style=Style("pool", "global max grad"),
        doc="the input gradient of global_maxpool: each plane's g to its first maximum (row-major)",
        grad=NO_GRADIENT,
        internal=True,
    )
)


# ---- backward ------------------------------------------------------------------
#
# Where the windows tile the input (stride == kernel, no padding, no dilation, static spatial
# dims) both gradients are elementwise on nearest-neighbour upsampled tensors, which onnxruntime
# runs fast; otherwise they take a slower general form (a scatter for max, a transposed
# convolution for avg).


def _tiles(attrs: dict, x: TensorType) -> bool:
    spatial = x.shape[2:]
    if not all(isinstance(d, int) for d in spatial):
        return False
    kernel, stride, pads, dilation = _windows(attrs, "pool", spatial)
    return stride == kernel and not any(pads) and all(d == 1 for d in dilation)


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


def _first_max_tiled(ctx, x: str, x_type: TensorType, y: str, g: str, kernel, dt: str) -> str:
    """The gradient of windows that tile x: g goes where x equals its window's maximum, FIRST
    maximum only (row-major), as PyTorch and MaxPool's Indices do. The first is found without
    Indices (10x slower, blocks NCHWc): score = hit * (K - position in window) is largest at the
    first hit; MaxPool(score) picks it."""
    k = math.prod(kernel)
    rank = np.arange(k, 0, -1, dtype=x_type.np_dtype).reshape(1, 1, *kernel)
    pooled = [d // kk for d, kk in zip(x_type.shape[2:], kernel, strict=True)]
    ranks = ctx.const(np.tile(rank, (1, 1, *pooled)), hint="window_rank")

    def body(xc):
        hit = _cast(ctx, ctx.emit("Equal", [xc, _up(ctx, y, kernel)]), dt)
        score = ctx.emit("Mul", [hit, ranks])
        best = ctx.emit("MaxPool", [score], kernel_shape=list(kernel), strides=list(kernel))
        first = _cast(ctx, ctx.emit("Equal", [score, _up(ctx, best, kernel)]), dt)
        return ctx.emit("Mul", [first, _up(ctx, g, kernel)])

    return _tiled(ctx, x, x_type, kernel, body)


def _maxpool_grad_lower(ctx, xs, attrs, in_types, out_type):
    """Tiling windows: `_first_max_tiled`. Overlapping, padded or dilated windows, or symbolic
    spatial dims: MaxPool's Indices (first maximum too) and ScatterElements(add), about 1.7x
    slower on a [64, 32, 28, 28] input (the sum in f32 for f16)."""
    x, y, g = xs
    kernel, stride, pads, dilation = _windows(attrs, "maxpool_grad", in_types[0].shape[2:])
    dt = out_type.dtype
    if _tiles(attrs, in_types[0]):
        return _first_max_tiled(ctx, x, in_types[0], y, g, kernel, dt)
    xp, pads, over = _ort_max_pads(ctx, x, kernel, pads, out_type.np_dtype)
    _, idx = ctx.emit_multi(
        "MaxPool",
        [xp],
        2,
        kernel_shape=list(kernel),
        strides=list(stride),
        pads=list(pads),
        **_dilations(dilation),
    )
    flat = ctx.ints([-1])
    size = ctx.emit("Reshape", [ctx.emit("Size", [xp]), flat])
    sum_dt = "f32" if dt == "f16" else dt  # onnxruntime's ScatterElements(add) has no f16 kernel
    zeros = ctx.emit("ConstantOfShape", [size], value=_fill(sum_dt, 0))
    g = ctx.emit("Reshape", [g, flat])
    out = ctx.emit(
        "ScatterElements",
        [zeros, ctx.emit("Reshape", [idx, flat]), g if sum_dt == dt else _cast(ctx, g, sum_dt)],
        axis=0,
        reduction="add",
    )
    out = ctx.emit("Reshape", [out if sum_dt == dt else _cast(ctx, out, dt), ctx.emit("Shape", [xp])])
    if any(over):  # ceil_mode's explicit end padding (static spatial dims) cut off again
        n = len(kernel)
        ends = ctx.ints(list(in_types[0].shape[2:]))
        out = ctx.emit("Slice", [out, ctx.ints([0] * n), ends, ctx.ints(list(range(2, n + 2)))])
    return out


def _avgpool_grad_lower(ctx, xs, attrs, in_types, out_type):
    """Tiling windows: g / K upsampled. Otherwise g divided by each window's count, then a transposed
    convolution with a ones kernel over [N*C, 1, *pooled]."""
    g, x = xs
    x_type = in_types[1]
    spatial = x_type.shape[2:]
    kernel, stride, pads, _ = _windows(attrs, "avgpool_grad", spatial)
    n, k, dt = len(kernel), math.prod(kernel), out_type.np_dtype
    inv_k = ctx.const(np.asarray(1 / k, dtype=dt))
    if _tiles(attrs, x_type):
        return _tiled(ctx, x, x_type, kernel, lambda xc: ctx.emit("Mul", [_up(ctx, g, kernel), inv_k]))
    if all(isinstance(d, int) for d in spatial):  # each window's count, known here
        count = _avg_count(spatial, attrs, (kernel, stride, pads, (1,) * n))
        inv = inv_k if np.all(count == k) else ctx.const((1 / count).astype(dt), hint="inv_count")
        g = ctx.emit("Mul", [g, inv])
    elif attrs["count_include_pad"] or not any(pads):
        g = ctx.emit("Mul", [g, inv_k])
    else:  # count = K * AveragePool(ones) with padding counted, per window, from x's run-time size
        sizes = ctx.emit("Slice", [ctx.emit("Shape", [x]), ctx.ints([2]), ctx.ints([n + 2])])
        ones = ctx.emit(
            "ConstantOfShape",
            [ctx.emit("Concat", [ctx.ints([1, 1]), sizes], axis=0)],
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
    gx = conv_transpose_to(ctx, g1, ones_k, x, x_type, kernel, stride, pads, (1,) * n, 1)
    return ctx.emit("Reshape", [gx, ctx.emit("Shape", [x])])


def _maxpool_grad_ref(xs, attrs):
    """Each window's gradient to its first maximum (np.argmax order: row-major), padding never wins."""
    x, _, g = xs
    kernel, stride, pads, dilation = _windows(attrs, "maxpool_grad", x.shape[2:])
    xp = pad_spatial(x.astype(np.float64), pads, -np.inf)
    first = np.argmax(np.stack([v for _, v in window_views(xp, kernel, stride, dilation)]), axis=0)
    gp = np.zeros_like(xp)
    for j, (_, view) in enumerate(window_views(gp, kernel, stride, dilation)):
        view += np.where(first == j, g, 0)
    return crop_spatial(gp, pads).astype(g.dtype)


def _avgpool_grad_ref(xs, attrs):
    g, x = xs
    geometry = _windows(attrs, "avgpool_grad", x.shape[2:])
    kernel, stride, pads, dilation = geometry
    count = _avg_count(x.shape[2:], attrs, geometry)
    gp = pad_spatial(np.zeros(x.shape), pads)
    for _, view in window_views(gp, kernel, stride, dilation):
        view += g / count
    return crop_spatial(gp, pads).astype(g.dtype)


_GRAD_CASES = [
    *_CASES,
    ((1, 2, 7, 5), {"kernel": (2, 2)}),  # windows tile, but not all of x
    ((1, 2, 4, 4, 6), {"kernel": (2, 2, 3)}),
    ((2, 3, 5, 5), {"kernel": (3, 3), "stride": (1, 1), "pads": (1, 1, 1, 1)}),
    ((1, 2, 7, 6), {"kernel": (2, 2), "ceil_mode": 1}),
    ((1, 2, 8, 7), {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1), "ceil_mode": 1}),
]


def _grad_samples(rng: np.random.Generator, name: str) -> list[Sample]:
    """Small integers for x, so windows hold tied maxima (as ReLU zeros and integer pixels do)."""
    max_only = [s for s in _MAX_SAMPLES if "dilation" in s[1]]
    avg_only = [s for s in _AVG_SAMPLES if s not in _GRAD_CASES]
    out = []
    for shape, attrs in _GRAD_CASES + (avg_only if name == "avgpool_grad" else max_only):
        x = rng.integers(0, 3, shape).astype(np.float32)
        y_attrs = {k: v for k, v in attrs.items() if k in MAXPOOL.attrs}
        y = MAXPOOL.reference([x], MAXPOOL.full_attrs(y_attrs))
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


def _grad_op(name: str, inputs, x_at: int, lower, reference, doc: str, extra_attrs: dict) -> Op:
    return register(
        Op(
            name=name,
            inputs=inputs,
            attrs={"kernel": REQUIRED, "stride": None, "pads": None, **extra_attrs},
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
    {"dilation": None, "ceil_mode": 0},
)
AVGPOOL_GRAD = _grad_op(
    "avgpool_grad",
    ("g", "x"),
    1,
    _avgpool_grad_lower,
    _avgpool_grad_ref,
    "the input gradient of avgpool: each window's g shared over its elements (x: shape only)",
    {"count_include_pad": 1, "ceil_mode": 0},
)


# ---- adaptive pooling ----------------------------------------------------------
#
# PyTorch's windows for an output size o over an input size d: window i is
# [floor(i*d/o), ceil((i+1)*d/o)), so windows may overlap and differ in size. The spatial dims
# are static, so the lowering builds them as constants: where o divides d the windows tile and
# it is a pooling; otherwise a Gather per dim lays each window out in a block of the largest
# window size K (the shorter ones padded with a sentinel: -inf for max, 0 for avg), which a
# pooling with kernel = stride = K reduces. The gradients run the other way: a tiled gradient
# over the blocks, then per dim the transpose of the Gather (a MatMul with a 0/1 matrix).


def adaptive_windows(d: int, o: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows [start, end) of an input size d for an output size o."""
    return [(i * d // o, -(-(i + 1) * d // o)) for i in range(o)]


def _adaptive_size(x: TensorType, attrs: dict, name: str) -> tuple[int, ...]:
    """The output's spatial size, after checking x and the size attribute."""
    if x.rank < 3:
        raise ShapeError(
            f"'{name}' expects an input [batch, channels, *spatial] of rank >= 3, got {x.rank}-D {x}",
            expected="an input of rank >= 3",
        )
    need_float(x, name)
    n = x.rank - 2
    size = spatial_ints(attrs["size"], n, 1, "size", name)
    if any(s < 1 for s in size):
        raise ShapeError(f"'{name}' size must be 1 or more, got {list(size)}", expected="a size >= 1")
    if not all(isinstance(d, int) for d in x.shape[2:]):
        raise ShapeError(
            f"'{name}' needs fixed spatial dims (its windows depend on them), got {x}",
            expected="an input whose spatial dims are numbers",
        )
    return size


def _adaptive_infer(name: str, x_at: int = 0):
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        x = ts[x_at]
        y = x.with_shape(x.shape[:2] + _adaptive_size(x, attrs, name))
        if len(ts) == 1:
            return y
        for t in ts:  # a gradient operator: the others are pooled, and it gives x's type
            if t is not x and t.shape != y.shape:
                raise ShapeError(f"'{name}' needs pooled tensors of {y}, got {t}")
        return x

    return infer


def _blocks(spatial, size) -> list[tuple[int, list[int] | None]]:
    """Per spatial dim: (K, the Gather's indices laying out the windows in blocks of K, with the
    sentinel d in the short ones), or (d // o, None) where the windows tile."""
    out = []
    for d, o in zip(spatial, size, strict=True):
        if d % o == 0:
            out.append((d // o, None))
            continue
        wins = adaptive_windows(d, o)
        k = max(e - s for s, e in wins)
        out.append((k, [j for s, e in wins for j in [*range(s, e), *[d] * (k - (e - s))]]))
    return out


def _adaptive_count(spatial, size) -> np.ndarray:
    """Each window's element count, [*size]: the product of its per-dim lengths."""
    count = np.ones(())
    for d, o in zip(spatial, size, strict=True):
        count = np.multiply.outer(count, [e - s for s, e in adaptive_windows(d, o)])
    return count


def _gathered(ctx, x: str, spatial, blocks, fill: float, dtype) -> str:
    """x with its windows laid out in blocks (see `_blocks`)."""
    n = len(spatial)
    ends = [int(idx is not None and d in idx) for (_, idx), d in zip(blocks, spatial, strict=True)]
    if any(ends):  # the sentinel: one element past the end
        widths = ctx.ints([0] * (n + 2) + [0, 0, *ends])
        x = ctx.emit("Pad", [x, widths, ctx.const(np.asarray(fill, dtype=dtype))])
    for i, (_, idx) in enumerate(blocks):
        if idx is not None:
            x = ctx.emit("Gather", [x, ctx.ints(idx, hint="windows")], axis=2 + i)
    return x


def _ungathered(ctx, gz: str, spatial, blocks, dtype) -> str:
    """The transpose of `_gathered` on a gradient: each block element's value added to the x
    element it came from (sentinels dropped), a MatMul with a 0/1 matrix per dim."""
    rank = len(spatial) + 2
    for i, ((_, idx), d) in enumerate(zip(blocks, spatial, strict=True)):
        if idx is None:
            continue
        m = np.zeros((len(idx), d), dtype=dtype)
        for j, at in enumerate(idx):
            if at < d:
                m[j, at] = 1
        axis = 2 + i
        if axis == rank - 1:
            gz = ctx.emit("MatMul", [gz, ctx.const(m, hint="unwindow")])
        elif axis == rank - 2:
            gz = ctx.emit("MatMul", [ctx.const(np.ascontiguousarray(m.T), hint="unwindow"), gz])
        else:
            perm = list(range(rank))
            perm[axis], perm[-1] = perm[-1], perm[axis]
            gz = ctx.emit("Transpose", [gz], perm=perm)
            gz = ctx.emit("Transpose", [ctx.emit("MatMul", [gz, ctx.const(m, hint="unwindow")])], perm=perm)
    return gz


def _adaptive_max_lower(ctx, xs, attrs, in_types, out_type):
    spatial, size = in_types[0].shape[2:], out_type.shape[2:]
    blocks = _blocks(spatial, size)
    z = _gathered(ctx, xs[0], spatial, blocks, -np.inf, out_type.np_dtype)
    kernel = [k for k, _ in blocks]
    return ctx.emit("MaxPool", [z], kernel_shape=kernel, strides=kernel)


def _adaptive_avg_lower(ctx, xs, attrs, in_types, out_type):
    spatial, size = in_types[0].shape[2:], out_type.shape[2:]
    blocks = _blocks(spatial, size)
    z = _gathered(ctx, xs[0], spatial, blocks, 0.0, out_type.np_dtype)
    kernel = [k for k, _ in blocks]
    y = ctx.emit("AveragePool", [z], kernel_shape=kernel, strides=kernel)
    count, k = _adaptive_count(spatial, size), math.prod(kernel)
    if np.all(count == k):
        return y
    return ctx.emit("Mul", [y, ctx.const((k / count).astype(out_type.np_dtype), hint="window_share")])


def _adaptive_max_grad_lower(ctx, xs, attrs, in_types, out_type):
    """g to each window's first maximum (row-major), as PyTorch: the tiled rule of maxpool on the
    blocks (a sentinel comes after its window's elements, so it is never the first maximum)."""
    x, y, g = xs
    x_type = in_types[0]
    spatial, size = x_type.shape[2:], in_types[1].shape[2:]
    blocks = _blocks(spatial, size)
    z = _gathered(ctx, x, spatial, blocks, -np.inf, out_type.np_dtype)
    kernel = [k for k, _ in blocks]
    z_type = x_type.with_shape(x_type.shape[:2] + tuple(o * k for o, k in zip(size, kernel, strict=True)))
    gz = _first_max_tiled(ctx, z, z_type, y, g, kernel, out_type.dtype)
    return _ungathered(ctx, gz, spatial, blocks, out_type.np_dtype)


def _adaptive_avg_grad_lower(ctx, xs, attrs, in_types, out_type):
    """g / count copied over each window's block, then back to x."""
    g, _ = xs
    spatial, size = in_types[1].shape[2:], in_types[0].shape[2:]
    blocks = _blocks(spatial, size)
    kernel = [k for k, _ in blocks]
    count = _adaptive_count(spatial, size)
    share = ctx.const((1 / count).astype(out_type.np_dtype), hint="window_share")
    gz = _up(ctx, ctx.emit("Mul", [g, share]), kernel)
    return _ungathered(ctx, gz, spatial, blocks, out_type.np_dtype)


def _adaptive_cells(x: np.ndarray, attrs: dict):
    """(output index, x's window there) for every output element, PyTorch's windows."""
    spatial = x.shape[2:]
    size = spatial_ints(attrs["size"], len(spatial), 1, "size", "adaptive pool")
    wins = [adaptive_windows(d, o) for d, o in zip(spatial, size, strict=True)]
    for o in np.ndindex(*size):
        yield o, (slice(None), slice(None), *(slice(*wins[i][j]) for i, j in enumerate(o)))


def _adaptive_ref(reduce):
    def reference(xs, attrs):
        x = xs[0].astype(np.float64)
        size = spatial_ints(attrs["size"], x.ndim - 2, 1, "size", "adaptive pool")
        y = np.empty(x.shape[:2] + size)
        for o, cell in _adaptive_cells(x, attrs):
            y[(..., *o)] = reduce(x[cell].reshape(*x.shape[:2], -1), axis=-1)
        return y.astype(xs[0].dtype)

    return reference


def _adaptive_max_grad_ref(xs, attrs):
    x, _, g = xs
    gx = np.zeros(x.shape)
    for o, cell in _adaptive_cells(x, attrs):
        window = x[cell]
        flat = window.reshape(*x.shape[:2], -1)
        part = np.zeros(flat.shape)
        np.put_along_axis(part, flat.argmax(axis=-1)[..., None], g[(..., *o)][..., None], axis=-1)
        gx[cell] += part.reshape(window.shape)
    return gx.astype(g.dtype)


def _adaptive_avg_grad_ref(xs, attrs):
    g, x = xs
    gx = np.zeros(x.shape)
    for o, cell in _adaptive_cells(x, attrs):
        share = g[(..., *o)].astype(np.float64) / x[cell][0, 0].size
        gx[cell] += share.reshape(*share.shape, *(1,) * (x.ndim - 2))
    return gx.astype(g.dtype)


#: (input shape, size): awkward sizes (7 -> 3, 10 -> 4, 11 -> 3: overlapping windows of
#: different lengths; 3 -> 5: more outputs than inputs), tiling ones, and one size for all dims
_ADAPTIVE_CASES = [
    ((1, 2, 7, 7), (3, 3)),
    ((2, 3, 10, 6), (4, 3)),
    ((1, 2, 8, 8), (4, 4)),
    ((1, 2, 3, 5), (5, 7)),
    ((1, 1, 13, 6), (5, 4)),
    ((2, 2, 9, 10), 4),
    ((1, 2, 11), (3,)),
    ((2, 3, 12), (4,)),
    ((1, 2, 5, 4), (1, 1)),
    ((1, 2, 5, 4, 6), (2, 3, 4)),  # 3-D: the Transpose around the MatMul of the gradient
]


def _adaptive_grad_samples(name: str):
    def samples(rng: np.random.Generator) -> list[Sample]:
        """Small integers for x, so windows hold tied maxima."""
        out = []
        for shape, size in _ADAPTIVE_CASES:
            x = rng.integers(0, 3, shape).astype(np.float32)
            attrs = {"size": size}
            if name == "adaptive_maxpool_grad":
                y = ADAPTIVE_MAXPOOL.reference([x], attrs)
                out.append(Sample((x, y, randn(rng, *y.shape)), attrs))
            else:
                pooled = shape[:2] + spatial_ints(size, len(shape) - 2, 1, "size", name)
                out.append(Sample((randn(rng, *pooled), x), attrs))
        return out

    return samples


def _adaptive_op(name: str, label: str, lower, reference, doc: str, grad, inputs=("x",), x_at=0) -> Op:
    internal = name.endswith("_grad")
    return register(
        Op(
            name=name,
            inputs=inputs,
            attrs={"size": REQUIRED},
            infer=_adaptive_infer(name, x_at),
            lower=lower,
            reference=reference,
            samples=_adaptive_grad_samples(name)
            if internal
            else lambda rng: [Sample((randn(rng, *s),), {"size": o}) for s, o in _ADAPTIVE_CASES],
            style=Style("pool", label),
            doc=doc,
            grad=grad,
            internal=internal,
            attr_kinds={"size": "ints"},  # an int or one per spatial dim
        )
    )


ADAPTIVE_MAXPOOL = _adaptive_op(
    "adaptive_maxpool",
    "adaptive max",
    _adaptive_max_lower,
    _adaptive_ref(np.max),
    "the maximum over PyTorch's adaptive windows: [N, C, *spatial] -> [N, C, *size]",
    lambda c, g: [c.x[0].f("adaptive_maxpool_grad", c.y, g, **c.attrs)],
)
ADAPTIVE_AVGPOOL = _adaptive_op(
    "adaptive_avgpool",
    "adaptive avg",
    _adaptive_avg_lower,
    _adaptive_ref(np.mean),
    "the mean over PyTorch's adaptive windows: [N, C, *spatial] -> [N, C, *size]",
    lambda c, g: [g.f("adaptive_avgpool_grad", c.x[0], **c.attrs)],
)
ADAPTIVE_MAXPOOL_GRAD = _adaptive_op(
    "adaptive_maxpool_grad",
    "adaptive max grad",
    _adaptive_max_grad_lower,
    _adaptive_max_grad_ref,
    "the input gradient of adaptive_maxpool: each window's g to its first maximum (x, y, g)",
    NO_GRADIENT,
    ("x", "y", "g"),
    0,
)
ADAPTIVE_AVGPOOL_GRAD = _adaptive_op(
    "adaptive_avgpool_grad",
    "adaptive avg grad",
    _adaptive_avg_grad_lower,
    _adaptive_avg_grad_ref,
    "the input gradient of adaptive_avgpool: each window's g shared over its elements (x: shape only)",
    NO_GRADIENT,
    ("g", "x"),
    1,
)
