"""Linear algebra: matrix products and table lookups."""

from __future__ import annotations

import numpy as np

from nngraph.errors import ShapeError
from nngraph.graph.types import INTS, TensorType
from nngraph.ops.common import broadcast_shapes, need_float, need_rank, randn, same_dtype
from nngraph.ops.registry import Op, Sample, Style, register


def _matmul_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    a, b = ts
    dt = same_dtype(ts, "matmul")
    for t in ts:
        if t.rank == 0:
            raise ShapeError(
                f"'matmul' needs operands of rank >= 1, got {a} @ {b}", expected="vectors or matrices"
            )
    ka, kb = a.shape[-1], b.shape[-2 if b.rank > 1 else 0]
    if ka != kb:
        raise ShapeError(
            f"'matmul' inner dims differ: left is {a}, right is {b} ({ka} vs {kb})",
            expected="the last dim of the left operand equal to the second-to-last of the right",
        )
    try:
        batch = broadcast_shapes(a.with_shape(a.shape[:-2]), b.with_shape(b.shape[:-2]), "matmul")
    except ShapeError as e:
        raise ShapeError(
            f"'matmul' batch dims do not broadcast: left is {a}, right is {b}", expected=e.expected
        ) from None
    rows = a.shape[-2:-1]  # dropped when a is a vector
    cols = b.shape[-1:] if b.rank > 1 else ()
    return TensorType(dt, batch + rows + cols)


def _matmul_samples(rng: np.random.Generator) -> list[Sample]:
    pairs = [
        ((2, 3), (3, 4)),
        ((2, 3, 4), (4, 5)),
        ((2, 1, 3, 4), (3, 4, 2)),
        ((3,), (3, 4)),
        ((2, 3, 4), (4,)),
    ]
    out = [Sample((randn(rng, *p), randn(rng, *q))) for p, q in pairs]
    return out + [Sample((randn(rng, 2, 5).astype(np.float64), randn(rng, 5, 3).astype(np.float64)))]


MATMUL = register(
    Op(
        name="matmul",
        inputs=("a", "b"),
        attrs={},
        infer=_matmul_infer,
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit("MatMul", xs),
        reference=lambda xs, attrs: np.matmul(xs[0].astype(np.float64), xs[1]).astype(xs[0].dtype),
        samples=_matmul_samples,
        style=Style("linear", "@"),
        doc="a @ b with NumPy semantics: batch dims broadcast, vectors promoted",
    )
)


def _embedding_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    table, idx = ts
    need_rank(table, (2,), "embedding", "table [num, dim]")
    need_float(table, "embedding")
    if idx.dtype not in INTS:
        raise ShapeError(
            f"'embedding' needs integer indices, got {idx} (table {table})",
            expected="i32 or i64 indices",
            hint="cast the indices to i64",
        )
    return TensorType(table.dtype, idx.shape + table.shape[1:])


def _embedding_samples(rng: np.random.Generator) -> list[Sample]:
    idx = lambda shape, n, dt: rng.integers(0, n, size=shape).astype(dt)
    return [
        Sample((randn(rng, 10, 4), idx((5,), 10, np.int64))),
        Sample((randn(rng, 7, 3), idx((2, 3), 7, np.int32))),
        Sample((randn(rng, 6, 5), idx((), 6, np.int64))),
        Sample((randn(rng, 9, 2), idx((2, 2, 3), 9, np.int64))),
    ]


EMBEDDING = register(
    Op(
        name="embedding",
        inputs=("table", "indices"),
        attrs={},
        infer=_embedding_infer,
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit("Gather", xs, axis=0),
        reference=lambda xs, attrs: xs[0][xs[1]],
        samples=_embedding_samples,
        style=Style("embed", "embed"),
        doc="rows of table[num, dim] picked by integer indices of any shape",
    )
)
