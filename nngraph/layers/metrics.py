"""Metrics: scalars a train section watches (metrics = [...]) and early stopping reads, built
like the losses (one value per batch) and checked by the same rules: the class axis of logits
against labels is found as the losses find it (the last, or axis 1 as in PyTorch; `axis=` where
the shapes cannot tell), so a segmentation model's [batch, classes, h, w] scores count per pixel.

The trainer averages each metric over the batches weighted by their size, perplexity
geometrically (the exponential of the mean cross entropy). f1, precision and recall are macro
averages (sklearn's average="macro", zero_division=0) over the classes present in a batch's
labels or predictions; held-out figures are taken in batches of up to 512 samples."""

from __future__ import annotations

from nngraph.layers.args import A
from nngraph.layers.losses import AXIS, class_axis, classes_last, mean, pair
from nngraph.layers.registry import LayerCtx, layer


def _scores(ctx: LayerCtx, xs: list[str], what: str, axis: int | None) -> tuple[str, str, int]:
    """(classes-last logits, labels, classes)."""
    logits, labels = xs
    c, ax = class_axis(ctx, logits, labels, what, axis)
    return classes_last(ctx, logits, ax), labels, c


@layer("accuracy", [AXIS], n_tensors=2, doc="fraction of positions whose largest logit is the label")
def accuracy(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    logits, labels, _ = _scores(ctx, xs, "accuracy", a["axis"])
    hit = ctx.op("equal", [ctx.op("argmax", [logits], axis=-1), ctx.op("cast", [labels], to="i64")])
    return mean(ctx, ctx.op("cast", [hit], to=ctx.type(logits).dtype))


@layer(
    "top_k_accuracy",
    [A("k", "int", 5), AXIS],
    n_tensors=2,
    doc="fraction of positions whose label is among the k largest logits",
)
def top_k_accuracy(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    logits, labels, c = _scores(ctx, xs, "top_k_accuracy", a["axis"])
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


def _macro(ctx: LayerCtx, xs: list[str], a: dict, what: str) -> str:
    """The macro average over present classes of precision, recall or f1 of argmax predictions."""
    logits, labels, c = _scores(ctx, xs, what, a["axis"])
    dt = ctx.type(logits).dtype
    r = ctx.type(logits).rank
    rows = tuple(range(r - 1))

    def count(x: str) -> str:  # per class, over every position
        return ctx.op("reduce_sum", [x], axes=rows, keepdims=0) if rows else x

    truth = ctx.op("one_hot", [labels], depth=c, dtype=dt)
    guess = ctx.op("one_hot", [ctx.op("argmax", [logits], axis=-1)], depth=c, dtype=dt)
    tp, predicted, actual = count(ctx.op("mul", [truth, guess])), count(guess), count(truth)
    one = ctx.scalar(1.0, logits)
    below = {"precision": predicted, "recall": actual, "f1": ctx.op("add", [predicted, actual])}[what]
    top = ctx.op("add", [tp, tp]) if what == "f1" else tp  # f1 = 2 tp / (2 tp + fp + fn)
    per_class = ctx.op("div", [top, ctx.op("maximum", [below, one])])  # 0 where undefined
    present = ctx.op(
        "cast", [ctx.op("greater", [ctx.op("add", [predicted, actual]), ctx.scalar(0.0, logits)])], to=dt
    )
    return ctx.op(
        "div",
        [
            ctx.op("reduce_sum", [ctx.op("mul", [per_class, present])], axes=None, keepdims=0),
            ctx.op("reduce_sum", [present], axes=None, keepdims=0),
        ],
    )


@layer("f1", [AXIS], n_tensors=2, doc="macro F1 of the argmax predictions over the classes present")
def f1(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    return _macro(ctx, xs, a, "f1")


@layer("precision", [AXIS], n_tensors=2, doc="macro precision of the argmax predictions")
def precision(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    return _macro(ctx, xs, a, "precision")


@layer("recall", [AXIS], n_tensors=2, doc="macro recall of the argmax predictions")
def recall(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    return _macro(ctx, xs, a, "recall")


@layer(
    "perplexity",
    [A("ignore_index", "int", None), AXIS],
    n_tensors=2,
    doc="exp of the mean cross entropy, for language models (padding left out with ignore_index)",
)
def perplexity(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    _, ax = class_axis(ctx, *xs, "perplexity", a["axis"])  # its own name in a mismatch
    ce = ctx.call("cross_entropy", xs, ignore_index=a["ignore_index"], axis=ax)
    return ctx.op("exp", [ce])


@layer("mae", [], n_tensors=2, doc="mean absolute error, as a metric")
def mae(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    pair(ctx, *xs, "mae")  # its own name in a mismatch, then the l1 loss it equals
    return ctx.call("l1", xs)


METRICS = ("accuracy", "top_k_accuracy", "f1", "precision", "recall", "perplexity", "mae")
LOWER_IS_BETTER = {"loss", "mae", "perplexity"}  # early stopping's direction for each
GEOMETRIC = {"perplexity"}  # averaged over batches as exp(mean(log)): the exp of the mean cross entropy
