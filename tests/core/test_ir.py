"""The graph IR: a span on every node and a type on every edge, the printer's line format, and
reach walks that agree with networkx."""

from __future__ import annotations

import random

import networkx as nx

import nngraph as ng
from nngraph.core.ir import Graph
from nngraph.core.types import TensorType


def test_every_node_has_a_span_and_every_edge_a_type():
    m = ng.compile_source("model M {\n input x: f32[batch, 6]\n output o = x | dense(4) | gelu\n}", "s.nn")
    for n, d in m.graph.g.nodes(data=True):
        assert d["span"] is not None and d["span"].file == "s.nn", n
    for u, _v, d in m.graph.g.edges(data=True):
        assert d["type"] == m.graph.type(u)


def test_graph_printer_line_format():
    m = ng.compile_source("model M {\n input x: f32[batch, 6]\n output o = x | relu\n}", "p.nn")
    assert "relu_1: f32[batch,6] = relu(x) @ p.nn:3:17" in str(m).splitlines()


def test_reach_walks_match_networkx():
    rng = random.Random(0)
    g = Graph("g")
    ids = []
    for i in range(60):
        ins = rng.sample(ids, min(len(ids), rng.randint(0, 3)))
        ids.append(g.add(f"n{i}", "input" if not ins else "add", ins, TensorType("f32", (1,)), None))
    for n in rng.sample(ids, 5):
        assert g.upstream([n]) == nx.ancestors(g.g, n) | {n}
        assert g.downstream([n]) == nx.descendants(g.g, n) | {n}
    some = rng.sample(ids, 4)
    assert g.upstream(some) == set().union(*(nx.ancestors(g.g, n) | {n} for n in some))
