"""attention, transformer_encoder and transformer_decoder over [batch, seq, E], as
torch.nn.MultiheadAttention, torch.nn.TransformerEncoderLayer and torch.nn.TransformerDecoderLayer
(batch_first), with their parameter names and layout.

Attention works on any sequence length: the causal mask reads the lengths at run time. Its
tensors are told apart by position and rank: the queries x [batch, L, E] first, then no 3-D tensor
(self-attention), one (keys and values both from it: cross-attention over an encoder's output) or
two (keys [batch, S, kdim], then values [batch, S, vdim]), then at most one mask: a 2-D
[batch, S] padding mask (1 keep, 0 pad), or with mask=additive the last tensor, added to the
scores ([L, S] or [batch, L, S]). Keys and values of width E share torch's packed
in_proj_weight [3E, E]; other widths (torch's kdim/vdim) get q_proj_weight, k_proj_weight and
v_proj_weight, as torch names them.

The encoder and decoder blocks build their layer norms, activation and dropouts with `ctx.call`.
Their attention and feed-forward stay helpers: `ctx.call("attention", name="self_attn")` would
rename the dropout noise inputs (`enc.noise` -> `enc.self_attn.noise`) of the training step, and
`dense` keeps its weight as [in, out] where `linear1.weight` is PyTorch's [out, in].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nngraph.core.types import FLOATS
from nngraph.layers.args import A
from nngraph.layers.checks import seq_input
from nngraph.layers.registry import LayerCtx, layer
from nngraph.ops.recurrent import linear


@dataclass
class _Inputs:
    """What an attention call attends with: queries, keys, values and the masks."""

    x: str
    key: str
    value: str
    keep: str | None = None  # [batch, S], 1 keeps a key and 0 masks it
    additive: str | None = None  # added to the scores: [L, S] or [batch, L, S]


def _heads(ctx: LayerCtx, x: str, heads: int, d: int, perm: tuple[int, ...]) -> str:
    return ctx.op("transpose", [ctx.op("reshape", [x], shape=(0, 0, heads, d))], perm=perm)


def _check_source(ctx: LayerCtx, what: str, role: str, x: str, t: str) -> int:
    """A key or value tensor: float [batch, S, width] of x's dtype and batch; returns its width."""
    xt, tt = ctx.type(x), ctx.type(t)
    if tt.rank != 3 or tt.dtype != xt.dtype or tt.shape[0] != xt.shape[0]:
        ctx.fail(
            f"{what}: the {role} must be {xt.dtype}[{xt.shape[0]}, S, width] like the queries {xt}, got {tt}",
            expected=f"a 3-D {xt.dtype} tensor with the queries' batch dim",
        )
    w = tt.shape[2]
    if not isinstance(w, int):
        ctx.fail(
            f"{what} needs a fixed {role} width (last dim), but {tt} has '{w}' there",
            expected="a tensor whose last dim is a number",
        )
    return w


def _check_keep(ctx: LayerCtx, what: str, mask: str, x: str, key: str) -> None:
    mt, xt, kt = ctx.type(mask), ctx.type(x), ctx.type(key)
    want = f"{xt.dtype}[{xt.shape[0]}, {kt.shape[1]}]"
    if mt.shape != (xt.shape[0], kt.shape[1]) or mt.dtype != xt.dtype:
        ctx.fail(
            f"{what}: the padding mask must be {want} (1 keeps a key, 0 masks it), got {mt}",
            expected=f"a mask {want}",
            hint="an additive mask (added to the scores, [L, S] or [batch, L, S]) needs mask=additive"
            if mt.rank == 2 and mt.dtype in FLOATS
            else None,
        )


def _check_additive(ctx: LayerCtx, what: str, mask: str, x: str, key: str) -> None:
    mt, xt, kt = ctx.type(mask), ctx.type(x), ctx.type(key)
    b, n, s = xt.shape[0], xt.shape[1], kt.shape[1]
    forms = f"{xt.dtype}[{n}, {s}] or {xt.dtype}[{b}, {n}, {s}]"
    full = (b, n, s)[3 - mt.rank :] if mt.rank in (2, 3) else ()
    if (
        mt.dtype != xt.dtype
        or mt.rank not in (2, 3)
        or any(d != want and d != 1 for d, want in zip(mt.shape, full, strict=True))
    ):
        ctx.fail(
            f"{what}: the additive mask (mask=additive, the last tensor) must be {forms} "
            f"(queries x keys, a dim may be 1), got {mt}",
            expected=f"a float mask {forms}",
            hint="cast a bool mask first, e.g. (1 - cast(m, to=f32)) * -1e9"
            if mt.dtype not in FLOATS
            else None,
        )


