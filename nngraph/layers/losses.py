"""Losses, built from primitive operators like any other layer, with PyTorch's semantics and
names (torch.nn.CrossEntropyLoss, NLLLoss, KLDivLoss, BCEWithLogitsLoss, BCELoss, MSELoss,
L1Loss, HuberLoss, SmoothL1Loss, CosineEmbeddingLoss) and `reduction=mean|sum`; metrics.py
shares their input checks and the class-axis rule.

The class axis of logits against integer labels follows from the shapes: the last axis when the
labels are the logits' shape without it (`[batch, classes]`, a sequence model's
`[batch, t, classes]` against `[batch, t]`), axis 1 as in PyTorch when they are the shape
without axis 1 (a U-Net's `[batch, classes, h, w]` against `[batch, h, w]`). Where both fit
(every dim after the batch equal) `axis=` says which. Probability targets (float, shaped as the
logits) have their classes on axis 1 as in PyTorch unless `axis=` says otherwise.
"""

from __future__ import annotations

from nngraph.core.types import FLOATS, INTS
from nngraph.layers.args import A
from nngraph.layers.registry import LayerCtx, layer

REDUCTION = A("reduction", "choice:mean|sum", "mean")
AXIS = A("axis", "int", None)  # the class axis; by default found from the shapes (see above)


def _shape(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def class_axis(
    ctx: LayerCtx, logits: str, labels: str, what: str, axis: int | None = None
) -> tuple[int, int]:
    """(classes, class axis in [0, rank)) of float `logits` against integer `labels`."""
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
            hint=(
                f"declare the labels i64; for class probabilities give cross_entropy a float target {lt}"
                if what == "cross_entropy"
                else "declare the labels i64"
            ),
        )
    r = lt.rank
    if r == 0:
        ctx.fail(
            f"{what} needs logits with a class axis, got {lt}", expected="logits such as f32[batch, classes]"
        )

    def without(ax: int) -> tuple:
        return tuple(lt.shape[:ax]) + tuple(lt.shape[ax + 1 :])

    if axis is not None:
        if not -r <= axis < r:
            ctx.fail(
                f"{what}: axis {axis} is out of range for logits {lt}",
                expected=f"a class axis in [{-r}, {r - 1}]",
            )
        ax = axis % r
        if without(ax) != tuple(yt.shape):
            ctx.fail(
                f"{what}: logits {lt} with their classes on axis {axis} do not match labels {yt}",
                expected=f"labels shaped {_shape(without(ax))}",
            )
    else:
        candidates = list(dict.fromkeys([r - 1, 1 if r >= 2 else 0]))
        fits = [a for a in candidates if without(a) == tuple(yt.shape)]
        if not fits:
            wants = [f"{_shape(without(r - 1))} (the classes last)"]
            if r >= 3:
                wants.append(f"{_shape(without(1))} (the classes on axis 1, as in PyTorch)")
            ctx.fail(
                f"{what}: logits {lt} and labels {yt} do not match",
                expected="labels shaped " + " or ".join(wants),
            )
        if len(fits) > 1:
            ctx.fail(
                f"{what}: logits {lt} against labels {yt} may have their classes on axis 1 "
                "(PyTorch's [batch, classes, ...]) or last ([batch, t, classes]): the shapes cannot tell",
                expected=f"{what}(..., axis=1) or {what}(..., axis=-1)",
            )
        ax = fits[0]
    c = lt.shape[ax]
    if not isinstance(c, int):
        ctx.fail(f"{what} needs a fixed number of classes, got {lt}")
    return c, ax


def class_inputs(ctx: LayerCtx, logits: str, labels: str, what: str) -> int:
    """The number of classes of logits against labels (class_axis without the axis)."""
    return class_axis(ctx, logits, labels, what)[0]


