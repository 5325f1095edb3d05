"""Normalization (batchnorm in inference and training form, layernorm, rmsnorm, groupnorm,
instancenorm) and dropout (the identity at inference)."""

from __future__ import annotations

import numpy as np

from nngraph.core.types import TensorType
from nngraph.errors import ShapeError
from nngraph.ops.common import need_float, need_rank, randn, same_dtype
from nngraph.ops.identities import passthrough
from nngraph.ops.registry import NO_GRADIENT, REQUIRED, Op, Sample, Style, register


def _need_params(what: str, x: TensorType, params: list[TensorType], names: tuple[str, ...], shape) -> None:
    """Each given parameter (optional ones may be absent) has `shape`, the part of x it matches."""
    shape = tuple(shape)
    want = f"[{','.join(map(str, shape))}]"
    for name, p in zip(names, params, strict=False):
        if p.shape != shape:
            raise ShapeError(
                f"'{what}' {name} must be {want} to match {x}, got {p}",
                expected=f"1-D parameters of length {shape[0]}" if len(shape) == 1 else f"parameters {want}",
            )


def _bn_infer(what: str, params: tuple[str, ...]):
    """The shape rule of a batchnorm over channel axis 1 with these per-channel parameters."""

    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        x = ts[0]
        need_rank(x, (2, 3, 4), what, "[batch, channels, ...]")
        need_float(x, what)
        same_dtype(ts, what)
        _need_params(what, x, ts[1:], params, (x.shape[1],))
        return x

    return infer


def _batchnorm_ref(xs, attrs):
    x, scale, bias, mean, var = (a.astype(np.float64) for a in xs)
    col = lambda a: a.reshape(-1, *[1] * (x.ndim - 2))
    return ((x - col(mean)) / np.sqrt(col(var) + attrs["eps"]) * col(scale) + col(bias)).astype(xs[0].dtype)


def _batchnorm_samples(rng: np.random.Generator) -> list[Sample]:
    def s(shape, **attrs):
        c = shape[1]
        params = (randn(rng, c), randn(rng, c), randn(rng, c), np.abs(randn(rng, c)) + 0.5)
        return Sample((3 * randn(rng, *shape) + 1, *params), attrs)

    return [s((4, 3)), s((2, 5, 6)), s((2, 3, 4, 5)), s((1, 2, 3, 3), eps=1e-3)]


def _batchnorm_grad(c, g):
    """Inference form: the statistics are constants, so y is affine in x; none flows to mean and var."""
    x, scale, bias, mean, var = c.x
    r = x.type.rank
    col = lambda v: v.f("reshape", shape=(-1,) + (1,) * (r - 2))  # [C] against [N, C, ...]
    inv = 1 / (var + c.attrs["eps"]).f("sqrt")
    axes = [0, *range(2, r)]
    xhat = (x - col(mean)) * col(inv)
    return [g * col(scale * inv), (g * xhat).sum(axes), g.sum(axes), None, None]


BATCHNORM = register(
    Op(
        name="batchnorm",
        inputs=("x", "scale", "bias", "mean", "var"),
        attrs={"eps": 1e-5},
        infer=_bn_infer("batchnorm", ("scale", "bias", "mean", "var")),
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
            "BatchNormalization", xs, epsilon=float(attrs["eps"])
        ),
        reference=_batchnorm_ref,
        samples=_batchnorm_samples,
        style=Style("norm", "batchnorm"),
        doc="(x - mean) / sqrt(var + eps) * scale + bias over channel axis 1, running statistics given",
        grad=_batchnorm_grad,
        no_grad_inputs=(3, 4),  # the running mean and variance
    )
)


# ---- batch norm on batch statistics: made by the fuse_batchnorm_train pass ----------------------
#
# batchnorm_train(x, scale, bias, mean, var) takes x's own batch mean and (biased) variance, which
# the graph computes anyway for the running statistics: ONNX BatchNormalization in inference form
# then normalizes with them, in one node that every provider runs alike. (Training mode would
# compute them a second time; and versions of onnxruntime's CUDA kernel take the training path
# only when the five outputs of opset <= 13 are asked for, so with opset 15's three they normalize
# with the mean and variance inputs.) Its gradient is the closed form through the statistics, so
# mean and var take none: they must be x's (the pass guarantees it).
# The batchnorm layer's x here is its input less one value per channel (channel_shift, below),
# which normalizes alike and keeps the statistics and xc = x - mean precise where x lies far from 0.