def _inputs(ctx: LayerCtx, xs: list[str], mask_kind: str, what: str) -> _Inputs:
    """The roles of attention's tensors: x, then 0, 1 or 2 key/value tensors, then a mask."""
    x, rest = xs[0], list(xs[1:])
    keep = additive = None
    if mask_kind == "additive":
        if not rest:
            ctx.fail(
                f"{what}: mask=additive needs the mask as the last tensor",
                expected=f"{what}(x, ..., mask, mask=additive)",
            )
        additive = rest.pop()
    elif rest and ctx.type(rest[-1]).rank == 2:
        keep = rest.pop()
    if len(rest) > 2 or any(ctx.type(t).rank != 3 for t in rest):
        got = ", ".join(str(ctx.type(t)) for t in xs)
        ctx.fail(
            f"{what} takes the queries [batch, L, E], then keys and values [batch, S, width] (none, one "
            f"for both, or keys then values), then one mask; got {got}",
            expected=f"{what}(x), {what}(x, memory), {what}(x, keys, values), each with an optional mask last",
        )
    key = rest[0] if rest else x
    value = rest[-1] if rest else x
    for role, t in (("keys", key), ("values", value)):
        if t != x:
            _check_source(ctx, what, role, x, t)
    if ctx.type(key).shape[1] != ctx.type(value).shape[1]:
        ctx.fail(
            f"{what}: keys {ctx.type(key)} and values {ctx.type(value)} differ in length (dim 1)",
            expected="one value per key",
        )
    if keep is not None:
        _check_keep(ctx, what, keep, x, key)
    if additive is not None:
        _check_additive(ctx, what, additive, x, key)
    return _Inputs(x, key, value, keep, additive)


def _attention(
    ctx: LayerCtx,
    ins: _Inputs,
    heads: int,
    causal: bool,
    p: float,
    init: str,
    prefix: str = "",
    bias: bool = True,
    what: str = "attention",
) -> str:
    """Multi-head attention of the queries ins.x [batch, L, E] over ins.key / ins.value
    [batch, S, kdim / vdim], as torch.nn.MultiheadAttention (batch_first)."""
    x = ins.x
    _, e = seq_input(ctx, x, what, static_seq=False)
    if heads < 1 or e % heads:
        ctx.fail(
            f"{what}: {heads} heads must divide the model width {e}",
            expected=f"a number of heads that divides {e}",
        )
    d = e // heads
    kdim, vdim = ctx.type(ins.key).shape[2], ctx.type(ins.value).shape[2]
    w_init = init if init != "default" else "xavier_uniform"  # torch's choice for the in-projections
    b_in = ctx.param(f"{prefix}in_proj_bias", (3 * e,), "zeros", like=x) if bias else None
    b_part = lambda k: (  # noqa: E731
        ctx.op("slice", [b_in], axis=0, start=k * e, end=(k + 1) * e) if b_in is not None else None
    )
    if kdim == e and vdim == e:  # torch's packed in_proj_weight [3E, E]
        w_in = ctx.param(f"{prefix}in_proj_weight", (3 * e, e), w_init, e, 3 * e, like=x)
        if ins.key == x and ins.value == x:  # self-attention: one product for q, k and v
            qkv = linear(ctx, x, w_in, b_in)
            part = lambda k: ctx.op("slice", [qkv], axis=-1, start=k * e, end=(k + 1) * e)  # noqa: E731
            q, k, v = part(0), part(1), part(2)
        else:
            w_part = lambda k: ctx.op("slice", [w_in], axis=0, start=k * e, end=(k + 1) * e)  # noqa: E731
            q = linear(ctx, x, w_part(0), b_part(0))
            k = linear(ctx, ins.key, w_part(1), b_part(1))
            v = linear(ctx, ins.value, w_part(2), b_part(2))
    else:  # torch's kdim / vdim: one weight per projection
        w_q = ctx.param(f"{prefix}q_proj_weight", (e, e), w_init, e, e, like=x)
        w_k = ctx.param(f"{prefix}k_proj_weight", (e, kdim), w_init, kdim, e, like=x)
        w_v = ctx.param(f"{prefix}v_proj_weight", (e, vdim), w_init, vdim, e, like=x)
        q = linear(ctx, x, w_q, b_part(0))
        k = linear(ctx, ins.key, w_k, b_part(1))
        v = linear(ctx, ins.value, w_v, b_part(2))
    w_out = ctx.param(f"{prefix}out_proj_weight", (e, e), init, e, e, like=x)
    b_out = ctx.param(f"{prefix}out_proj_bias", (e,), "zeros", like=x) if bias else None
    q = _heads(ctx, q, heads, d, (0, 2, 1, 3))  # [batch, heads, L, d]
    k = _heads(ctx, k, heads, d, (0, 2, 3, 1))  # [batch, heads, d, S]
    v = _heads(ctx, v, heads, d, (0, 2, 1, 3))  # [batch, heads, S, d]
    scores = ctx.op("mul", [ctx.op("matmul", [q, k]), ctx.scalar(1.0 / math.sqrt(d), x)])
    if ins.keep is not None:
        # a large finite penalty for masked keys: 1e9 overflows float16 (and 0 * inf is NaN)
        penalty = 1e4 if ctx.type(x).dtype == "f16" else 1e9
        big = ctx.op("mul", [ctx.op("sub", [ins.keep, ctx.scalar(1.0, x)]), ctx.scalar(penalty, x)])
        scores = ctx.op("add", [scores, ctx.op("unsqueeze", [big], axes=(1, 2))])
    if ins.additive is not None:
        m = ins.additive
        if ctx.type(m).rank == 3:  # [batch, L, S] -> [batch, 1, L, S], one for all heads
            m = ctx.op("unsqueeze", [m], axes=(1,))
        scores = ctx.op("add", [scores, m])
    if causal:
        scores = ctx.op("causal_fill", [scores], value=-math.inf)
    probs = ctx.op("softmax", [scores], axis=-1)
    if p and ctx.training:
        probs = ctx.call("dropout", [probs], p=p)
    context = ctx.op("transpose", [ctx.op("matmul", [probs, v])], perm=(0, 2, 1, 3))
    context = ctx.op("reshape", [context], shape=(0, 0, e))
    return linear(ctx, context, w_out, b_out)


