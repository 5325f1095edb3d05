"""Sequence layers (issue #6): rnn, lstm, gru, attention, positional encodings and a
transformer encoder block, all built from primitive operators.

Recurrent layers over an input with a fixed sequence length (`f32[batch, 8, 16]`) unroll over
time: each step is a handful of matmul / slice / sigmoid / tanh nodes, so gradients, passes and
diagrams come from those operators' records. Over a symbolic length (`f32[batch, seq, 16]`) each
layer-direction is one fused `recurrent` operator, lowered to ONNX's LSTM / GRU / RNN, so the
inference model runs on any length; training needs a fixed length (the fused operator's gradient
unrolls). The parameters are the same either way and follow PyTorch's names, layout and gate
order (`weight_ih_l0` [gates*hidden, in], `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`,
`..._reverse`; LSTM gates i, f, g, o; GRU r, z, n), so weights copy to and from
`torch.nn.LSTM/GRU/RNN`, and weights trained at one length run at any other.

Attention follows `torch.nn.MultiheadAttention` (`in_proj_weight` [3E, E], `in_proj_bias`,
`out_proj_weight` [E, E], `out_proj_bias`) and works on any sequence length: the causal mask
and the position tables read the length at run time (operators in nngraph/ops/recurrent.py).
"""

from __future__ import annotations

import math

from nngraph.core.types import FLOATS
from nngraph.graph.layers import A, LayerCtx, _static_dim, layer
from nngraph.ops.recurrent import GATES, linear, stack_steps, unroll

# ---- helpers ---------------------------------------------------------------------------------


def _seq_input(ctx: LayerCtx, x: str, what: str, static_seq: bool) -> tuple[int | str, int]:
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
    return seq, _static_dim(ctx, x, 2, what, "feature size (last dim)")


def _state(ctx: LayerCtx, s: str | None, index: int) -> str | None:
    """Entry `index` of an initial state [layers*directions, batch, hidden] as [batch, hidden]."""
    if s is None:
        return None
    hidden = ctx.type(s).shape[2]
    return ctx.op("reshape", [ctx.op("slice", [s], axis=0, start=index, end=index + 1)], shape=(-1, hidden))


def _recurrent(kind: str):
    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        x = xs[0]
        n_states = 2 if kind == "lstm" else 1
        if len(xs) > 1 + n_states:
            ctx.fail(
                f"{kind} takes the sequence and at most {n_states} initial state"
                f"{'s (h0, c0)' if n_states == 2 else ' (h0)'}, got {len(xs)} tensors",
                expected=f"{kind}(x{', h0, c0' if n_states == 2 else ', h0'})",
            )
        seq, features = _seq_input(ctx, x, kind, static_seq=False)
        hidden, layers, dirs = a["hidden"], a["layers"], 2 if a["bidirectional"] else 1
        if hidden < 1 or layers < 1:
            ctx.fail(f"{kind} needs hidden >= 1 and layers >= 1, got hidden={hidden}, layers={layers}")
        fused = not isinstance(seq, int)
        if fused:
            _check_fused(ctx, kind, x, len(xs) > 1, a["bias"])
        elif seq < 1:
            ctx.fail(f"{kind} needs at least one time step, got {ctx.type(x)}")
        dt = ctx.type(x).dtype
        states = list(xs[1:]) + [None] * (1 + n_states - len(xs))
        for s in states:
            if s is None:
                continue
            st = ctx.type(s)
            want = (layers * dirs, ctx.type(x).shape[0], hidden)
            if st.shape != want or st.dtype != dt:
                ctx.fail(
                    f"{kind}: an initial state must be {dt}[{', '.join(map(str, want))}] "
                    "(layers*directions, batch, hidden), as in PyTorch, got " + str(st),
                    expected=f"{dt}[{', '.join(map(str, want))}]",
                )
        h0, c0 = states[0], states[1] if n_states == 2 else None
        gates = GATES[kind] * hidden
        act = a.get("nonlinearity", "tanh")
        init = a["init"]
        inp, width = x, features
        for layer_i in range(layers):
            outs = []
            for d in range(dirs):
                sfx = f"_l{layer_i}" + ("_reverse" if d else "")
                w = {
                    # PyTorch's default draws every weight from 1/sqrt(hidden); he/xavier use the
                    # matrix's own fan-in, the input width
                    "w_ih": ctx.param(
                        f"weight_ih{sfx}",
                        (gates, width),
                        init,
                        hidden if init == "default" else width,
                        gates,
                        like=x,
                    ),
                    "w_hh": ctx.param(f"weight_hh{sfx}", (gates, hidden), init, hidden, gates, like=x),
                    "b_ih": None,
                    "b_hh": None,
                }
                if a["bias"]:
                    binit = "default" if init == "default" else "zeros"
                    w["b_ih"] = ctx.param(f"bias_ih{sfx}", (gates,), binit, hidden, gates, like=x)
                    w["b_hh"] = ctx.param(f"bias_hh{sfx}", (gates,), binit, hidden, gates, like=x)
                idx = layer_i * dirs + d
                if fused:  # one ONNX LSTM/GRU/RNN node: any sequence length
                    ys = ctx.op("recurrent", [inp, *w.values()], kind=kind, reverse=d, activation=act)
                    outs.append(ys)
                    continue
                hs = unroll(
                    ctx, kind, inp, seq, hidden, w, bool(d), _state(ctx, h0, idx), _state(ctx, c0, idx), act
                )
                outs.append(hs)
            last = layer_i == layers - 1
            if last and not a["return_sequences"]:
                if fused:
                    at = lambda ys, d: ctx.op(
                        "slice", [ys], axis=1, start=0 if d else -1, end=1 if d else None
                    )  # noqa: E731
                    finals = [ctx.op("reshape", [at(ys, d)], shape=(0, -1)) for d, ys in enumerate(outs)]
                else:
                    finals = [hs[0] if d else hs[-1] for d, hs in enumerate(outs)]
                return finals[0] if dirs == 1 else ctx.op("concat", finals, axis=-1)
            if fused:
                seq_out = outs[0] if dirs == 1 else ctx.op("concat", outs, axis=-1)
            else:
                steps = [
                    ctx.op("concat", [hs[t] for hs in outs], axis=-1) if dirs == 2 else outs[0][t]
                    for t in range(seq)
                ]
                seq_out = stack_steps(ctx, steps)
            if not last and a["dropout"] and ctx.training:
                seq_out = _dropout(ctx, seq_out, a["dropout"])
            inp, width = seq_out, hidden * dirs
        return inp

    return build


