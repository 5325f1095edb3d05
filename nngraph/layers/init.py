"""Parameter initializers, seeded per parameter name so results are reproducible.

The defaults follow PyTorch: dense and conv weights and biases draw from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5)),
norm scales are ones and shifts zeros, embeddings N(0, 1).
"""

from __future__ import annotations

import zlib

import numpy as np

INITS = ("default", "he_uniform", "he_normal", "xavier_uniform", "xavier_normal", "zeros", "ones", "normal")


def initialize(
    name: str,
    shape: tuple[int, ...],
    init: str | float,
    fan_in: int,
    fan_out: int,
    seed: int,
    dtype=np.float32,
) -> np.ndarray:
    if isinstance(init, float):  # a layer's own constant start, e.g. prelu's slope 0.25
        return np.full(shape, init, dtype)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if init == "zeros":
        return np.zeros(shape, dtype)
    if init == "ones":
        return np.ones(shape, dtype)
    if init == "normal":
        return rng.standard_normal(shape).astype(dtype)
    if init == "default":
        bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
        return rng.uniform(-bound, bound, shape).astype(dtype)
    if init == "he_uniform":
        bound = np.sqrt(6.0 / fan_in)
        return rng.uniform(-bound, bound, shape).astype(dtype)
    if init == "he_normal":
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
    if init == "xavier_uniform":
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape).astype(dtype)
    if init == "xavier_normal":
        return (rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)
    raise ValueError(f"unknown initializer {init!r}")
