"""Small helpers that passes use to build and replace nodes."""

from __future__ import annotations

from typing import Any

import numpy as np

from nngraph.core.emit import Emitter
from nngraph.core.ir import Graph
from nngraph.ops import registry


class PassEmitter(Emitter):
    """Nodes a pass makes in place of `like`: they keep its scope, span, phase and order; a fused
    node also records the rule that made it and the spans of every node it replaced."""

    def __init__(self, graph: Graph, like: str, rule: str | None = None, replaced: list[str] | None = None):
        d = graph.node(like)
        super().__init__(graph, registry.get, d.get("span"), d.get("scope", ""), d.get("phase", "forward"))
        self.like, self.rule, self.order = like, rule, d.get("order", 0)
        self.spans: list = []
        if rule is not None:
            for r in replaced or [like]:
                self.spans += graph.node(r).get("spans") or [graph.node(r).get("span")]

    def node_id(self, op: str) -> str:
        return f"{self.like}/{op}" if self.rule is None or op == "const" else f"{self.like}/{self.rule}"

    def fields(self) -> dict[str, Any]:
        if self.rule is None:
            return {"order": self.order}
        return {"order": self.order, "fused_by": self.rule, "spans": [s for s in self.spans if s is not None]}


def new_op(
    graph: Graph,
    op: str,
    inputs: list[str],
    attrs: dict[str, Any],
    like: str,
    rule: str | None = None,
    replaced: list[str] | None = None,
) -> str:
    """A node made by a pass in place of `like` (see PassEmitter)."""
    return PassEmitter(graph, like, rule, replaced).op(op, inputs, **attrs)


def new_const(graph: Graph, value: np.ndarray, like: str) -> str:
    return PassEmitter(graph, like).const(value)


def only_consumer(graph: Graph, nid: str, consumer: str) -> bool:
    """`nid` feeds `consumer` alone and is no graph output: it may be folded into it."""
    return graph.consumers(nid) == [consumer] and nid not in graph.outputs.values()


def const_value(graph: Graph, nid: str) -> np.ndarray | None:
    """The value of a constant, or of a parameter when parameters are fixed (inference)."""
    d = graph.node(nid)
    if d["op"] == "const" or (d["op"] == "param" and graph.params_fixed):
        return d["value"]
    return None
