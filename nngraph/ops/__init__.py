"""The primitive operators: one record per operator (registry.py), one family per module.

Importing nngraph.ops, or any module in it, registers every family, so what the registry holds
never depends on which module was imported first.
"""

from nngraph.ops import (  # noqa: F401  (each family registers its records)
    activation,
    conv,
    conv_gemm,
    elementwise,
    linalg,
    math,
    norm,
    pool,
    recurrent,
    reduce,
    resample,
    shape,
    slicing,
)
