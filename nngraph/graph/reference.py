"""Evaluate a graph with each operator's NumPy reference: the independent check of lowering."""

from __future__ import annotations

from typing import Any

import numpy as np

from nngraph.graph.ir import Graph
from nngraph.ops import registry


def evaluate(graph: Graph, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
    """Outputs by name, computed node by node in NumPy (inference semantics)."""
    values: dict[str, np.ndarray] = {}
    for n in graph.topo():
        d = graph.node(n)
        if d["op"] == "input":
            values[n] = np.asarray(feeds[n])
        elif d["op"] in ("param", "const"):
            values[n] = d["value"]
        else:
            op = registry.get(d["op"])
            values[n] = np.asarray(op.reference([values[i] for i in d["inputs"]], d["attrs"]))
    return {o: values[nid] for o, nid in graph.outputs.items()}
