"""Input checks and argument expansion that several layer families share, so each says a
mistake the same way (a 2-D input to conv2d, an integer tensor to dense, a symbolic width)."""

from __future__ import annotations

from nngraph.core.types import FLOATS
from nngraph.layers.registry import LayerCtx
from nngraph.ops.common import layout


def int_tuple(
    v: int | list[int], n: int, what: str, ctx: LayerCtx, layer: str = "", minimum: int | None = None
) -> tuple[int, ...]:
    """n ints from one int or a list of n; each at least `minimum` when given."""
    if isinstance(v, int):
        v = (v,) * n
    if len(v) != n:
        ctx.fail(
            f"'{what}' needs {n} values for a {n}-D layer, got {len(v)}",
            expected=f"an integer or a list of {n} integers",
        )
    if minimum is not None and any(i < minimum for i in v):
        shown = v[0] if len(set(v)) == 1 else list(v)
        ctx.fail(f"{layer}: {what} must be {minimum} or more, got {shown}", expected=f"{what} >= {minimum}")
    return tuple(v)


def need_float(ctx: LayerCtx, x: str, what: str) -> None:
    t = ctx.type(x)
    if t.dtype not in FLOATS:
        ctx.fail(
            f"{what} needs a float input, got {t}",
            expected="an f16, f32 or f64 tensor",
            hint="integer ids go through an embedding; other inputs can be declared f32",
        )


def static_dim(ctx: LayerCtx, x: str, axis: int, what: str, role: str) -> int:
    """The size of `axis`, which must be a number (a parameter's shape depends on it)."""
    t = ctx.type(x)
    d = t.shape[axis]
    if not isinstance(d, int):
        ctx.fail(
            f"{what} needs a fixed {role}, but {t} has '{d}' there",
            expected=f"an input whose {role} is a number",
        )
    return d


def spatial_rank(ctx: LayerCtx, x: str, what: str, nd: int | None) -> int:
    """The number of spatial dims of a [batch, channels, ...] input: nd, or 1, 2 or 3 when nd is None."""
    t = ctx.type(x)
    ranks = (nd + 2,) if nd else (3, 4, 5)
    if t.rank not in ranks:
        want = ", ".join(f"{r}-D {layout(r - 2)}" for r in ranks[:-1])
        want = (
            f"{want} or {ranks[-1]}-D {layout(ranks[-1] - 2)}"
            if want
            else f"{ranks[0]}-D {layout(ranks[0] - 2)}"
        )
        hint = (
            "a dense output is [batch, features]; use reshape([batch, C, H, W]) to give it channels and space"
            if t.rank == 2
            else None
        )
        ctx.fail(f"{what} expects a {want} input, got {t.rank}-D {t}", expected=f"a {want} tensor", hint=hint)
    return t.rank - 2


def resolve_pads(ctx: LayerCtx, padding, k, stride, dil, n: int, what: str) -> tuple[int, ...]:
    """ONNX pads (all begins, then all ends) from `padding`: same, valid, an int or a list."""
    if padding == "valid":
        return (0,) * (2 * n)
    if padding == "same":
        if any(s != 1 for s in stride):
            ctx.fail(
                f"{what}: padding=same needs stride 1 (as in PyTorch), got stride {list(stride)}",
                expected="stride=1, or an explicit integer padding",
            )
        total = [d * (kk - 1) for kk, d in zip(k, dil, strict=True)]
        return tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
    p = int_tuple(padding, n, "padding", ctx)
    if any(v < 0 for v in p):
        ctx.fail(f"{what}: padding must not be negative, got {list(p)}")
    return p + p


def seq_input(ctx: LayerCtx, x: str, what: str, static_seq: bool) -> tuple[int | str, int]:
    """Check x is a float [batch, seq, features]; returns (seq, features)."""
    t = ctx.type(x)
    if t.rank != 3 or t.dtype not in FLOATS:
        hint = None
        if t.rank == 2 and isinstance(t.shape[1], int):
            f = t.shape[1]
            steps = max((d for d in range(1, int(f**0.5) + 1) if f % d == 0), default=1)
            hint = (
                f"reshape it into steps first, e.g. reshape([{t.shape[0]}, {steps}, {f // steps}]) "
                f"for {steps} steps of {f // steps} features"
            )
        ctx.fail(
            f"{what} expects a float [batch, seq, features] input, got {t}",
            expected="a 3-D float tensor [batch, seq, features]",
            hint=hint,
        )
    seq = t.shape[1]
    if static_seq and not isinstance(seq, int):
        ctx.fail(
            f"{what} unrolls over time and needs a fixed sequence length, but {t} has '{seq}' there",
            expected="an input whose sequence length (dim 1) is a number, e.g. f32[batch, 8, 16]",
            hint="declare the input with a fixed length, or slice/reshape it to one",
        )
    return seq, static_dim(ctx, x, 2, what, "feature size (last dim)")