def classes_last(ctx: LayerCtx, x: str, ax: int) -> str:
    """x with its axis `ax` moved to the end (nothing when it is there already)."""
    r = ctx.type(x).rank
    if ax == r - 1:
        return x
    return ctx.op("transpose", [x], perm=tuple([i for i in range(r) if i != ax] + [ax]))


def mean(ctx: LayerCtx, x: str) -> str:
    return ctx.op("reduce_mean", [x], axes=None, keepdims=0)


def total(ctx: LayerCtx, x: str) -> str:
    return ctx.op("reduce_sum", [x], axes=None, keepdims=0)


def reduce(ctx: LayerCtx, x: str, reduction: str) -> str:
    """The loss of elementwise values x: their mean or their sum."""
    return mean(ctx, x) if reduction == "mean" else total(ctx, x)


def weights(
    ctx: LayerCtx, values: list[float] | None, n: int | str, like: str, what: str, arg: str, one_ok: bool
) -> str | None:
    """A constant vector of `values` (n of them, or one where `one_ok`) in like's dtype, or None."""
    if values is None:
        return None
    if len(values) != n and not (one_ok and len(values) == 1):
        where = f"there are {n} classes" if not one_ok else f"{ctx.type(like)} has {n} along its last axis"
        ctx.fail(
            f"{what}: {arg} has {len(values)} value{'s' if len(values) != 1 else ''}, but {where}",
            expected=f"{arg}=[...] with {n} numbers" + (", or one number" if one_ok else ""),
        )
    return ctx.scalar(values, like)


def _picked(
    ctx: LayerCtx, logp: str, labels: str, c: int, a: dict, smoothing: float, what: str, safe: bool
) -> str:
    """-(the target class's log-probability) over classes-last logp, as nll_loss_nd: weighted by
    class `weight`, without the `ignore_index` positions, smoothed by `smoothing`, reduced."""
    dt = ctx.type(logp).dtype
    onehot = ctx.op("one_hot", [labels], depth=c, dtype=dt)
    w = weights(ctx, a["weight"], c, logp, what, "weight", one_ok=False)
    ignore = a["ignore_index"]
    if safe:  # NLLLoss gathers: a -inf log-probability of another class stays out of the sum
        logp = ctx.op(
            "where", [ctx.op("greater", [onehot, ctx.scalar(0.0, logp)]), logp, ctx.scalar(0.0, logp)]
        )
    if w is None and ignore is None:  # today's graph, which fuse_softmax_cross_entropy fuses
        target = onehot
        if smoothing:
            target = ctx.op(
                "add",
                [ctx.op("mul", [target, ctx.scalar(1 - smoothing, logp)]), ctx.scalar(smoothing / c, logp)],
            )
        picked = ctx.op("reduce_sum", [ctx.op("mul", [logp, target])], axes=(-1,), keepdims=0)
        return ctx.op("neg", [reduce(ctx, picked, a["reduction"])])
    # torch: (1 - s) * nll(weight, ignore_index) + s/C * sum(w_c * -logp) over kept rows, both
    # divided (mean) by the kept rows' target weights
    chosen = onehot if w is None else ctx.op("mul", [onehot, w])
    target = chosen
    if smoothing:
        spread = (
            ctx.scalar(smoothing / c, logp)
            if w is None
            else ctx.op("mul", [w, ctx.scalar(smoothing / c, logp)])
        )
        target = ctx.op("add", [ctx.op("mul", [chosen, ctx.scalar(1 - smoothing, logp)]), spread])
    if ignore is not None:
        drop = ctx.op("cast", [ctx.op("equal", [labels, ctx.scalar(ignore, labels)])], to=dt)
        keep = ctx.op("unsqueeze", [ctx.op("sub", [ctx.scalar(1.0, drop), drop])], axes=(-1,))
        target = ctx.op("mul", [target, keep])
        chosen = ctx.op("mul", [chosen, keep])
    loss = ctx.op("neg", [total(ctx, ctx.op("mul", [logp, target]))])
    if a["reduction"] == "sum":
        return loss
    return ctx.op("div", [loss, total(ctx, chosen)])


