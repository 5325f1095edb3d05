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


@dataclass
class ArgSpec:
    name: str
    kind: str  # int, float, bool, str, ints, floats, padding, shape, init, layer, choice:a|b|c
    default: Any = None
    required: bool = False
    limit: str | None = None  # for numbers: ">= 0", "> 0", "in [0, 1)" or "in [0, 1]"


def A(name: str, kind: str, default: Any = None, required: bool = False, limit: str | None = None) -> ArgSpec:
    """One argument of a layer, as the layer families write their signatures."""
    return ArgSpec(name, kind, default, required, limit)
