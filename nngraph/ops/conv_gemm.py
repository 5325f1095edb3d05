"""A convolution's weight gradient as one matrix product over the input's patches (made by the
conv_as_gemm pass).

dW^T[C*K, O] = P[C*K, S*N] @ G^T[S*N, O] (K = kernel taps, S = output positions), with the sum
over the batch inside the GEMM. The patches P[C*K, *out, N] are one Gather of whole batch rows (N values
per copy) from x laid out as [C, positions, N]: on onnxruntime's CPU provider 3x faster than
extracting them with a Conv over one-hot kernels (the unoptimized rule's way), and per-element
gathers are 10x slower. The forward convolution stays a Conv: onnxruntime's own is faster than a
GEMM over these patches. These ops appear only after autodiff, so they take no gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nngraph.core.types import TensorType
from nngraph.errors import ShapeError
from nngraph.ops.common import (
    need_float,
    pad_spatial,
    randn,
    same_dtype,
    window_attrs,
    window_out,
    window_views,
)
from nngraph.ops.registry import NO_GRADIENT, REQUIRED, Op, Sample, Style, register

_WINDOW = {"kernel": REQUIRED, "stride": None, "pads": None, "dilation": None}


def _static_spatial(t: TensorType, what: str) -> None:
    if not all(isinstance(d, int) for d in t.shape[2:]) or not isinstance(t.shape[1], int):
        raise ShapeError(f"'{what}' needs static channel and spatial dims, got {t}")


def _patches_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    (x,) = ts
    kernel = tuple(attrs["kernel"])
    if x.rank != len(kernel) + 2 or len(kernel) not in (1, 2):
        raise ShapeError(f"'conv_patches' takes 1 or 2 spatial dims matching kernel {kernel}, got {x}")
    need_float(x, "conv_patches")
    _static_spatial(x, "conv_patches")
    stride, pads, dilation = window_attrs(attrs, len(kernel), "conv_patches")
    out = window_out(x, kernel, stride, pads, dilation, "conv_patches")
    return TensorType(x.dtype, (x.shape[1] * math.prod(kernel), *out, x.shape[0]))


def tap_positions(
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    pads: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """[K, S]: for each kernel tap and output position, the flat index into the input's positions,
    or prod(spatial) (one zero position past the end) where the window lies in the padding."""
    n = len(kernel)
    padded = [spatial[d] + pads[d] + pads[n + d] for d in range(n)]
    out = [(padded[d] - dilation[d] * (kernel[d] - 1) - 1) // stride[d] + 1 for d in range(n)]
    flat = np.full(padded, math.prod(spatial), dtype=np.int64)
    flat[tuple(slice(pads[d], pads[d] + spatial[d]) for d in range(n))] = np.arange(
        math.prod(spatial)
    ).reshape(spatial)
    taps = [
        flat[
            tuple(
                slice(k[d] * dilation[d], k[d] * dilation[d] + (out[d] - 1) * stride[d] + 1, stride[d])
                for d in range(n)
            )
        ]
        for k in np.ndindex(*kernel)
    ]
    return np.stack([t.reshape(-1) for t in taps])


def _patches_lower(ctx, xs, attrs, in_types, out_type):
    """x as [C, positions, N] (plus one zero position when padded); one Gather along the positions
    with tap_positions [K, S] gives [C, K, S, N], which is P's memory layout already. Padding one
    position on the flat axis copies whole blocks: about twice as fast as padding the spatial dims."""
    (x,) = xs
    kernel = tuple(attrs["kernel"])
    n = len(kernel)
    stride, pads, dilation = window_attrs(attrs, n, "conv_patches")
    c, spatial = in_types[0].shape[1], in_types[0].shape[2:]
    xt = ctx.emit("Transpose", [x], perm=[1, *range(2, n + 2), 0])
    flat = ctx.emit("Reshape", [xt, ctx.ints([c, math.prod(spatial), -1])])
    if any(pads):
        flat = ctx.emit("Pad", [flat, ctx.ints([0, 0, 0, 0, 1, 0])])
    idx = ctx.const(tap_positions(spatial, kernel, stride, pads, dilation), hint="tap_positions")
    p = ctx.emit("Gather", [flat, idx], axis=1)
    return ctx.emit("Reshape", [p, ctx.ints([out_type.shape[0], *out_type.shape[1:-1], -1])])


def _patches_ref(xs, attrs):
    x = xs[0].astype(np.float64)
    kernel = tuple(attrs["kernel"])
    stride, pads, dilation = window_attrs(attrs, len(kernel), "conv_patches")
    taps = [v for _, v in window_views(pad_spatial(x, pads), kernel, stride, dilation)]  # each [N, C, *out]
    p = np.stack(taps, axis=2)  # [N, C, K, *out]
    p = np.moveaxis(p, 0, -1)  # [C, K, *out, N]
    return p.reshape(-1, *p.shape[2:]).astype(xs[0].dtype)


#: (x shape, kernel, attrs)
_CASES = [
    ((2, 3, 6, 6), (3, 3), {"pads": (1, 1, 1, 1)}),
    ((1, 2, 7, 5), (3, 3), {"stride": (2, 2), "pads": (1, 1, 1, 1)}),
    ((1, 4, 7, 8), (3, 2), {"dilation": (2, 2), "pads": (1, 0, 2, 1)}),
    ((2, 3, 10), (3,), {"stride": (2,), "pads": (1, 2)}),
    ((3, 1, 4, 4), (1, 1), {}),
]


def _conv_attrs(kernel, attrs):
    return {"kernel": kernel, **attrs}


def _patches_samples(rng):
    return [Sample((randn(rng, *x),), _conv_attrs(k, a)) for x, k, a in _CASES]


CONV_PATCHES = register(
    Op(
        name="conv_patches",
        inputs=("x",),
        attrs=dict(_WINDOW),
        infer=_patches_infer,
        lower=_patches_lower,
        reference=_patches_ref,
        samples=_patches_samples,
        style=Style("conv", "patches"),
        doc="x's convolution windows as P[C*K, *out, N]: P[(c, k), o, n] = x_padded[n, c, o*stride + k*dilation]",
        grad=NO_GRADIENT,
        internal=True,
    )
)


def _gw_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    p, g = ts
    same_dtype(ts, "conv_gemm_grad_weight")
    kernel = tuple(attrs["kernel"])
    if g.rank != p.rank or g.shape[0] != p.shape[-1] or g.shape[2:] != p.shape[1:-1]:
        raise ShapeError(f"'conv_gemm_grad_weight': g {g} is not a convolution output over patches {p}")
    k = math.prod(kernel)
    if not isinstance(p.shape[0], int) or p.shape[0] % k:
        raise ShapeError(f"'conv_gemm_grad_weight': patches {p} do not hold whole kernels {kernel}")
    return TensorType(p.dtype, (g.shape[1], p.shape[0] // k, *kernel))


def _gw_lower(ctx, xs, attrs, in_types, out_type):
    """dW^T[C*K, O] = P[C*K, S*N] @ G^T[S*N, O]: one GEMM with the sum over the batch inside it.

    The patches come first: onnxruntime's GEMM repacks its second operand, so that one should be the
    small gradient, and streams the first (about 1.1x on the digits CNN's whole step against
    G @ P^T). dW^T goes back to [O, C, K] through [C, K, O], a 3-D Transpose, which onnxruntime's
    GemmTransposeFusion leaves alone (a 2-D one it folds into the GEMM, undoing the order)."""
    p, g = xs
    ck, o = in_types[0].shape[0], in_types[1].shape[1]
    rank = in_types[1].rank
    c = out_type.shape[1]
    gt = ctx.emit("Transpose", [g], perm=[*range(2, rank), 0, 1])  # [*out, N, O]: rows as P's columns
    g2 = ctx.emit("Reshape", [gt, ctx.ints([-1, o])])
    p2 = ctx.emit("Reshape", [p, ctx.ints([ck, -1])])
    dwt = ctx.emit("Reshape", [ctx.emit("MatMul", [p2, g2]), ctx.ints([c, ck // c, o])])
    dw = ctx.emit("Transpose", [dwt], perm=[2, 0, 1])
    return ctx.emit("Reshape", [dw, ctx.ints(list(out_type.shape))])


def _gw_ref(xs, attrs):
    p, g = xs[0].astype(np.float64), xs[1].astype(np.float64)
    rest = list(range(1, p.ndim))
    dw = np.tensordot(np.moveaxis(np.moveaxis(g, 1, 0), 1, -1), p, axes=(rest, rest))  # [O, C*K]
    return dw.reshape(g.shape[1], -1, *attrs["kernel"]).astype(xs[0].dtype)


def _gw_samples(rng):
    out = []
    for x, k, a in _CASES:
        p = _patches_infer([TensorType("f32", x)], _conv_attrs(k, a))
        g = (p.shape[-1], 3, *p.shape[1:-1])
        out.append(Sample((randn(rng, *p.shape), randn(rng, *g)), {"kernel": k}))
    return out


CONV_GEMM_GRAD_WEIGHT = register(
    Op(
        name="conv_gemm_grad_weight",
        inputs=("p", "g"),
        attrs={"kernel": REQUIRED},
        infer=_gw_infer,
        lower=_gw_lower,
        reference=_gw_ref,
        samples=_gw_samples,
        style=Style("conv", "conv grad w (gemm)"),
        doc="conv's weight gradient from patches: dw[o, c, k] = sum over n, out of g[n, o, out] P[(c, k), out, n]",
        grad=NO_GRADIENT,
        internal=True,
    )
)