_CLASS_ARGS = [
    A("weight", "floats", None),
    A("ignore_index", "int", None),
    REDUCTION,
    AXIS,
]


@layer(
    "cross_entropy",
    [A("label_smoothing", "float", 0.0), *_CLASS_ARGS],
    n_tensors=2,
    doc="cross entropy of logits against integer labels or class probabilities, as torch.nn.CrossEntropyLoss",
)
def cross_entropy(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    logits, target = xs
    s = a["label_smoothing"]
    if not 0 <= s < 1:
        ctx.fail(f"label_smoothing must be in [0, 1), got {s}")
    lt, tt = ctx.type(logits), ctx.type(target)
    if tt.dtype in FLOATS and lt.dtype in FLOATS and tt.rank == lt.rank:  # else labels, declared float
        return _soft_cross_entropy(ctx, logits, target, a)
    c, ax = class_axis(ctx, logits, target, "cross_entropy", a["axis"])
    logp = ctx.op("log_softmax", [classes_last(ctx, logits, ax)], axis=-1)
    return _picked(ctx, logp, target, c, a, s, "cross_entropy", safe=False)


def _soft_cross_entropy(ctx: LayerCtx, logits: str, target: str, a: dict) -> str:
    """Probability targets: -sum_c w_c t_c log_softmax(x)_c, averaged over the positions."""
    lt, tt = ctx.type(logits), ctx.type(target)
    if tt.shape != lt.shape or tt.dtype != lt.dtype:
        ctx.fail(
            f"cross_entropy: logits {lt} and probability targets {tt} must have one shape and dtype",
            expected=f"targets {lt} (class probabilities), or integer class labels",
        )
    if a["ignore_index"] is not None:
        ctx.fail(
            "cross_entropy: ignore_index applies to integer class labels, not to probability targets",
            expected="integer labels with ignore_index, or probability targets without it",
        )
    r = lt.rank
    axis = a["axis"] if a["axis"] is not None else (1 if r >= 2 else 0)
    if r == 0 or not -r <= axis < r:
        ctx.fail(
            f"cross_entropy: axis {axis} is out of range for logits {lt}",
            expected=f"a class axis in [{-r}, {r - 1}]",
        )
    ax = axis % r
    c = lt.shape[ax]
    if not isinstance(c, int):
        ctx.fail(f"cross_entropy needs a fixed number of classes, got {lt} (classes on axis {axis})")
    logp = ctx.op("log_softmax", [classes_last(ctx, logits, ax)], axis=-1)
    t = classes_last(ctx, target, ax)
    s = a["label_smoothing"]
    if s:
        t = ctx.op("add", [ctx.op("mul", [t, ctx.scalar(1 - s, logits)]), ctx.scalar(s / c, logits)])
    w = weights(ctx, a["weight"], c, logits, "cross_entropy", "weight", one_ok=False)
    if w is not None:
        t = ctx.op("mul", [t, w])
    per = ctx.op("reduce_sum", [ctx.op("mul", [logp, t])], axes=(-1,), keepdims=0)
    return ctx.op("neg", [reduce(ctx, per, a["reduction"])])


@layer(
    "nll",
    _CLASS_ARGS,
    n_tensors=2,
    doc="negative log-likelihood of log-probabilities against integer labels, as torch.nn.NLLLoss",
)
def nll(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    logp, labels = xs
    c, ax = class_axis(ctx, logp, labels, "nll", a["axis"])
    return _picked(ctx, classes_last(ctx, logp, ax), labels, c, a, 0.0, "nll", safe=True)


def pair(ctx: LayerCtx, pred: str, target: str, what: str) -> None:
    pt, tt = ctx.type(pred), ctx.type(target)
    if pt.shape != tt.shape or pt.dtype != tt.dtype:
        ctx.fail(
            f"{what}: prediction {pt} and target {tt} must have one shape and dtype",
            expected=f"a target {pt}",
        )
    if pt.dtype not in FLOATS:
        ctx.fail(f"{what} needs float predictions and targets, got {pt}", expected="f16, f32 or f64 tensors")


def _safe_log(ctx: LayerCtx, p: str) -> str:
    """log(p) clamped to >= -100 as torch.nn.BCELoss, finite (and its gradient too) at p = 0."""
    positive = ctx.op("greater", [p, ctx.scalar(0.0, p)])
    inner = ctx.op("log", [ctx.op("where", [positive, p, ctx.scalar(1.0, p)])])
    floor = ctx.scalar(-100.0, p)
    return ctx.op("maximum", [ctx.op("where", [positive, inner, floor]), floor])


@layer(
    "binary_cross_entropy",
    [
        A("pos_weight", "floats", None),
        A("weight", "floats", None),
        A("from_logits", "bool", True),
        REDUCTION,
    ],
    n_tensors=2,
    doc="binary cross entropy against 0/1 (or probability) targets: of logits as BCEWithLogitsLoss "
    "(numerically stable), or of probabilities (from_logits=false) as BCELoss",
)
def binary_cross_entropy(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    x, t = xs
    pair(ctx, x, t, "binary_cross_entropy")
    xt = ctx.type(x)
    n = xt.shape[-1] if xt.rank else 1
    pw = weights(ctx, a["pos_weight"], n, x, "binary_cross_entropy", "pos_weight", one_ok=True)
    w = weights(ctx, a["weight"], n, x, "binary_cross_entropy", "weight", one_ok=True)
    one = ctx.scalar(1.0, x)
    if not a["from_logits"]:
        if pw is not None:
            ctx.fail(
                "binary_cross_entropy: pos_weight needs logits (as BCEWithLogitsLoss; BCELoss has none)",
                expected="from_logits=true with pos_weight, or no pos_weight",
            )
        # -(t log p + (1 - t) log(1 - p)), each log clamped to >= -100 as BCELoss
        pos = ctx.op("mul", [t, _safe_log(ctx, x)])
        neg = ctx.op("mul", [ctx.op("sub", [one, t]), _safe_log(ctx, ctx.op("sub", [one, x]))])
        per = ctx.op("neg", [ctx.op("add", [pos, neg])])
    else:
        zero = ctx.scalar(0.0, x)
        soft = ctx.op("log", [ctx.op("add", [one, ctx.op("exp", [ctx.op("neg", [ctx.op("abs", [x])])])])])
        if pw is None:  # max(x, 0) - x*t + log(1 + exp(-|x|))
            per = ctx.op("add", [ctx.op("sub", [ctx.op("maximum", [x, zero]), ctx.op("mul", [x, t])]), soft])
        else:  # (1 - t) x + (1 + (pw - 1) t) (log(1 + exp(-|x|)) + max(-x, 0))
            sp = ctx.op("add", [soft, ctx.op("maximum", [ctx.op("neg", [x]), zero])])
            scale = ctx.op("add", [one, ctx.op("mul", [ctx.op("sub", [pw, one]), t])])
            per = ctx.op("add", [ctx.op("mul", [ctx.op("sub", [one, t]), x]), ctx.op("mul", [scale, sp])])
    if w is not None:
        per = ctx.op("mul", [per, w])
    return reduce(ctx, per, a["reduction"])


@layer(
    "kl_div",
    [A("reduction", "choice:batchmean|mean|sum", "batchmean"), A("log_target", "bool", False)],
    n_tensors=2,
    doc="KL divergence of log-probabilities from target probabilities, as torch.nn.KLDivLoss "
    "(reduction batchmean by default: the sum over the batch size)",
)
def kl_div(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    x, t = xs
    pair(ctx, x, t, "kl_div")
    if a["log_target"]:  # exp(t) (t - x)
        per = ctx.op("mul", [ctx.op("exp", [t]), ctx.op("sub", [t, x])])
    else:  # xlogy(t, t) - t x: 0 where t = 0
        positive = ctx.op("greater", [t, ctx.scalar(0.0, t)])
        tlogt = ctx.op(
            "where",
            [
                positive,
                ctx.op("mul", [t, ctx.op("log", [ctx.op("where", [positive, t, ctx.scalar(1.0, t)])])]),
                ctx.scalar(0.0, t),
            ],
        )
        per = ctx.op("sub", [tlogt, ctx.op("mul", [t, x])])
    if a["reduction"] != "batchmean":
        return reduce(ctx, per, a["reduction"])
    if ctx.type(x).rank == 0:
        ctx.fail(
            f"kl_div: reduction=batchmean needs a batch axis, got {ctx.type(x)}", expected="reduction=sum"
        )
    rows = ctx.op("dim_size", [x], axes=(0,), dtype=ctx.type(x).dtype)
    return ctx.op("div", [total(ctx, per), rows])


@layer("mse", [REDUCTION], n_tensors=2, doc="mean squared error, as torch.nn.MSELoss")
def mse(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    pair(ctx, *xs, "mse")
    d = ctx.op("sub", xs)
    return reduce(ctx, ctx.op("mul", [d, d]), a["reduction"])


@layer("l1", [REDUCTION], n_tensors=2, doc="mean absolute error, as torch.nn.L1Loss")
def l1(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    pair(ctx, *xs, "l1")
    return reduce(ctx, ctx.op("abs", [ctx.op("sub", xs)]), a["reduction"])


@layer(
    "huber",
    [A("delta", "float", 1.0, limit="> 0"), REDUCTION],
    n_tensors=2,
    doc="Huber loss, as torch.nn.HuberLoss",
)
def huber(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    pair(ctx, *xs, "huber")
    x = xs[0]
    d = ctx.op("abs", [ctx.op("sub", xs)])
    q = ctx.op("minimum", [d, ctx.scalar(a["delta"], x)])  # 0.5 q^2 + delta (d - q)
    quad = ctx.op("mul", [ctx.op("mul", [q, q]), ctx.scalar(0.5, x)])
    lin = ctx.op("mul", [ctx.op("sub", [d, q]), ctx.scalar(a["delta"], x)])
    return reduce(ctx, ctx.op("add", [quad, lin]), a["reduction"])


@layer(
    "smooth_l1",
    [A("beta", "float", 1.0, limit=">= 0"), REDUCTION],
    n_tensors=2,
    doc="smooth L1 loss, as torch.nn.SmoothL1Loss (huber / beta; l1 at beta = 0)",
)
def smooth_l1(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    pair(ctx, *xs, "smooth_l1")
    x, beta = xs[0], a["beta"]
    d = ctx.op("abs", [ctx.op("sub", xs)])
    if beta == 0:
        return reduce(ctx, d, a["reduction"])
    q = ctx.op("minimum", [d, ctx.scalar(beta, x)])  # 0.5 q^2 / beta + (d - q)
    quad = ctx.op("mul", [ctx.op("mul", [q, q]), ctx.scalar(0.5 / beta, x)])
    return reduce(ctx, ctx.op("add", [quad, ctx.op("sub", [d, q])]), a["reduction"])


def _floats_alike(ctx: LayerCtx, x1: str, x2: str, what: str) -> None:
    t1, t2 = ctx.type(x1), ctx.type(x2)
    if t1.dtype not in FLOATS or t1.dtype != t2.dtype:
        ctx.fail(
            f"{what} needs two float tensors of one dtype, got {t1} and {t2}",
            expected="f16, f32 or f64 tensors",
        )


@layer(
    "cosine_similarity",
    [A("axis", "int", 1), A("eps", "float", 1e-8, limit="> 0")],
    n_tensors=2,
    doc="cosine of two tensors along an axis, as torch.nn.functional.cosine_similarity (dim=1)",
)
def cosine_similarity(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    x1, x2 = xs
    _floats_alike(ctx, x1, x2, "cosine_similarity")
    t1, t2 = ctx.type(x1), ctx.type(x2)
    if t1.rank != t2.rank:
        ctx.fail(
            f"cosine_similarity needs tensors of one rank, got {t1} and {t2}",
            expected=f"a second tensor of rank {t1.rank} (size-1 dims broadcast)",
        )
    r, axis = t1.rank, a["axis"]
    if not -r <= axis < r:
        ctx.fail(
            f"cosine_similarity: axis {axis} is out of range for {t1}",
            expected=f"an axis in [{-r}, {r - 1}]" if r else "tensors with at least one axis",
        )
    ax = axis % r
    eps2 = ctx.scalar(a["eps"] ** 2, x1)

    def unit(x: str) -> str:  # x / max(||x||, eps), as torch normalizes each first
        sq = ctx.op("reduce_sum", [ctx.op("mul", [x, x])], axes=(ax,), keepdims=1)
        return ctx.op("div", [x, ctx.op("sqrt", [ctx.op("maximum", [sq, eps2])])])

    return ctx.op("reduce_sum", [ctx.op("mul", [unit(x1), unit(x2)])], axes=(ax,), keepdims=0)


@layer(
    "cosine_embedding",
    [A("margin", "float", 0.0), REDUCTION],
    n_tensors=3,
    doc="cosine embedding loss of two inputs [..., D] and targets 1/-1 [...], as torch.nn.CosineEmbeddingLoss",
)
def cosine_embedding(ctx: LayerCtx, xs: list[str], a: dict) -> str:
    x1, x2, y = xs
    _floats_alike(ctx, x1, x2, "cosine_embedding")
    t1, t2, yt = ctx.type(x1), ctx.type(x2), ctx.type(y)
    if t1.shape != t2.shape:
        ctx.fail(
            f"cosine_embedding: inputs {t1} and {t2} must have one shape", expected=f"a second input {t1}"
        )
    if t1.rank == 0 or tuple(t1.shape[:-1]) != tuple(yt.shape):
        ctx.fail(
            f"cosine_embedding: inputs {t1} and targets {yt} do not match",
            expected=f"targets shaped {_shape(t1.shape[:-1])} holding 1 or -1",
        )
    if yt.dtype not in FLOATS and yt.dtype not in INTS:
        ctx.fail(f"cosine_embedding needs numeric targets 1 or -1, got {yt}", expected="i64 or f32 targets")

    def sq(u: str, v: str) -> str:
        return ctx.op("reduce_sum", [ctx.op("mul", [u, v])], axes=(-1,), keepdims=0)

    tiny = ctx.scalar(1e-12, x1)  # torch's EPSILON on each squared magnitude
    denom = ctx.op(
        "sqrt", [ctx.op("mul", [ctx.op("add", [sq(x1, x1), tiny]), ctx.op("add", [sq(x2, x2), tiny])])]
    )
    cos = ctx.op("div", [sq(x1, x2), denom])
    zero = ctx.scalar(0.0, x1)
    pos = ctx.op("sub", [ctx.scalar(1.0, x1), cos])
    neg = ctx.op("maximum", [ctx.op("sub", [cos, ctx.scalar(a["margin"], x1)]), zero])
    per = ctx.op(
        "add",
        [
            ctx.op("where", [ctx.op("equal", [y, ctx.scalar(1, y)]), pos, zero]),
            ctx.op("where", [ctx.op("equal", [y, ctx.scalar(-1, y)]), neg, zero]),
        ],
    )
    return reduce(ctx, per, a["reduction"])


LOSSES = (
    "cross_entropy",
    "nll",
    "binary_cross_entropy",
    "kl_div",
    "mse",
    "l1",
    "huber",
    "smooth_l1",
    "cosine_embedding",
)
