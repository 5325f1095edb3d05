"""nngraph: write neural networks as text, compile them to plain ONNX.

Attributes load lazily so that ``import nngraph.runtime`` pulls in neither
lark nor networkx: an application embedding a compiled model needs only numpy
and onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

from nngraph.errors import NNError
from nngraph.version import __version__

__all__ = ["NNError", "__version__", "compile_file", "compile_source", "Model", "runtime"]

_LAZY = {
    "compile_file": "nngraph.compiler",
    "compile_source": "nngraph.compiler",
    "Model": "nngraph.compiler",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "runtime":
        return importlib.import_module("nngraph.runtime")
    raise AttributeError(f"module 'nngraph' has no attribute {name!r}")