def _check_fused(ctx: LayerCtx, kind: str, x: str, states: bool, bias: bool) -> None:
    """A symbolic sequence length: inference only, through the fused `recurrent` operator."""
    t = ctx.type(x)
    if ctx.training:
        ctx.fail(
            f"{kind} trains by unrolling over time and needs a fixed sequence length, but {t} has "
            f"'{t.shape[1]}' there",
            expected="a training input whose sequence length (dim 1) is a number, e.g. f32[batch, 8, 16]",
            hint="train with a fixed length; the same weights then run on any length in a model whose "
            "input is f32[batch, seq, ...]",
        )
    if states or not bias:
        ctx.fail(
            f"{kind} over a symbolic sequence length ({t}) runs as one ONNX {kind.upper()} node, which "
            "nngraph builds without initial states and with biases",
            expected=f"{kind}(x, hidden) with bias=true, or an input with a fixed sequence length",
        )


def _dropout(ctx: LayerCtx, x: str, p: float) -> str:
    return ctx.call("dropout", [x], p=p)


_RNN_ARGS = [
    A("hidden", "int", required=True),
    A("layers", "int", 1, limit=">= 1"),
    A("bidirectional", "bool", False),
    A("return_sequences", "bool", True),
    A("bias", "bool", True),
    A("dropout", "float", 0.0, limit="in [0, 1)"),
    A("init", "init", "default"),
]
_RNN_DOC = (
    "over [batch, seq, features] (a fixed seq unrolls and trains; a symbolic seq runs as one ONNX node, "
    "inference only); returns [batch, seq, hidden*directions], "
    "or [batch, hidden*directions] (the last state) with return_sequences=false. Optional initial "
    "state tensors [layers*directions, batch, hidden]. PyTorch's weight names, layout and gate order"
)
layer(
    "rnn",
    [*_RNN_ARGS, A("nonlinearity", "choice:tanh|relu", "tanh")],
    n_tensors=None,
    doc="Elman RNN " + _RNN_DOC,
)(_recurrent("rnn"))
layer("lstm", _RNN_ARGS, n_tensors=None, doc="LSTM (gates i, f, g, o) " + _RNN_DOC)(_recurrent("lstm"))
layer("gru", _RNN_ARGS, n_tensors=None, doc="GRU (gates r, z, n) " + _RNN_DOC)(_recurrent("gru"))


# ---- attention ---------------------------------------------------------------------------------


