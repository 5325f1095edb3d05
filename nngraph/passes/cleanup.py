"""Clean-up passes: dead code, common subexpressions, constant folding, algebraic identities."""

from __future__ import annotations

import numpy as np

from nngraph.core.ir import LEAF_OPS, Graph
from nngraph.ops import registry
from nngraph.ops.identities import Rebuild, Rewire, Rewrite, Same
from nngraph.passes.manager import Pass
from nngraph.passes.rewrite import new_const, new_op

FOLD_LIMIT = 1 << 16  # constant folding makes no tensor larger than this many elements


def dce(graph: Graph) -> bool:
    """Drop nodes that no output depends on."""
    before = graph.g.number_of_nodes()
    graph.prune()
    return graph.g.number_of_nodes() != before


def cse(graph: Graph) -> bool:
    """Merge nodes that compute the same thing from the same inputs (and equal small constants)."""
    seen: dict[tuple, str] = {}
    changed = False
    outs = set(graph.outputs.values())  # only non-outputs are replaced: it stays true in the loop
    for n in graph.topo():
        if n not in graph.g:
            continue
        d = graph.node(n)
        if d["op"] in ("input", "param"):
            continue
        if d["op"] == "const":
            v = d["value"]
            if v.size > 64:
                continue
            key = ("const", v.dtype.str, v.shape, v.tobytes())
        else:
            key = (d["op"], tuple(d["inputs"]), repr(sorted(d["attrs"].items())))
        if key in seen and n not in outs:
            graph.replace_uses(n, seen[key])
            graph.g.remove_node(n)
            changed = True
        else:
            seen.setdefault(key, n)
    return changed


def fold_constants(graph: Graph) -> bool:
    """Compute nodes whose inputs are all constants, up to FOLD_LIMIT elements."""
    changed = False
    outs = set(graph.outputs.values())  # outputs are never folded: it stays true in the loop
    for n in graph.topo():
        d = graph.node(n)
        if d["op"] in LEAF_OPS or not d["inputs"] or n in outs:
            continue
        if any(graph.node(i)["op"] != "const" for i in d["inputs"]):
            continue
        t = d["type"]
        if not t.is_static or t.numel() > FOLD_LIMIT:
            continue
        value = registry.get(d["op"]).reference([graph.node(i)["value"] for i in d["inputs"]], d["attrs"])
        c = new_const(graph, np.asarray(value, dtype=t.np_dtype).reshape(t.shape), n)
        graph.replace_uses(n, c)
        graph.g.remove_node(n)
        changed = True
    return changed


def _first_rewrite(graph: Graph, n: str) -> Rewrite | None:
    for identity in registry.get(graph.node(n)["op"]).identities:
        rewrite = identity(graph, n)
        if rewrite is not None:
            return rewrite
    return None


def simplify(graph: Graph) -> bool:
    """The algebraic identities the operator records declare (`Op.identities`: x*1, x/1, x+0, x-0,
    identity, inference dropout, same-dtype casts, transpose pairs, reshape chains, and *_like ops
    whose shapes already agree); each node's first identity that answers decides."""
    changed = False
    for n in graph.topo():
        if n not in graph.g or graph.node(n)["op"] in LEAF_OPS:
            continue
        rewrite = _first_rewrite(graph, n)
        if isinstance(rewrite, Same):
            if n not in graph.outputs.values():  # an output keeps its own node
                graph.replace_uses(n, rewrite.node)
                changed = True
        elif isinstance(rewrite, Rebuild):
            graph.replace_uses(n, new_op(graph, rewrite.op, rewrite.inputs, rewrite.attrs, n))
            changed = True
        elif isinstance(rewrite, Rewire):
            graph.set_inputs(n, rewrite.inputs)
            changed = True
    return changed | dce(graph)


DCE = Pass("dce", dce, "drop nodes no output depends on")
CSE = Pass("cse", cse, "merge equal computations")
FOLD = Pass("fold_constants", fold_constants, "compute constant subgraphs at compile time (bounded size)")
SIMPLIFY = Pass(
    "simplify", simplify, "algebraic identities: x*1, x+0, transpose pairs, reshape chains, no-ops"
)
