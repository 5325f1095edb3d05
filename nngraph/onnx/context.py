"""The lowering context: what an operator's `lower` function writes ONNX nodes into."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR of opset 17; onnxruntime-gpu 1.31 refuses anything above 13


class LowerContext:
    """Collects nodes and initializers with names that never clash."""

    def __init__(self, reserved: set[str] | None = None):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.used: set[str] = set(reserved or ())
        self.source = ""  # graph node being lowered; ONNX node names lead back to it
        self._consts: dict[tuple, str] = {}
        self._suffix: dict[str, int] = {}  # per hint, the last suffix used: no probing from _2 each time

    def fresh(self, hint: str) -> str:
        name = hint
        i = self._suffix.get(hint, 1)
        while name in self.used:
            i += 1
            name = f"{hint}_{i}"
        self._suffix[hint] = i
        self.used.add(name)
        return name

    def emit(self, op_type: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        """Add one ONNX node; returns its (single) output name."""
        if out is None:
            out = self.fresh(f"{self.source or 'tmp'}/{op_type}")
        else:
            self.used.add(out)
        name = self.fresh(f"{self.source}:{op_type}" if self.source else op_type)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def emit_multi(self, op_type: str, inputs: list[str], n_out: int, **attrs: Any) -> list[str]:
        outs = [self.fresh(f"{self.source or 'tmp'}/{op_type}_{i}") for i in range(n_out)]
        name = self.fresh(f"{self.source}:{op_type}" if self.source else op_type)
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """An initializer holding `value`; equal small constants are shared."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values: list[int] | tuple[int, ...], hint: str = "ints") -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint=hint)
