"""Linear algebra: matrix products and table lookups."""

from __future__ import annotations

import numpy as np
from onnx import helper

from nngraph.core.types import INTS, TensorType, onnx_elem_type
from nngraph.errors import ShapeError
from nngraph.ops.common import broadcast_shapes, count_at_1, need_float, need_rank, randn, same_dtype
from nngraph.ops.registry import NO_GRADIENT, REQUIRED, Op, Sample, Style, register


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


def _matmul_grad(c, g):
    """da = g @ b^T, db = a^T @ g, summed over broadcast batch dims; vectors promoted as matmul does."""
    a, b = c.x
    ra, rb = a.type.rank, b.type.rank
    a2 = a.f("reshape", shape=(1, -1)) if ra == 1 else a
    b2 = b.f("reshape", shape=(-1, 1)) if rb == 1 else b
    if ra == 1 or rb == 1:  # put back the axes matmul dropped from the result
        nb = g.type.rank - (ra > 1) - (rb > 1)
        g = g.f("reshape", shape=(0,) * nb + ((1,) if ra == 1 else (0,)) + ((1,) if rb == 1 else (-1,)))
    t = lambda v: v.f("transpose", perm=(*range(v.type.rank - 2), v.type.rank - 1, v.type.rank - 2))
    da = g.f("matmul", t(b2))
    if b2.type.rank == 2 and a2.type.rank > 2:  # one product over all rows instead of a batched one
        r = a2.type.rank - 1
        db = t(a2.f("flatten", axis=r)).f("matmul", g.f("flatten", axis=r))
    else:
        db = t(a2).f("matmul", g)

    def back(d, x2, x):  # summed over broadcast dims, then a promoted vector made a vector again
        d = c.unbroadcast(d, x2)
        return d if x2 is x else d.f("reshape_like", x)

    return [back(da, a2, a), back(db, b2, b)]


def _matmul_flops(ts: list[TensorType], attrs: dict, out: TensorType) -> int:
    """Each output element is a dot product of length k, the left operand's last dim."""
    return 2 * count_at_1(out.shape) * count_at_1(ts[0].shape[-1:])


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
        grad=_matmul_grad,
        flops=_matmul_flops,
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
    _check_padding_idx(attrs.get("padding_idx"), table.shape[0], "embedding")
    return TensorType(table.dtype, idx.shape + table.shape[1:])


def _check_padding_idx(pad, rows, what: str) -> None:
    """padding_idx: None, or a row of the table (the layer has made a negative one count from the end)."""
    if pad is not None and (not isinstance(pad, int) or isinstance(pad, bool) or not 0 <= pad < rows):
        raise ShapeError(
            f"'{what}' padding_idx must be a row of the table, in [0, {rows}), got {pad!r}",
            expected=f"an integer in [0, {rows})",
        )


def _embedding_samples(rng: np.random.Generator) -> list[Sample]:
    """Without padding_idx: its gradient is torch's by design (none for the padding row), not the
    forward's derivative that the registry walk checks; embedding_grad's samples hold it."""
    idx = lambda shape, n, dt: rng.integers(0, n, size=shape).astype(dt)
    return [
        Sample((randn(rng, 10, 4), idx((5,), 10, np.int64))),
        Sample((randn(rng, 7, 3), idx((2, 3), 7, np.int32))),
        Sample((randn(rng, 6, 5), idx((), 6, np.int64))),
        Sample((randn(rng, 9, 2), idx((2, 2, 3), 9, np.int64))),
    ]


def _embedding_lower(ctx, xs, attrs, in_types, out_type):
    """Gather of the table's rows. ONNX Gather counts a negative index from the end, where PyTorch
    refuses it: a negative id becomes `rows`, out of range, so that onnxruntime stops on it as on
    an id past the end instead of silently reading the last rows."""
    table, idx = xs
    rows = in_types[0].shape[0]
    if isinstance(rows, int):
        dt = in_types[1].np_dtype
        neg = ctx.emit("Less", [idx, ctx.const(np.asarray(0, dt))])
        idx = ctx.emit("Where", [neg, ctx.const(np.asarray(rows, dt)), idx])
    return ctx.emit("Gather", [table, idx], axis=0)


