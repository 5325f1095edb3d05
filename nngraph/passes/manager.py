"""Passes, sequences, fixed points, the per-pass report, and the graph invariants checked between passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx

from nngraph.core.ir import LEAF_OPS, Graph
from nngraph.core.printer import format_graph
from nngraph.ops import registry


@dataclass
class Pass:
    """A named graph rewrite: `fn(graph) -> changed`, rewriting the graph in place."""

    name: str
    fn: Callable[[Graph], bool]
    doc: str = ""

    def __call__(self, graph: Graph) -> tuple[Graph, bool]:
        return graph, bool(self.fn(graph))


@dataclass
class ReportRow:
    name: str
    nodes_before: int
    nodes_after: int
    seconds: float
    changed: bool


@dataclass
class Runner:
    """Runs a pipeline; knows which passes are disabled, where to dump, and what each pass did."""

    disabled: set[str] = field(default_factory=set)
    check: bool = False  # check invariants after every pass (tests turn this on)
    dump_after: str | None = None
    dumped: str | None = None
    report: list[ReportRow] = field(default_factory=list)

    def run_pass(self, p: Pass, graph: Graph) -> bool:
        if p.name in self.disabled:
            return False
        before = graph.g.number_of_nodes()
        t0 = time.perf_counter()
        _, changed = p(graph)
        self.report.append(
            ReportRow(p.name, before, graph.g.number_of_nodes(), time.perf_counter() - t0, changed)
        )
        if self.check:
            check_invariants(graph, after=p.name)
        if self.dump_after == p.name:
            self.dumped = format_graph(graph)
        return changed


@dataclass
class Sequence:
    """Passes one after the other, once."""

    steps: list

    def run(self, graph: Graph, runner: Runner) -> bool:
        changed = False
        for s in self.steps:
            changed |= s.run(graph, runner) if hasattr(s, "run") else runner.run_pass(s, graph)
        return changed


@dataclass
class FixedPoint:
    """Passes repeated until none changes the graph (or `limit` rounds)."""

    steps: list
    limit: int = 8

    def run(self, graph: Graph, runner: Runner) -> bool:
        changed = False
        for _ in range(self.limit):
            if not Sequence(self.steps).run(graph, runner):
                break
            changed = True
        return changed


def names(pipeline) -> list[str]:
    out = []
    for s in pipeline.steps:
        out += names(s) if hasattr(s, "steps") else [s.name]
    return out


def check_invariants(graph: Graph, after: str = "") -> None:
    """Types and shapes agree with the shape rules, edges match inputs, no cycles, outputs exist."""
    where = f" after pass {after}" if after else ""
    g = graph.g
    assert nx.is_directed_acyclic_graph(g), f"cycle{where}"
    for o, nid in graph.outputs.items():
        assert nid in g, f"output {o} points at missing node {nid}{where}"
    for n, d in g.nodes(data=True):
        ins = d["inputs"]
        for i in ins:
            assert i in g, f"{n} reads missing node {i}{where}"
        assert set(g.predecessors(n)) == set(ins), f"edges of {n} do not match its inputs{where}"
        for src in ins:
            assert g.edges[src, n]["type"] == graph.type(src), f"edge {src}->{n} has a stale type{where}"
        if d["op"] in LEAF_OPS:
            continue
        op = registry.get(d["op"])
        want = op.infer([graph.type(i) for i in ins], d["attrs"])
        assert want == d["type"], f"{n}: {d['op']} says {want}, node has {d['type']}{where}"
