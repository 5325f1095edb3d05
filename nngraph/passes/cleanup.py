"""Clean-up passes: dead code, common subexpressions, constant folding, algebraic identities."""

from __future__ import annotations

import numpy as np

from nngraph.core.ir import LEAF_OPS, Graph
from nngraph.ops import registry
from nngraph.passes.manager import Pass
from nngraph.passes.rewrite import const_value, new_const, new_op, only_consumer

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


def _is_scalar(graph: Graph, nid: str, value: float) -> bool:
    v = const_value(graph, nid) if graph.node(nid)["op"] == "const" else None
    return v is not None and v.size == 1 and float(v.reshape(())) == value


def simplify(graph: Graph) -> bool:
    """x*1, x/1, x+0, x-0, identity, inference dropout, same-dtype casts, transpose pairs,
    reshape chains, and *_like ops whose shapes already agree."""
    changed = False
    for n in graph.topo():
        if n not in graph.g:
            continue
        d = graph.node(n)
        op, ins, t = d["op"], d["inputs"], d["type"]
        keep = None  # the input that n equals
        if op in ("identity", "dropout"):
            keep = ins[0]
        elif op == "cast" and graph.type(ins[0]).dtype == d["attrs"]["to"]:
            keep = ins[0]
        elif op in ("broadcast_like", "reshape_like") and graph.type(ins[0]).shape == t.shape:
            keep = ins[0]
        elif op in ("mul", "div") and _is_scalar(graph, ins[1], 1.0) and graph.type(ins[0]) == t:
            keep = ins[0]
        elif op in ("add", "sub") and _is_scalar(graph, ins[1], 0.0) and graph.type(ins[0]) == t:
            keep = ins[0]
        elif (
            op in ("mul", "add")
            and _is_scalar(graph, ins[0], 1.0 if op == "mul" else 0.0)
            and graph.type(ins[1]) == t
        ):
            keep = ins[1]
        elif op == "transpose" and graph.node(ins[0])["op"] == "transpose":
            inner = graph.node(ins[0])
            perm = tuple(inner["attrs"]["perm"][p] for p in d["attrs"]["perm"])
            if perm == tuple(range(len(perm))):
                keep = inner["inputs"][0]
            else:
                graph.replace_uses(n, new_op(graph, "transpose", [inner["inputs"][0]], {"perm": perm}, n))
                changed = True
                continue
        elif (
            op == "reshape"
            and graph.node(ins[0])["op"] in ("reshape", "flatten")
            and only_consumer(graph, ins[0], n)
        ):
            src = graph.node(ins[0])["inputs"][0]
            if 0 not in d["attrs"]["shape"]:
                graph.set_inputs(n, [src])
                changed = True
                continue
        if keep is not None and n not in graph.outputs.values():
            graph.replace_uses(n, keep)
            changed = True
    return changed | dce(graph)


DCE = Pass("dce", dce, "drop nodes no output depends on")
CSE = Pass("cse", cse, "merge equal computations")
FOLD = Pass("fold_constants", fold_constants, "compute constant subgraphs at compile time (bounded size)")
SIMPLIFY = Pass(
    "simplify", simplify, "algebraic identities: x*1, x+0, transpose pairs, reshape chains, no-ops"
)