EMBEDDING = register(
    Op(
        name="embedding",
        inputs=("table", "indices"),
        attrs={"padding_idx": None},
        infer=_embedding_infer,
        lower=_embedding_lower,
        reference=lambda xs, attrs: xs[0][xs[1]],
        samples=_embedding_samples,
        style=Style("embed", "embed"),
        doc="rows of table[num, dim] picked by integer indices of any shape; the row padding_idx "
        "(if given) takes no gradient, as torch.nn.Embedding's",
        grad=lambda c, g: [
            g.f("embedding_grad", c.x[1], num=c.x[0].type.shape[0], padding_idx=c.attrs.get("padding_idx")),
            None,
        ],
        attr_kinds={"padding_idx": "int"},
    )
)


def _embedding_grad_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    g, idx = ts
    num = attrs["num"]
    if idx.dtype not in INTS or g.shape[:-1] != idx.shape or not isinstance(num, int):
        raise ShapeError(
            f"'embedding_grad' needs g [*indices.shape, dim] and integer indices, got {g} and {idx} (num {num!r})"
        )
    _check_padding_idx(attrs.get("padding_idx"), num, "embedding_grad")
    return TensorType(g.dtype, (num, g.shape[-1]))


def _embedding_grad_lower(ctx, xs, attrs, in_types, out_type):
    """ScatterND with reduction add: repeated indices accumulate, O(indices x dim) work."""
    g, idx = xs
    if in_types[1].dtype != "i64":
        idx = ctx.emit("Cast", [idx], to=onnx_elem_type("i64"))
    dim = out_type.shape[1]
    if isinstance(dim, int):
        shape = ctx.ints([attrs["num"], dim])
    else:
        last = ctx.emit("Slice", [ctx.emit("Shape", [g]), ctx.ints([-1]), ctx.ints([2**62])])
        shape = ctx.emit("Concat", [ctx.ints([attrs["num"]]), last], axis=0)
    zero = helper.make_tensor("value", onnx_elem_type(out_type.dtype), [1], [0])
    zeros = ctx.emit("ConstantOfShape", [shape], value=zero)
    rows = ctx.emit("Unsqueeze", [idx, ctx.ints([-1])])
    out = ctx.emit("ScatterND", [zeros, rows, g], reduction="add")
    pad = attrs.get("padding_idx")
    if pad is None:
        return out
    keep = np.ones((attrs["num"], 1), out_type.np_dtype)
    keep[pad] = 0  # the padding row takes no gradient
    return ctx.emit("Mul", [out, ctx.const(keep)])


def _embedding_grad_ref(xs, attrs):
    g, idx = xs
    out = np.zeros((attrs["num"], g.shape[-1]), g.dtype)
    np.add.at(out, idx, g)
    if attrs.get("padding_idx") is not None:
        out[attrs["padding_idx"]] = 0
    return out


EMBEDDING_GRAD = register(
    Op(
        name="embedding_grad",
        inputs=("g", "indices"),
        attrs={"num": REQUIRED, "padding_idx": None},
        infer=_embedding_grad_infer,
        lower=_embedding_grad_lower,
        reference=_embedding_grad_ref,
        samples=lambda rng: [
            Sample((randn(rng, 6, 4), np.array([1, 3, 1, 0, 3, 1])), {"num": 5}),
            Sample((randn(rng, 2, 3, 3), rng.integers(0, 4, (2, 3)).astype(np.int32)), {"num": 4}),
            Sample((randn(rng, 5), np.array(2)), {"num": 3}),
            Sample((randn(rng, 3, 2).astype(np.float64), np.array([0, 0, 0])), {"num": 2}),
            Sample((randn(rng, 4, 3), np.array([1, 2, 1, 0])), {"num": 3, "padding_idx": 1}),
        ],
        style=Style("embed", "embed grad"),
        doc="the gradient of a table lookup: rows of g added into a [num, dim] zero table at indices",
        grad=NO_GRADIENT,
        internal=True,
        attr_kinds={"padding_idx": "int"},
    )
)


