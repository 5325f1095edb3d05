"""Sequence operators (issue #6): positions, sinusoidal tables and the causal mask.

They exist so that attention and positional encodings work on a symbolic sequence length:
each reads the length from its input at run time (ONNX Shape, Range, Trilu), where a constant
built at compile time would fix it. The recurrent layers themselves need no operator of their
own: they unroll into matmul, slice, sigmoid, tanh, ... (see nngraph/layers/recurrent.py).
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from nngraph.core.types import DTYPES, FLOATS, INTS, TensorType, onnx_elem_type
from nngraph.errors import ShapeError
from nngraph.ops.common import axis_of, need_float, randn
from nngraph.ops.registry import NO_GRADIENT, Op, Sample, Style, register

# ---- positions: 0, 1, ..., n-1 along one axis of x ------------------------------------------


def _positions_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x = ts[0]
    ax = axis_of(x, attrs["axis"], "positions")
    return TensorType("i64", (x.shape[ax],))


def _positions_lower(ctx, xs, attrs, in_types, out_type):
    ax = attrs["axis"] % in_types[0].rank
    n = ctx.emit("Shape", xs, start=ax, end=ax + 1)
    n = ctx.emit("Squeeze", [n, ctx.ints([0])])
    zero, one = ctx.const(np.asarray(0, np.int64)), ctx.const(np.asarray(1, np.int64))
    return ctx.emit("Range", [zero, n, one])


POSITIONS = register(
    Op(
        name="positions",
        inputs=("x",),
        attrs={"axis": 1},
        infer=_positions_infer,
        lower=_positions_lower,
        reference=lambda xs, attrs: np.arange(xs[0].shape[attrs["axis"]], dtype=np.int64),
        samples=lambda rng: [
            Sample((randn(rng, 2, 5, 3),)),
            Sample((randn(rng, 7, 2),), {"axis": 0}),
            Sample((rng.integers(0, 9, (3, 4)),), {"axis": -1}),
        ],
        style=Style("shape", "positions"),
        doc="the i64 positions 0..n-1 of x's dim `axis` (the length read at run time)",
        grad=NO_GRADIENT,
        internal=True,
    )
)


# ---- sinusoid: the sinusoidal position table of "Attention is all you need" -----------------


def _sinusoid_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    p, dim = ts[0], attrs["dim"]
    if p.dtype not in INTS:
        raise ShapeError(
            f"'sinusoid' needs integer positions, got {p}", expected="i32 or i64 positions, e.g. positions(x)"
        )
    if not isinstance(dim, int) or dim < 1:
        raise ShapeError(f"'sinusoid' needs a dim >= 1, got {dim!r}", expected="the model width, e.g. dim=64")
    if attrs["dtype"] not in FLOATS:
        raise ShapeError(f"'sinusoid' makes a float table, not {attrs['dtype']}", expected="f16, f32 or f64")
    return TensorType(attrs["dtype"], (*p.shape, dim))


def _freq_phase(dim: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """Column j has frequency base^(-2*(j//2)/dim); odd columns are cosines, sin(a + pi/2)."""
    j = np.arange(dim)
    freq = np.power(float(base), -2.0 * (j // 2) / dim)
    phase = np.where(j % 2 == 1, math.pi / 2, 0.0)
    return freq, phase


def _sinusoid_lower(ctx, xs, attrs, in_types, out_type):
    """The angles in f32 at least (f64 for an f64 model), then the table cast to the model's type:
    in f16 the angle position * freq is off by up to 1 at positions past 2000, as PyTorch's
    f32-built table is not."""
    work = "f64" if out_type.dtype == "f64" else "f32"
    dt = DTYPES[work]
    freq, phase = _freq_phase(attrs["dim"], attrs["base"])
    p = ctx.emit("Cast", xs, to=onnx_elem_type(work))
    p = ctx.emit("Unsqueeze", [p, ctx.ints([-1])])
    a = ctx.emit("Add", [ctx.emit("Mul", [p, ctx.const(freq.astype(dt))]), ctx.const(phase.astype(dt))])
    table = ctx.emit("Sin", [a])
    return table if work == out_type.dtype else ctx.emit("Cast", [table], to=onnx_elem_type(out_type.dtype))


def _sinusoid_ref(xs, attrs):
    p = xs[0].astype(np.float64)[..., None]
    freq, _ = _freq_phase(attrs["dim"], attrs["base"])
    even = np.arange(attrs["dim"]) % 2 == 0
    out = np.where(even, np.sin(p * freq), np.cos(p * freq))
    return out.astype(DTYPES[attrs["dtype"]])


SINUSOID = register(
    Op(
        name="sinusoid",
        inputs=("positions",),
        attrs={"dim": 0, "base": 10000.0, "dtype": "f32"},
        infer=_sinusoid_infer,
        lower=_sinusoid_lower,
        reference=_sinusoid_ref,
        samples=lambda rng: [
            Sample((np.arange(6, dtype=np.int64),), {"dim": 8}),
            Sample((rng.integers(0, 9, (2, 3)),), {"dim": 5}),
            Sample((np.arange(4, dtype=np.int32),), {"dim": 6, "base": 100.0, "dtype": "f64"}),
        ],
        style=Style("embed", "sinusoid"),
        doc="sin/cos position table [*positions, dim]: even columns sin(p*w), odd cos(p*w), "
        "w = base^(-2*(j//2)/dim), as PyTorch's tutorials build it",
        grad=NO_GRADIENT,
        internal=True,
    )
)


# ---- causal_fill: x with the entries above the diagonal of its last two axes set to value ----


def _causal_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x = ts[0]
    need_float(x, "causal_fill")
    if x.rank < 2:
        raise ShapeError(f"'causal_fill' needs a tensor of rank >= 2 (queries x keys), got {x}")
    return x


def _causal_lower(ctx, xs, attrs, in_types, out_type):
    dt = out_type.np_dtype
    size = ctx.emit("Shape", xs, start=-2)
    one = helper.make_tensor("value", onnx_elem_type(out_type.dtype), [1], [1])
    ones = ctx.emit("ConstantOfShape", [size], value=one)
    upper = ctx.emit("Trilu", [ones, ctx.const(np.asarray(1, np.int64))], upper=1)  # strictly above
    cond = ctx.emit("Cast", [upper], to=onnx_elem_type("bool"))
    return ctx.emit("Where", [cond, ctx.const(np.asarray(attrs["value"], dt)), xs[0]])


def _causal_ref(xs, attrs):
    x = xs[0]
    above = np.triu(np.ones(x.shape[-2:], dtype=bool), k=1)
    return np.where(above, np.asarray(attrs["value"], x.dtype), x).astype(x.dtype)


CAUSAL_FILL = register(
    Op(
        name="causal_fill",
        inputs=("x",),
        attrs={"value": -math.inf},
        infer=_causal_infer,
        lower=_causal_lower,
        reference=_causal_ref,
        samples=lambda rng: [
            Sample((randn(rng, 4, 4),), {"value": -1e4}),
            Sample((randn(rng, 2, 3, 5, 5),), {"value": 0.0}),
            Sample((randn(rng, 3, 4, 6),), {"value": -3.0}),
            Sample((randn(rng, 2, 3, 3).astype(np.float64),), {"value": -5.0}),
        ],
        style=Style("shape", "causal mask"),
        doc="x[..., i, j] set to value (default -inf) where j > i: the causal mask of attention scores",
        grad=lambda c, g: [g.f("causal_fill", value=0.0)],
        internal=True,
    )
)


# ---- recurrent cells unrolled into primitives (the layers' build and the fused op's gradient) ----
#
# `ctx` is anything with `op(name, inputs, **attrs) -> node`: a layer's build context or a
# gradient rule's context. Weights are in PyTorch's layout and gate order.


def linear(ctx, x: str, w: str, b: str | None) -> str:
    """x @ w^T + b for a weight in PyTorch's [out, in] layout."""
    y = ctx.op("matmul", [x, ctx.op("transpose", [w], perm=(1, 0))])
    return ctx.op("add", [y, b]) if b is not None else y


def _step(ctx, seq_proj: str, t: int) -> str:
    """Row t of [batch, seq, n] as [batch, n]."""
    return ctx.op("reshape", [ctx.op("slice", [seq_proj], axis=1, start=t, end=t + 1)], shape=(0, -1))


def _gate(ctx, z: str, k: int, hidden: int) -> str:
    return ctx.op("slice", [z], axis=-1, start=k * hidden, end=(k + 1) * hidden)


GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def unroll(
    ctx,
    kind: str,
    x: str,
    seq: int,
    hidden: int,
    w: dict[str, str | None],
    reverse: bool,
    h: str | None,
    c: str | None,
    act: str,
    final_c: list[str] | None = None,
) -> list[str]:
    """The hidden states h_t ([batch, hidden]) for t = 0..seq-1, stepping backwards if `reverse`;
    an LSTM's last cell state is appended to `final_c` when one is given.

    A missing initial state means zeros: the first step then leaves out the terms it would
    multiply, which is exact and needs no zero tensor of the run-time batch size. A single step
    takes a zero state, so that w_hh is still a parameter (PyTorch's has it, with gradient 0).
    """
    wi, wh, bi, bh = w["w_ih"], w["w_hh"], w["b_ih"], w["b_hh"]
    if kind != "gru" and bi is not None:  # both biases add to every gate: fold them into one
        proj = linear(ctx, x, wi, ctx.op("add", [bi, bh]))
    else:
        proj = linear(ctx, x, wi, bi)
    whT = ctx.op("transpose", [wh], perm=(1, 0))
    if h is None and seq == 1:  # one step: a zero state keeps w_hh in the model, as in PyTorch's
        first = _gate(ctx, _step(ctx, proj, 0), 0, hidden)
        h = ctx.op("sub", [first, first])
    out: list[str | None] = [None] * seq
    for t in reversed(range(seq)) if reverse else range(seq):
        xt = _step(ctx, proj, t)
        rec = ctx.op("matmul", [h, whT]) if h is not None else None
        if kind == "rnn":
            z = ctx.op("add", [xt, rec]) if rec is not None else xt
            h = ctx.op(act, [z])
        elif kind == "lstm":
            z = ctx.op("add", [xt, rec]) if rec is not None else xt
            i, f, g, o = (_gate(ctx, z, k, hidden) for k in range(4))
            i, f, o, g = (
                ctx.op("sigmoid", [i]),
                ctx.op("sigmoid", [f]),
                ctx.op("sigmoid", [o]),
                ctx.op("tanh", [g]),
            )
            ig = ctx.op("mul", [i, g])
            c = ctx.op("add", [ctx.op("mul", [f, c]), ig]) if c is not None else ig
            h = ctx.op("mul", [o, ctx.op("tanh", [c])])
        else:  # gru: r, z, n; the hidden bias of n sits inside r * (...)
            if rec is not None and bh is not None:
                rec = ctx.op("add", [rec, bh])
            elif rec is None:
                rec = bh
            xr, xz, xn = (_gate(ctx, xt, k, hidden) for k in range(3))
            if rec is None:
                r, zg, n = ctx.op("sigmoid", [xr]), ctx.op("sigmoid", [xz]), ctx.op("tanh", [xn])
            else:
                hr, hz, hn = (_gate(ctx, rec, k, hidden) for k in range(3))
                r = ctx.op("sigmoid", [ctx.op("add", [xr, hr])])
                zg = ctx.op("sigmoid", [ctx.op("add", [xz, hz])])
                n = ctx.op("tanh", [ctx.op("add", [xn, ctx.op("mul", [r, hn])])])
            # h' = (1 - z) * n + z * h = n + z * (h - n)
            h = (
                ctx.op("add", [n, ctx.op("mul", [zg, ctx.op("sub", [h, n])])])
                if h is not None
                else (ctx.op("sub", [n, ctx.op("mul", [zg, n])]))
            )
        out[t] = h
    if final_c is not None and kind == "lstm":
        final_c.append(c)
    return out  # type: ignore[return-value]


def stack_steps(ctx, hs: list[str]) -> str:
    """[batch, hidden] per step -> [batch, seq, hidden]."""
    return ctx.op("concat", [ctx.op("unsqueeze", [h], axes=(1,)) for h in hs], axis=1)


# ---- recurrent: one fused layer-direction, lowered to ONNX's LSTM / GRU / RNN --------------------
#
# The layers use it where the sequence length is symbolic, so the inference model runs on any
# length. Its gradient rule unrolls the cell into primitives and differentiates those, so it
# needs a fixed length (training specializes to the length it is given).

_ONNX = {
    "lstm": ("LSTM", (0, 3, 1, 2)),
    "gru": ("GRU", (1, 0, 2)),
    "rnn": ("RNN", (0,)),
}  # torch -> ONNX gates


def _rec_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x, wi, wh, bi, bh = ts
    kind = attrs["kind"]
    if kind not in GATES:
        raise ShapeError(f"'recurrent' kind must be lstm, gru or rnn, got {kind!r}")
    if attrs["activation"] not in ("tanh", "relu") or (kind != "rnn" and attrs["activation"] != "tanh"):
        raise ShapeError(
            f"'recurrent' activation must be tanh (or relu for rnn), got {attrs['activation']!r}"
        )
    need_float(x, "recurrent")
    if x.rank != 3:
        raise ShapeError(f"'recurrent' expects x [batch, seq, features], got {x}", expected="a 3-D input")
    hidden = wh.shape[-1] if wh.rank == 2 else None
    g = GATES[kind] * hidden if isinstance(hidden, int) else None
    want = {"w_ih": (g, x.shape[2]), "w_hh": (g, hidden), "b_ih": (g,), "b_hh": (g,)}
    for (name, shape), t in zip(want.items(), ts[1:], strict=True):
        if t.shape != shape or t.dtype != x.dtype:
            raise ShapeError(
                f"'recurrent' ({kind}) {name} must be {x.dtype}[{', '.join(map(str, shape))}] for x {x} "
                f"and hidden size {hidden}, got {t}",
                expected="PyTorch's layout: w_ih [gates*hidden, in], w_hh [gates*hidden, hidden], biases [gates*hidden]",
            )
    return TensorType(x.dtype, (x.shape[0], x.shape[1], hidden))


def _rec_lower(ctx, xs, attrs, in_types, out_type):
    x, wi, wh, bi, bh = xs
    kind, hidden = attrs["kind"], out_type.shape[2]
    onnx_op, order = _ONNX[kind]
    rows = ctx.ints(np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in order]).tolist())
    gates = lambda w: ctx.emit("Gather", [w, rows], axis=0)  # noqa: E731
    first = lambda w: ctx.emit("Unsqueeze", [w, ctx.ints([0])])  # noqa: E731
    extra = {"linear_before_reset": 1} if kind == "gru" else {}
    if kind == "rnn":
        extra["activations"] = [attrs["activation"].capitalize()]
    y = ctx.emit(
        onnx_op,
        [
            ctx.emit("Transpose", [x], perm=[1, 0, 2]),
            first(gates(wi)),
            first(gates(wh)),
            first(ctx.emit("Concat", [gates(bi), gates(bh)], axis=0)),
        ],
        hidden_size=hidden,
        direction="reverse" if attrs["reverse"] else "forward",
        **extra,
    )  # [seq, 1, batch, hidden]
    return ctx.emit("Transpose", [ctx.emit("Squeeze", [y, ctx.ints([1])])], perm=[1, 0, 2])


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _rec_ref(xs, attrs):
    x, wi, wh, bi, bh = (a.astype(np.float64) for a in xs)
    kind, hidden = attrs["kind"], wh.shape[1]
    n, seq = x.shape[0], x.shape[1]
    h, c = np.zeros((n, hidden)), np.zeros((n, hidden))
    out = np.zeros((n, seq, hidden))
    act = np.tanh if attrs["activation"] == "tanh" else (lambda v: np.maximum(v, 0))
    for t in reversed(range(seq)) if attrs["reverse"] else range(seq):
        gx, gh = x[:, t] @ wi.T + bi, h @ wh.T + bh
        if kind == "rnn":
            h = act(gx + gh)
        elif kind == "lstm":
            i, f, g, o = np.split(gx + gh, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        else:
            (xr, xz, xn), (hr, hz, hn) = np.split(gx, 3, axis=1), np.split(gh, 3, axis=1)
            r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
            cand = np.tanh(xn + r * hn)
            h = (1 - z) * cand + z * h
        out[:, t] = h
    return out.astype(xs[0].dtype)


def _rec_samples(rng):
    def case(kind, n, seq, f, hidden, **attrs):
        g = GATES[kind] * hidden
        arrays = (randn(rng, n, seq, f), *(0.5 * randn(rng, *s) for s in ((g, f), (g, hidden), (g,), (g,))))
        return Sample(arrays, {"kind": kind, **attrs})

    return [
        case("lstm", 2, 4, 3, 5),
        case("lstm", 3, 3, 2, 4, reverse=1),
        case("gru", 2, 4, 3, 5),
        case("gru", 1, 3, 4, 2, reverse=1),
        case("rnn", 2, 5, 3, 4),
        case("rnn", 2, 3, 3, 4, reverse=1, activation="relu"),
    ]


def _rec_decompose(e, inputs: list[str], attrs: dict) -> str:
    """The cell unrolled into primitives over the fixed sequence length: what autodiff
    differentiates (ONNX's LSTM/GRU/RNN have no gradient of their own)."""
    x, wi, wh, bi, bh = inputs
    seq = e.type(x).shape[1]
    if not isinstance(seq, int):
        raise NotImplementedError(
            f"the gradient of a fused {attrs['kind']} needs a fixed sequence length, got {e.type(x)}: "
            "train on inputs whose sequence length is a number"
        )
    w = {"w_ih": wi, "w_hh": wh, "b_ih": bi, "b_hh": bh}
    hidden = e.type(wh).shape[1]
    hs = unroll(e, attrs["kind"], x, seq, hidden, w, bool(attrs["reverse"]), None, None, attrs["activation"])
    return stack_steps(e, hs)


RECURRENT = register(
    Op(
        name="recurrent",
        inputs=("x", "w_ih", "w_hh", "b_ih", "b_hh"),
        attrs={"kind": "lstm", "reverse": 0, "activation": "tanh"},
        infer=_rec_infer,
        lower=_rec_lower,
        reference=_rec_ref,
        samples=_rec_samples,
        style=Style("linear", "recurrent"),
        doc="one direction of an LSTM / GRU / RNN layer over x [batch, seq, in] from zero state, in PyTorch's "
        "weight layout and gate order; all hidden states [batch, seq, hidden] (ONNX LSTM/GRU/RNN: any length)",
        decompose=_rec_decompose,
        internal=True,
    )
)
