"""Reductions and the shape plumbing their gradients need: sums, means, argmax, one-hot,
broadcasting and reshaping to another tensor's (possibly symbolic) shape."""

from __future__ import annotations

import numpy as np

from nngraph.core.types import DTYPES, INTS, TensorType, onnx_elem_type
from nngraph.errors import ShapeError
from nngraph.ops.common import broadcast_shapes, need_float, randn
from nngraph.ops.identities import passthrough
from nngraph.ops.registry import NO_GRADIENT, REQUIRED, Op, Sample, Style, register


def _axes(t: TensorType, axes, what: str) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(t.rank))
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    out = []
    for a in axes:
        if not -t.rank <= a < t.rank:
            raise ShapeError(
                f"axis {a} is out of range for '{what}' on {t}", expected=f"axes in [{-t.rank}, {t.rank - 1}]"
            )
        out.append(a % t.rank)
    return tuple(sorted(set(out)))


def _reduced(t: TensorType, axes, keepdims: int, what: str) -> tuple:
    ax = _axes(t, axes, what)
    return tuple((1 if i in ax else d) for i, d in enumerate(t.shape) if keepdims or i not in ax)


def _back_to(c, g):
    """The upstream gradient of a reduction, with the reduced axes restored as 1s, broadcast to x."""
    x = c.x[0]
    return _unreduced(c, g).f("broadcast_like", x)


def _unreduced(c, v):
    """v (at the reduction's output shape) with the reduced axes put back as 1s."""
    if not c.attrs["keepdims"]:
        ax = _axes(c.x[0].type, c.attrs["axes"], "reduce")
        if ax:
            return v.f("unsqueeze", axes=ax)
    return v


def _reduce(name: str, onnx_op: str, ref, grad, axes_as_input: bool) -> Op:
    def infer(ts, attrs):
        if name != "reduce_sum":
            need_float(ts[0], name)
        return TensorType(ts[0].dtype, _reduced(ts[0], attrs["axes"], attrs["keepdims"], name))

    def lower(ctx, xs, attrs, in_types, out_type):
        ax = _axes(in_types[0], attrs["axes"], name)
        if axes_as_input:
            return ctx.emit(onnx_op, [xs[0], ctx.ints(list(ax))], keepdims=attrs["keepdims"])
        return ctx.emit(onnx_op, xs, axes=list(ax), keepdims=attrs["keepdims"])

    def reference(xs, attrs):
        ax = _axes(TensorType("f64", xs[0].shape), attrs["axes"], name)
        return np.asarray(ref(xs[0], axis=ax, keepdims=bool(attrs["keepdims"]))).astype(xs[0].dtype)

    def samples(rng):
        return [
            Sample((randn(rng, 3, 4),), {"axes": None, "keepdims": 0}),
            Sample((randn(rng, 2, 3, 4),), {"axes": (0, 2), "keepdims": 1}),
            Sample((randn(rng, 2, 3, 4).astype(np.float64),), {"axes": (-1,), "keepdims": 0}),
            Sample((randn(rng, 4, 3, 2, 2),), {"axes": (0, 2, 3), "keepdims": 0}),
        ]

    return register(
        Op(
            name,
            ("x",),
            {"axes": None, "keepdims": 0},
            infer,
            lower,
            reference,
            samples,
            Style("reduce", name),
            f"{name} over axes (all when none)",
            grad,
            attr_kinds={"axes": "ints"},
            attr_limits={"keepdims": "in [0, 1]"},
        )
    )


def _sum_grad(c, g):
    return [_back_to(c, g)]


def _mean_grad(c, g):
    x = c.x[0]
    n = x.f("dim_size", axes=_axes(x.type, c.attrs["axes"], "reduce_mean"), dtype=x.type.dtype)
    return [_back_to(c, g) / n]


