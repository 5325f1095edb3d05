"""Small helpers that passes use to build and replace nodes."""

from __future__ import annotations

from typing import Any

import numpy as np

from nngraph.core.ir import Graph
from nngraph.core.types import TensorType, dtype_name
from nngraph.ops import registry


def new_op(
    graph: Graph,
    op: str,
    inputs: list[str],
    attrs: dict[str, Any],
    like: str,
    rule: str | None = None,
    replaced: list[str] | None = None,
) -> str:
    """A node made by a pass: it keeps `like`'s scope and span; a fused node also records the
    rule that made it and the spans of every node it replaced."""
    rec = registry.get(op)
    full = rec.full_attrs(attrs)
    t = rec.infer([graph.type(i) for i in inputs], full)
    d = graph.node(like)
    extra: dict[str, Any] = {"scope": d.get("scope", ""), "order": d.get("order", 0)}
    if rule is not None:
        spans = []
        for r in replaced or [like]:
            spans += graph.node(r).get("spans") or [graph.node(r).get("span")]
        extra.update(fused_by=rule, spans=[s for s in spans if s is not None])
    return graph.add(
        f"{like}/{op}" if rule is None else f"{like}/{rule}", op, inputs, t, d.get("span"), full, **extra
    )


def new_const(graph: Graph, value: np.ndarray, like: str) -> str:
    value = np.asarray(value)
    d = graph.node(like)
    t = TensorType(dtype_name(value.dtype), tuple(value.shape))
    return graph.add(f"{like}/const", "const", [], t, d.get("span"), value=value, order=d.get("order", 0))


def only_consumer(graph: Graph, nid: str, consumer: str) -> bool:
    """`nid` feeds `consumer` alone and is no graph output: it may be folded into it."""
    return graph.consumers(nid) == [consumer] and nid not in graph.outputs.values()


def const_value(graph: Graph, nid: str) -> np.ndarray | None:
    """The value of a constant, or of a parameter when parameters are fixed (inference)."""
    d = graph.node(nid)
    if d["op"] == "const" or (d["op"] == "param" and graph.params_fixed):
        return d["value"]
    return None
