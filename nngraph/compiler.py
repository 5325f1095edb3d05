"""The front door: .nn file -> checked graph -> ONNX, as a `Model` object."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import onnx

from nngraph.fileio import atomic_write_bytes
from nngraph.graph.build import SummaryRow, build_graph
from nngraph.graph.ir import Graph
from nngraph.graph.printer import format_graph
from nngraph.graph.program import load_file, load_text
from nngraph.graph.summary import summary_dict, summary_text
from nngraph.onnx.lower import check, lower


class Model:
    """A compiled model: its graph, its layer table, and its ONNX form."""

    def __init__(self, graph: Graph, rows: list[SummaryRow]):
        self.graph = graph
        self.rows = rows

    @property
    def name(self) -> str:
        return self.graph.name

    @cached_property
    def onnx(self) -> onnx.ModelProto:
        """The inference model, checked by onnx.checker (full) and strict shape inference."""
        model = lower(self.graph)
        check(model)
        return model

    def save(self, path: str | Path) -> Path:
        """Write the inference model atomically; returns the path."""
        atomic_write_bytes(path, self.onnx.SerializeToString())
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


def compile_file(path: str | Path, model: str | None = None, seed: int = 0) -> Model:
    """Parse, build and shape-check a .nn file (with its imports)."""
    return Model(*build_graph(load_file(path), model, seed))


def compile_source(text: str, file: str = "<string>", model: str | None = None, seed: int = 0) -> Model:
    """Like compile_file, from text; `file` names it in error messages."""
    return Model(*build_graph(load_text(text, file), model, seed))
