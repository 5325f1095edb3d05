"""Operators as compiled and run: Python's slicing (a negative step alone, a slice that takes
nothing), integer division, unsqueeze's axes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import nngraph as ng
from nngraph.errors import NNError


def test_slice_with_a_negative_step_alone_reverses_like_python():
    """start defaults to Python's None: step=-1 alone is x[::-1] (a default of 0 took one element)."""
    src = "model M {\n    input x: f32[batch, seq, 2]\n    output y = x | slice(axis=1, step=-1)\n}\n"
    x = np.arange(12, dtype=np.float32).reshape(1, 6, 2)
    y = ng.runtime.Session(ng.compile_source(src).to_onnx().SerializeToString()).run({"x": x})["y"]
    np.testing.assert_array_equal(y, x[:, ::-1])


@pytest.mark.parametrize(
    "shape, stages",
    [
        ("f32[batch, 4]", "slice(axis=1, start=5)"),
        ("f32[batch, seq, 3]", "slice(axis=1, start=-1) | slice(axis=1, start=1)"),
    ],
)
def test_a_slice_that_takes_nothing_is_an_error(shape, stages):
    """Python's clamping makes the slice valid, but a dense after it would output zeros silently.

    Regression: a slice past the end, or slices chained down to nothing, passed silently."""
    src = f"model M {{\n    input x: {shape}\n    output y = x | {stages} | dense(2)\n}}\n"
    with pytest.raises(NNError) as e:
        ng.compile_source(src, "s.nn")
    assert "gives an empty tensor" in str(e.value) and "s.nn:3:" in e.value.render()


def test_integer_division_truncates_toward_zero_as_documented():
    src = "model M {\n    input a: i64[batch]\n    input b: i64[batch]\n    output y = a / b\n}\n"
    s = ng.runtime.Session(ng.compile_source(src).to_onnx().SerializeToString())
    a, b = np.array([-7, 7, -8, 9]), np.array([2, 2, 3, -4])
    np.testing.assert_array_equal(s.run({"a": a, "b": b})["y"], np.trunc(a / b).astype(np.int64))
    assert "`-7 / 2` is `-3`" in (ROOT / "grammar" / "README.md").read_text()


@pytest.mark.parametrize(
    "axes, why, allowed",
    [
        ("[7]", "7 is out of range", "[-3, 2]"),
        ("[-4]", "-4 is out of range", "[-3, 2]"),
        ("[1, -3]", "twice", "[-4, 3]"),
    ],
)
def test_unsqueeze_axes_are_checked_before_onnx(axes, why, allowed):
    """Regression: unsqueeze's axes reached ONNX unchecked."""
    src = f"model M {{\n    input x: f32[batch, 4]\n    output y = unsqueeze(x, axes={axes})\n}}\n"
    with pytest.raises(NNError) as e:
        ng.compile_source(src, "u.nn")
    assert why in str(e.value) and allowed in str(e.value)


def test_unsqueeze_in_range_matches_numpy():
    src = "model M {\n    input x: f32[batch, 4]\n    output y = unsqueeze(x, axes=[-1, 0])\n}\n"
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    y = ng.runtime.Session(ng.compile_source(src).to_onnx().SerializeToString()).run({"x": x})["y"]
    assert y.shape == np.expand_dims(x, (-1, 0)).shape == (1, 2, 4, 1)
