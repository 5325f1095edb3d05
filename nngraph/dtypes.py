"""The .nn dtype names and their NumPy dtypes: numpy only, so the runtime and the compiler share them."""

from __future__ import annotations

import numpy as np

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


def dtype_name(dt: np.dtype) -> str:
    """The .nn name of a NumPy dtype."""
    for name, d in DTYPES.items():
        if d == np.dtype(dt):
            return name
    raise KeyError(f"unsupported dtype {dt}")
