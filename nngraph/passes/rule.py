"""A fusion rule, and the pass that applies it wherever it matches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nngraph.core.ir import Graph
from nngraph.passes.manager import Pass

Match = dict[str, Any]


def pass_name(module: str) -> str:
    """A fusion's pass name is its module's: `fusions/fuse_gemm.py` is `--disable fuse_gemm`."""
    return module.rsplit(".", 1)[-1]


@dataclass
class Rule:
    """A pattern rooted at one node, a check that says why a match must not be rewritten, and
    the rewrite; `as_pass` applies it at every node it matches."""

    name: str
    match: Callable[[Graph, str], Match | None]  # the pattern, rooted at one node
    check: Callable[[Graph, Match], str | None]  # None, or why this match must not be rewritten
    rewrite: Callable[[Graph, Match], str]  # returns the node that replaces the root
    doc: str = ""

    def why_not(self, graph: Graph, node: str) -> str | None:
        """For tests and --report: why the rule does not apply at `node` (None when it does)."""
        m = self.match(graph, node)
        return "no match" if m is None else self.check(graph, m)

    def as_pass(self) -> Pass:
        def run(graph: Graph) -> bool:
            changed = False
            for n in graph.topo():
                if n not in graph.g:
                    continue
                m = self.match(graph, n)
                if m is None or self.check(graph, m) is not None:
                    continue
                new = self.rewrite(graph, m)
                graph.replace_uses(n, new)
                changed = True
            if changed:
                graph.prune()
            return changed

        return Pass(self.name, run, self.doc)
