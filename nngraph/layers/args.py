"""What a layer's arguments are: their specs, and the bare names an argument may be."""

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
    kind: str  # int, float, bool, str, ints, padding, shape, init, choice:a|b|c
    default: Any = None
    required: bool = False
    limit: str | None = None  # for numbers: ">= 0", "> 0", "in [0, 1)" or "in [0, 1]"
