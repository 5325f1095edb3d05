"""What a layer declares about its arguments (ArgSpec), and the bare word an argument may be (Symbol).

The front end checks and converts call arguments against these specs (nngraph/frontend/binding.py);
the layers only declare them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nngraph.errors import Span


@dataclass(frozen=True)
class Symbol:
    """A bare name bound to nothing: an enum word (padding=same), a dim name, or a mistake."""

    name: str
    span: Span


@dataclass(frozen=True)
class SymDim:
    """A size known only at run time, as a value of the language: `x.shape[2]` of `f32[batch, 3, H, W]`
    is SymDim("H"), and `x.shape[2] // 2` SymDim("H//2"). `expr` is canonical (nngraph/core/dims.py),
    so equal sizes compare equal; a size that works out to a constant is a plain int instead."""

    expr: str


@dataclass
class ArgSpec:
    name: str
    kind: str  # int, float, bool, str, ints, floats, dim, padding, shape, init, layer, tensors, choice:a|b|c
    default: Any = None
    required: bool = False
    limit: str | None = None  # for numbers: ">= 0", "> 0", "in [0, 1)" or "in [0, 1]"


def A(name: str, kind: str, default: Any = None, required: bool = False, limit: str | None = None) -> ArgSpec:
    """One argument of a layer, as the layer families write their signatures."""
    return ArgSpec(name, kind, default, required, limit)
