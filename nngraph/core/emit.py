"""The one way to add an operator node: look the operator up, fill its attributes, run its shape
rule, insert the node. Every stage adds nodes through an Emitter (the builder, autodiff, the training
step, passes, decompositions); a stage says only how its nodes are named, which phase they belong to
and how a shape error reads there, by overriding the three small methods marked below.

`V` wraps a node as an expression (`g * y * (1 - y)`), the algebra gradient rules are written in.
The operator table is given to the emitter (nngraph.ops passes its registry), so core knows no
operator and imports nothing above it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

import numpy as np

from nngraph.core.ir import Graph
from nngraph.core.types import TensorType, dtype_name
from nngraph.errors import ShapeError, Span

PHASES = ("forward", "backward", "update")


class OpRecord(Protocol):
    """What the emitter needs of an operator record."""

    name: str

    def full_attrs(self, given: dict[str, Any]) -> dict[str, Any]: ...

    def infer(self, types: list[TensorType], attrs: dict[str, Any]) -> TensorType: ...


class Emitter:
    """Adds nodes to `graph` at `span`, in `phase`, under `scope` (the node ids' prefix)."""

    def __init__(
        self,
        graph: Graph,
        ops: Callable[[str], OpRecord],
        span: Span | None = None,
        scope: str = "",
        phase: str = "forward",
    ):
        assert phase in PHASES, phase
        self.graph, self.ops, self.span, self.scope, self.phase = graph, ops, span, scope, phase

    # ---- what a stage may override -------------------------------------------------------------

    def node_id(self, op: str) -> str:
        """The id a new `op` node is derived from (the graph adds a suffix when it is taken)."""
        return f"{self.scope}/{op}" if self.scope else op

    def fields(self) -> dict[str, Any]:
        """Extra node fields of every node this emitter adds (e.g. the builder's order)."""
        return {}

    def failed(self, err: ShapeError, op: str, inputs: list[str]) -> NoReturn:
        """A shape rule refused the inputs: the builder turns this into a positioned error."""
        raise err

    def made(self, op: str, inputs: list[str], t: TensorType) -> None:
        """Called with the inferred type before the node is inserted: a stage's extra checks."""

    # ---- adding nodes --------------------------------------------------------------------------

    def op(self, name: str, inputs: list[str | V], **attrs: Any) -> str:
        """The node `name(*inputs; **attrs)`; its shape rule runs, so a bad call fails here."""
        rec = self.ops(name)
        full = rec.full_attrs(attrs)
        ins = [str(i) for i in inputs]
        try:
            t = rec.infer([self.graph.type(i) for i in ins], full)
        except ShapeError as e:
            self.failed(e, name, ins)
        self.made(name, ins, t)
        return self.graph.add(
            self.node_id(name),
            name,
            ins,
            t,
            self.span,
            full,
            scope=self.scope,
            phase=self.phase,
            **self.fields(),
        )

    def const(self, value: Any, like: str | V | TensorType | np.dtype | None = None) -> str:
        """A constant; `like` (a node, a type or a dtype) gives its dtype, else the value's own."""
        if like is None:
            arr = np.asarray(value)
        else:
            dt = (
                like
                if isinstance(like, np.dtype)
                else (like if isinstance(like, TensorType) else self.type(like)).np_dtype
            )
            arr = np.asarray(value, dtype=dt)
        t = TensorType(dtype_name(arr.dtype), tuple(arr.shape))
        return self.graph.add(  # no scope: a constant belongs to no layer's box
            self.node_id("const"), "const", [], t, self.span, value=arr, phase=self.phase, **self.fields()
        )

    def input(self, name: str, t: TensorType) -> str:
        """A graph input under exactly `name` (when free), listed among the graph's inputs."""
        nid = self.graph.add(name, "input", [], t, self.span, phase=self.phase, **self.fields())
        self.graph.inputs.append(nid)
        return nid

    def v(self, nid: str | V) -> V:
        return nid if isinstance(nid, V) else V(self, nid)

    def type(self, nid: str | V) -> TensorType:
        return self.graph.type(str(nid))

    def unbroadcast(self, g: str | V, to: str | V) -> str:
        """Sum `g` over the axes along which `to` was broadcast, back to `to`'s shape."""
        g, to = str(g), str(to)
        gt, tt = self.type(g), self.type(to)
        if gt.shape == tt.shape:
            return g
        lead = gt.rank - tt.rank
        axes = list(range(lead)) + [
            lead + i for i, d in enumerate(tt.shape) if d == 1 and gt.shape[lead + i] != 1
        ]
        if axes:
            g = self.op("reduce_sum", [g], axes=tuple(axes), keepdims=0)
        if self.type(g).shape != tt.shape:
            g = self.op("reshape_like", [g, to])
        return g


def backward_span(span: Span | None) -> Span | None:
    """The forward node's span, marked as backward: what a gradient node carries."""
    return dataclasses.replace(span, backward=True) if span is not None else None


class V:
    """A graph node as an expression: `g * y * (1 - y)` adds mul/sub nodes through the emitter.

    Python numbers become scalar constants of the node's dtype. `str(v)` is the node id, and V
    values are accepted wherever node ids are.
    """

    __slots__ = ("c", "id")

    def __init__(self, c: Emitter, nid: str):
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
