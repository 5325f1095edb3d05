"""What an expression of a model evaluates to: a tensor, a layer waiting for its inputs, or a plain value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nngraph.errors import Span
from nngraph.layers.args import Symbol, SymDim


@dataclass(frozen=True)
class Tensor:
    node: str


@dataclass
class LayerValue:
    """A layer (built-in or block) with its arguments bound, maybe waiting for its input tensors.

    Applying the same LayerValue twice reuses its parameters: that is how weights are shared.
    """

    callee: Any  # LayerDef or ast.BlockDef
    kind: str
    span: Span
    tensors: list[Tensor] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # instance path, given at first application or by assignment
    word: str | None = None  # the bare name it came from, when it came from one


def describe(v: Any) -> str:
    """A value in the words of an error message: 'a tensor', 'the integer 3'..."""
    if isinstance(v, Tensor):
        return "a tensor"
    if isinstance(v, LayerValue):
        return f"the layer '{v.kind}'"
    if isinstance(v, Symbol):
        return f"the name '{v.name}'"
    if isinstance(v, SymDim):
        return f"the symbolic dim '{v.expr}'"
    if isinstance(v, tuple):
        return f"{len(v)} results"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, int):
        return f"the integer {v}"
    if isinstance(v, float):
        return f"the number {v}"
    if isinstance(v, str):
        return f'the string "{v}"'
    if isinstance(v, list):
        if not v:
            return "an empty list"
        if all(isinstance(i, Tensor) for i in v):
            return f"a list of {len(v)} tensor{'s' if len(v) != 1 else ''}"
        return "a list"
    return type(v).__name__
