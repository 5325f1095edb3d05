"""Metrics: scalars a train section watches (metrics = [...]) and early stopping reads, built
like the losses (mean over the batch) and checked by the same rules."""

from __future__ import annotations

from nngraph.layers.args import A
from nngraph.layers.losses import class_inputs, mean, pair
from nngraph.layers.registry import LayerCtx, layer


@layer("accuracy", [], n_tensors=2, doc="fraction of rows whose largest logit is the label")
def accuracy(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    logits, labels = xs
    class_inputs(ctx, logits, labels, "accuracy")
    hit = ctx.op("equal", [ctx.op("argmax", [logits], axis=-1), ctx.op("cast", [labels], to="i64")])
    return mean(ctx, ctx.op("cast", [hit], to=ctx.type(logits).dtype))


@layer(
    "top_k_accuracy",
    [A("k", "int", 5)],
    n_tensors=2,
    doc="fraction of rows whose label is among the k largest logits",
)
def top_k_accuracy(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    logits, labels = xs
    c = class_inputs(ctx, logits, labels, "top_k_accuracy")
    if a["k"] < 1:
        ctx.fail(f"top_k_accuracy: k must be 1 or more, got {a['k']}", expected=f"k from 1 to {c - 1}")
    if a["k"] >= c:
        ctx.fail(f"top_k_accuracy(k={a['k']}) over {c} classes is always 1", expected=f"k from 1 to {c - 1}")
    dt = ctx.type(logits).dtype
    true = ctx.op(
        "reduce_sum",
        [ctx.op("mul", [logits, ctx.op("one_hot", [labels], depth=c, dtype=dt)])],
        axes=(-1,),
        keepdims=1,
    )
    above = ctx.op(
        "reduce_sum", [ctx.op("cast", [ctx.op("greater", [logits, true])], to=dt)], axes=(-1,), keepdims=0
    )
    return mean(ctx, ctx.op("cast", [ctx.op("less", [above, ctx.scalar(a["k"], logits)])], to=dt))


@layer("mae", [], n_tensors=2, doc="mean absolute error, as a metric")
def mae(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    pair(ctx, *xs, "mae")  # its own name in a mismatch, then the l1 loss it equals
    return ctx.call("l1", xs)


METRICS = ("accuracy", "top_k_accuracy", "mae")
LOWER_IS_BETTER = {"loss", "mae"}  # early stopping's direction for each