def _heads(ctx: LayerCtx, x: str, heads: int, d: int, perm: tuple[int, ...]) -> str:
    return ctx.op("transpose", [ctx.op("reshape", [x], shape=(0, 0, heads, d))], perm=perm)


def _attention(
    ctx: LayerCtx, x: str, mask: str | None, heads: int, causal: bool, p: float, init: str, prefix: str = ""
) -> str:
    """Multi-head self-attention on [batch, seq, E], as torch.nn.MultiheadAttention (batch_first)."""
    seq, e = _seq_input(ctx, x, "attention", static_seq=False)
    if heads < 1 or e % heads:
        ctx.fail(
            f"attention: {heads} heads must divide the model width {e}",
            expected=f"a number of heads that divides {e}",
        )
    d = e // heads
    w_init = init if init != "default" else "xavier_uniform"  # torch's choice for in_proj_weight
    w_in = ctx.param(f"{prefix}in_proj_weight", (3 * e, e), w_init, e, 3 * e, like=x)
    b_in = ctx.param(f"{prefix}in_proj_bias", (3 * e,), "zeros", like=x)
    w_out = ctx.param(f"{prefix}out_proj_weight", (e, e), init, e, e, like=x)
    b_out = ctx.param(f"{prefix}out_proj_bias", (e,), "zeros", like=x)
    qkv = linear(ctx, x, w_in, b_in)
    part = lambda k: ctx.op("slice", [qkv], axis=-1, start=k * e, end=(k + 1) * e)  # noqa: E731
    q = _heads(ctx, part(0), heads, d, (0, 2, 1, 3))  # [batch, heads, seq, d]
    k = _heads(ctx, part(1), heads, d, (0, 2, 3, 1))  # [batch, heads, d, seq]
    v = _heads(ctx, part(2), heads, d, (0, 2, 1, 3))
    scores = ctx.op("mul", [ctx.op("matmul", [q, k]), ctx.scalar(1.0 / math.sqrt(d), x)])
    if mask is not None:  # [batch, seq] with 1 for tokens to attend to, 0 for padding
        mt, xt = ctx.type(mask), ctx.type(x)
        want = f"{xt.dtype}[{xt.shape[0]}, {seq}]"
        if mt.shape != (xt.shape[0], seq) or mt.dtype != xt.dtype:
            ctx.fail(
                f"attention: the padding mask must be {want} (1 keeps a key, 0 masks it), got {mt}",
                expected=f"a mask {want}",
            )
        # a large finite penalty for masked keys: 1e9 overflows float16 (and 0 * inf is NaN)
        penalty = 1e4 if xt.dtype == "f16" else 1e9
        big = ctx.op("mul", [ctx.op("sub", [mask, ctx.scalar(1.0, x)]), ctx.scalar(penalty, x)])
        scores = ctx.op("add", [scores, ctx.op("unsqueeze", [big], axes=(1, 2))])
    if causal:
        scores = ctx.op("causal_fill", [scores], value=-math.inf)
    probs = ctx.op("softmax", [scores], axis=-1)
    if p and ctx.training:
        probs = _dropout(ctx, probs, p)
    context = ctx.op("transpose", [ctx.op("matmul", [probs, v])], perm=(0, 2, 1, 3))
    context = ctx.op("reshape", [context], shape=(0, 0, e))
    return linear(ctx, context, w_out, b_out)


