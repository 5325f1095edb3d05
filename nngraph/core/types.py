"""Tensor types: a dtype and a shape whose dims are ints or symbolic names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from nngraph.core.dims import canonical
from nngraph.dtypes import DTYPES, FLOATS, INTS, dtype_name  # noqa: F401  (re-exported: the compiler's one import)

Dim = int | str


@dataclass(frozen=True)
class TensorType:
    dtype: str
    shape: tuple[Dim, ...]

    def __post_init__(self) -> None:
        # one spelling per size: "(batch*6)//6" is batch, "(seq-1)+seq" is seq*2-1 (see dims.py)
        if any(isinstance(d, str) for d in self.shape):
            object.__setattr__(self, "shape", tuple(canonical(d) for d in self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def np_dtype(self) -> np.dtype:
        return DTYPES[self.dtype]

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def with_shape(self, shape) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            if not isinstance(d, int):
                raise ValueError(f"{self} has symbolic dims")
            n *= d
        return n

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"


def dim_mul(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 1:
        return b
    if b == 1:
        return a
    return f"{_paren(a)}*{_paren(b)}"


def dim_affine(d: Dim, fn, text: str) -> Dim:
    """Apply an integer function to a dim; symbolic dims become an expression string."""
    if isinstance(d, int):
        return fn(d)
    return text.format(d=_paren(d))


def _paren(d: Dim) -> str:
    s = str(d)
    return s if s.isidentifier() or s.isdigit() else f"({s})"


_ONNX_ELEM = {
    "f16": TensorProto.FLOAT16,
    "f32": TensorProto.FLOAT,
    "f64": TensorProto.DOUBLE,
    "i32": TensorProto.INT32,
    "i64": TensorProto.INT64,
    "bool": TensorProto.BOOL,
}


def onnx_elem_type(dtype: str) -> int:
    """The ONNX element type of a .nn dtype name."""
    return _ONNX_ELEM[dtype]
