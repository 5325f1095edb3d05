"""attention and transformer_encoder over [batch, seq, E], as torch.nn.MultiheadAttention and
torch.nn.TransformerEncoderLayer (batch_first), with their parameter names and layout.

Attention works on any sequence length: the causal mask reads the length at run time. The
encoder block builds its layer norms, activation and dropouts with `ctx.call`. Its attention and
feed-forward stay helpers: `ctx.call("attention", name="self_attn")` would rename the dropout
noise inputs (`enc.noise` -> `enc.self_attn.noise`) of the training step, and `dense` keeps its
weight as [in, out] where `linear1.weight` is PyTorch's [out, in].
"""

from __future__ import annotations

import math

from nngraph.layers.args import A
from nngraph.layers.checks import seq_input
from nngraph.layers.registry import LayerCtx, layer
from nngraph.ops.recurrent import linear


def _heads(ctx: LayerCtx, x: str, heads: int, d: int, perm: tuple[int, ...]) -> str:
    return ctx.op("transpose", [ctx.op("reshape", [x], shape=(0, 0, heads, d))], perm=perm)


def _attention(
    ctx: LayerCtx, x: str, mask: str | None, heads: int, causal: bool, p: float, init: str, prefix: str = ""
) -> str:
    """Multi-head self-attention on [batch, seq, E], as torch.nn.MultiheadAttention (batch_first)."""
    seq, e = seq_input(ctx, x, "attention", static_seq=False)
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
    _, e = seq_input(ctx, x, "transformer_encoder", static_seq=False)
    ff = a["ff"] or 4 * e
    p = a["dropout"]
    if not 0 <= p < 1:
        ctx.fail(f"transformer_encoder dropout must be in [0, 1), got {p}")
    drop = (lambda v: ctx.call("dropout", [v], p=p)) if p and ctx.training else (lambda v: v)  # noqa: E731

    def norm(v: str, name: str) -> str:
        return ctx.call("layernorm", [v], name=name, eps=a["eps"])

    def attn(v: str) -> str:
        return drop(_attention(ctx, v, mask, a["heads"], a["causal"], p, "default", "self_attn."))

    def feed(v: str) -> str:
        w1 = ctx.param("linear1.weight", (ff, e), "default", e, ff, like=x)
        b1 = ctx.param("linear1.bias", (ff,), "default", e, ff, like=x)
        w2 = ctx.param("linear2.weight", (e, ff), "default", ff, e, like=x)
        b2 = ctx.param("linear2.bias", (e,), "default", ff, e, like=x)
        h = drop(ctx.call(a["activation"], [linear(ctx, v, w1, b1)]))
        return drop(linear(ctx, h, w2, b2))

    if a["norm_first"]:
        x = ctx.op("add", [x, attn(norm(x, "norm1"))])
        return ctx.op("add", [x, feed(norm(x, "norm2"))])
    x = norm(ctx.op("add", [x, attn(x)]), "norm1")
    return norm(ctx.op("add", [x, feed(x)]), "norm2")
