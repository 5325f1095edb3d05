"""The front door: .nn file -> checked graph -> ONNX, as a `Model` object."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import onnx

from nngraph.core.ir import Graph
from nngraph.core.printer import format_graph
from nngraph.errors import NNError, deep_nesting
from nngraph.fileio import atomic_write_bytes
from nngraph.frontend import (
    Program,
    SummaryRow,
    build_graph,
    load_file,
    load_text,
    summary_dict,
    summary_text,
)
from nngraph.onnx.lower import check, lower
from nngraph.passes.manager import Runner
from nngraph.passes.pipeline import DEFAULT_LEVEL, optimize
from nngraph.training.spec import TrainSpec, read_train
from nngraph.training.step import Compiled, compile_training


class Model:
    """A compiled model: its graph, its layer table, and its ONNX form."""

    def __init__(self, graph: Graph, rows: list[SummaryRow], program: Program | None = None, seed: int = 0):
        self.graph = graph
        self.rows = rows
        self.program = program
        self.seed = seed
        self.metadata: dict[str, str] = {}  # extra ONNX metadata_props (the trainer records its data split)

    @property
    def name(self) -> str:
        return self.graph.name

    @cached_property
    def onnx(self) -> onnx.ModelProto:
        """The inference model at the default optimization level, checked by onnx.checker
        (full) and strict shape inference."""
        return self.to_onnx()

    def to_onnx(self, level: int = DEFAULT_LEVEL, runner: Runner | None = None) -> onnx.ModelProto:
        model = lower(optimize(self.graph, level, runner), metadata=self.metadata)
        check(model)
        return model

    def save(self, path: str | Path, level: int = DEFAULT_LEVEL, runner: Runner | None = None) -> Path:
        """Write the inference model atomically; returns the path."""
        model = self.onnx if level == DEFAULT_LEVEL and runner is None else self.to_onnx(level, runner)
        atomic_write_bytes(path, model.SerializeToString())
        return Path(path)

    def summary(self) -> str:
        return summary_text(self.graph, self.rows)

    def summary_dict(self) -> dict[str, Any]:
        return summary_dict(self.graph, self.rows)

    @property
    def param_count(self) -> int:
        return self.graph.param_count(True)

    def __str__(self) -> str:
        return format_graph(self.graph)

    # ---- diagrams ------------------------------------------------------------------------

    def draw(self, path: str | Path, **opts: Any) -> Path:
        """Write a diagram; the format comes from the suffix (.svg, .html, .dot, .png)."""
        from nngraph.viz import draw

        return draw(self.graph, path, rows=self.rows, **opts)

    def _repr_svg_(self) -> str:
        from nngraph.viz import render

        return render(self.graph, "svg", rows=self.rows)

    def _repr_html_(self) -> str:
        """The interactive diagram inside an iframe: the page's styles, fixed panels and element
        ids stay out of the notebook (and out of the next diagram's way)."""
        import html

        from nngraph.viz import render

        page = render(self.graph, "html", rows=self.rows)
        return (
            f'<iframe srcdoc="{html.escape(page, quote=True)}" '
            'style="width:100%;height:640px;border:1px solid #ddd" sandbox="allow-scripts"></iframe>'
        )

    # ---- training ------------------------------------------------------------------------

    def train_spec(self) -> TrainSpec:
        """The `train` section for this model, checked."""
        prog = self.program
        if prog is None or self.name not in prog.trains:
            model = prog.models.get(self.name) if prog is not None else None
            raise NNError(
                f"model '{self.name}' has no train section",
                model.span if model is not None else None,
                expected=f"a 'train {self.name} {{ ... }}' section",
            )
        return read_train(prog.trains[self.name])

    def training(
        self, kind: str = "step", level: int = DEFAULT_LEVEL, runner: Runner | None = None
    ) -> Compiled:
        """The training-step model ("step"), the gradients-only model ("grads") or the eval model;
        `level` also picks the passes that run before autodiff."""
        return compile_training(self.program, self.train_spec(), self.seed, kind, level, runner)

    def trainer(
        self,
        device: str = "cpu",
        seed: int | None = None,
        out: str | Path | None = None,
        progress: bool = False,
        threads: int | None = None,
    ):
        """A Trainer for this model's train section (see nngraph.training.trainer)."""
        from nngraph.training.trainer import Trainer

        return Trainer(self.program, self.train_spec(), seed, device, threads, out, progress)


def compile_file(path: str | Path, model: str | None = None, seed: int = 0) -> Model:
    """Parse, build and shape-check a .nn file (with its imports)."""
    _check_seed(seed)
    with deep_nesting(str(path)):
        prog = load_file(path)
        built = build_graph(prog, model, seed)
        return Model(built.graph, built.rows, prog, seed)


def compile_source(text: str, file: str = "<string>", model: str | None = None, seed: int = 0) -> Model:
    """Like compile_file, from text; `file` names it in error messages."""
    _check_seed(seed)
    with deep_nesting(file):
        prog = load_text(text, file)
        built = build_graph(prog, model, seed)
        return Model(built.graph, built.rows, prog, seed)


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise NNError(f"the seed must be an integer >= 0, got {seed!r}")