def _bn_train_ref(xs, attrs):
    """As the operator means it: the statistics are x's own, whatever mean and var say."""
    x, scale, bias = (a.astype(np.float64) for a in xs[:3])
    axes = (0, *range(2, x.ndim))
    col = lambda a: a.reshape(-1, *[1] * (x.ndim - 2))
    z = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + attrs["eps"])
    return (z * col(scale) + col(bias)).astype(xs[0].dtype)


def _bn_train_samples(rng: np.random.Generator) -> list[Sample]:
    def s(shape, **attrs):
        c = shape[1]
        x = 3 * randn(rng, *shape) + 1
        axes = (0, *range(2, len(shape)))
        stats = (x.mean(axes).astype(x.dtype), x.var(axes).astype(x.dtype))
        return Sample((x, randn(rng, c), randn(rng, c), *stats), attrs)

    return [s((6, 3)), s((2, 5, 6)), s((2, 3, 4, 5)), s((3, 2, 3, 3), eps=1e-3)]


def _bn_train_grad(c, g):
    """The closed form, as PyTorch's: dx = scale * rstd * (g - mean(g) - xhat * mean(g * xhat)),
    means over every axis but the channels, with xhat = (x - mean(x)) * rstd. Written so that only
    a few passes run over the full tensor: sum(g) and sum(g * xc) (xc = x - mean(x), shared with the
    forward statistics), then dx = k * (g - mean(g) - xc * (mean(g * xc) / (var + eps)))."""
    x, scale, _, mean, var = c.x
    r = x.type.rank
    axes = [0, *range(2, r)]
    col = lambda v: v.f("reshape", shape=(1, -1) + (1,) * (r - 2))
    xc = x - col(mean)
    shifted = col(var) + c.attrs["eps"]
    rstd = 1 / shifted.f("sqrt")
    n = x.f("dim_size", axes=tuple(axes), dtype=x.type.dtype)
    sum_g, sum_gxc = g.sum(axes, keepdims=1), (g * xc).sum(axes, keepdims=1)
    mean_g, coef = sum_g / n, (sum_gxc / n) / shifted
    gx = (rstd * col(scale)) * (g - mean_g - xc * coef)
    shape = (x.type.shape[1],)
    return [gx, (sum_gxc * rstd).f("reshape", shape=shape), sum_g.f("reshape", shape=shape), None, None]


BATCHNORM_TRAIN = register(
    Op(
        name="batchnorm_train",
        inputs=("x", "scale", "bias", "mean", "var"),
        attrs={"eps": 1e-5},
        infer=_bn_infer("batchnorm_train", ("scale", "bias", "mean", "var")),
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
            "BatchNormalization", xs, epsilon=float(attrs["eps"])
        ),
        reference=_bn_train_ref,
        samples=_bn_train_samples,
        style=Style("norm", "batchnorm"),
        doc="(x - mean) / sqrt(var + eps) * scale + bias, where mean and var are x's own (biased) "
        "statistics over all axes but 1",
        grad=_bn_train_grad,
        internal=True,
    )
)


# ---- the shift that keeps batch statistics accurate ---------------------------------------------
#
# The batchnorm layer takes its batch mean as k + mean(x - k), k = channel_shift(x) one value of each
# channel: for data far from 0 (x = 300 + N(0, 1)) a mean of x itself, summed in f32, is off by
# ~1e-4 of the spread, which shifts every normalized value alike and so the gradients downstream,
# where x - k is exact and its mean accurate to the spread's own rounding. The statistics do not
# depend on k, so it takes no gradient.


def _shift_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x = ts[0]
    if x.rank < 2:
        raise ShapeError(f"'channel_shift' needs [batch, channels, ...], got {x}", expected="rank >= 2")
    need_float(x, "channel_shift")
    return x.with_shape((1, x.shape[1]) + (1,) * (x.rank - 2))