def _max_grad(c, g):
    """Shared evenly among the elements equal to the maximum, as torch.amax does (each tie
    taking all of it made k ties k times the gradient)."""
    x = c.x[0]
    hit = x.mask("equal", _unreduced(c, c.y))
    ties = hit.f("reduce_sum", axes=c.attrs["axes"], keepdims=1)
    return [_back_to(c, g) * (hit / ties)]


REDUCE_SUM = _reduce("reduce_sum", "ReduceSum", np.sum, _sum_grad, axes_as_input=True)
REDUCE_MEAN = _reduce("reduce_mean", "ReduceMean", np.mean, _mean_grad, axes_as_input=False)
REDUCE_MAX = _reduce("reduce_max", "ReduceMax", np.max, _max_grad, axes_as_input=False)


def _dim_size_infer(ts, attrs):
    _axes(ts[0], attrs["axes"], "dim_size")
    return TensorType(attrs["dtype"], ())


def _dim_size_lower(ctx, xs, attrs, in_types, out_type):
    ax = _axes(in_types[0], attrs["axes"], "dim_size")
    shape = ctx.emit("Shape", xs)
    picked = ctx.emit("Gather", [shape, ctx.ints(list(ax))], axis=0)
    n = ctx.emit("ReduceProd", [picked], keepdims=0)
    return ctx.emit("Cast", [n], to=onnx_elem_type(attrs["dtype"]))


DIM_SIZE = register(
    Op(
        "dim_size",
        ("x",),
        {"axes": None, "dtype": "f32"},
        _dim_size_infer,
        _dim_size_lower,
        lambda xs, a: np.asarray(
            np.prod([xs[0].shape[i] for i in _axes(TensorType("f32", xs[0].shape), a["axes"], "")]),
            dtype=DTYPES[a["dtype"]],
        ),
        lambda rng: [
            Sample((randn(rng, 3, 4),), {"axes": None}),
            Sample((randn(rng, 2, 3, 5),), {"axes": (0, 2)}),
            Sample((randn(rng, 2, 3),), {"axes": (1,), "dtype": "f64"}),
        ],
        Style("shape", "size"),
        "the number of elements over axes, as a float scalar (symbolic dims known at run time)",
        NO_GRADIENT,
        internal=True,
    )
)


def _argmax_infer(ts, attrs):
    return TensorType("i64", _reduced(ts[0], (attrs["axis"],), attrs["keepdims"], "argmax"))


ARGMAX = register(
    Op(
        "argmax",
        ("x",),
        {"axis": -1, "keepdims": 0},
        _argmax_infer,
        lambda ctx, xs, attrs, it, ot: ctx.emit("ArgMax", xs, axis=attrs["axis"], keepdims=attrs["keepdims"]),
        lambda xs, a: (
            np.expand_dims(np.argmax(xs[0], axis=a["axis"]), a["axis"])
            if a["keepdims"]
            else np.argmax(xs[0], axis=a["axis"])
        ).astype(np.int64),
        lambda rng: [
            Sample((randn(rng, 3, 4),), {}),
            Sample((randn(rng, 2, 3, 4),), {"axis": 1, "keepdims": 1}),
            Sample((randn(rng, 5, 2),), {"axis": 0}),
        ],
        Style("reduce", "argmax"),
        "index of the largest value along an axis (the first on ties)",
        NO_GRADIENT,
        attr_limits={"keepdims": "in [0, 1]"},
    )
)


def _one_hot_infer(ts, attrs):
    if ts[0].dtype not in INTS:
        raise ShapeError(f"'one_hot' needs integer indices, got {ts[0]}", expected="i32 or i64 labels")
    if attrs["depth"] < 1:
        raise ShapeError(f"'one_hot' needs depth >= 1, got {attrs['depth']}")
    return TensorType(attrs["dtype"], (*ts[0].shape, attrs["depth"]))


