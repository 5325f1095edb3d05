"""Tensor types: a dtype and a shape whose dims are ints or symbolic names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nngraph.graph.dims import canonical

Dim = int | str

#: .nn dtype name -> numpy dtype
DTYPES: dict[str, np.dtype] = {
    "f16": np.dtype(np.float16),
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "bool": np.dtype(np.bool_),
}
FLOATS = ("f16", "f32", "f64")
INTS = ("i32", "i64")


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


def dtype_name(dt: np.dtype) -> str:
    for name, d in DTYPES.items():
        if d == np.dtype(dt):
            return name
    raise KeyError(f"unsupported dtype {dt}")


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
