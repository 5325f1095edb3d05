"""Helpers shared by the operator families: broadcasting, axis checks, sample data."""

from __future__ import annotations

import numpy as np

from nngraph.core.types import FLOATS, Dim, TensorType, dim_affine
from nngraph.errors import ShapeError


def broadcast_shapes(a: TensorType, b: TensorType, what: str = "+") -> tuple:
    """NumPy broadcasting over dims that may be symbolic; names both sides on mismatch."""
    ra, rb = list(a.shape), list(b.shape)
    n = max(len(ra), len(rb))
    ra = [1] * (n - len(ra)) + ra
    rb = [1] * (n - len(rb)) + rb
    out = []
    for i, (x, y) in enumerate(zip(ra, rb, strict=True)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ShapeError(
                f"shape mismatch in '{what}': left is {a}, right is {b} (dim {i - n + max(a.rank, b.rank)}: {x} vs {y})",
                expected="shapes that are equal or broadcastable (each dim equal, or 1)",
            )
    return tuple(out)


def same_dtype(types: list[TensorType], what: str) -> str:
    dts = {t.dtype for t in types}
    if len(dts) > 1:
        raise ShapeError(
            f"dtype mismatch in '{what}': " + ", ".join(str(t) for t in types),
            expected="operands of one dtype",
        )
    return types[0].dtype


def need_float(t: TensorType, what: str) -> None:
    if t.dtype not in FLOATS:
        raise ShapeError(f"'{what}' needs a floating-point tensor, got {t}", expected="f16, f32 or f64")


def need_rank(t: TensorType, ranks: tuple[int, ...], what: str, layout: str = "") -> None:
    if t.rank not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ShapeError(
            f"'{what}' expects a {want}-D tensor{' ' + layout if layout else ''}, got {t.rank}-D {t}",
            expected=f"a {want}-D input{' ' + layout if layout else ''}",
        )


def norm_axis(axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(
            f"axis {axis} is out of range for '{what}' on a {rank}-D tensor",
            expected=f"an axis in [{-rank}, {rank - 1}]",
        )
    return axis % rank


def axis_of(t: TensorType, axis: int, what: str) -> int:
    """norm_axis for an axis attribute of `what` on t, naming t in the error."""
    if not -t.rank <= axis < t.rank:
        raise ShapeError(
            f"'{what}' axis {axis} is out of range for {t}", expected=f"an axis in [{-t.rank}, {t.rank - 1}]"
        )
    return axis % t.rank


def count_at_1(dims) -> int:
    """The product of dims with every symbolic dim (batch, seq...) taken as 1: a FLOP count at batch 1."""
    n = 1
    for d in dims:
        n *= d if isinstance(d, int) else 1
    return n


def randn(rng: np.random.Generator, *shape: int, dtype=np.float32) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# ---- symbolic dim arithmetic -------------------------------------------------


def paren(d) -> str:
    s = str(d)
    return s if s.isidentifier() or s.isdigit() else f"({s})"


def dims_prod(dims) -> Dim:
    """The product of dims: an int, or the symbols joined by '*' with the int factor last."""
    n, syms = 1, []
    for d in dims:
        if isinstance(d, int):
            n *= d
        else:
            syms.append(paren(d))
    if not syms or n == 0:
        return n
    return "*".join(syms + ([str(n)] if n != 1 else []))


def dims_sum(dims) -> Dim:
    """The sum of dims: an int, or the symbols joined by '+' with the int part last."""
    n = sum(d for d in dims if isinstance(d, int))
    syms = [paren(d) for d in dims if not isinstance(d, int)]
    return "+".join(syms + ([str(n)] if n else [])) if syms else n


def dim_add(d: Dim, c: int) -> Dim:
    """d + c; a symbolic d gives 'd+c' (or d itself when c is 0)."""
    return dim_affine(d, lambda v: v + c, "{d}" + (f"{c:+d}" if c else ""))


# ---- conv / pool windows -----------------------------------------------------

_LAYOUTS = {
    1: "[batch, channels, length]",
    2: "[batch, channels, height, width]",
    3: "[batch, channels, depth, height, width]",
}


def layout(n: int) -> str:
    """The NC... layout of an input with n spatial dims, for messages."""
    return _LAYOUTS.get(n, f"[batch, channels, {n} spatial dims]")


def need_spatial(x: TensorType, n: int, what: str, why: str = "") -> None:
    """x must be [N, C, *spatial] with n spatial dims."""
    if x.rank != n + 2:
        raise ShapeError(
            f"'{what}' expects a {n + 2}-D input {layout(n)}, got {x.rank}-D {x}{why}",
            expected=f"a {n + 2}-D input {layout(n)}",
        )


def spatial_ints(value, n: int, default: int, name: str, what: str) -> tuple[int, ...]:
    """A per-spatial-dim attribute: None -> default everywhere, an int -> repeated, else n ints."""
    if value is None:
        value = default
    t = (value,) * n if isinstance(value, int) else tuple(value)
    if len(t) != n or not all(isinstance(v, int) for v in t):
        raise ShapeError(
            f"'{what}' {name} needs {n} int{'s' * (n != 1)} (one per spatial dim), got {value!r}"
        )
    return t


def window_attrs(attrs: dict, n: int, what: str, stride_default=1):
    """(stride, pads, dilation) with defaults filled in and checked; pads in ONNX order (begins, ends).

    A stride of None means stride_default: 1 for conv, the kernel for pooling.
    """
    stride = attrs.get("stride")
    stride = spatial_ints(stride_default if stride is None else stride, n, 1, "stride", what)
    pads = spatial_ints(attrs.get("pads"), 2 * n, 0, "pads (all begins, then all ends)", what)
    dilation = spatial_ints(attrs.get("dilation"), n, 1, "dilation", what)
    for name, vals, lo in (("stride", stride, 1), ("pads", pads, 0), ("dilation", dilation, 1)):
        if any(v < lo for v in vals):
            raise ShapeError(f"'{what}' {name} must be >= {lo}, got {vals}")
    return stride, pads, dilation


def window_out(x: TensorType, kernel, stride, pads, dilation, what: str) -> tuple[Dim, ...]:
    """Output spatial dims: floor((in + pad_b + pad_e - dilation*(k-1) - 1) / stride) + 1."""
    n = len(kernel)
    out = []
    for i, (d, k, s, dl) in enumerate(zip(x.shape[2:], kernel, stride, dilation, strict=True)):
        pb, pe = pads[i], pads[i + n]
        c = pb + pe - dl * (k - 1) - 1
        if isinstance(d, int) and d + c < 0:
            eff = f" (dilated to {dl * (k - 1) + 1})" if dl != 1 else ""
            raise ShapeError(
                f"'{what}': kernel {k}{eff} is larger than the padded input {d + pb + pe} "
                f"in spatial dim {i} of {x} (pads {pb}+{pe})",
                expected="a kernel no larger than the padded input",
                hint="add padding or use a smaller kernel",
            )
        if s == 1:
            out.append(dim_add(d, c + 1))
        else:
            out.append(
                dim_affine(
                    d, lambda v, c=c, s=s: (v + c) // s + 1, "({d}" + (f"{c:+d}" if c else "") + f")//{s}+1"
                )
            )
    return tuple(out)


def window_views(xp: np.ndarray, kernel, stride, dilation):
    """For each kernel offset k, the view v[n, c, *o] = xp[n, c, *(o*stride + k*dilation)] of a padded xp."""
    out_sp = [
        (d - dl * (k - 1) - 1) // s + 1
        for d, k, s, dl in zip(xp.shape[2:], kernel, stride, dilation, strict=True)
    ]
    for k in np.ndindex(*kernel):
        idx = tuple(
            slice(ki * dl, ki * dl + s * (o - 1) + 1, s)
            for ki, s, dl, o in zip(k, stride, dilation, out_sp, strict=True)
        )
        yield k, xp[(slice(None), slice(None), *idx)]


def pad_spatial(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    n = len(pads) // 2
    return np.pad(x, [(0, 0), (0, 0)] + list(zip(pads[:n], pads[n:], strict=True)), constant_values=value)


def group_taps(xp: np.ndarray, kernel, stride, dilation, groups: int, out_ch: int):
    """For each kernel offset and channel group: (offset, window view of xp, output-channel slice,
    input-channel slice), the loop every convolution reference runs."""
    cg, og = xp.shape[1] // groups, out_ch // groups
    for k, view in window_views(xp, kernel, stride, dilation):
        for g in range(groups):
            yield k, view, slice(g * og, (g + 1) * og), slice(g * cg, (g + 1) * cg)


def crop_spatial(xp: np.ndarray, pads) -> np.ndarray:
    """Undo pad_spatial."""
    n = len(pads) // 2
    return xp[
        (
            slice(None),
            slice(None),
            *(slice(b, xp.shape[2 + i] - e) for i, (b, e) in enumerate(zip(pads[:n], pads[n:], strict=True))),
        )
    ]


# ---- lowering helpers for backward window ops ----------------------------------


def run_time_dim(ctx, x: str, axis: int) -> str:
    """x.shape[axis] read at run time, as an int64 [1] (ONNX Shape, Gather)."""
    return ctx.emit("Gather", [ctx.emit("Shape", [x]), ctx.ints([axis])], axis=0)


def conv_transpose_to(ctx, g: str, w: str, x: str, x_type, kernel, stride, pads, dilation, group: int) -> str:
    """ConvTranspose(g, w) cut or zero-extended to x's spatial size: the input gradient of a window op.

    The forward windows cover the padded input except a remainder r < stride at its end; pads and
    output_padding make the result exactly x's size. Where that size is symbolic (and the stride
    above 1) the result is made large enough and sliced to x's run-time shape.
    """
    n = len(kernel)
    ends, extra, dynamic = [], [], []
    for i, (d, k, s, dl) in enumerate(zip(x_type.shape[2:], kernel, stride, dilation, strict=True)):
        pe = pads[n + i]
        if isinstance(d, int) or s == 1:
            r = (d + pads[i] + pe - dl * (k - 1) - 1) % s if s > 1 else 0
            ends.append(max(0, pe - r))
            extra.append(max(0, r - pe))
        else:
            ends.append(0)
            extra.append(s - 1)
            dynamic.append(2 + i)
    y = ctx.emit(
        "ConvTranspose",
        [g, w],
        kernel_shape=list(kernel),
        strides=list(stride),
        dilations=list(dilation),
        group=group,
        pads=list(pads[:n]) + ends,
        output_padding=extra,
    )
    if dynamic:
        size = ctx.emit("Gather", [ctx.emit("Shape", [x]), ctx.ints(dynamic)], axis=0)
        y = ctx.emit("Slice", [y, ctx.ints([0] * len(dynamic)), size, ctx.ints(dynamic)])
    return y
