"""The operator registry: one record per primitive operator.

A record holds everything nngraph knows about an operator (see
../shared/DESIGN.md, "One place per operator"): its inputs and attributes,
its shape/dtype rule, its ONNX lowering, a NumPy reference for the tests,
how diagrams show it, and a slot for its gradient rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nngraph.core.types import TensorType

#: Marks an attribute that has no default and must be given.
REQUIRED = object()


class _NoGradient:
    """The gradient rule of an operator whose output carries no gradient (comparisons, indices,
    shapes): autodiff stops there. The one spelling of "not differentiable"."""

    def __repr__(self) -> str:
        return "NO_GRADIENT"


NO_GRADIENT = _NoGradient()


@dataclass(frozen=True)
class Style:
    """How a diagram draws the operator: a category (colour family) and a short label."""

    # one of: linear, conv, pool, norm, activation, elementwise, shape, regularize, embed
    category: str
    label: str | None = None


@dataclass(frozen=True)
class Sample:
    """One test case for the registry walk: input arrays and attributes."""

    inputs: tuple[np.ndarray, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Op:
    """A primitive operator.

    infer(in_types, attrs) -> TensorType raises ShapeError on bad input.
    lower(ctx, in_names, attrs, in_types, out_type) -> ONNX name of the result.
    reference(arrays, attrs) -> np.ndarray, the independent NumPy semantics.
    samples(rng) -> list[Sample] exercises the op in tests (several shapes).
    grad(ctx, g) -> one gradient per input, written in the V algebra (g is a V, ctx a GradCtx),
      None for an input that takes none; or NO_GRADIENT; or None where `decompose` says how to
      build the op from others.
    decompose(emitter, inputs, attrs) -> the op's value built from other operators: autodiff
      differentiates that (a composite whose fused lowering has no closed-form gradient).
    """

    name: str
    inputs: tuple[str, ...]  # a trailing "?" marks an optional input, a leading "*" a variadic one
    attrs: dict[str, Any]
    infer: Callable[[list[TensorType], dict[str, Any]], TensorType]
    lower: Callable[..., str]
    reference: Callable[[list[np.ndarray], dict[str, Any]], np.ndarray]
    samples: Callable[[np.random.Generator], list[Sample]]
    style: Style
    doc: str = ""
    grad: Callable | _NoGradient | None = None
    decompose: Callable | None = None

    def full_attrs(self, given: dict[str, Any]) -> dict[str, Any]:
        """Attributes with defaults filled in; unknown or missing ones raise KeyError/ValueError."""
        for k in given:
            if k not in self.attrs:
                raise KeyError(k)
        out = {}
        for k, default in self.attrs.items():
            if k in given:
                out[k] = given[k]
            elif default is REQUIRED:
                raise ValueError(k)
            else:
                out[k] = default
        return out


OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    if op.name in OPS:
        raise RuntimeError(f"operator {op.name!r} registered twice")
    OPS[op.name] = op
    return op


def get(name: str) -> Op:
    return OPS[name]


def all_ops() -> dict[str, Op]:
    return dict(OPS)
