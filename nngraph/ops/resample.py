"""Resampling over the spatial dims (NC... layout): upsample (nearest or linear interpolation, as
torch.nn.Upsample) and pixel_shuffle / pixel_unshuffle (as torch.nn.PixelShuffle / PixelUnshuffle).

Upsampling is separable: along each spatial axis every output position reads one input position
(nearest) or blends two (linear), so the whole op is x times one static interpolation matrix per
axis. Its gradient is g times the transposed matrices. The forward runs as ONNX Resize where
onnxruntime has a kernel for it (f32), and through the matrices otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from nngraph.core.types import TensorType
from nngraph.errors import ShapeError
from nngraph.ops.common import dim_affine, layout, need_float, randn
from nngraph.ops.registry import NO_GRADIENT, REQUIRED, Op, Sample, Style, register

# ---- upsample ------------------------------------------------------------------

#: the linear mode of each spatial rank, as torch names it
_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}
_MODES = "nearest|linear|bilinear|trilinear"
_ATTRS = {"scale": REQUIRED, "mode": "nearest", "align_corners": False}


def _check(x: TensorType, attrs: dict, what: str) -> tuple[int, ...]:
    """x's spatial sizes, after checking x, the mode against x's rank, and the scale."""
    mode, scale, align = attrs["mode"], attrs["scale"], attrs["align_corners"]
    if x.rank not in (3, 4, 5):
        raise ShapeError(
            f"'{what}' expects a 3-D, 4-D or 5-D input [batch, channels, *spatial], got {x.rank}-D {x}",
            expected="an input with 1, 2 or 3 spatial dims",
        )
    need_float(x, what)
    n = x.rank - 2
    if mode not in _MODES.split("|"):
        raise ShapeError(f"'{what}' mode must be one of {_MODES.replace('|', ', ')}, got {mode!r}")
    if mode != "nearest" and mode != _LINEAR[n]:
        raise ShapeError(
            f"'{what}' mode={mode} does not fit the {n + 2}-D input {x} {layout(n)}",
            expected=f"mode={_LINEAR[n]} (or nearest) for a {n + 2}-D input",
        )
    if align and mode == "nearest":
        raise ShapeError(
            f"'{what}' align_corners=true needs an interpolating mode, not nearest (as in PyTorch)",
            expected=f"mode={_LINEAR[n]} with align_corners, or nearest without it",
        )
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ShapeError(f"'{what}' scale must be a number > 0, got {scale!r}")
    spatial = x.shape[2:]
    if not all(isinstance(d, int) for d in spatial):
        raise ShapeError(
            f"'{what}' needs static spatial dims (its interpolation is worked out from them), got {x}",
            expected=f"an input {layout(n)} whose spatial dims are numbers",
        )
    return spatial


def _sizes(spatial, scale: float, x: TensorType, what: str) -> list[int]:
    """floor(d * scale), as torch.nn.Upsample; each at least 1."""
    out = [math.floor(d * float(scale)) for d in spatial]
    if min(out) < 1:
        raise ShapeError(
            f"'{what}' scale {scale} shrinks {x} to the spatial size {out}",
            expected="a scale that leaves every spatial dim at least 1",
        )
    return out


def _up_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x = ts[0]
    spatial = _check(x, attrs, "upsample")
    return x.with_shape(x.shape[:2] + tuple(_sizes(spatial, attrs["scale"], x, "upsample")))


def axis_taps(size: int, out: int, scale: float, mode: str, align: bool):
    """Along one axis: (i0, i1, w1) per output position, the output being (1 - w1) x[i0] + w1 x[i1].

    nearest: i = floor(o / scale). linear: the source coordinate (o + 0.5) / scale - 0.5, at least
    0 (half pixels), or o * (size - 1) / (out - 1) with align_corners; i0 its floor, i1 the next
    position (clamped to the edge), w1 the fraction between them. These are PyTorch's rules.
    """
    o = np.arange(out, dtype=np.float64)
    if mode == "nearest":
        i0 = np.minimum(np.floor(o / scale).astype(np.int64), size - 1)
        return i0, i0, np.zeros(out)
    if align:
        src = o * (size - 1) / (out - 1) if out > 1 else np.zeros(out)
    else:
        src = np.maximum((o + 0.5) / scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    i1 = np.minimum(i0 + 1, size - 1)
    return i0, i1, np.clip(src - i0, 0.0, 1.0)


def _matrix(size: int, out: int, attrs: dict) -> np.ndarray:
    """The interpolation matrix M [out, size] of one axis: y = M @ x along it."""
    i0, i1, w1 = axis_taps(size, out, float(attrs["scale"]), attrs["mode"], attrs["align_corners"])
    m = np.zeros((out, size))
    np.add.at(m, (np.arange(out), i0), 1 - w1)
    np.add.at(m, (np.arange(out), i1), w1)
    return m


def _apply(ctx, t: str, mats: list[np.ndarray], spatial: list[int], dtype) -> str:
    """t [N, C, *spatial] with mats[i] [new_i, spatial_i] applied along spatial axis i: the last axis
    by t @ M^T, the one before by M @ t (MatMul broadcasts over the leading dims), a third with the
    last two merged into one."""
    n, cur = len(mats), list(spatial)
    for i in reversed(range(n)):
        m = mats[i]
        if i == n - 1:
            t = ctx.emit("MatMul", [t, ctx.const(m.T.astype(dtype), hint="interpolation")])
        elif i == n - 2:
            t = ctx.emit("MatMul", [ctx.const(m.astype(dtype), hint="interpolation"), t])
        else:  # [N, C, D, H, W] -> [N, C, D, H*W]
            t = ctx.emit("Reshape", [t, ctx.ints([0, 0, cur[0], cur[1] * cur[2]])])
            t = ctx.emit("MatMul", [ctx.const(m.astype(dtype), hint="interpolation"), t])
            t = ctx.emit("Reshape", [t, ctx.ints([0, 0, m.shape[0], cur[1], cur[2]])])
        cur[i] = m.shape[0]
    return t


def _resize_fits(spatial, out, scale: float) -> bool:
    """Resize works out its output size as floor(d * scale) from a float32 scale (ONNX's shape
    inference in float64, onnxruntime in float32); where either could disagree with PyTorch's
    float64 size (2.3 x 10 is 23, 2.3f x 10 is 22.9999995), the matrices run instead."""
    s = np.float32(scale)
    return all(
        math.floor(d * float(s)) == o and int(np.floor(np.float32(d) * s)) == o
        for d, o in zip(spatial, out, strict=True)
    )


def _up_lower(ctx, xs, attrs, in_types, out_type):
    """ONNX Resize for f32 (onnxruntime has no f64 or f16 kernel): nearest as asymmetric + floor,
    linear as half_pixel (torch's rule when a scale is given) or align_corners."""
    x_t = in_types[0]
    spatial, out = list(x_t.shape[2:]), list(out_type.shape[2:])
    scale = float(attrs["scale"])
    if x_t.dtype != "f32" or not _resize_fits(spatial, out, scale):
        mats = [_matrix(d, o, attrs) for d, o in zip(spatial, out, strict=True)]
        return _apply(ctx, xs[0], mats, spatial, out_type.np_dtype)
    scales = ctx.const(np.asarray([1, 1] + [scale] * len(spatial), dtype=np.float32), hint="scales")
    if attrs["mode"] == "nearest":
        how = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    else:
        ctm = "align_corners" if attrs["align_corners"] else "half_pixel"
        how = {"mode": "linear", "coordinate_transformation_mode": ctm}
    return ctx.emit("Resize", [xs[0], "", scales], **how)


def _up_ref(xs, attrs):
    """Axis by axis: (1 - w1) x[i0] + w1 x[i1] with the taps of each axis."""
    y = xs[0].astype(np.float64)
    scale = float(attrs["scale"])
    for axis in range(2, y.ndim):
        size = y.shape[axis]
        i0, i1, w1 = axis_taps(size, math.floor(size * scale), scale, attrs["mode"], attrs["align_corners"])
        w = w1.reshape([-1] + [1] * (y.ndim - 1 - axis))
        y = np.take(y, i0, axis=axis) * (1 - w) + np.take(y, i1, axis=axis) * w
    return y.astype(xs[0].dtype)


#: (x shape, attrs, dtype)
_UP_CASES = [
    ((2, 3, 4, 5), {"scale": 2}, np.float32),
    ((1, 2, 3, 4), {"scale": 3, "mode": "bilinear"}, np.float32),
    ((1, 2, 4, 3), {"scale": 2, "mode": "bilinear", "align_corners": True}, np.float32),
    ((1, 2, 5, 4), {"scale": 1.5, "mode": "bilinear"}, np.float32),
    ((2, 2, 7), {"scale": 2.5}, np.float32),
    ((2, 3, 6), {"scale": 2, "mode": "linear"}, np.float32),
    ((1, 2, 3, 2, 4), {"scale": 2, "mode": "trilinear"}, np.float32),
    ((1, 2, 2, 3, 2), {"scale": 2}, np.float32),
    ((1, 2, 6, 7), {"scale": 0.5, "mode": "bilinear"}, np.float32),  # down: torch's rule, no antialias
    ((1, 2, 10, 3), {"scale": 2.3, "mode": "bilinear"}, np.float32),  # matrices: 23 rows, not Resize's 22
    ((1, 3, 4, 3), {"scale": 2, "mode": "bilinear"}, np.float64),  # matrices: no f64 Resize
    ((1, 2, 3, 2, 3), {"scale": 1.5, "mode": "trilinear", "align_corners": True}, np.float64),
    ((2, 1, 5), {"scale": 3}, np.float64),
]


def _up_samples(rng):
    return [Sample((randn(rng, *s, dtype=dt),), a) for s, a, dt in _UP_CASES]


UPSAMPLE = register(
    Op(
        name="upsample",
        inputs=("x",),
        attrs=dict(_ATTRS),
        infer=_up_infer,
        lower=_up_lower,
        reference=_up_ref,
        samples=_up_samples,
        style=Style("pool", "upsample"),
        doc="resample the spatial dims by scale (floor(d * scale) each), nearest or linear, as torch.nn.Upsample",
        grad=lambda c, g: [g.f("upsample_grad", c.x[0], **c.attrs)],
        attr_kinds={"scale": "float", "mode": f"choice:{_MODES}", "align_corners": "bool"},
        attr_limits={"scale": "> 0"},
    )
)


def _grad_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    g, x = ts
    y = _up_infer([x], attrs)
    if g.shape != y.shape or g.dtype != x.dtype:
        raise ShapeError(f"'upsample_grad': g {g} is not the output {y} of upsampling {x}")
    return x


def _blocks(spatial, out, attrs) -> int | None:
    """The integer scale k where nearest upsampling copies each input element into a k x k block."""
    s = float(attrs["scale"])
    if (
        attrs["mode"] == "nearest"
        and s == int(s)
        and all(o == d * int(s) for d, o in zip(spatial, out, strict=True))
    ):
        return int(s)
    return None


def _grad_lower(ctx, xs, attrs, in_types, out_type):
    """Nearest by an integer scale k: each block of g summed (Reshape [N, C, d0, k, d1, k, ...],
    ReduceSum). Otherwise g times the transposed interpolation matrices."""
    g, _ = xs
    spatial, out = list(out_type.shape[2:]), list(in_types[0].shape[2:])
    k = _blocks(spatial, out, attrs)
    if k is not None:
        split = [v for d in spatial for v in (d, k)]
        blocks = ctx.emit("Reshape", [g, ctx.ints([0, 0, *split])])
        axes = [3 + 2 * i for i in range(len(spatial))]
        return ctx.emit("ReduceSum", [blocks, ctx.ints(axes)], keepdims=0)
    mats = [_matrix(d, o, attrs).T for d, o in zip(spatial, out, strict=True)]
    return _apply(ctx, g, mats, out, out_type.np_dtype)


def _grad_ref(xs, attrs):
    """Each output position's gradient added back to the positions it read, axis by axis."""
    g, x = xs[0].astype(np.float64), xs[1]
    scale = float(attrs["scale"])
    for axis in range(2, g.ndim):
        size = x.shape[axis]
        i0, i1, w1 = axis_taps(size, g.shape[axis], scale, attrs["mode"], attrs["align_corners"])
        ga = np.moveaxis(g, axis, 0)
        back = np.zeros((size, *ga.shape[1:]))
        w = w1.reshape([-1] + [1] * (ga.ndim - 1))
        np.add.at(back, i0, ga * (1 - w))
        np.add.at(back, i1, ga * w)
        g = np.moveaxis(back, 0, axis)
    return g.astype(xs[0].dtype)


def _grad_samples(rng):
    out = []
    for s, a, dt in _UP_CASES:
        y = _up_infer([TensorType("f32", s)], {**_ATTRS, **a})
        out.append(Sample((randn(rng, *y.shape, dtype=dt), randn(rng, *s, dtype=dt)), a))
    return out


UPSAMPLE_GRAD = register(
    Op(
        name="upsample_grad",
        inputs=("g", "x"),
        attrs=dict(_ATTRS),
        infer=_grad_infer,
        lower=_grad_lower,
        reference=_grad_ref,
        samples=_grad_samples,
        style=Style("pool", "upsample grad"),
        doc="the input gradient of upsample: g through the transposed interpolation (x: shape only)",
        grad=NO_GRADIENT,
        internal=True,
        attr_kinds={"scale": "float", "mode": f"choice:{_MODES}", "align_corners": "bool"},
    )
)


# ---- pixel_shuffle / pixel_unshuffle -------------------------------------------


def _factor(attrs: dict, name: str, what: str) -> int:
    r = attrs[name]
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ShapeError(f"'{what}' {name} must be an integer >= 1, got {r!r}")
    return r


def _image(x: TensorType, what: str) -> None:
    if x.rank != 4:
        raise ShapeError(
            f"'{what}' expects a 4-D input {layout(2)}, got {x.rank}-D {x}",
            expected=f"a 4-D input {layout(2)}",
        )
    need_float(x, what)
    if not isinstance(x.shape[1], int):
        raise ShapeError(f"'{what}' needs a static channel count (dim 1), got {x}")


def _shuffle_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x, what = ts[0], "pixel_shuffle"
    r = _factor(attrs, "upscale_factor", what)
    _image(x, what)
    c = x.shape[1]
    if c % (r * r):
        raise ShapeError(
            f"'{what}' moves channels into {r} x {r} blocks, but the {c} channels of {x} are not a "
            f"multiple of upscale_factor² = {r * r}",
            expected=f"an input whose channel count is a multiple of {r * r}",
        )
    up = lambda d: dim_affine(d, lambda v: v * r, "{d}*" + str(r)) if r > 1 else d
    return x.with_shape((x.shape[0], c // (r * r), up(x.shape[2]), up(x.shape[3])))


def _unshuffle_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x, what = ts[0], "pixel_unshuffle"
    r = _factor(attrs, "downscale_factor", what)
    _image(x, what)
    for axis in (2, 3):  # a symbolic size is taken to be a multiple (onnxruntime checks it)
        d = x.shape[axis]
        if isinstance(d, int) and d % r:
            raise ShapeError(
                f"'{what}' cuts the height and width into {r} x {r} blocks, but dim {axis} of {x} is "
                f"{d}, not a multiple of downscale_factor {r}",
                expected=f"height and width that are multiples of {r}",
            )
    down = lambda d: dim_affine(d, lambda v: v // r, "{d}//" + str(r)) if r > 1 else d
    return x.with_shape((x.shape[0], x.shape[1] * r * r, down(x.shape[2]), down(x.shape[3])))


def _shuffle_ref(xs, attrs):
    x, r = xs[0], attrs["upscale_factor"]
    n, c, h, w = x.shape
    y = x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (r * r), h * r, w * r)


def _unshuffle_ref(xs, attrs):
    x, r = xs[0], attrs["downscale_factor"]
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * r * r, h // r, w // r)


def _unshuffle_lower(ctx, xs, attrs, in_types, out_type):
    """SpaceToDepth puts a block's offset before the channel (b * C + c); torch puts it after
    (c * r² + b): one Gather of the channels reorders them."""
    r, c = attrs["downscale_factor"], in_types[0].shape[1]
    y = ctx.emit("SpaceToDepth", xs, blocksize=r)
    order = np.arange(r * r * c).reshape(r * r, c).T.reshape(-1)
    return ctx.emit("Gather", [y, ctx.const(order.astype(np.int64), hint="channel_order")], axis=1)


def _back(g, x, name: str, **attrs):
    """g through the inverse rearrangement, declared as x's shape where symbolic dims differ in name."""
    out = g.f(name, **attrs)
    return out if out.type.shape == x.type.shape else out.f("reshape_like", x)


_SHUFFLE_CASES = [((2, 8, 3, 4), 2), ((1, 9, 2, 2), 3), ((1, 3, 2, 3), 1), ((2, 8, 2, 3), 2)]


PIXEL_SHUFFLE = register(
    Op(
        name="pixel_shuffle",
        inputs=("x",),
        attrs={"upscale_factor": REQUIRED},
        infer=_shuffle_infer,
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
            "DepthToSpace", xs, blocksize=attrs["upscale_factor"], mode="CRD"
        ),
        reference=_shuffle_ref,
        samples=lambda rng: [
            Sample((randn(rng, *s, dtype=dt),), {"upscale_factor": r})
            for (s, r), dt in zip(
                _SHUFFLE_CASES, (np.float32, np.float32, np.float32, np.float64), strict=True
            )
        ],
        style=Style("shape", "pixel shuffle"),
        doc="[N, C*r², H, W] -> [N, C, H*r, W*r]: each pixel's r² channels become an r x r block, as torch",
        grad=lambda c, g: [_back(g, c.x[0], "pixel_unshuffle", downscale_factor=c.attrs["upscale_factor"])],
        attr_kinds={"upscale_factor": "int"},
        attr_limits={"upscale_factor": ">= 1"},
    )
)

PIXEL_UNSHUFFLE = register(
    Op(
        name="pixel_unshuffle",
        inputs=("x",),
        attrs={"downscale_factor": REQUIRED},
        infer=_unshuffle_infer,
        lower=_unshuffle_lower,
        reference=_unshuffle_ref,
        samples=lambda rng: [
            Sample((randn(rng, *s, dtype=dt),), {"downscale_factor": r})
            for s, r, dt in [
                ((2, 2, 6, 4), 2, np.float32),
                ((1, 1, 6, 3), 3, np.float32),
                ((1, 3, 2, 2), 1, np.float32),
                ((2, 3, 4, 6), 2, np.float64),
            ]
        ],
        style=Style("shape", "pixel unshuffle"),
        doc="[N, C, H*r, W*r] -> [N, C*r², H, W]: each r x r block becomes r² channels, as torch",
        grad=lambda c, g: [_back(g, c.x[0], "pixel_shuffle", upscale_factor=c.attrs["downscale_factor"])],
        attr_kinds={"downscale_factor": "int"},
        attr_limits={"downscale_factor": ">= 1"},
    )
)
