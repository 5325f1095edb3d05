"""Reverse-mode autodiff on the graph: the chain rule as graph rewriting.

For each node between the parameters and the loss, in reverse topological
order, its operator's gradient rule builds new nodes from the upstream
gradient; gradients reaching a node along several edges are summed. Rules
never compute numbers, so the backward graph is a graph like any other:
passes, lowering, diagrams and the NumPy reference evaluation all apply.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nngraph.core.ir import Graph
from nngraph.core.types import FLOATS, TensorType
from nngraph.errors import ShapeError
from nngraph.ops import registry

#: A gradient rule returns this (instead of a list) for operators whose output carries no gradient.
NOT_DIFFERENTIABLE = "not differentiable"


class V:
    """A graph node as an expression: `g * y * (1 - y)` adds mul/sub nodes through the context.

    Python numbers become scalar constants of the node's dtype. `str(v)` is the node id, and rules
    may return V values where node ids are expected.
    """

    __slots__ = ("c", "id")

    def __init__(self, c: GradCtx, nid: str):
        self.c, self.id = c, str(nid)

    def __str__(self) -> str:
        return self.id

    __repr__ = __str__

    @property
    def type(self) -> TensorType:
        return self.c.type(self.id)

    def f(self, name: str, *others: Any, **attrs: Any) -> V:
        """The node `name(self, *others; **attrs)`."""
        return self.c.v(self.c.op(name, [self, *(self._v(o) for o in others)], **attrs))

    def _v(self, o: Any) -> Any:
        return o if isinstance(o, (V, str)) else self.c.const(o, self.id)

    def _rf(self, name: str, o: Any) -> V:
        return self.c.v(self.c.op(name, [self._v(o), self]))

    __add__ = lambda s, o: s.f("add", o)
    __sub__ = lambda s, o: s.f("sub", o)
    __mul__ = lambda s, o: s.f("mul", o)
    __truediv__ = lambda s, o: s.f("div", o)
    __radd__ = lambda s, o: s._rf("add", o)
    __rsub__ = lambda s, o: s._rf("sub", o)
    __rmul__ = lambda s, o: s._rf("mul", o)
    __rtruediv__ = lambda s, o: s._rf("div", o)
    __neg__ = lambda s: s.f("neg")

    def sum(self, axes, keepdims: int = 0) -> V:
        return self.f("reduce_sum", axes=tuple(axes), keepdims=keepdims) if axes else self

    def mean(self, axes, keepdims: int = 0) -> V:
        return self.f("reduce_mean", axes=tuple(axes), keepdims=keepdims) if axes else self

    def mask(self, cmp: str, other: Any = 0.0) -> V:
        """cmp(self, other) as 0/1 in self's dtype: selection by multiplying, faster than Where."""
        return self.f(cmp, other).f("cast", to=self.type.dtype)


class GradCtx:
    """What a gradient rule sees: the forward node, and a way to add backward nodes.

    Node ids and V expressions are accepted wherever a node is expected; `ctx.x` and `ctx.y` are
    the forward inputs and output as V expressions, `ctx.v(nid)` wraps any node.
    """

    def __init__(self, graph: Graph, node: str):
        self.graph = graph
        self.node = node
        d = graph.node(node)
        self.inputs: list[str] = d["inputs"]
        self.attrs: dict[str, Any] = d["attrs"]
        self.out_type: TensorType = d["type"]
        span = d.get("span")
        self.span = dataclasses.replace(span, backward=True) if span is not None else None

    def v(self, nid: str | V) -> V:
        return nid if isinstance(nid, V) else V(self, nid)

    @property
    def x(self) -> list[V]:
        return [self.v(i) for i in self.inputs]

    @property
    def y(self) -> V:
        return self.v(self.node)

    def type(self, nid: str | V) -> TensorType:
        return self.graph.type(str(nid))

    def op(self, name: str, inputs: list[str | V], **attrs: Any) -> str:
        """Add a backward node; its shape rule runs, so a wrong rule fails loudly here."""
        op = registry.get(name)
        full = op.full_attrs(attrs)
        inputs = [str(i) for i in inputs]
        try:
            t = op.infer([self.graph.type(i) for i in inputs], full)
        except ShapeError as e:
            raise AssertionError(
                f"gradient rule of {self.graph.node(self.node)['op']} built a bad {name}: {e}"
            ) from None
        return self.graph.add(
            f"grad/{self.node}/{name}", name, inputs, t, self.span, full, scope=f"grad/{self.node}"
        )

    def const(self, value: Any, like: str | V | TensorType) -> str:
        t = like if isinstance(like, TensorType) else self.type(like)
        arr = np.asarray(value, dtype=t.np_dtype)
        return self.graph.add(
            f"grad/{self.node}/const", "const", [], TensorType(t.dtype, arr.shape), self.span, value=arr
        )

    def unbroadcast(self, g: str | V, to: str | V) -> str:
        """Sum a gradient over the axes along which `to` was broadcast, back to `to`'s shape."""
        g, to = str(g), str(to)
        gt, tt = self.graph.type(g), self.graph.type(to)
        if gt.shape == tt.shape:
            return g
        lead = gt.rank - tt.rank
        axes = list(range(lead)) + [
            lead + i for i, d in enumerate(tt.shape) if d == 1 and gt.shape[lead + i] != 1
        ]
        if axes:
            g = self.op("reduce_sum", [g], axes=tuple(axes), keepdims=0)
        if self.graph.type(g).shape != tt.shape:
            g = self.op("reshape_like", [g, to])
        return g


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
        "grad/seed", "const", [], graph.type(loss), None, value=np.ones((), graph.type(loss).np_dtype)
    )
    grads: dict[str, list[str]] = {loss: [seed]}
    for n in reversed(order):
        if n not in grads:
            continue
        total = _sum(graph, n, grads[n])
        grads[n] = [total]
        d = graph.node(n)
        if d["op"] in ("input", "param", "const"):
            continue
        op = registry.get(d["op"])
        if op.grad is None:
            raise NotImplementedError(f"operator '{op.name}' has no gradient rule")
        result = op.grad(GradCtx(graph, n), total)
        if result == NOT_DIFFERENTIABLE:
            continue
        for inp, gi in zip(d["inputs"], result, strict=True):
            gi = None if gi is None else str(gi)
            if gi is None or inp not in active or not differentiable(graph.type(inp)):
                continue
            if graph.type(gi).shape != graph.type(inp).shape:
                raise AssertionError(
                    f"gradient rule of {op.name} gave {graph.type(gi)} for input {graph.type(inp)}"
                )
            grads.setdefault(inp, []).append(gi)
    out = {}
    for w in wrt:
        if w in grads:
            out[w] = grads[w][0]
        else:
            t = graph.type(w)
            out[w] = graph.add(f"grad/{w}/zeros", "const", [], t, None, value=np.zeros(t.shape, t.np_dtype))
    return out


def _sum(graph: Graph, n: str, parts: list[str]) -> str:
    """Fan-out accumulation: the gradients along every edge out of `n`, summed."""
    total = parts[0]
    for p in parts[1:]:
        t = registry.get("add").infer([graph.type(total), graph.type(p)], {})
        total = graph.add(f"grad/{n}/acc", "add", [total, p], t, None, {}, scope=f"grad/{n}")
    return total
