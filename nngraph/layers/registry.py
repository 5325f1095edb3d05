"""The layer registry: what a layer is (LayerDef), what it sees while it builds (LayerCtx),
and the `layer` decorator each family registers with.

A layer's `build(ctx, xs, args)` makes its parameters with `ctx.param`, its nodes with `ctx.op`,
and other layers inside it with `ctx.call`; it never knows about ONNX, gradients or diagrams,
which come from the primitive operators' records. Importing nngraph.layers, or any module in it,
registers every family, so what the registry holds never depends on which module came first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nngraph.core.types import TensorType
from nngraph.layers.args import ArgSpec


class LayerCtx(Protocol):
    def op(self, name: str, inputs: list[str], **attrs: Any) -> str: ...
    def param(
        self,
        local: str,
        shape: tuple[int, ...],
        init: str | float,
        fan_in: int = 0,
        fan_out: int = 0,
        trainable: bool = True,
        like: str | None = None,
        dtype: str | None = None,
        zero_rows: tuple[int, ...] = (),
    ) -> str: ...
    def type(self, node: str) -> TensorType: ...
    def fail(self, message: str, expected: str | None = None, hint: str | None = None) -> None: ...
    def dims(self) -> set[str]: ...
    def float_dtype(self) -> str: ...
    @property
    def training(self) -> bool: ...
    def update(self, buffer: str, value: str) -> None: ...
    def latest(self, buffer: str) -> str: ...
    def noise(self, like: str, p: float, shape: tuple | None = None) -> str: ...
    def scalar(self, value: float | list[float], like: str) -> str: ...  # a list: a constant vector
    def shared(self, instance: str, local: str) -> str: ...
    def call(self, kind: str, xs: list[str], name: str | None = None, **args: Any) -> str: ...


Build = Callable[[LayerCtx, list[str], dict[str, Any]], str]


@dataclass
class LayerDef:
    name: str
    n_tensors: int | None  # None: one or more
    params: list[ArgSpec]
    build: Build
    doc: str = ""
    op: str | None = None  # the primitive operator this layer is exactly, for a layer of one operator


LAYERS: dict[str, LayerDef] = {}


def layer(
    name: str, params: list[ArgSpec], n_tensors: int | None = 1, doc: str = ""
) -> Callable[[Build], Build]:
    """Register `build` as the layer `name`; a .nn file calls it with `params`."""

    def deco(fn: Build) -> Build:
        LAYERS[name] = LayerDef(name, n_tensors, params, fn, doc)
        return fn

    return deco


def lookup(name: str) -> LayerDef | None:
    """The layer called `name`, or None."""
    return LAYERS.get(name)


def all_layers() -> dict[str, LayerDef]:
    """Every layer by name: the composites of each family and every primitive operator."""
    return LAYERS