def _shift_lower(ctx, xs, attrs, in_types, out_type):
    axes = [0, *range(2, in_types[0].rank)]
    n = len(axes)
    return ctx.emit("Slice", [xs[0], ctx.ints([0] * n), ctx.ints([1] * n), ctx.ints(axes)])


CHANNEL_SHIFT = register(
    Op(
        name="channel_shift",
        inputs=("x",),
        attrs={},
        infer=_shift_infer,
        lower=_shift_lower,
        reference=lambda xs, attrs: xs[0][(slice(0, 1), slice(None)) + (slice(0, 1),) * (xs[0].ndim - 2)],
        samples=lambda rng: [
            Sample((randn(rng, 4, 3),)),
            Sample((randn(rng, 2, 3, 5),)),
            Sample((randn(rng, 2, 3, 4, 4, dtype=np.float64),)),
        ],
        style=Style("norm", "shift"),
        doc="x[:1, :, :1, ...]: one value per channel, the shift batch statistics are taken from",
        grad=NO_GRADIENT,
        internal=True,
    )
)


def _trailing(x: TensorType, attrs: dict, what: str) -> int:
    """The number of trailing axes normalized over (attribute `axes`), checked against x."""
    k = attrs["axes"]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= x.rank:
        raise ShapeError(
            f"'{what}' normalizes over the last axes={k!r} axes, but {x} has {x.rank}",
            expected=f"axes from 1 to {x.rank}",
        )
    return k


