"""Evaluate a graph with each operator's NumPy reference: the independent check of lowering
and of gradient rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from nngraph.graph.ir import Graph
from nngraph.ops import registry


def evaluate_nodes(graph: Graph, feeds: dict[str, Any], nodes: list[str]) -> list[np.ndarray]:
    """The values of `nodes`, computing only what they depend on."""
    import networkx as nx

    need = set(nodes)
    for n in nodes:
        need |= nx.ancestors(graph.g, n)
    values: dict[str, np.ndarray] = {}
    for n in graph.topo():
        if n not in need:
            continue
        d = graph.node(n)
        if d["op"] == "input":
            values[n] = np.asarray(feeds[n])
        elif d["op"] in ("param", "const"):
            values[n] = feeds[n] if n in feeds else d["value"]
        else:
            op = registry.get(d["op"])
            values[n] = np.asarray(op.reference([values[i] for i in d["inputs"]], d["attrs"]))
    return [values[n] for n in nodes]


def evaluate(graph: Graph, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
    """Outputs by name, computed node by node in NumPy (inference semantics)."""
    names = list(graph.outputs)
    return dict(zip(names, evaluate_nodes(graph, feeds, [graph.outputs[o] for o in names]), strict=True))
