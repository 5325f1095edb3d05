"""Algebraic identities that an operator record declares (`Op.identities`) for the simplify pass.

An identity is a function `(graph, node) -> rewrite | None` that only reads the graph; the pass
tries a node's identities in order, and the first that answers decides. The answers:

- `Same(node)`: the node equals an existing node, whose value its consumers read instead (a graph
  output stays as it is);
- `Rebuild(op, inputs, attrs)`: the node is better computed as one new node;
- `Rewire(inputs)`: the node reads other inputs (a chain folded into it).

Keeping the rewriting in the pass lets a record state an identity in a line (`unit(1, 1.0)` for
x*1 -> x) without knowing how passes build nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nngraph.core.ir import Graph


@dataclass(frozen=True)
class Same:
    """The node equals `node`."""

    node: str


@dataclass(frozen=True)
class Rebuild:
    """The node is `op(inputs; attrs)`, a node the pass makes in its place."""

    op: str
    inputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rewire:
    """The node reads `inputs` instead of its own."""

    inputs: list[str]


Rewrite = Same | Rebuild | Rewire
Identity = Callable[[Graph, str], Rewrite | None]


def is_scalar(graph: Graph, nid: str, value: float) -> bool:
    """`nid` is a constant holding the one number `value`."""
    d = graph.node(nid)
    return d["op"] == "const" and d["value"].size == 1 and float(d["value"].reshape(())) == value


def unit(slot: int, value: float) -> Identity:
    """x op value -> x, with `value` at input `slot` of a binary op (x*1, 1*x, x/1, x+0, x-0):
    where the other input already has the node's type (no broadcast or cast happens)."""

    def identity(graph: Graph, n: str) -> Same | None:
        ins = graph.node(n)["inputs"]
        other = ins[1 - slot]
        if is_scalar(graph, ins[slot], value) and graph.type(other) == graph.type(n):
            return Same(other)
        return None

    identity.__doc__ = f"input {slot} is the scalar {value}: the node is its other input"
    return identity


def passthrough(graph: Graph, n: str) -> Same | None:
    """The node returns input 0 unchanged where that already has the node's type (identity,
    inference dropout, a cast to the same dtype, a *_like op whose shapes already agree)."""
    x = graph.node(n)["inputs"][0]
    return Same(x) if graph.type(x) == graph.type(n) else None
