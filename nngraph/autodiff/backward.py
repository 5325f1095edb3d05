"""Reverse-mode autodiff on the graph: the chain rule as graph rewriting.

For each node between the parameters and the loss, in reverse topological
order, its operator's gradient rule builds new nodes from the upstream
gradient; gradients reaching a node along several edges are summed. Rules
never compute numbers, so the backward graph is a graph like any other:
passes, lowering, diagrams and the NumPy reference evaluation all apply.
An operator with a decomposition instead of a rule (a fused recurrent layer)
is rebuilt from its pieces, and the same reverse loop runs over those.
"""

from __future__ import annotations

from typing import NoReturn

import numpy as np

from nngraph.core.emit import Emitter, V, backward_span
from nngraph.core.ir import LEAF_OPS, Graph
from nngraph.core.types import FLOATS, TensorType
from nngraph.errors import ShapeError
from nngraph.ops import registry
from nngraph.ops.registry import NO_GRADIENT


class GradCtx(Emitter):
    """What a gradient rule sees: the forward node, and an emitter of backward nodes.

    A rule is called as `grad(ctx, g)` with the upstream gradient `g` a V expression, and returns
    one V (or None) per input. `ctx.x` and `ctx.y` are the forward inputs and output as V
    expressions; `ctx.v(nid)` wraps any node; `ctx.op`, `ctx.const` and `ctx.unbroadcast` add nodes
    under `grad/NODE/`.
    """

    def __init__(self, graph: Graph, node: str):
        d = graph.node(node)
        super().__init__(graph, registry.get, backward_span(d.get("span")), f"grad/{node}", "backward")
        self.node = node
        self.inputs: list[str] = d["inputs"]
        self.attrs: dict = d["attrs"]
        self.out_type: TensorType = d["type"]

    def failed(self, err: ShapeError, op: str, inputs: list[str]) -> NoReturn:
        raise AssertionError(
            f"gradient rule of {self.graph.node(self.node)['op']} built a bad {op}: {err}"
        ) from None

    def unbroadcast(self, g: str | V, to: str | V) -> V:
        """The emitter's unbroadcast, as the V a rule returns."""
        return self.v(super().unbroadcast(g, to))

    @property
    def x(self) -> list[V]:
        return [self.v(i) for i in self.inputs]

    @property
    def y(self) -> V:
        return self.v(self.node)


def differentiable(t: TensorType) -> bool:
    return t.dtype in FLOATS


def backward(graph: Graph, loss: str, wrt: list[str]) -> dict[str, str]:
    """Add the backward graph of scalar node `loss`; returns {node in wrt: its gradient node}.

    Only nodes on a path from `wrt` to `loss` are differentiated; a node in
    `wrt` that the loss does not depend on gets a zero gradient.
    """
    active = graph.upstream([loss]) & graph.downstream(wrt)
    order = [n for n in graph.topo() if n in active]
    seed = graph.add(
        "grad/seed",
        "const",
        [],
        graph.type(loss),
        None,
        value=np.ones((), graph.type(loss).np_dtype),
        phase="backward",
    )
    grads = reverse(graph, order, {loss: [seed]}, active)
    out = {}
    for w in wrt:
        if w in grads:
            out[w] = grads[w][0]
        else:
            t = graph.type(w)
            out[w] = graph.add(
                f"grad/{w}/zeros", "const", [], t, None, value=np.zeros(t.shape, t.np_dtype), phase="backward"
            )
    return out


def reverse(
    graph: Graph, order: list[str], grads: dict[str, list[str]], active: set[str]
) -> dict[str, list[str]]:
    """The reverse loop: `order` in reverse, each node's summed upstream gradient through its rule.

    `grads` holds the gradients seeded so far (node -> parts); on return every differentiated node
    holds its one summed gradient. Only inputs in `active` receive gradients.
    """
    for n in reversed(order):
        if n not in grads:
            continue
        total = _sum(graph, n, grads[n])
        grads[n] = [total]
        d = graph.node(n)
        if d["op"] in LEAF_OPS:
            continue
        op = registry.get(d["op"])
        if op.grad is NO_GRADIENT:
            continue
        ctx = GradCtx(graph, n)
        if op.grad is None:
            if op.decompose is None:
                raise NotImplementedError(f"operator '{op.name}' has no gradient rule")
            result = _through_decomposition(ctx, op, total)
        else:
            result = op.grad(ctx, ctx.v(total))
        for inp, gi in zip(d["inputs"], result, strict=True):
            gi = None if gi is None else str(gi)
            if gi is None or inp not in active or not differentiable(graph.type(inp)):
                continue
            if graph.type(gi).shape != graph.type(inp).shape:
                raise AssertionError(
                    f"gradient rule of {op.name} gave {graph.type(gi)} for input {graph.type(inp)}"
                )
            grads.setdefault(inp, []).append(gi)
    return grads


class _Recording(GradCtx):
    """A GradCtx that remembers the nodes it adds, in order: a decomposition's pieces."""

    def __init__(self, graph: Graph, node: str):
        super().__init__(graph, node)
        self.added: list[str] = []

    def op(self, name, inputs, **attrs) -> str:
        self.added.append(super().op(name, inputs, **attrs))
        return self.added[-1]


def _through_decomposition(ctx: GradCtx, op, g: str) -> list[str | None]:
    """Rebuild the node from its pieces (in the backward phase: a recomputation) and run the reverse
    loop over just those pieces, from its upstream gradient back to its inputs."""
    rec = _Recording(ctx.graph, ctx.node)
    y = str(op.decompose(rec, list(ctx.inputs), ctx.attrs))
    active = set(rec.added) | set(ctx.inputs)
    grads = reverse(ctx.graph, rec.added, {y: [g]}, active)
    return [_sum(ctx.graph, ctx.node, grads[i]) if i in grads else None for i in ctx.inputs]


def _sum(graph: Graph, n: str, parts: list[str]) -> str:
    """Fan-out accumulation: the gradients along every edge out of `n`, summed."""
    total = parts[0]
    for p in parts[1:]:
        t = registry.get("add").infer([graph.type(total), graph.type(p)], {})
        total = graph.add(
            f"grad/{n}/acc", "add", [total, p], t, None, {}, scope=f"grad/{n}", phase="backward"
        )
    return total