def _need_eps(attrs: dict, what: str) -> None:
    eps = attrs["eps"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ShapeError(f"'{what}' eps must be a number > 0, got {eps!r}", expected="eps > 0, e.g. 1e-5")


def _layernorm_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x = ts[0]
    if x.rank < 1:
        raise ShapeError(f"'layernorm' needs a tensor of rank >= 1, got {x}", expected="[..., features]")
    need_float(x, "layernorm")
    same_dtype(ts, "layernorm")
    k = _trailing(x, attrs, "layernorm")
    _need_params("layernorm", x, ts[1:], ("scale", "bias"), x.shape[x.rank - k :])
    return x


def _layernorm_ref(xs, attrs):
    x, scale, bias = (a.astype(np.float64) for a in xs)
    ax = tuple(range(x.ndim - attrs["axes"], x.ndim))
    z = (x - x.mean(ax, keepdims=True)) / np.sqrt(x.var(ax, keepdims=True) + attrs["eps"])
    return (z * scale + bias).astype(xs[0].dtype)


def _layernorm_samples(rng: np.random.Generator) -> list[Sample]:
    def s(*shape, dtype=np.float32, **attrs):
        p = shape[len(shape) - attrs.get("axes", 1) :]
        params = (randn(rng, *p, dtype=dtype), randn(rng, *p, dtype=dtype))
        return Sample((2 * randn(rng, *shape, dtype=dtype) + 1, *params), attrs)

    return [
        s(4, 8),
        s(2, 3, 5),
        s(2, 2, 3, 6),
        s(7, eps=1e-3),
        s(2, 3, 5, axes=2),
        s(2, 2, 3, 4, axes=3, dtype=np.float64),
        s(3, 4, axes=2),
    ]


def _layernorm_grad(c, g):
    """dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)) with gh = g * scale, means over the
    normalized (last `axes`) axes; the parameters' gradients sum over the leading ones."""
    x, scale, _ = c.x
    r, k = x.type.rank, c.attrs["axes"]
    last = list(range(r - k, r))
    xc = x - x.mean(last, keepdims=1)
    rstd = 1 / ((xc * xc).mean(last, keepdims=1) + c.attrs["eps"]).f("sqrt")
    xhat = xc * rstd
    gh = g * scale
    gx = rstd * (gh - gh.mean(last, keepdims=1) - xhat * (gh * xhat).mean(last, keepdims=1))
    lead = range(r - k)
    return [gx, (g * xhat).sum(lead), g.sum(lead)]


LAYERNORM = register(
    Op(
        name="layernorm",
        inputs=("x", "scale", "bias"),
        attrs={"eps": 1e-5, "axes": 1},
        infer=_layernorm_infer,
        lower=lambda ctx, xs, attrs, in_types, out_type: ctx.emit(
            "LayerNormalization", xs, axis=-attrs["axes"], epsilon=float(attrs["eps"])
        ),
        reference=_layernorm_ref,
        samples=_layernorm_samples,
        style=Style("norm", "layernorm"),
        doc="normalize over the last `axes` axes to mean 0 / variance 1, then scale and shift",
        grad=_layernorm_grad,
    )
)


# ---- rmsnorm: x / sqrt(mean(x^2) + eps) * scale over the last `axes` axes (torch.nn.RMSNorm) ----


def _rmsnorm_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    x = ts[0]
    if x.rank < 1:
        raise ShapeError(f"'rmsnorm' needs a tensor of rank >= 1, got {x}", expected="[..., features]")
    need_float(x, "rmsnorm")
    same_dtype(ts, "rmsnorm")
    _need_eps(attrs, "rmsnorm")
    k = _trailing(x, attrs, "rmsnorm")
    _need_params("rmsnorm", x, ts[1:], ("scale",), x.shape[x.rank - k :])
    return x


def _rmsnorm_lower(ctx, xs, attrs, in_types, out_type):
    r, k = in_types[0].rank, attrs["axes"]
    eps = ctx.const(np.asarray(attrs["eps"], out_type.np_dtype))
    ms = ctx.emit("ReduceMean", [ctx.emit("Mul", [xs[0], xs[0]])], axes=list(range(r - k, r)), keepdims=1)
    y = ctx.emit("Div", [xs[0], ctx.emit("Sqrt", [ctx.emit("Add", [ms, eps])])])
    return ctx.emit("Mul", [y, xs[1]]) if len(xs) > 1 else y


def _rmsnorm_ref(xs, attrs):
    x = xs[0].astype(np.float64)
    ax = tuple(range(x.ndim - attrs["axes"], x.ndim))
    y = x / np.sqrt(np.mean(x * x, axis=ax, keepdims=True) + attrs["eps"])
    if len(xs) > 1:
        y = y * xs[1].astype(np.float64)
    return y.astype(xs[0].dtype)


def _rmsnorm_samples(rng: np.random.Generator) -> list[Sample]:
    def s(*shape, dtype=np.float32, affine=True, **attrs):
        attrs = {"eps": 1e-6, **attrs}
        p = shape[len(shape) - attrs.get("axes", 1) :]
        x = 2 * randn(rng, *shape, dtype=dtype) + 0.5
        return Sample((x, randn(rng, *p, dtype=dtype)) if affine else (x,), attrs)

    return [
        s(4, 8),
        s(2, 3, 5, axes=2),
        s(2, 3, 4, affine=False),
        s(3, 2, 6, eps=1e-3, dtype=np.float64),
        s(5, eps=0.1, affine=False, dtype=np.float64),
    ]


def _rmsnorm_grad(c, g):
    """With rstd = 1 / sqrt(mean(x^2) + eps) and gh = g * scale: dx = rstd * (gh - x * rstd^2 *
    mean(gh * x)), means over the normalized axes; dscale = sum of g * x * rstd over the others."""
    x = c.x[0]
    r, k = x.type.rank, c.attrs["axes"]
    last = list(range(r - k, r))
    rstd = 1 / ((x * x).mean(last, keepdims=1) + c.attrs["eps"]).f("sqrt")
    gh = g * c.x[1] if len(c.x) > 1 else g
    gx = rstd * (gh - x * (rstd * rstd) * (gh * x).mean(last, keepdims=1))
    if len(c.x) == 1:
        return [gx]
    return [gx, (g * (x * rstd)).sum(range(r - k))]


RMSNORM = register(
    Op(
        name="rmsnorm",
        inputs=("x", "scale?"),
        attrs={"eps": REQUIRED, "axes": 1},
        infer=_rmsnorm_infer,
        lower=_rmsnorm_lower,  # ONNX's RMSNormalization is opset 23
        reference=_rmsnorm_ref,
        samples=_rmsnorm_samples,
        style=Style("norm", "rmsnorm"),
        doc="x / sqrt(mean(x^2) + eps) over the last `axes` axes, times an optional scale",
        grad=_rmsnorm_grad,
        attr_kinds={"eps": "float"},
    )
)


# ---- groupnorm and instancenorm: statistics per sample over groups of channels -----------------
#
# x[N, C, ...] is viewed as [N, G, C/G * ...] (instancenorm: G = C); each row is normalized to mean 0
# and (biased) variance 1, then the optional per-channel scale and bias apply. ONNX's
# GroupNormalization is opset 18 (and redefined in 21), so the lowering is primitives, which also
# run in f64 where onnxruntime's InstanceNormalization does not.


def _groups_view(name: str):
    """The reshape target that puts each group in a row: [0, G, -1] (0 copies the batch dim)."""
    if name == "instancenorm":
        return lambda attrs: (0, 0, -1)
    return lambda attrs: (0, attrs["groups"], -1)


def _group_infer(name: str, ranks: tuple[int, ...] | None, layout: str):
    """The shape rule; ranks None: any rank from 2."""

    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        x = ts[0]
        if ranks is not None:
            need_rank(x, ranks, name, layout)
        elif x.rank < 2:
            raise ShapeError(
                f"'{name}' expects {layout}, got {x.rank}-D {x}", expected="a tensor of rank 2 or more"
            )
        need_float(x, name)
        same_dtype(ts, name)
        _need_eps(attrs, name)
        if len(ts) == 2:
            raise ShapeError(f"'{name}' takes a scale and a bias, or neither, got only {ts[1]}")
        c = x.shape[1]
        if name == "groupnorm":
            g = attrs["groups"]
            if isinstance(g, bool) or not isinstance(g, int) or g < 1:
                raise ShapeError(
                    f"'groupnorm' groups must be an integer >= 1, got {g!r}", expected="groups >= 1"
                )
            if isinstance(c, int) and c % g:
                raise ShapeError(
                    f"'groupnorm' splits the {c} channels of {x} into {g} groups, but {c} is not divisible by {g}",
                    expected="a channel count (dim 1) divisible by groups",
                )
        _need_params(name, x, ts[1:], ("scale", "bias"), (c,))
        return x

    return infer


def _group_lower(name: str):
    view = _groups_view(name)

    def lower(ctx, xs, attrs, in_types, out_type):
        x, t = xs[0], in_types[0]
        xr = ctx.emit("Reshape", [x, ctx.ints(list(view(attrs)), "shape")])
        xc = ctx.emit("Sub", [xr, ctx.emit("ReduceMean", [xr], axes=[2], keepdims=1)])
        var = ctx.emit("ReduceMean", [ctx.emit("Mul", [xc, xc])], axes=[2], keepdims=1)
        eps = ctx.const(np.asarray(attrs["eps"], out_type.np_dtype))
        z = ctx.emit("Div", [xc, ctx.emit("Sqrt", [ctx.emit("Add", [var, eps])])])
        y = ctx.emit("Reshape", [z, ctx.emit("Shape", [x])])
        if len(xs) == 1:
            return y
        col = ctx.ints([-1] + [1] * (t.rank - 2), "shape")
        scale, bias = (ctx.emit("Reshape", [p, col]) for p in xs[1:])
        return ctx.emit("Add", [ctx.emit("Mul", [y, scale]), bias])

    return lower


def _group_ref(name: str):
    def ref(xs, attrs):
        x = xs[0].astype(np.float64)
        g = x.shape[1] if name == "instancenorm" else attrs["groups"]
        xr = x.reshape(x.shape[0], g, -1)
        z = (xr - xr.mean(2, keepdims=True)) / np.sqrt(xr.var(2, keepdims=True) + attrs["eps"])
        y = z.reshape(x.shape)
        if len(xs) > 1:
            col = lambda a: a.astype(np.float64).reshape(-1, *[1] * (x.ndim - 2))
            y = y * col(xs[1]) + col(xs[2])
        return y.astype(xs[0].dtype)

    return ref


def _group_grad(name: str):
    view = _groups_view(name)

    def grad(c, g):
        """The layernorm closed form on the [N, G, M] view: dx = rstd * (gh - mean(gh) - xhat *
        mean(gh * xhat)), means over each group's row, gh = g * scale; dscale = sum(g * xhat) and
        dbias = sum(g) over every axis but the channels."""
        x = c.x[0]
        r = x.type.rank
        shape = view(c.attrs)
        xr = x.f("reshape", shape=shape)
        xc = xr - xr.mean([2], keepdims=1)
        rstd = 1 / ((xc * xc).mean([2], keepdims=1) + c.attrs["eps"]).f("sqrt")
        xhat = xc * rstd
        col = lambda v: v.f("reshape", shape=(-1,) + (1,) * (r - 2))
        gh = (g * col(c.x[1]) if len(c.x) > 1 else g).f("reshape", shape=shape)
        gxr = rstd * (gh - gh.mean([2], keepdims=1) - xhat * (gh * xhat).mean([2], keepdims=1))
        gx = gxr.f("reshape_like", x)
        if len(c.x) == 1:
            return [gx]
        axes = [0, *range(2, r)]
        return [gx, (g * xhat.f("reshape_like", x)).sum(axes), g.sum(axes)]

    return grad


def _group_samples(name: str):
    def samples(rng: np.random.Generator) -> list[Sample]:
        def s(shape, affine=True, dtype=np.float32, **attrs):
            x = 3 * randn(rng, *shape, dtype=dtype) + 1
            c = shape[1]
            params = (randn(rng, c, dtype=dtype), randn(rng, c, dtype=dtype)) if affine else ()
            return Sample((x, *params), attrs)

        if name == "instancenorm":
            return [
                s((2, 3, 5)),
                s((2, 3, 4, 4), affine=False),
                s((3, 2, 3, 3), dtype=np.float64, eps=1e-3),
                s((1, 4, 6), affine=False, dtype=np.float64),
            ]
        return [
            s((2, 6, 4, 4), groups=3),
            s((3, 4), groups=2),
            s((2, 6, 5), affine=False, groups=6),
            s((2, 4, 3, 3), dtype=np.float64, groups=1, eps=1e-3),
            s((2, 4, 2, 3, 2), groups=2),
        ]

    return samples


GROUPNORM = register(
    Op(
        name="groupnorm",
        inputs=("x", "scale?", "bias?"),
        attrs={"groups": REQUIRED, "eps": 1e-5},
        infer=_group_infer("groupnorm", None, "[batch, channels, ...]"),
        lower=_group_lower("groupnorm"),
        reference=_group_ref("groupnorm"),
        samples=_group_samples("groupnorm"),
        style=Style("norm", "groupnorm"),
        doc="normalize each sample over groups of channels (axis 1) and the other axes, then an "
        "optional per-channel scale and bias",
        grad=_group_grad("groupnorm"),
        attr_kinds={"groups": "int"},
    )
)

INSTANCENORM = register(
    Op(
        name="instancenorm",
        inputs=("x", "scale?", "bias?"),
        attrs={"eps": 1e-5},
        infer=_group_infer(
            "instancenorm", (3, 4), "[batch, channels, length] or [batch, channels, height, width]"
        ),
        lower=_group_lower("instancenorm"),
        reference=_group_ref("instancenorm"),
        samples=_group_samples("instancenorm"),
        style=Style("norm", "instancenorm"),
        doc="normalize each sample's channels over their spatial axes, then an optional per-channel "
        "scale and bias",
        grad=_group_grad("instancenorm"),
    )
)


def _dropout_infer(ts: list[TensorType], attrs: dict) -> TensorType:
    p = attrs["p"]
    if not (isinstance(p, (int, float)) and 0 <= p < 1):
        raise ShapeError(
            f"'dropout' p must be in [0, 1), got {p!r}", expected="a drop probability such as 0.1"
        )
    return ts[0]


DROPOUT = register(
    Op(
        name="dropout",
        inputs=("x",),
        attrs={"p": 0.5},
        infer=_dropout_infer,
        lower=lambda ctx, xs, attrs, in_types, out_type: xs[0],
        reference=lambda xs, attrs: xs[0],
        samples=lambda rng: [
            Sample((randn(rng, 2, 3),)),
            Sample((randn(rng, 4, 5, 6),), {"p": 0.1}),
            Sample((randn(rng, 3),), {"p": 0.0}),
        ],
        style=Style("regularize", "dropout"),
        doc="zero elements with probability p while training; the identity at inference",
        grad=lambda c, g: [g],
        identities=(passthrough,),  # the op is the inference form: training builds a mask instead
    )
)