@layer(
    "attention",
    [
        A("heads", "int", required=True, limit=">= 1"),
        A("causal", "bool", False),
        A("dropout", "float", 0.0, limit="in [0, 1)"),
        A("init", "init", "default"),
    ],
    n_tensors=None,
    doc="multi-head scaled dot-product self-attention over [batch, seq, E], as torch.nn.MultiheadAttention "
    "(in_proj_weight [3E, E], out_proj_weight [E, E]); causal=true masks later positions; an optional "
    "second tensor [batch, seq] masks padding keys (1 keep, 0 pad)",
)
def attention(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    if len(xs) > 2:
        ctx.fail(f"attention takes x and an optional padding mask, got {len(xs)} tensors")
    if not 0 <= a["dropout"] < 1:
        ctx.fail(f"attention dropout must be in [0, 1), got {a['dropout']}")
    return _attention(
        ctx, xs[0], xs[1] if len(xs) > 1 else None, a["heads"], a["causal"], a["dropout"], a["init"]
    )


# ---- positional encodings ---------------------------------------------------------------------


@layer(
    "positional",
    [
        A("kind", "choice:sinusoidal|learned", "sinusoidal"),
        A("max_len", "int", 512, limit=">= 1"),
        A("init", "init", "zeros"),
    ],
    doc="x + a position table over [batch, seq, E]: sinusoidal (fixed, any length) or learned "
    "(a [max_len, E] table, looked up by position)",
)
def positional(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    seq, e = _seq_input(ctx, x, "positional", static_seq=False)
    pos = ctx.op("positions", [x], axis=1)
    if a["kind"] == "sinusoidal":
        table = ctx.op("sinusoid", [pos], dim=e, dtype=ctx.type(x).dtype)
    else:
        if isinstance(seq, int) and seq > a["max_len"]:
            ctx.fail(
                f"positional: sequence length {seq} exceeds max_len={a['max_len']}",
                expected=f"max_len >= {seq}",
            )
        t = ctx.param("table", (a["max_len"], e), a["init"], e, a["max_len"], like=x)
        table = ctx.op("embedding", [t, pos])
    return ctx.op("add", [x, table])


# ---- transformer encoder block -----------------------------------------------------------------


def _norm(ctx: LayerCtx, x: str, name: str, eps: float) -> str:
    return ctx.call("layernorm", [x], name=name, eps=eps)


@layer(
    "transformer_encoder",
    [
        A("heads", "int", required=True, limit=">= 1"),
        A("ff", "int", 0, limit=">= 0"),  # 0: four times the width
        A("dropout", "float", 0.1, limit="in [0, 1)"),
        A("activation", "choice:relu|gelu", "relu"),
        A("norm_first", "bool", False),
        A("causal", "bool", False),
        A("eps", "float", 1e-5, limit="> 0"),
    ],
    n_tensors=None,
    doc="a transformer encoder layer over [batch, seq, E], as torch.nn.TransformerEncoderLayer "
    "(batch_first): self-attention and a feed-forward of width ff (default 4E), each with a residual, "
    "post-norm or norm_first (pre-norm); an optional second tensor is a padding mask [batch, seq]",
)
def transformer_encoder(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    if len(xs) > 2:
        ctx.fail(f"transformer_encoder takes x and an optional padding mask, got {len(xs)} tensors")
    x = xs[0]
    mask = xs[1] if len(xs) > 1 else None
    _, e = _seq_input(ctx, x, "transformer_encoder", static_seq=False)
    ff = a["ff"] or 4 * e
    p = a["dropout"]
    if not 0 <= p < 1:
        ctx.fail(f"transformer_encoder dropout must be in [0, 1), got {p}")
    drop = (lambda v: _dropout(ctx, v, p)) if p and ctx.training else (lambda v: v)  # noqa: E731

    def attn(v: str) -> str:
        return drop(_attention(ctx, v, mask, a["heads"], a["causal"], p, "default", "self_attn."))

    def feed(v: str) -> str:
        w1 = ctx.param("linear1.weight", (ff, e), "default", e, ff, like=x)
        b1 = ctx.param("linear1.bias", (ff,), "default", e, ff, like=x)
        w2 = ctx.param("linear2.weight", (e, ff), "default", ff, e, like=x)
        b2 = ctx.param("linear2.bias", (e,), "default", ff, e, like=x)
        h = drop(ctx.op(a["activation"], [linear(ctx, v, w1, b1)]))
        return drop(linear(ctx, h, w2, b2))

    if a["norm_first"]:
        x = ctx.op("add", [x, attn(_norm(ctx, x, "norm1", a["eps"]))])
        return ctx.op("add", [x, feed(_norm(ctx, x, "norm2", a["eps"]))])
    x = _norm(ctx, ctx.op("add", [x, attn(x)]), "norm1", a["eps"])
    return _norm(ctx, ctx.op("add", [x, feed(x)]), "norm2", a["eps"])


@layer(
    "last_step",
    [],
    doc="the last position of [batch, seq, features], as [batch, features]",
)
def last_step(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    t = ctx.type(x)
    if t.rank != 3:
        ctx.fail(f"last_step expects [batch, seq, features], got {t}", expected="a 3-D tensor")
    return ctx.op("reshape", [ctx.op("slice", [x], axis=1, start=-1, end=None)], shape=(0, -1))


@layer("mean_steps", [], doc="the mean over the positions of [batch, seq, features], as [batch, features]")
def mean_steps(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    (x,) = xs
    if ctx.type(x).rank != 3:
        ctx.fail(f"mean_steps expects [batch, seq, features], got {ctx.type(x)}", expected="a 3-D tensor")
    return ctx.op("reduce_mean", [x], axes=(1,), keepdims=0)
