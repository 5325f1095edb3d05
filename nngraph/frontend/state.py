"""What one build accumulates while statements run: the graph, the summary rows, the buffers'
updates and dropout noise of a training build, the dim names, the order nodes were made in."""

from __future__ import annotations

from nngraph.core.ir import Graph
from nngraph.frontend.program import Program
from nngraph.frontend.summary import SummaryRow
from nngraph.layers.registry import all_layers


class BuildState:
    def __init__(self, prog: Program, seed: int = 0, training: bool = False):
        self.prog = prog
        self.seed = seed
        self.training = training  # batchnorm on batch statistics, dropout on noise inputs
        self.state_updates: dict[str, str] = {}  # buffer -> its new value after a training step
        self.noise: dict[str, float] = {}  # dropout noise input -> drop probability
        self.targets: set[str] = set()
        self.param_elements = 0  # elements of the trainable parameters made so far, for the summary's column
        self.layers = all_layers()
        self.graph = Graph("")
        self.dims: set[str] = set()
        self.rows: list[SummaryRow] = []
        self.order = 0

    def tick(self) -> int:
        """The next node's place in source order (the graph's topological order breaks ties by it)."""
        self.order += 1
        return self.order
