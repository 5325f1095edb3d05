"""Binary elementwise operators with NumPy broadcasting."""

from __future__ import annotations

import numpy as np

from nngraph.core.types import TensorType
from nngraph.errors import ShapeError
from nngraph.ops.common import broadcast_shapes, randn, same_dtype
from nngraph.ops.identities import unit
from nngraph.ops.registry import Op, Sample, Style, register


def _binary(name: str, symbol: str, onnx_op: str, ref, grad, identities=()) -> Op:
    def infer(ts: list[TensorType], attrs: dict) -> TensorType:
        dt = same_dtype(ts, symbol)
        if dt == "bool":
            raise ShapeError(
                f"'{symbol}' on bool tensors {ts[0]} and {ts[1]}",
                expected="numeric tensors",
                hint="cast them first, e.g. cast(mask, to=f32)",
            )
        return TensorType(dt, broadcast_shapes(ts[0], ts[1], symbol))

    def lower(ctx, xs, attrs, in_types, out_type):
        return ctx.emit(onnx_op, xs)

    def samples(rng: np.random.Generator) -> list[Sample]:
        pos = (lambda a: np.abs(a) + 0.5) if name == "div" else (lambda a: a)
        return [
            Sample((randn(rng, 2, 3), pos(randn(rng, 2, 3)))),
            Sample((randn(rng, 4, 3, 5), pos(randn(rng, 3, 1)))),
            Sample((randn(rng, 1, 5), pos(randn(rng, 6, 1)))),
            Sample((randn(rng, 2, 3).astype(np.float64), pos(randn(rng, 3)).astype(np.float64))),
        ]

    return register(
        Op(
            name=name,
            inputs=("a", "b"),
            attrs={},
            infer=infer,
            lower=lower,
            reference=lambda xs, attrs: ref(xs[0], xs[1]),
            samples=samples,
            style=Style("elementwise", symbol),
            doc=f"a {symbol} b with NumPy broadcasting",
            grad=lambda c, g: [c.unbroadcast(d, x) for d, x in zip(grad(c, g, *c.x), c.x, strict=True)],
            identities=identities,
        )
    )


# grad(ctx, g, a, b) -> (da, db) at the output's shape; the record sums each back to its operand's shape
# identities: x+0, 0+x, x-0, x*1, 1*x, x/1 are x
ADD = _binary("add", "+", "Add", np.add, lambda c, g, a, b: (g, g), (unit(1, 0.0), unit(0, 0.0)))
SUB = _binary("sub", "-", "Sub", np.subtract, lambda c, g, a, b: (g, -g), (unit(1, 0.0),))
MUL = _binary("mul", "*", "Mul", np.multiply, lambda c, g, a, b: (g * b, g * a), (unit(1, 1.0), unit(0, 1.0)))
DIV = _binary("div", "/", "Div", np.divide, lambda c, g, a, b: (ga := g / b, -(ga * c.y)), (unit(1, 1.0),))
