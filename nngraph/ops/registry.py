"""The operator registry: one record per primitive operator.

A record holds everything nngraph knows about an operator (see
../shared/DESIGN.md, "One place per operator"): its inputs and attributes,
its shape/dtype rule, its ONNX lowering, a NumPy reference for the tests,
how diagrams show it, its gradient rule, its FLOP count, whether a .nn file
may call it, and the algebraic identities the simplify pass applies to it.
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
    no_grad_inputs: float inputs that take no gradient by design (the rule gives None there).

    What the rest of the compiler asks of an operator, with defaults that fit most:
    flops(in_types, attrs, out_type) -> 2 x multiply-adds at batch 1 (symbolic dims taken as 1),
      for the model view; None for ops not counted.
    internal: made by the compiler for itself (gradients, fusions, the pieces of layers, or
      called through a layer of another name): not callable from a .nn file.
    attr_kinds: how a .nn call writes an attribute ("int", "ints", "float", "choice:a|b", ...)
      where its default does not tell (a required one, None); attr_limits: a bound to check, as
      the layer's argument says it ("in [0, 1]", ">= 1").
    identities: what the simplify pass may rewrite a node into (see ops/identities.py), tried in
      order.
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
    no_grad_inputs: tuple[int, ...] = ()
    flops: Callable[[list[TensorType], dict[str, Any], TensorType], int] | None = None
    internal: bool = False
    attr_kinds: dict[str, str] = field(default_factory=dict)
    attr_limits: dict[str, str] = field(default_factory=dict)
    identities: tuple[Callable, ...] = ()

    def attr_kind(self, name: str) -> str:
        """The kind of attribute `name` in a .nn call: declared, or read from its default."""
        if name in self.attr_kinds:
            return self.attr_kinds[name]
        default = self.attrs[name]
        return "float" if isinstance(default, float) else "int" if isinstance(default, int) else "str"

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
