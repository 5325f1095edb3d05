"""Evaluate a graph with each operator's NumPy reference: the independent check of lowering
and of gradient rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from nngraph.core.ir import Graph
from nngraph.ops import registry


def evaluate_nodes(
    graph: Graph, feeds: dict[str, Any], nodes: list[str], keep_f64: bool = False
) -> list[np.ndarray]:
    """The values of `nodes`, computing only what they depend on. With `keep_f64`, a cast from
    float64 to another float type is skipped (gradcheck's finite differences need every step in
    float64; a cast(to=f32) would round them away)."""
    need = graph.upstream(nodes)
    values: dict[str, np.ndarray] = {}
    for n in graph.topo():
        if n not in need:
            continue
        d = graph.node(n)
        if d["op"] == "input":
            values[n] = np.asarray(feeds[n])
        elif d["op"] in ("param", "const"):
            values[n] = feeds[n] if n in feeds else d["value"]
        elif (
            keep_f64
            and d["op"] == "cast"
            and values[d["inputs"][0]].dtype == np.float64
            and str(d["attrs"].get("to", "")).startswith("f")
        ):
            values[n] = values[d["inputs"][0]]
        else:
            op = registry.get(d["op"])
            values[n] = np.asarray(op.reference([values[i] for i in d["inputs"]], d["attrs"]))
    return [values[n] for n in nodes]


def evaluate(graph: Graph, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
    """Outputs by name, computed node by node in NumPy (inference semantics)."""
    names = list(graph.outputs)
    return dict(zip(names, evaluate_nodes(graph, feeds, [graph.outputs[o] for o in names]), strict=True))