# ---- gemm: produced by the fuse_gemm pass, never written by users --------------------------


def _gemm_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    a, b = ts[0], ts[1]
    if a.rank != 2 or b.rank != 2:
        raise ShapeError(f"'gemm' needs 2-D operands, got {a} and {b}", expected="matrices")
    m, k = a.shape[::-1] if attrs["transA"] else a.shape
    k2, n = b.shape[::-1] if attrs["transB"] else b.shape
    if k != k2:
        raise ShapeError(f"'gemm' inner dims differ: {a} and {b}", expected="matching inner dims")
    out = TensorType(same_dtype(ts[:2], "gemm"), (m, n))
    if len(ts) == 3 and broadcast_shapes(out, ts[2], "gemm") != out.shape:
        raise ShapeError(
            f"'gemm' bias {ts[2]} does not broadcast to {out}", expected=f"a bias broadcastable to {out}"
        )
    return out


def _gemm_ref(xs, attrs):
    a = xs[0].T if attrs["transA"] else xs[0]
    b = xs[1].T if attrs["transB"] else xs[1]
    y = attrs["alpha"] * (a @ b)
    return (y + attrs["beta"] * xs[2] if len(xs) == 3 else y).astype(xs[0].dtype)


def _gemm_grad(c, g):
    """Gradients through the unfused form: a @ b and the bias (rarely needed: fusion runs after autodiff)."""
    a, b = c.x[:2]
    ta, tb, alpha = c.attrs["transA"], c.attrs["transB"], c.attrs["alpha"]
    ga = g.f("gemm", b, transA=0, transB=1 - tb, alpha=alpha, beta=1.0)  # g @ B^T
    gb = a.f("gemm", g, transA=1 - ta, transB=0, alpha=alpha, beta=1.0)  # A^T @ g
    out = [ga.f("transpose", perm=(1, 0)) if ta else ga, gb.f("transpose", perm=(1, 0)) if tb else gb]
    if len(c.inputs) == 3:
        out.append(c.unbroadcast(g * c.attrs["beta"], c.x[2]))
    return out


def _gemm_flops(ts: list[TensorType], attrs: dict, out: TensorType) -> int:
    """Each output element is a dot product of length k (A's rows when transA, else its columns)."""
    a = ts[0]
    return 2 * count_at_1(out.shape) * count_at_1(a.shape[:1] if attrs.get("transA") else a.shape[-1:])


GEMM = register(
    Op(
        name="gemm",
        inputs=("a", "b", "c?"),
        attrs={"transA": 0, "transB": 0, "alpha": 1.0, "beta": 1.0},
        infer=_gemm_infer,
        lower=lambda ctx, xs, attrs, it, ot: ctx.emit("Gemm", xs, **attrs),
        reference=_gemm_ref,
        samples=lambda rng: [
            Sample((randn(rng, 3, 4), randn(rng, 4, 5), randn(rng, 5))),
            Sample((randn(rng, 4, 3), randn(rng, 5, 4)), {"transA": 1, "transB": 1}),
            Sample((randn(rng, 2, 3), randn(rng, 3, 4), randn(rng, 2, 4)), {"alpha": 0.5, "beta": 2.0}),
        ],
        style=Style("linear", "gemm"),
        doc="alpha * A' B' + beta * C (ONNX Gemm), made by the fuse_gemm pass",
        grad=_gemm_grad,
        flops=_gemm_flops,
        internal=True,
    )
)
