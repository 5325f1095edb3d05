"""The computation graph: a networkx DiGraph of primitive operators.

Every node has an `op` (a registry name, or "input", "param", "const"), its
ordered `inputs`, `attrs`, the `type` of its output and the `span` of the
source that made it. Nodes made through an Emitter (core/emit.py) also carry
their `phase` ("forward", "backward" or "update": what the training view and
the passes tell apart), the `scope` of the layer that made them, and, once a
fusion made them, `fused_by` (the rule) and `spans` (every source span they
replaced). Every edge carries the type of the tensor it moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from nngraph.core.types import TensorType
from nngraph.errors import Span

LEAF_OPS = ("input", "param", "const")


def reachable(starts, step) -> set:
    """`starts` and everything `step(item)` leads to, transitively: one walk, each item once."""
    seen = set(starts)
    todo = list(seen)
    while todo:
        for n in step(todo.pop()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


@dataclass
class Graph:
    name: str
    g: nx.DiGraph = field(default_factory=nx.DiGraph)
    inputs: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> node id
    source_hash: str = ""
    docs: dict[str, str] = field(default_factory=dict)  # input/output name -> description
    params_fixed: bool = True  # parameters are constants (inference); False when they are step inputs
    #: per base id, the last suffix handed out: fresh ids without probing _2, _3, ... each time
    _suffix: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _reserved: set[str] = field(default_factory=set, repr=False, compare=False)

    def reserve(self, ids) -> None:
        """Keep these ids for nodes added later under exactly that id (inputs: their names are the
        model's interface); other nodes asking for one of them get a suffix."""
        self._reserved.update(ids)

    def add(
        self,
        node_id: str,
        op: str,
        inputs: list[str],
        type: TensorType,
        span: Span | None,
        attrs: dict[str, Any] | None = None,
        **extra: Any,
    ) -> str:
        """Add a node under a fresh id derived from `node_id`; returns the id used."""
        nid = node_id
        i = self._suffix.get(node_id, 1)
        if op == "input" and nid in self._reserved and nid not in self.g:
            self._reserved.discard(nid)
        while nid in self.g or nid in self._reserved:
            i += 1
            nid = f"{node_id}_{i}"
        if nid != node_id:
            self._suffix[node_id] = i
        self.g.add_node(
            nid, op=op, inputs=list(inputs), attrs=dict(attrs or {}), type=type, span=span, **extra
        )
        for slot, src in enumerate(inputs):
            if self.g.has_edge(src, nid):
                self.g.edges[src, nid]["slots"].append(slot)
            else:
                self.g.add_edge(src, nid, type=self.type(src), slots=[slot])
        return nid

    def consumers(self, nid: str) -> list[str]:
        return list(self.g.successors(nid))

    def set_inputs(self, nid: str, inputs: list[str]) -> None:
        """Rewire a node's inputs, keeping the edges (with their slots and types) in step."""
        for src in list(self.g.predecessors(nid)):
            self.g.remove_edge(src, nid)
        self.g.nodes[nid]["inputs"] = list(inputs)
        for slot, src in enumerate(inputs):
            if self.g.has_edge(src, nid):
                self.g.edges[src, nid]["slots"].append(slot)
            else:
                self.g.add_edge(src, nid, type=self.type(src), slots=[slot])

    def replace_uses(self, old: str, new: str) -> None:
        """Every consumer of `old`, and every output naming it, now reads `new`."""
        for c in self.consumers(old):
            self.set_inputs(c, [new if i == old else i for i in self.g.nodes[c]["inputs"]])
        for o, nid in self.outputs.items():
            if nid == old:
                self.outputs[o] = new

    def node(self, nid: str) -> dict[str, Any]:
        return self.g.nodes[nid]

    def type(self, nid: str) -> TensorType:
        return self.g.nodes[nid]["type"]

    def topo(self) -> list[str]:
        return list(
            nx.lexicographical_topological_sort(self.g, key=lambda n: self.g.nodes[n].get("order", 0))
        )

    def nodes_with(self, op: str) -> list[str]:
        return [n for n, d in self.g.nodes(data=True) if d["op"] == op]

    def params(self, trainable: bool | None = None) -> list[str]:
        out = self.nodes_with("param")
        if trainable is not None:
            out = [p for p in out if self.g.nodes[p]["trainable"] == trainable]
        return out

    def param_count(self, trainable: bool | None = True) -> int:
        return int(sum(int(np.prod(self.type(p).shape)) for p in self.params(trainable)))

    def upstream(self, nodes) -> set[str]:
        """`nodes` and everything they depend on, in one walk (nx.ancestors per node is quadratic
        over a training graph's hundreds of outputs)."""
        return reachable(nodes, self.g.predecessors)

    def downstream(self, nodes) -> set[str]:
        """`nodes` and everything that depends on any of them, in one walk."""
        return reachable(nodes, self.g.successors)

    def prune(self) -> None:
        """Drop nodes no output depends on (inputs stay: an unused one is an error upstream)."""
        keep = self.upstream(self.outputs.values())
        self.g.remove_nodes_from([n for n in list(self.g) if n not in keep and n not in self.inputs])