def _one_hot_lower(ctx, xs, attrs, in_types, out_type):
    """onnxruntime implements OneHot for int64 indices with float32 values: cast around it."""
    idx = xs[0] if in_types[0].dtype == "i64" else ctx.emit("Cast", xs, to=onnx_elem_type("i64"))
    values = ctx.const(np.asarray([0, 1], dtype=np.float32))
    y = ctx.emit("OneHot", [idx, ctx.ints([attrs["depth"]]), values], axis=-1)
    return y if attrs["dtype"] == "f32" else ctx.emit("Cast", [y], to=onnx_elem_type(attrs["dtype"]))


ONE_HOT = register(
    Op(
        "one_hot",
        ("indices",),
        {"depth": REQUIRED, "dtype": "f32"},
        _one_hot_infer,
        _one_hot_lower,
        lambda xs, a: (xs[0][..., None] == np.arange(a["depth"])).astype(DTYPES[a["dtype"]]),
        lambda rng: [
            Sample((rng.integers(0, 5, (6,)),), {"depth": 5}),
            Sample((rng.integers(0, 3, (2, 4)),), {"depth": 3, "dtype": "f64"}),
            Sample((rng.integers(0, 7, (3,)).astype(np.int32),), {"depth": 7}),
        ],
        Style("shape", "one-hot"),
        "one-hot rows for integer labels (labels out of range give zero rows)",
        NO_GRADIENT,
        attr_kinds={"depth": "int"},
        attr_limits={"depth": ">= 1"},
    )
)


def _unsqueeze_infer(ts, attrs):
    shape = list(ts[0].shape)
    rank = len(shape) + len(attrs["axes"])
    axes = tuple(attrs["axes"])
    bad = [a for a in axes if not -rank <= a < rank]
    if bad or len({a % rank for a in axes}) < len(axes):
        raise ShapeError(
            f"'unsqueeze' axes {list(axes)} for {ts[0]}: "
            + (f"{bad[0]} is out of range" if bad else "an axis is named twice"),
            expected=f"distinct axes in [{-rank}, {rank - 1}] (the result has rank {rank})",
        )
    for a in sorted(x % rank for x in axes):
        shape.insert(a, 1)
    return ts[0].with_shape(shape)


UNSQUEEZE = register(
    Op(
        "unsqueeze",
        ("x",),
        {"axes": REQUIRED},
        _unsqueeze_infer,
        lambda ctx, xs, attrs, it, ot: ctx.emit("Unsqueeze", [xs[0], ctx.ints(list(attrs["axes"]))]),
        lambda xs, a: np.expand_dims(xs[0], tuple(a["axes"])),
        lambda rng: [
            Sample((randn(rng, 3, 4),), {"axes": (1,)}),
            Sample((randn(rng, 3),), {"axes": (0, 2)}),
            Sample((randn(rng, 2, 3),), {"axes": (-1,)}),
        ],
        Style("shape", "unsqueeze"),
        "insert size-1 axes",
        lambda c, g: [g.f("reshape_like", c.x[0])],
        attr_kinds={"axes": "ints"},
    )
)


def _like_infer(what: str):
    def infer(ts, attrs):
        x, like = ts
        if what == "broadcast_like":
            shape = broadcast_shapes(x, like, what)
            if shape != like.shape:
                raise ShapeError(
                    f"'{what}': {x} does not broadcast to {like}",
                    expected="a shape broadcastable to the target",
                )
        else:
            shape = like.shape
            if x.is_static and like.is_static and x.numel() != like.numel():
                raise ShapeError(
                    f"'{what}': cannot reshape {x} to {like}", expected="the same number of elements"
                )
        return TensorType(x.dtype, shape)

    return infer


def _shape_of(onnx_op: str):
    return lambda ctx, xs, attrs, it, ot: ctx.emit(onnx_op, [xs[0], ctx.emit("Shape", [xs[1]])])


