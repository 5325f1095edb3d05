"""Slicing along one axis, and its gradient: zeros where the slice did not look."""

from __future__ import annotations

import numpy as np
from onnx import helper

from nngraph.core.types import TensorType, onnx_elem_type
from nngraph.errors import ShapeError
from nngraph.ops.common import axis_of, dim_add, paren, randn, run_time_dim
from nngraph.ops.registry import NO_GRADIENT, REQUIRED, Sample
from nngraph.ops.shape import samples_of, shape_op

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)


# ---- slice ---------------------------------------------------------------------


def _slice_len(d, start, end, step):
    """len(range(d)[start:end:step]); for a symbolic d, assumes d is large enough that no bound clamps."""
    if isinstance(d, int):
        return len(range(d)[slice(start, end, step)])
    # each bound as (coefficient of d, constant): negative ints count from the end
    at = lambda v, default: default if v is None else ((1, v) if v < 0 else (0, v))
    lo = at(start, (0, 0) if step > 0 else (1, -1))
    hi = at(end, (1, 0) if step > 0 else (0, -1))
    if step < 0:
        lo, hi = hi, lo
    a, c, s = hi[0] - lo[0], hi[1] - lo[1], abs(step)
    if a == 0:
        return max(0, -(-c // s))
    if a == 1:
        return dim_add(d, c) if s == 1 else f"({paren(d)}{c + s - 1:+d})//{s}"
    return f"max(0,{c}-{paren(d)})" if s == 1 else f"max(0,({c + s - 1}-{paren(d)})//{s})"


def _slice_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x = ts[0]
    axis = axis_of(x, attrs["axis"], "slice")
    start, end, step = attrs["start"], attrs["end"], attrs["step"]
    if step == 0:
        raise ShapeError(f"'slice' step must not be 0 (slicing {x})")
    shape = list(x.shape)
    shape[axis] = _slice_len(shape[axis], start, end, step)
    return x.with_shape(shape)


def _slice_lower(ctx, xs, attrs, in_types, out_type):
    start, end, step = attrs["start"], attrs["end"], attrs["step"]
    if start is None:
        start = 0 if step > 0 else INT64_MAX
    if end is None:
        end = INT64_MAX if step > 0 else INT64_MIN
    consts = [
        ctx.ints([v], hint)
        for v, hint in ((start, "starts"), (end, "ends"), (attrs["axis"], "axes"), (step, "steps"))
    ]
    return ctx.emit("Slice", [xs[0], *consts])


def _slice_ref(xs, attrs):
    index = [slice(None)] * xs[0].ndim
    index[attrs["axis"]] = slice(attrs["start"], attrs["end"], attrs["step"])
    return xs[0][tuple(index)]


_SLICE_CASES = [
    ((5, 4), {"axis": 0, "start": 1, "end": 4}),
    ((2, 7), {"axis": -1, "start": -3}),
    ((3, 8, 2), {"axis": 1, "start": 1, "end": 100, "step": 2}),
    ((6,), {"axis": 0, "start": -1, "end": None, "step": -1}),
    ((6, 2), {"axis": 0, "start": 4, "end": -10, "step": -2}),
    ((4, 3), {"axis": 1, "start": 5, "end": 9}),
    ((7,), {"axis": 0, "start": None, "step": -3}),
]

SLICE = shape_op(
    "slice",
    ("x",),
    {"axis": REQUIRED, "start": None, "end": None, "step": 1},
    _slice_infer,
    _slice_lower,
    _slice_ref,
    lambda rng: samples_of(rng, [([shape], attrs) for shape, attrs in _SLICE_CASES]),
    "x[start:end:step] along one axis, with Python's clamping of negative and out-of-range bounds",
    lambda c, g: [g.f("slice_grad", c.x[0], **c.attrs)],
    attr_kinds={"axis": "int", "start": "int", "end": "int"},
)


def _slice_grad_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    g, x = ts
    if g.rank != x.rank:
        raise ShapeError(f"'slice_grad' needs g of x's rank, got {g} for {x}")
    axis_of(x, attrs["axis"], "slice_grad")
    return TensorType(g.dtype, x.shape)


def _slice_grad_lower(ctx, xs, attrs, in_types, out_type):
    """g padded with zeros where the slice did not look (ScatterND into zeros for steps other than +-1).

    Along a symbolic dim the pads, or the rows for other steps, come from the run-time shape.
    """
    g, x = xs
    rank = out_type.rank
    axis, d = attrs["axis"] % rank, out_type.shape[attrs["axis"] % rank]
    start, end, step = attrs["start"], attrs["end"], attrs["step"]
    if isinstance(d, int):
        pos = range(d)[slice(start, end, step)]
        if len(pos) == 0:
            return ctx.emit("ConstantOfShape", [ctx.emit("Shape", [x])], value=_zero(out_type.dtype))
        if abs(step) > 1 and len(pos) > 1:
            return _scatter_rows(ctx, g, x, axis, rank, list(pos), out_type.dtype)
        if step < 0:
            g = _slice_lower(ctx, [g], {"axis": axis, "start": None, "end": None, "step": -1}, [], None)
        lo, hi = min(pos), d - 1 - max(pos)
        return _pad_axis(ctx, g, x, axis, rank, (lo, None), (hi, None))
    if step != 1:
        return _scatter_rows(ctx, g, x, axis, rank, _positions(ctx, x, axis, attrs), out_type.dtype)
    lo = (start or 0, None) if start is None or start >= 0 else (start, 1)
    hi = (0, None) if end is None else (-end, None) if end < 0 else (-end, 1)
    return _pad_axis(ctx, g, x, axis, rank, lo, hi)


def _zero(dtype: str):
    return helper.make_tensor("value", onnx_elem_type(dtype), [1], [0])


def _pad_axis(ctx, g, x, axis, rank, lo, hi):
    """Pad g with zeros along axis, lo before and hi after, each (c, k) meaning c + k * x.shape[axis]."""
    if not lo[1] and not hi[1]:
        pads = [0] * (2 * rank)
        pads[axis], pads[rank + axis] = lo[0], hi[0]
        return ctx.emit("Pad", [g, ctx.ints(pads)])
    amount = lambda c, k: ctx.emit("Add", [run_time_dim(ctx, x, axis), ctx.ints([c])]) if k else ctx.ints([c])
    zeros = lambda n: [ctx.ints([0] * n)] if n else []
    pieces = [*zeros(axis), amount(*lo), *zeros(rank - 1), amount(*hi), *zeros(rank - 1 - axis)]
    return ctx.emit("Pad", [g, ctx.emit("Concat", pieces, axis=0)])


def _positions(ctx, x, axis, attrs):
    """The indices the slice took along axis at run time: the same Slice over Range(0, len), as [k, 1]."""
    d = ctx.emit("Squeeze", [run_time_dim(ctx, x, axis)])
    rows = ctx.emit("Range", [ctx.const(np.array(0, np.int64)), d, ctx.const(np.array(1, np.int64))])
    picked = _slice_lower(ctx, [rows], {**attrs, "axis": 0}, [], None)
    return ctx.emit("Unsqueeze", [picked, ctx.ints([1])])


def _scatter_rows(ctx, g, x, axis, rank, pos, dtype):
    """ScatterND of g's slabs along axis into zeros, at positions (a constant list or an int64 [k, 1]
    tensor), with axis moved to the front."""
    perm = [axis, *(i for i in range(rank) if i != axis)]
    front = lambda t: t if axis == 0 else ctx.emit("Transpose", [t], perm=perm)
    shape = ctx.emit("Gather", [ctx.emit("Shape", [x]), ctx.ints(perm)], axis=0)
    zeros = ctx.emit("ConstantOfShape", [shape], value=_zero(dtype))
    idx = (
        pos
        if isinstance(pos, str)
        else ctx.const(np.asarray(pos, dtype=np.int64).reshape(-1, 1), hint="rows")
    )
    out = ctx.emit("ScatterND", [zeros, idx, front(g)])
    return out if axis == 0 else ctx.emit("Transpose", [out], perm=[int(i) for i in np.argsort(perm)])


def _slice_grad_ref(xs, attrs):
    g, x = xs
    out = np.zeros(x.shape, g.dtype)
    index = [slice(None)] * x.ndim
    index[attrs["axis"]] = slice(attrs["start"], attrs["end"], attrs["step"])
    out[tuple(index)] = g
    return out


def _slice_grad_samples(rng):
    out = []
    for shape, attrs in _SLICE_CASES:
        x = randn(rng, *shape)
        y = _slice_ref([x], {"start": None, "end": None, "step": 1, **attrs})
        out.append(Sample((randn(rng, *y.shape), x), attrs))
    return out


SLICE_GRAD = shape_op(
    "slice_grad",
    ("g", "x"),
    {"axis": REQUIRED, "start": None, "end": None, "step": 1},
    _slice_grad_infer,
    _slice_grad_lower,
    _slice_grad_ref,
    _slice_grad_samples,
    "the gradient of slice: g placed where x[start:end:step] was taken along axis, zeros elsewhere",
    NO_GRADIENT,
    internal=True,
)
