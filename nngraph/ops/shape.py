"""Shape operators: flatten, reshape, transpose, concat (slice is in slicing.py)."""

from __future__ import annotations

import math

import numpy as np

from nngraph.core.types import TensorType
from nngraph.errors import ShapeError
from nngraph.ops.common import axis_of, dims_prod, dims_sum, paren, randn, run_time_dim, same_dtype
from nngraph.ops.identities import Rebuild, Rewire, Same
from nngraph.ops.registry import NO_GRADIENT, REQUIRED, Op, Sample, Style, register


def shape_op(name: str, inputs, attrs, infer, lower, reference, samples, doc: str, grad, **fields) -> Op:
    """Register a shape operator; `fields` are further record fields (internal, attr_kinds, ...)."""
    return register(
        Op(
            name=name,
            inputs=inputs,
            attrs=attrs,
            infer=infer,
            lower=lower,
            reference=reference,
            samples=samples,
            style=Style("shape", name),
            doc=doc,
            grad=grad,
            **fields,
        )
    )


def samples_of(rng, cases) -> list[Sample]:
    """Samples from (shapes, attrs) pairs: one random f32 array per shape."""
    return [Sample(tuple(randn(rng, *s) for s in shapes), attrs) for shapes, attrs in cases]


#: the gradient of an op that only rearranges elements: g put back into the input's shape
_reshape_back = lambda c, g: [g.f("reshape_like", c.x[0])]


# ---- flatten -------------------------------------------------------------------


def _flatten_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x, axis = ts[0], attrs["axis"]
    if not -x.rank <= axis <= x.rank:
        raise ShapeError(
            f"'flatten' axis {axis} is out of range for {x}", expected=f"an axis in [{-x.rank}, {x.rank}]"
        )
    axis = axis + x.rank if axis < 0 else axis
    return x.with_shape((dims_prod(x.shape[:axis]), dims_prod(x.shape[axis:])))


FLATTEN = shape_op(
    "flatten",
    ("x",),
    {"axis": 1},
    _flatten_infer,
    lambda ctx, xs, attrs, in_types, out_type: ctx.emit("Flatten", xs, axis=attrs["axis"]),
    lambda xs, attrs: xs[0].reshape(math.prod(xs[0].shape[: attrs["axis"]]), -1),
    lambda rng: samples_of(
        rng,
        [
            ([(2, 3, 4)], {}),
            ([(2, 3, 4, 5)], {"axis": 2}),
            ([(2, 3, 4)], {"axis": 0}),
            ([(2, 3, 4)], {"axis": 3}),
            ([(4, 5, 2)], {"axis": -1}),
        ],
    ),
    "[d0..dk-1, dk..] -> [d0*..*dk-1, dk*..]: collapse the dims before and from axis",
    _reshape_back,
)


# ---- reshape -------------------------------------------------------------------


