"""The names one model body or one block application sees, and the instance names it hands out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nngraph.errors import Span
from nngraph.frontend.values import Tensor
from nngraph.syntax import ast


@dataclass
class Scope:
    """Names visible in a model body or in one application of a block."""

    prefix: str
    block: ast.BlockDef | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    defined_at: dict[str, Span] = field(default_factory=dict)
    stack: tuple[str, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    pending_outputs: dict[str, ast.OutputDecl] = field(default_factory=dict)
    assigned: set[str] = field(default_factory=set)  # pending outputs assigned at least once
    output_order: list[str] = field(default_factory=list)
    returned: Tensor | None = None
    bodies: list[tuple[list[ast.Stmt], int]] = field(
        default_factory=list
    )  # statement lists being run, and where

    def instance_name(self, kind: str, wanted: str | None = None) -> str:
        """`wanted` if free, else the next free `kind_N`; prefixed with the block instance's path."""
        base = wanted
        if base is None or base in self.taken:
            n = self.counters.get(kind, 0)
            while True:
                n += 1
                base = f"{kind}_{n}"
                if base not in self.taken:
                    break
            self.counters[kind] = n
        self.taken.add(base)
        return f"{self.prefix}/{base}" if self.prefix else base