BROADCAST_LIKE = register(
    Op(
        "broadcast_like",
        ("x", "like"),
        {},
        _like_infer("broadcast_like"),
        _shape_of("Expand"),
        lambda xs, a: np.broadcast_to(xs[0], xs[1].shape).copy(),
        lambda rng: [
            Sample((randn(rng, 3, 1), randn(rng, 3, 4))),
            Sample((randn(rng, 4), randn(rng, 2, 3, 4))),
            Sample((randn(rng, 1, 1), randn(rng, 2, 5))),
        ],
        Style("shape", "broadcast"),
        "x broadcast to the shape of `like` (known at run time)",
        lambda c, g: [c.unbroadcast(g, c.x[0]), None],
        internal=True,
        identities=(passthrough,),  # shapes that already agree
    )
)

RESHAPE_LIKE = register(
    Op(
        "reshape_like",
        ("x", "like"),
        {},
        _like_infer("reshape_like"),
        _shape_of("Reshape"),
        lambda xs, a: xs[0].reshape(xs[1].shape),
        lambda rng: [
            Sample((randn(rng, 3, 4), randn(rng, 12))),
            Sample((randn(rng, 2, 6), randn(rng, 3, 2, 2))),
            Sample((randn(rng, 5), randn(rng, 5, 1))),
        ],
        Style("shape", "reshape"),
        "x reshaped to the shape of `like` (known at run time)",
        lambda c, g: [g.f("reshape_like", c.x[0]), None],
        internal=True,
        identities=(passthrough,),  # shapes that already agree
    )
)


# ---- softmax cross entropy: made by the fuse_softmax_cross_entropy pass ------------------------


def _sce_infer(ts, attrs):
    logits, labels = ts
    need_float(logits, "softmax_cross_entropy")
    if labels.dtype not in INTS or logits.shape[:-1] != labels.shape:
        raise ShapeError(
            f"'softmax_cross_entropy' needs labels shaped {list(logits.shape[:-1])}, got {labels}",
            expected="integer class labels",
        )
    return TensorType(logits.dtype, ())


def _sce_lower(ctx, xs, attrs, in_types, out_type):
    """ONNX wants the classes on axis 1: [N, C, d1...]; nngraph keeps them last."""
    logits, labels = xs
    r = in_types[0].rank
    if r > 2:
        logits = ctx.emit("Transpose", [logits], perm=[0, r - 1, *range(1, r - 1)])
    if in_types[1].dtype != "i64":
        labels = ctx.emit("Cast", [labels], to=onnx_elem_type("i64"))
    return ctx.emit("SoftmaxCrossEntropyLoss", [logits, labels], reduction="mean")


def _sce_ref(xs, attrs):
    x, y = xs[0].astype(np.float64), xs[1]
    z = x - x.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return np.asarray(-np.take_along_axis(logp, y[..., None].astype(np.int64), -1).mean(), dtype=xs[0].dtype)


def _sce_grad(c, g):
    """The closed form: (softmax(logits) - one_hot(labels)) * g / rows."""
    logits, labels = c.x
    t = logits.type
    diff = logits.f("softmax", axis=-1) - labels.f("one_hot", depth=t.shape[-1], dtype=t.dtype)
    rows = logits.f("dim_size", axes=tuple(range(t.rank - 1)), dtype=t.dtype)
    return [diff * (g / rows), None]


SOFTMAX_CROSS_ENTROPY = register(
    Op(
        "softmax_cross_entropy",
        ("logits", "labels"),
        {},
        _sce_infer,
        _sce_lower,
        _sce_ref,
        lambda rng: [
            Sample((randn(rng, 5, 4), rng.integers(0, 4, 5))),
            Sample((randn(rng, 2, 3, 6), rng.integers(0, 6, (2, 3)))),
            Sample((randn(rng, 4, 3).astype(np.float64), rng.integers(0, 3, 4).astype(np.int32))),
        ],
        Style("loss", "cross entropy"),
        "mean cross entropy of logits [..., C] and integer labels (ONNX SoftmaxCrossEntropyLoss)",
        _sce_grad,
        internal=True,
    )
)
