"""Graph -> View: the boxes and arrows a diagram shows.

A `View` is what every output format draws. It is made from a `Graph` by
these rules:

* Parameters (and non-scalar constants) are folded into the box of their first
  consumer, which shows the parameter count; scalar constants are hidden.
* Each model input and output gets a box of its own.
* Operator nodes are grouped into boxes by their `scope` (the layer instance
  path, such as ``residual_1/conv2d_1``). ``depth`` says how much of a scope
  stays open:

  - ``depth=None`` (default): one box per layer instance; every enclosing
    block instance is drawn as a labelled group around its layers.
  - ``depth=N`` (N >= 0): scopes are cut after N+1 path components, so blocks
    nested deeper than N levels become one box each. ``depth=0`` draws every
    top-level layer and every top-level block as one box; ``depth=1`` opens
    the top-level blocks and closes the blocks inside them; and so on.
  - ``ops=True``: one box per primitive operator; layers become groups too.

* In a training graph, backward nodes (ids ``grad/...``) go into a box per
  forward layer (``grad/<layer>``) inside a "backward" group, and optimizer
  nodes (ids ``update/...``) into one box per parameter they update (steps
  shared by all parameters go into one "update" box) inside an "optimizer"
  group. Those two group prefixes do not count towards ``depth``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from nngraph.core.ir import Graph
from nngraph.core.types import TensorType
from nngraph.ops import registry
from nngraph.stepnames import next_name, state_of

#: Which member op gives a layer box its colour, most telling first.
CATEGORY_RANK = (
    "conv",
    "linear",
    "embed",
    "norm",
    "pool",
    "activation",
    "reduce",
    "regularize",
    "elementwise",
    "shape",
)
PHASES = {"grad": "backward", "update": "optimizer"}


@dataclass
class Box:
    id: str
    kind: str  # input, output, layer, block, op, backward, update
    name: str  # the layer / block / tensor name shown in bold
    op: str  # layer kind, block kind or operator
    category: str  # colour family (a Style.category, or input/output/block/backward/update)
    type: TensorType | None = None  # its output tensor
    params: int = 0  # trainable parameter elements folded into the box
    buffers: int = 0  # non-trainable parameter elements (running statistics)
    flops: int = 0  # multiply-adds x2 of matmul / conv at batch 1
    nodes: list[str] = field(default_factory=list)  # graph nodes drawn by this box
    folded: list[str] = field(default_factory=list)  # parameters / constants folded in
    spans: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()  # enclosing group ids, outermost first
    order: int = 0

    def lines(self, shapes: bool = True) -> list[str]:
        """Text lines of the box: name, op, shape, params."""
        out = [self.name]
        if self.op and (self.kind in ("input", "output") or not self.name.startswith(self.op)):
            out.append(self.op)
        if self.type is not None and (shapes or self.kind in ("input", "output")):
            out.append(shape_text(self.type))
        if self.params:
            out.append(f"params {self.params:,}")
        return out

    def details(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "op": self.op,
            "category": self.category,
            "type": str(self.type) if self.type is not None else "",
            "params": self.params,
            "buffers": self.buffers,
            "flops": self.flops,
            "nodes": self.nodes[:40] + ([f"... {len(self.nodes) - 40} more"] if len(self.nodes) > 40 else []),
            "folded": self.folded[:40],
            "source": self.spans[:8],
            "attrs": {k: _jsonable(v) for k, v in self.attrs.items()},
        }


@dataclass
class Group:
    id: str
    label: str
    parent: str | None
    depth: int  # nesting level, 0 outermost


@dataclass
class Edge:
    src: str
    dst: str
    type: TensorType | None


@dataclass
class View:
    title: str
    boxes: dict[str, Box]
    edges: list[Edge]
    groups: dict[str, Group]
    params: int
    flops: int
    training: bool
    max_depth: int  # deepest block nesting in the graph (for depth controls)


def shape_text(t: TensorType) -> str:
    return f"{t.dtype}[{', '.join(str(d) for d in t.shape)}]"


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 16 else f"array{list(v.shape)}"
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def _kind_of(name: str) -> str:
    """'conv2d_3' -> 'conv2d' (instance names are KIND_N)."""
    return re.sub(r"_\d+$", "", name)


def _numel1(t: TensorType) -> int:
    """Elements with every symbolic dim (batch, seq...) taken as 1."""
    n = 1
    for d in t.shape:
        n *= d if isinstance(d, int) else 1
    return n


#: the graph's phases as the training view groups them
_VIEW_PHASE = {"backward": "grad", "update": "update"}


def node_flops(graph: Graph, nid: str) -> int:
    """2 x multiply-adds of the node at batch 1 (symbolic dims = 1), as its operator's record counts
    them (matmul, gemm, conv); 0 for other ops."""
    d = graph.node(nid)
    try:
        flops = registry.get(d["op"]).flops
    except KeyError:  # input, param, const
        return 0
    return 0 if flops is None else flops([graph.type(i) for i in d["inputs"]], d["attrs"], d["type"])


def _category(ops: list[str]) -> str:
    cats = set()
    for op in ops:
        try:
            cats.add(registry.get(op).style.category)
        except KeyError:
            pass
    for c in CATEGORY_RANK:
        if c in cats:
            return c
    return next(iter(sorted(cats)), "elementwise")


def _op_label(op: str) -> str:
    try:
        return registry.get(op).style.label or op
    except KeyError:
        return op


def _is_hidden_const(d: dict[str, Any]) -> bool:
    return d["op"] == "const" and _numel1(d["type"]) <= 1


def build_view(
    graph: Graph,
    depth: int | None = None,
    rows: list | None = None,
    ops: bool = False,
    title: str | None = None,
) -> View:
    if depth is not None and depth < 0:
        raise ValueError("depth must be >= 0 or None")
    g = graph.g
    kinds = {r.name: r.kind for r in rows or []}
    training = any(d.get("phase", "forward") != "forward" for _, d in g.nodes(data=True))
    order = {n: i for i, n in enumerate(graph.topo())}

    def phase_of(n: str) -> str:
        """The node's group of the training view: "grad" (backward), "update" or "" (forward)."""
        return _VIEW_PHASE.get(g.nodes[n].get("phase", "forward"), "")

    # --- which box each operator node belongs to ---------------------------------------
    def cut(path: str) -> str:
        if depth is None:
            return path
        return "/".join(path.split("/")[: depth + 1])

    def forward_key(n: str) -> str:
        d = g.nodes[n]
        if ops:
            return n
        scope = d.get("scope")
        return cut(scope) if scope else n

    update_param: dict[str, str] = {}
    if training and not ops:
        outs = graph.outputs
        for name, node in outs.items():
            p = state_of(name)
            if p is None or phase_of(node) != "update":
                continue
            while "." in p and next_name(p.rsplit(".", 1)[0]) in outs:
                p = p.rsplit(".", 1)[0]
            stack = [node]
            while stack:
                x = stack.pop()
                if phase_of(x) != "update":
                    continue
                seen = update_param.get(x)
                if seen == p:
                    continue
                update_param[x] = p if seen is None else ""
                stack.extend(g.predecessors(x))

    def key_of(n: str) -> str:
        ph = phase_of(n)
        if ph == "grad":
            if ops:
                return n
            scope = g.nodes[n].get("scope") or ""
            fwd = scope[5:] if scope.startswith("grad/") else ""
            if (
                fwd in g
                and not fwd.startswith(("grad/", "update/"))
                and g.nodes[fwd]["op"]
                not in (
                    "input",
                    "param",
                    "const",
                )
            ):
                return "grad/" + forward_key(fwd)
            return "grad/" + (cut(fwd) if fwd else "other")
        if ph == "update":
            if ops:
                return n
            p = update_param.get(n, "")
            return f"update/{p}" if p else "update/shared"
        return forward_key(n)

    hidden: set[str] = set()
    folded_into: dict[str, str] = {}
    for n, d in g.nodes(data=True):
        if d["op"] == "const" and _is_hidden_const(d):
            hidden.add(n)
    for n, d in g.nodes(data=True):
        if d["op"] in ("param", "const") and n not in hidden:
            succ = [s for s in g.successors(n) if s not in hidden]
            if not succ:
                hidden.add(n)
                continue
            succ.sort(key=lambda s: (phase_of(s) != "", order.get(s, 0)))
            folded_into[n] = succ[0]

    boxes: dict[str, Box] = {}
    node_box: dict[str, str] = {}

    def box_groups(key: str) -> tuple[str, ...]:
        parts = key.split("/")
        ph = parts[0] if parts[0] in PHASES and len(parts) > 1 else ""
        if ops:  # an op box sits in the groups of its scope and of every scope prefix
            scope = (g.nodes[key].get("scope") or "") if key in g else ""
            sp = scope.split("/") if scope else []
            if ph and sp and sp[0] == ph:
                sp = sp[1:]
            pre = [ph] if ph else []
            return tuple(pre + ["/".join(pre + sp[: i + 1]) for i in range(len(sp))])
        if ph == "update":
            return ("update",)
        inner = parts[1:] if ph else parts
        pre = [ph] if ph else []
        gs = ["/".join(pre + inner[:i]) for i in range(1, len(inner))]
        return tuple(([ph] if ph else []) + gs)

    for n in sorted(g, key=lambda x: order.get(x, 0)):
        d = g.nodes[n]
        if n in hidden or n in folded_into:
            continue
        op = d["op"]
        if op == "input":
            key = n
            box = boxes[key] = Box(key, "input", n, "input", "input", d["type"], groups=(), order=order[n])
        else:
            key = key_of(n)
            box = boxes.get(key)
            if box is None:
                box = boxes[key] = Box(key, "", "", "", "", groups=box_groups(key), order=order[n])
        box.nodes.append(n)
        node_box[n] = key
        sp = d.get("span")
        if sp is not None and str(sp) not in box.spans:
            box.spans.append(str(sp))

    for p, consumer in folded_into.items():
        d = g.nodes[p]
        b = boxes[node_box[consumer]]
        b.folded.append(p)
        if d["op"] == "param":
            n_el = _numel1(d["type"])
            if d.get("trainable", True):
                b.params += n_el
            else:
                b.buffers += n_el

    # --- what each box says -----------------------------------------------------------------
    for key, b in boxes.items():
        if b.kind == "input":
            continue
        members = b.nodes
        mops = [g.nodes[n]["op"] for n in members]
        outs = [n for n in members if any(node_box.get(s) != key for s in g.successors(n))]
        outs += [n for n in members if n in graph.outputs.values()]

        # the box's main output: an activation (symbolic batch dim, highest rank) over a running
        # statistic or a weight gradient that also leaves it; then the latest
        def main_output(n: str) -> tuple:
            t = g.nodes[n]["type"]
            return (any(isinstance(dim, str) for dim in t.shape), t.rank, order.get(n, 0))

        last = max(outs or members, key=main_output)
        b.type = g.nodes[last]["type"]
        b.flops = sum(node_flops(graph, n) for n in members)
        parts = key.split("/")
        ph = parts[0] if parts[0] in PHASES and len(parts) > 1 else ""
        if ops:
            d = g.nodes[members[0]]
            b.kind = "backward" if ph == "grad" else "update" if ph == "update" else "op"
            b.name = members[0].split("/")[-1]
            b.op = _op_label(d["op"])
            b.attrs = dict(d["attrs"])
            b.category = b.kind if ph else _category(mops)
            continue
        if ph == "update":
            b.kind, b.category = "update", "update"
            b.name = parts[-1] if key == "update/shared" else key[len("update/") :]
            b.op = "optimizer step" if key == "update/shared" else "update"
            continue
        path = key[len(ph) + 1 :] if ph else key
        full_scopes = {g.nodes[n].get("scope") for n in members}
        is_block = (depth is not None) and any(
            s and s != path and s.startswith(path + "/") for s in full_scopes
        )
        b.name = path.split("/")[-1]
        if ph == "grad":
            b.kind, b.category = "backward", "backward"
            b.op = "backward of " + kinds.get(path, _kind_of(b.name))
            if is_block:
                b.op = "backward of block " + _kind_of(b.name)
            continue
        if is_block:
            b.kind, b.category = "block", "block"
            nlayers = len({s for s in full_scopes if s})
            b.op = f"{_kind_of(b.name)} ({nlayers} layers)"
        else:
            b.kind = "layer"
            b.category = _category(mops)
            b.op = kinds.get(path) or (_kind_of(b.name) if len(members) > 1 else _op_label(mops[0]))
            if len(members) == 1:
                b.attrs = dict(g.nodes[members[0]]["attrs"])
        rules = sorted({g.nodes[n].get("fused_by") for n in members} - {None})
        if rules:  # fused nodes say which rule made them
            b.op += " · fused: " + ", ".join(rules)
            b.attrs["fused_by"] = rules

    # --- arrows between boxes ---------------------------------------------------------------------
    edges: list[Edge] = []
    seen: set[tuple[str, str]] = set()
    for u, v, ed in g.edges(data=True):
        bu, bv = node_box.get(u), node_box.get(v)
        if bu is None or bv is None or bu == bv or (bu, bv) in seen:
            continue
        seen.add((bu, bv))
        edges.append(Edge(bu, bv, ed.get("type") or g.nodes[u]["type"]))
    for name, n in graph.outputs.items():
        key = f"output:{name}"
        t = g.nodes[n]["type"]
        boxes[key] = Box(key, "output", name, "output", "output", t, nodes=[], order=len(order) + 1)
        if n in node_box:
            edges.append(Edge(node_box[n], key, t))
    # a box that collapsed nodes of two phases... can make a cycle; layout handles cycles.
    # --- groups ---------------------------------------------------------------------------------
    groups: dict[str, Group] = {}
    for b in boxes.values():
        for i, gid in enumerate(b.groups):
            if gid not in groups:
                label = PHASES[gid] if gid in PHASES else gid.split("/")[-1]
                groups[gid] = Group(gid, label, b.groups[i - 1] if i else None, i)

    max_depth = 0
    for _n, d in g.nodes(data=True):
        s = d.get("scope")
        if s and not s.startswith(("grad/", "update/")):
            max_depth = max(max_depth, s.count("/"))
    params = graph.param_count(True)
    flops = sum(node_flops(graph, n) for n in g if not phase_of(n))
    if title is None:
        title = graph.name or "model"
        if training:
            title += " (training step)"
    return View(title, boxes, edges, groups, params, flops, training, max_depth)


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:g}"


def check_acyclic(view: View) -> bool:
    dg = nx.DiGraph()
    dg.add_edges_from((e.src, e.dst) for e in view.edges)
    return nx.is_directed_acyclic_graph(dg)