def _reshape_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x, shape = ts[0], tuple(attrs["shape"])
    want = f"[{','.join(map(str, shape))}]"
    if shape.count(-1) > 1 or any(not isinstance(s, int) or s < -1 for s in shape):
        raise ShapeError(
            f"'reshape' target {want} for {x} is not valid",
            expected="ints >= 0, at most one -1 (inferred); 0 copies the input dim",
        )
    if any(s == 0 and i >= x.rank for i, s in enumerate(shape)):
        raise ShapeError(f"'reshape' target {want} copies (0) a dim that {x} does not have")
    out = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    known = [d for d in out if d != -1]
    # element counts: an int part and the symbols left over once the output's symbols are cancelled
    n_in, n_out = (
        dims_prod(d for d in x.shape if isinstance(d, int)),
        dims_prod(d for d in known if isinstance(d, int)),
    )
    left = [d for d in x.shape if not isinstance(d, int)]
    for d in known:
        if not isinstance(d, int):
            left.remove(d)
    bad = lambda why: ShapeError(
        f"'reshape' cannot reshape {x} into {want}: {why}", expected="the same number of elements"
    )
    if -1 in out:
        if n_out == 0:
            raise bad("-1 cannot be inferred next to a 0-size dim")
        if left:
            g = math.gcd(n_in, n_out)
            fill = dims_prod([*left, n_in // g])
            fill = fill if n_out == g else f"{paren(fill)}//{n_out // g}"
        elif n_in % n_out:
            raise bad(f"{n_in} elements are not divisible by {n_out}")
        else:
            fill = n_in // n_out
        out[out.index(-1)] = fill
    elif not left and n_in != n_out:
        raise bad(f"{n_in} elements vs {n_out}")
    elif left and n_in and n_out % n_in:
        raise bad(f"{dims_prod(x.shape)} elements can never equal {n_out}")
    return x.with_shape(out)


def _reshape_chain(graph, n):
    """reshape(reshape or flatten(x)) reads x itself, where the inner node feeds only it (and is no
    output) and the target copies no input dim (a 0 would mean the inner node's dim)."""
    src = graph.node(n)["inputs"][0]
    if (
        graph.node(src)["op"] in ("reshape", "flatten")
        and graph.consumers(src) == [n]
        and src not in graph.outputs.values()
        and 0 not in graph.node(n)["attrs"]["shape"]
    ):
        return Rewire([graph.node(src)["inputs"][0]])
    return None


RESHAPE = shape_op(
    "reshape",
    ("x",),
    {"shape": REQUIRED},
    _reshape_infer,
    lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
        "Reshape", [xs[0], ctx.ints(list(attrs["shape"]), "shape")]
    ),
    lambda xs, attrs: xs[0].reshape([xs[0].shape[i] if s == 0 else s for i, s in enumerate(attrs["shape"])]),
    lambda rng: samples_of(
        rng,
        [
            ([(2, 3, 4)], {"shape": (6, 4)}),
            ([(2, 3, 4)], {"shape": (0, -1)}),
            ([(2, 3, 4)], {"shape": (-1,)}),
            ([(4, 6)], {"shape": (2, 0, 2)}),
            ([(24,)], {"shape": (2, -1, 3, 1)}),
        ],
    ),
    "change the shape, same elements in order: 0 copies the input dim, one -1 is inferred",
    _reshape_back,
    attr_kinds={"shape": "ints"},
    identities=(_reshape_chain,),
)


# ---- transpose -----------------------------------------------------------------


def _transpose_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x, perm = ts[0], tuple(attrs["perm"])
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(
            f"'transpose' perm {perm} is not a permutation of the {x.rank} dims of {x}",
            expected=f"each of 0..{x.rank - 1} exactly once",
        )
    return x.with_shape(x.shape[p] for p in perm)


def _transpose_pair(graph, n):
    """transpose(transpose(x)) is x where the perms cancel, else one transpose by the composed perm."""
    inner = graph.node(graph.node(n)["inputs"][0])
    if inner["op"] != "transpose":
        return None
    perm = tuple(inner["attrs"]["perm"][p] for p in graph.node(n)["attrs"]["perm"])
    if perm == tuple(range(len(perm))):
        return Same(inner["inputs"][0])
    return Rebuild("transpose", [inner["inputs"][0]], {"perm": perm})


TRANSPOSE = shape_op(
    "transpose",
    ("x",),
    {"perm": REQUIRED},
    _transpose_infer,
    lambda ctx, xs, attrs, in_types, out_type: ctx.emit("Transpose", xs, perm=list(attrs["perm"])),
    lambda xs, attrs: np.transpose(xs[0], attrs["perm"]),
    lambda rng: samples_of(
        rng,
        [
            ([(2, 3)], {"perm": (1, 0)}),
            ([(2, 3, 4)], {"perm": (2, 0, 1)}),
            ([(2, 3, 4, 5)], {"perm": (0, 2, 3, 1)}),
        ],
    ),
    "permute the dims: out.shape[i] = x.shape[perm[i]]",
    lambda c, g: [g.f("transpose", perm=tuple(int(i) for i in np.argsort(c.attrs["perm"])))],
    attr_kinds={"perm": "ints"},
    identities=(_transpose_pair,),
)


# ---- concat --------------------------------------------------------------------


def _concat_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    if not ts:
        raise ShapeError("'concat' needs at least one input")
    first = ts[0]
    dt = same_dtype(ts, "concat")
    if len({t.rank for t in ts}) > 1:
        raise ShapeError(
            "'concat' inputs differ in rank: " + ", ".join(map(str, ts)), expected="inputs of one rank"
        )
    axis = axis_of(first, attrs["axis"], "concat")
    for t in ts[1:]:
        for i, (a, b) in enumerate(zip(first.shape, t.shape, strict=True)):
            if i != axis and a != b:
                raise ShapeError(
                    f"'concat' along axis {attrs['axis']}: {first} and {t} differ in dim {i} ({a} vs {b})",
                    expected=f"all dims equal except dim {axis}",
                )
    shape = list(first.shape)
    shape[axis] = dims_sum([t.shape[axis] for t in ts])
    return TensorType(dt, tuple(shape))


def _concat_grad(c, g):
    """Each input's part of g, sliced out; bounds count from the front or, past a symbolic size, the
    back; a part between inputs of symbolic size is sliced at bounds read from the run-time shapes."""
    axis = c.attrs["axis"] % c.out_type.rank
    xs = c.x
    sizes = [x.type.shape[axis] for x in xs]
    static = lambda ds: all(isinstance(d, int) for d in ds)
    out = []
    for i, x in enumerate(xs):
        before, own, after = sizes[:i], sizes[i : i + 1], sizes[i + 1 :]
        if not (static(before) or static(own + after)) or not (static(after) or static(before + own)):
            out.append(g.f("concat_grad_part", *xs[: i + 1], axis=axis))
            continue
        start = sum(before) if static(before) else -sum(own + after)
        end = (-sum(after) or None) if static(after) else sum(before + own)
        part = g.f("slice", axis=axis, start=start, end=end, step=1)
        out.append(part if part.type.shape == x.type.shape else part.f("reshape_like", x))
    return out


def _part_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    g, xs = ts[0], ts[1:]
    if not xs or any(x.rank != g.rank for x in xs):
        raise ShapeError(
            f"'concat_grad_part' needs concat inputs of g's rank, got {g} and {list(map(str, xs))}"
        )
    axis_of(g, attrs["axis"], "concat_grad_part")
    return TensorType(g.dtype, xs[-1].shape)


def _part_lower(ctx, xs, attrs, in_types, out_type):
    """g[..., start:start + len(x_i), ...] along axis, start being the summed run-time lengths of x_0..x_i-1."""
    g, parts = xs[0], xs[1:]
    axis = attrs["axis"] % out_type.rank
    end = run_time_dim(ctx, parts[0], axis)
    start = ctx.ints([0])
    for x in parts[1:]:
        start, end = end, ctx.emit("Add", [end, run_time_dim(ctx, x, axis)])
    return ctx.emit("Slice", [g, start, end, ctx.ints([axis])])


def _part_ref(xs, attrs):
    g, parts = xs[0], xs[1:]
    axis = attrs["axis"]
    start = sum(x.shape[axis] for x in parts[:-1])
    return np.take(g, range(start, start + parts[-1].shape[axis]), axis=axis)


def _part_samples(rng):
    return samples_of(
        rng,
        [
            ([(2, 9, 3), (2, 4, 3)], {"axis": 1}),
            ([(2, 9, 3), (2, 4, 3), (2, 2, 3)], {"axis": 1}),
            ([(6, 2), (1, 2), (3, 2), (2, 2)], {"axis": -2}),
        ],
    )


CONCAT_GRAD_PART = shape_op(
    "concat_grad_part",
    ("g", "*xs"),
    {"axis": REQUIRED},
    _part_infer,
    _part_lower,
    _part_ref,
    _part_samples,
    "the gradient of concat for its last listed input: g's part along axis after the inputs before it",
    NO_GRADIENT,
    internal=True,
)


CONCAT = shape_op(
    "concat",
    ("*xs",),
    {"axis": REQUIRED},
    _concat_infer,
    lambda ctx, xs, attrs, in_types, out_type: ctx.emit("Concat", xs, axis=attrs["axis"]),
    lambda xs, attrs: np.concatenate(xs, axis=attrs["axis"]),
    lambda rng: samples_of(
        rng,
        [
            ([(2, 3), (4, 3)], {"axis": 0}),
            ([(2, 3, 1), (2, 3, 4), (2, 3, 2)], {"axis": -1}),
            ([(5,), (2,)], {"axis": 0}),
            ([(2, 1, 3), (2, 5, 3)], {"axis": 1}),
        ],
    ),
    "join tensors along one axis; all other dims must match",
    _concat_grad,
    attr_kinds={"axis": "int"},
)
