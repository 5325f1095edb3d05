"""Losses, built from primitive operators like any other layer (mean over the batch); metrics.py
shares their input checks."""

from __future__ import annotations

from nngraph.core.types import FLOATS, INTS
from nngraph.layers.args import A
from nngraph.layers.registry import LayerCtx, layer


def class_inputs(ctx: LayerCtx, logits: str, labels: str, what: str) -> int:
    lt, yt = ctx.type(logits), ctx.type(labels)
    if lt.dtype not in FLOATS:
        ctx.fail(
            f"{what} needs float logits, got {lt}",
            expected="the model's raw scores, e.g. f32[batch, classes]",
        )
    if yt.dtype not in INTS:
        ctx.fail(
            f"{what} needs integer class labels, got {yt}",
            expected="labels such as i64[batch]",
            hint="for one-hot or probability targets use mse or binary_cross_entropy",
        )
    if lt.shape[:-1] != yt.shape:
        ctx.fail(
            f"{what}: logits {lt} and labels {yt} do not match",
            expected="labels shaped [" + ", ".join(map(str, lt.shape[:-1])) + "]",
        )
    c = lt.shape[-1]
    if not isinstance(c, int):
        ctx.fail(f"{what} needs a fixed number of classes, got {lt}")
    return c


def mean(ctx: LayerCtx, x: str) -> str:
    return ctx.op("reduce_mean", [x], axes=None, keepdims=0)


@layer(
    "cross_entropy",
    [A("label_smoothing", "float", 0.0)],
    n_tensors=2,
    doc="mean cross entropy of logits [..., C] against integer labels [...], as torch.nn.CrossEntropyLoss",
)
def cross_entropy(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    logits, labels = xs
    c = class_inputs(ctx, logits, labels, "cross_entropy")
    s = a["label_smoothing"]
    if not 0 <= s < 1:
        ctx.fail(f"label_smoothing must be in [0, 1), got {s}")
    logp = ctx.op("log_softmax", [logits], axis=-1)
    target = ctx.op("one_hot", [labels], depth=c, dtype=ctx.type(logits).dtype)
    if s:
        target = ctx.op(
            "add", [ctx.op("mul", [target, ctx.scalar(1 - s, logits)]), ctx.scalar(s / c, logits)]
        )
    picked = ctx.op("reduce_sum", [ctx.op("mul", [logp, target])], axes=(-1,), keepdims=0)
    return ctx.op("neg", [mean(ctx, picked)])


def pair(ctx: LayerCtx, pred: str, target: str, what: str) -> None:
    pt, tt = ctx.type(pred), ctx.type(target)
    if pt.shape != tt.shape or pt.dtype != tt.dtype:
        ctx.fail(
            f"{what}: prediction {pt} and target {tt} must have one shape and dtype",
            expected=f"a target {pt}",
        )


@layer(
    "binary_cross_entropy",
    [],
    n_tensors=2,
    doc="mean binary cross entropy of logits against 0/1 targets, as BCEWithLogitsLoss (numerically stable)",
)
def binary_cross_entropy(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    x, t = xs
    pair(ctx, x, t, "binary_cross_entropy")
    # max(x, 0) - x*t + log(1 + exp(-|x|))
    zero = ctx.scalar(0.0, x)
    soft = ctx.op(
        "log", [ctx.op("add", [ctx.scalar(1.0, x), ctx.op("exp", [ctx.op("neg", [ctx.op("abs", [x])])])])]
    )
    return mean(
        ctx, ctx.op("add", [ctx.op("sub", [ctx.op("maximum", [x, zero]), ctx.op("mul", [x, t])]), soft])
    )


@layer("mse", [], n_tensors=2, doc="mean squared error")
def mse(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    pair(ctx, *xs, "mse")
    d = ctx.op("sub", xs)
    return mean(ctx, ctx.op("mul", [d, d]))


@layer("l1", [], n_tensors=2, doc="mean absolute error")
def l1(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    pair(ctx, *xs, "l1")
    return mean(ctx, ctx.op("abs", [ctx.op("sub", xs)]))


@layer("huber", [A("delta", "float", 1.0)], n_tensors=2, doc="mean Huber loss, as torch.nn.HuberLoss")
def huber(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    pair(ctx, *xs, "huber")
    x = xs[0]
    d = ctx.op("abs", [ctx.op("sub", xs)])
    q = ctx.op("minimum", [d, ctx.scalar(a["delta"], x)])  # 0.5 q^2 + delta (d - q)
    quad = ctx.op("mul", [ctx.op("mul", [q, q]), ctx.scalar(0.5, x)])
    lin = ctx.op("mul", [ctx.op("sub", [d, q]), ctx.scalar(a["delta"], x)])
    return mean(ctx, ctx.op("add", [quad, lin]))


LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "l1", "huber")
