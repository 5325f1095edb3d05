"""The front end's entry: a program's model built into a graph. The training step opens a model
instead, adds its train section's targets, loss and metrics, then finishes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nngraph.core.ir import Graph
from nngraph.errors import Span
from nngraph.frontend.program import Program, pick_model
from nngraph.frontend.scope import Scope
from nngraph.frontend.statements import Builder
from nngraph.frontend.summary import SummaryRow
from nngraph.syntax import ast


@dataclass
class BuiltModel:
    """A model's checked graph, its summary rows, and what a training build made besides nodes."""

    graph: Graph
    rows: list[SummaryRow]
    state_updates: dict[str, str]  # buffer -> its value after a training step (batchnorm)
    noise: dict[str, float]  # dropout noise input -> drop probability
    targets: set[str]  # the inputs that are the train section's targets
    dims: set[str]  # the dim names the inputs declare


class OpenModel:
    """A model whose statements have run: its graph holds the model's outputs, and takes
    targets, the loss and metrics (evaluated in the model's names) until `finish`."""

    def __init__(self, builder: Builder, scope: Scope):
        self._b, self._scope = builder, scope
        self.outputs: dict[str, str] = dict(builder.graph.outputs)  # the model's own, in order

    @property
    def graph(self) -> Graph:
        return self._b.graph

    @property
    def state_updates(self) -> dict[str, str]:
        """Buffer -> its value after a training step, so far."""
        return self._b.state_updates

    def add_target(self, decl: ast.TargetDecl) -> str:
        """Declare a target input (checked like a model input); returns its node."""
        self._b.input_decl(decl, self._scope)
        self._b.targets.add(decl.name)
        return self._scope.vars[decl.name].node

    def tensor(self, expr: ast.Expr, what: str) -> str:
        """The node of `expr` (the train section's loss) evaluated in the model's names; `what`
        names it in the error when it is no tensor."""
        return self._b.tensor(self._b.eval(expr, self._scope), expr.span, what, self._scope).node

    def call(self, kind: str, inputs: list[str], args: dict[str, Any], span: Span, what: str) -> str:
        """The node of `kind(inputs..., k=v...)` as if written at `span` in the model: `inputs` are
        names of the model (an output, a target), `args` plain values."""
        b, scope = self._b, self._scope
        target = b.callee(kind, span, scope)
        pos = [b.lookup(name, span, scope) for name in inputs]
        kws = {k: (v, span) for k, v in args.items()}
        value = b.call_values(
            target, kind, pos, [span] * len(pos), kws, dict.fromkeys(args, span), span, scope
        )
        return b.tensor(value, span, what, scope).node

    def finish(self, outputs: dict[str, str] | None = None) -> BuiltModel:
        """Prune the graph to `outputs` (by default the model's) and refuse unused inputs."""
        b = self._b
        if outputs is not None:
            b.graph.outputs = outputs
        graph, rows = b.finish()
        return BuiltModel(graph, rows, b.state_updates, b.noise, b.targets, b.dims)


def open_model(prog: Program, model: str | None = None, seed: int = 0, training: bool = False) -> OpenModel:
    """Run the statements of `model` (by default the file's one model, or the one it trains);
    `training` builds batchnorm on batch statistics and dropout on noise inputs."""
    b = Builder(prog, seed, training)  # checks every block first, whichever model is picked
    return OpenModel(b, b.start(pick_model(prog, model)))


def build_graph(prog: Program, model: str | None = None, seed: int = 0, training: bool = False) -> BuiltModel:
    """Build and check `model`'s graph; see `open_model`."""
    return open_model(prog, model, seed, training).finish()