@layer(
    "attention",
    [
        A("heads", "int", required=True, limit=">= 1"),
        A("causal", "bool", False),
        A("dropout", "float", 0.0, limit="in [0, 1)"),
        A("bias", "bool", True),
        A("mask", "choice:keep|additive", "keep"),
        A("init", "init", "default"),
    ],
    n_tensors=None,
    doc="multi-head scaled dot-product attention over [batch, seq, E], as torch.nn.MultiheadAttention "
    "(in_proj_weight [3E, E], out_proj_weight [E, E]): self-attention of x, or cross-attention of x over "
    "one tensor (keys and values) or two (keys, values; other widths are torch's kdim/vdim); causal=true "
    "masks later positions; an optional last tensor masks: [batch, S] padding (1 keep, 0 pad), or with "
    "mask=additive a float [L, S] or [batch, L, S] added to the scores",
)
def attention(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    if not 0 <= a["dropout"] < 1:
        ctx.fail(f"attention dropout must be in [0, 1), got {a['dropout']}")
    ins = _inputs(ctx, xs, a["mask"], "attention")
    return _attention(ctx, ins, a["heads"], a["causal"], a["dropout"], a["init"], bias=a["bias"])


def _feed_forward(ctx: LayerCtx, v: str, x: str, e: int, ff: int, activation: str, drop) -> str:
    w1 = ctx.param("linear1.weight", (ff, e), "default", e, ff, like=x)
    b1 = ctx.param("linear1.bias", (ff,), "default", e, ff, like=x)
    w2 = ctx.param("linear2.weight", (e, ff), "default", ff, e, like=x)
    b2 = ctx.param("linear2.bias", (e,), "default", ff, e, like=x)
    h = drop(ctx.call(activation, [linear(ctx, v, w1, b1)]))
    return drop(linear(ctx, h, w2, b2))


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
    _, e = seq_input(ctx, x, "transformer_encoder", static_seq=False)
    mask = xs[1] if len(xs) > 1 else None
    if mask is not None:
        _check_keep(ctx, "transformer_encoder", mask, x, x)
    ff = a["ff"] or 4 * e
    p = a["dropout"]
    if not 0 <= p < 1:
        ctx.fail(f"transformer_encoder dropout must be in [0, 1), got {p}")
    drop = (lambda v: ctx.call("dropout", [v], p=p)) if p and ctx.training else (lambda v: v)  # noqa: E731

    def norm(v: str, name: str) -> str:
        return ctx.call("layernorm", [v], name=name, eps=a["eps"])

    def attn(v: str) -> str:
        ins = _Inputs(v, v, v, keep=mask)
        return drop(
            _attention(
                ctx, ins, a["heads"], a["causal"], p, "default", "self_attn.", what="transformer_encoder"
            )
        )

    def feed(v: str) -> str:
        return _feed_forward(ctx, v, x, e, ff, a["activation"], drop)

    if a["norm_first"]:
        x = ctx.op("add", [x, attn(norm(x, "norm1"))])
        return ctx.op("add", [x, feed(norm(x, "norm2"))])
    x = norm(ctx.op("add", [x, attn(x)]), "norm1")
    return norm(ctx.op("add", [x, feed(x)]), "norm2")


@layer(
    "transformer_decoder",
    [
        A("heads", "int", required=True, limit=">= 1"),
        A("ff", "int", 0, limit=">= 0"),  # 0: four times the width
        A("dropout", "float", 0.1, limit="in [0, 1)"),
        A("activation", "choice:relu|gelu", "relu"),
        A("norm_first", "bool", False),
        A("causal", "bool", True),
        A("eps", "float", 1e-5, limit="> 0"),
    ],
    n_tensors=None,
    doc="a transformer decoder layer over x [batch, L, E] and the encoder's output memory [batch, S, E], "
    "as torch.nn.TransformerDecoderLayer (batch_first): causal self-attention, cross-attention over memory "
    "and a feed-forward of width ff (default 4E), each with a residual, post-norm or norm_first (pre-norm); "
    "an optional third tensor is memory's padding mask [batch, S]",
)
def transformer_decoder(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    what = "transformer_decoder"
    if len(xs) not in (2, 3):
        ctx.fail(
            f"{what} takes x, the encoder's output (memory) and an optional padding mask of memory, "
            f"got {len(xs)} tensor{'s' if len(xs) != 1 else ''}",
            expected=f"{what}(x, memory, heads=...) or x | {what}(memory, keep, heads=...)",
        )
    x, memory = xs[0], xs[1]
    _, e = seq_input(ctx, x, what, static_seq=False)
    if _check_source(ctx, what, "memory", x, memory) != e:
        ctx.fail(
            f"{what}: memory {ctx.type(memory)} must have the width {e} of x {ctx.type(x)}",
            expected=f"memory [batch, S, {e}]",
            hint="project it first, e.g. memory | dense(" + str(e) + ")",
        )
    keep = xs[2] if len(xs) > 2 else None
    if keep is not None:
        _check_keep(ctx, what, keep, x, memory)
    ff = a["ff"] or 4 * e
    p = a["dropout"]
    if not 0 <= p < 1:
        ctx.fail(f"{what} dropout must be in [0, 1), got {p}")
    drop = (lambda v: ctx.call("dropout", [v], p=p)) if p and ctx.training else (lambda v: v)  # noqa: E731

    def norm(v: str, name: str) -> str:
        return ctx.call("layernorm", [v], name=name, eps=a["eps"])

    def self_attn(v: str) -> str:
        return drop(
            _attention(ctx, _Inputs(v, v, v), a["heads"], a["causal"], p, "default", "self_attn.", what=what)
        )

    def cross_attn(v: str) -> str:
        ins = _Inputs(v, memory, memory, keep=keep)
        return drop(_attention(ctx, ins, a["heads"], False, p, "default", "multihead_attn.", what=what))

    def feed(v: str) -> str:
        return _feed_forward(ctx, v, x, e, ff, a["activation"], drop)

    if a["norm_first"]:
        x = ctx.op("add", [x, self_attn(norm(x, "norm1"))])
        x = ctx.op("add", [x, cross_attn(norm(x, "norm2"))])
        return ctx.op("add", [x, feed(norm(x, "norm3"))])
    x = norm(ctx.op("add", [x, self_attn(x)]), "norm1")
    x = norm(ctx.op("add", [x, cross_attn(x)]), "norm2")
    return norm(ctx.op("add", [x, feed(x)]), "norm3")
