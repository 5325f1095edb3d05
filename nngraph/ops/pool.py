"""Pooling over 1, 2 or more spatial dims (NC... layout)."""

from __future__ import annotations

import numpy as np

from nngraph.errors import ShapeError
from nngraph.graph.types import TensorType
from nngraph.ops.common import (
    need_float,
    need_spatial,
    pad_spatial,
    randn,
    spatial_ints,
    window_attrs,
    window_out,
    window_views,
)
from nngraph.ops.registry import REQUIRED, Op, Sample, Style, register


def _windows(attrs: dict, what: str):
    """(kernel, stride, pads) from the attributes; stride None means the kernel."""
    kernel = attrs["kernel"]
    n = 1 if isinstance(kernel, int) else len(kernel)
    kernel = spatial_ints(kernel, n, 1, "kernel", what)
    stride, pads, _ = window_attrs(attrs, n, what, stride_default=kernel)
    return kernel, stride, pads


def _pool(name: str, onnx_op: str, reduce, doc: str, extra_attrs=None, extra_samples=()) -> Op:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        x = ts[0]
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
        cases = [
            ((2, 3, 6, 6), {"kernel": (2, 2)}),
            ((1, 2, 7, 5), {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1)}),
            ((1, 1, 5, 7), {"kernel": (2, 3), "stride": (1, 2), "pads": (0, 1, 1, 0)}),
            ((2, 3, 9), {"kernel": (3,), "stride": (2,), "pads": (1, 0)}),
            ((1, 2, 8), {"kernel": 2}),
            *extra_samples,
        ]
        return [Sample((randn(rng, *shape),), attrs) for shape, attrs in cases]

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
        )
    )


def _max(x, pads, views, attrs):
    return np.maximum.reduce(views(pad_spatial(x, pads, -np.inf)))


def _avg(x, pads, views, attrs):
    taps = views(pad_spatial(x, pads))
    if attrs["count_include_pad"]:
        return sum(taps) / len(taps)
    return sum(taps) / sum(views(pad_spatial(np.ones_like(x[:1, :1]), pads)))


MAXPOOL = _pool("maxpool", "MaxPool", _max, "the maximum over each kernel window (padding never wins)")
AVGPOOL = _pool(
    "avgpool",
    "AveragePool",
    _avg,
    "the mean over each kernel window; count_include_pad=1 divides by the full kernel size, as PyTorch",
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
    )
)
