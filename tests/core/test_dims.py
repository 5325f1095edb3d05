"""Symbolic dims in canonical form: equal sizes compare equal, and the form keeps the value."""

from __future__ import annotations

import random

import numpy as np
import pytest

import nngraph as ng
from nngraph.core.dims import canonical
from nngraph.core.types import TensorType


@pytest.mark.parametrize(
    "a, b",
    [
        ("(batch*6)//6", "batch"),
        ("(seq-1)+seq", "seq+(seq-1)"),
        ("(len-1)//2+1", "(len+1)//2"),
        ("seq*batch", "batch*seq"),
        ("n+n", "2*n"),
        ("(batch*seq*4)//2", "seq*batch*2"),
        ("max(0,3-seq)", "max(3-seq,0)"),
    ],
)
def test_spellings_of_one_size_are_one_dim(a, b):
    assert canonical(a) == canonical(b)
    assert TensorType("f32", (a, 3)) == TensorType("f32", (b, 3))


def test_a_constant_dim_becomes_an_int():
    assert canonical("seq-seq+4") == 4
    assert TensorType("f32", ("(seq*2)//2-seq+3",)).shape == (3,)


def test_different_sizes_stay_different():
    assert canonical("(seq+1)//2") != canonical("seq//2")
    assert canonical("seq+1") != canonical("seq")
    assert canonical("batch*seq") != canonical("batch+seq")


def _expr(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(["a", "b", "c", str(rng.randint(0, 7))])
    op = rng.choice(["+", "-", "*", "//", "max", "neg"])
    x, y = _expr(rng, depth - 1), _expr(rng, depth - 1)
    if op == "//":
        return f"({x})//{rng.randint(1, 5)}"
    if op == "max":
        return f"max({x},{y})"
    if op == "neg":
        return f"-({x})"
    return f"({x}){op}({y})"


def test_canonical_form_keeps_the_value_and_is_stable():
    """Random expressions of the dim language, evaluated at many points before and after."""
    rng = random.Random(0)
    for _ in range(400):
        e = _expr(rng, 4)
        c = canonical(e)
        if isinstance(c, str):
            assert canonical(c) == c, (e, c)
        for _ in range(6):
            env = {"a": rng.randint(1, 40), "b": rng.randint(1, 40), "c": rng.randint(1, 40)}
            want = eval(e, {"max": max}, env)
            got = c if isinstance(c, int) else eval(c, {"max": max}, env)
            assert got == want, (e, c, env)


def test_text_outside_the_dim_language_is_kept():
    assert canonical("f(seq)") == "f(seq)"
    assert canonical("seq**2") == "seq**2"


def run(src: str, feeds: dict) -> dict:
    model = ng.compile_source(src).to_onnx()
    return ng.runtime.Session(model.SerializeToString()).run(feeds)


def test_flatten_then_unflatten_meets_its_input():
    src = """
model M {
    input x: f32[batch, 6]
    u = x | reshape([-1]) | reshape([-1, 6])
    output y = u + x
}
"""
    x = np.arange(18, dtype=np.float32).reshape(3, 6)
    np.testing.assert_array_equal(run(src, {"x": x})["y"], 2 * x)


def test_concats_of_slices_in_either_order_add():
    src = """
model M {
    input x: f32[batch, seq, 2]
    a = x | slice(axis=1, end=-1)
    b = x | slice(axis=1, start=1)
    output y = concat(a, x, axis=1) + concat(x, b, axis=1)
}
"""
    x = np.random.default_rng(0).normal(size=(2, 5, 2)).astype(np.float32)
    want = np.concatenate([x[:, :-1], x], 1) + np.concatenate([x, x[:, 1:]], 1)
    np.testing.assert_allclose(run(src, {"x": x})["y"], want, rtol=1e-6)
