"""The layer table of `nngraph summary`: layer, op, output shape, parameters; totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nngraph.core.ir import Graph


@dataclass
class SummaryRow:
    """One applied layer (or arithmetic node) of the model: the node that holds its result, and the
    trainable parameter elements it made."""

    name: str
    kind: str
    node: str
    params: int
    depth: int


def summary_dict(graph: Graph, rows: list[SummaryRow]) -> dict[str, Any]:
    return {
        "model": graph.name,
        "inputs": {i: str(graph.type(i)) for i in graph.inputs},
        "outputs": {o: str(graph.type(n)) for o, n in graph.outputs.items()},
        "layers": [
            {
                "name": r.name,
                "op": r.kind,
                "output": str(graph.type(r.node)),
                "params": r.params,
                "depth": r.depth,
            }
            for r in rows
        ],
        "params": graph.param_count(True),
        "trainable_params": graph.param_count(True),
        "buffers": graph.param_count(False),
        "nodes": graph.g.number_of_nodes(),
    }


def summary_text(graph: Graph, rows: list[SummaryRow]) -> str:
    d = summary_dict(graph, rows)
    table = [("layer", "op", "output shape", "params")]
    table += [(r["name"], r["op"], r["output"], f"{r['params']:,}") for r in d["layers"]]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    fmt = lambda row: "  ".join(
        c.rjust(w) if i == 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
    )
    rule = "-" * (sum(widths) + 6)
    out = [f"model {d['model']}", rule, fmt(table[0]), rule, *(fmt(r) for r in table[1:]), rule]
    out.append(f"params: {d['params']:,} (trainable)   buffers: {d['buffers']:,}")
    out.append("inputs: " + ", ".join(f"{k}: {v}" for k, v in d["inputs"].items()))
    out.append("outputs: " + ", ".join(f"{k}: {v}" for k, v in d["outputs"].items()))
    return "\n".join(out)
