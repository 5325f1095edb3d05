"""Binary and ternary primitives take numbers where they take tensors, as the operators do
(issue 15, item 2): `minimum(relu(x), 6.0)` is ReLU6, `sub(1, x)` is 1 - x, `where(c, x, 0.0)`
masks. The number becomes a scalar constant of the other operand's dtype; the model runs in
onnxruntime as NumPy computes it and differentiates as NumPy's derivative says. Also issue 15's
hint rule (item 3): an unknown layer is hinted within its family, so conv_transpose2d is never
hinted as `transpose`."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HEAD, assert_caret, ort_session

import nngraph as ng
from nngraph.autodiff.backward import backward
from nngraph.core.emit import Emitter
from nngraph.frontend.diagnostics import family
from nngraph.layers.registry import all_layers
from nngraph.ops import reference, registry

LN2 = np.log(2.0)

# (expression, forward in NumPy, its derivative in x times the upstream gradient r; None: none)
# fmt: off
CASES = [
    ("minimum(relu(x), 6.0)", lambda x, c: np.minimum(np.maximum(x, 0), 6), lambda x, c, r: r * ((x > 0) & (x < 6))),
    ("maximum(x, 0)", lambda x, c: np.maximum(x, 0), lambda x, c, r: r * (x > 0)),
    ("pow(x, 2)", lambda x, c: x**2, lambda x, c, r: r * 2 * x),
    ("pow(2, x)", lambda x, c: 2.0**x, lambda x, c, r: r * 2.0**x * LN2),
    ("add(x, 1)", lambda x, c: x + 1, lambda x, c, r: r),
    ("sub(1, x)", lambda x, c: 1 - x, lambda x, c, r: -r),
    ("mul(x, 0.5)", lambda x, c: x * 0.5, lambda x, c, r: 0.5 * r),
    ("div(x, 2)", lambda x, c: x / 2, lambda x, c, r: r / 2),
    ("where(c, x, 0.0)", lambda x, c: np.where(c, x, 0), lambda x, c, r: r * c),
    ("where(c, -1, x)", lambda x, c: np.where(c, -1, x), lambda x, c, r: r * ~c),
    ("x | minimum(6.0)", lambda x, c: np.minimum(x, 6), lambda x, c, r: r * (x < 6)),
    ("x | sub(1)", lambda x, c: x - 1, lambda x, c, r: r),
    ("cast(greater(x, 0.5), to=f32)", lambda x, c: (x > 0.5).astype(np.float32), None),
]
# fmt: on


def source(expr: str, dtype: str) -> str:
    cond = "    input c: bool[batch, 5]\n" if "c," in expr else ""
    return f"model M {{\n    input x: {dtype}[batch, 5]\n{cond}    output y = {expr}\n}}\n"


def feeds(expr: str, dtype: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = (4 * rng.standard_normal((3, 5))).astype(np.dtype(dtype.replace("f", "float")))
    out = {"x": x}
    if "c," in expr:
        out["c"] = rng.standard_normal((3, 5)) > 0
    return out


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_runs_in_onnxruntime_as_numpy(case, dtype):
    expr, forward, _ = case
    m = ng.compile_source(source(expr, dtype), "m.nn")
    f = feeds(expr, dtype)
    (y,) = ort_session(m.onnx).run(None, f)
    want = forward(f["x"].astype(np.float64), f.get("c"))
    tol = 1e-6 if dtype == "f32" else 1e-12
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)
    if "cast" not in expr:
        assert y.dtype == f["x"].dtype  # the number took the tensor's dtype


@pytest.mark.parametrize("case", [c for c in CASES if c[2] is not None], ids=lambda c: c[0])
def test_gradient_through_the_constant_is_numpys(case):
    expr, _, derivative = case
    m = ng.compile_source(source(expr, "f64"), "m.nn")
    f = feeds(expr, "f64")
    g = m.graph
    r = np.random.default_rng(1).standard_normal((3, 5))
    rn = g.add("r", "const", [], g.type(g.outputs["y"]), None, value=r)
    e = Emitter(g, registry.get)
    loss = e.op("reduce_sum", [e.op("mul", [g.outputs["y"], rn])], axes=None, keepdims=0)
    (gx,) = backward(g, loss, ["x"]).values()
    g.outputs = {"gx": gx}
    got = reference.evaluate(g, f)["gx"]
    np.testing.assert_allclose(got, derivative(f["x"], f.get("c"), r), rtol=1e-10, atol=1e-12)


def test_the_constant_is_a_scalar_of_the_operands_dtype():
    m = ng.compile_source("model M {\n    input i: i64[batch, 4]\n    output y = add(i, 2)\n}\n", "m.nn")
    consts = [n for n in m.graph.g if m.graph.node(n)["op"] == "const"]
    assert [str(m.graph.type(n)) for n in consts] == ["i64[]"]
    (y,) = ort_session(m.onnx).run(None, {"i": np.arange(8, dtype=np.int64).reshape(2, 4)})
    np.testing.assert_array_equal(y, np.arange(8).reshape(2, 4) + 2)


def test_a_layer_held_in_a_name_takes_a_number_too():
    src = HEAD + "    m = minimum\n    output y = m(x, 6.0)\n}\n"
    x = np.linspace(0, 12, 32, dtype=np.float32).reshape(2, 16)
    (y,) = ort_session(ng.compile_source(src, "m.nn").onnx).run(None, {"x": x})
    np.testing.assert_allclose(y, np.minimum(x, 6))


MASK = "model M {\n    input k: bool[batch, 16]\n"
INTS = "model M {\n    input i: i64[batch, 16]\n"

# (id, source, line, token where the caret goes, message part, hint part or None)
# fmt: off
MISTAKES = [
    ("only_numbers", HEAD + "    output o = x + minimum(1.0, 2.0)\n}", 3, "minimum(", "needs a tensor among its operands", None),
    ("bool_operand", MASK + "    output o = cast(minimum(k, 1), to=f32)\n}", 3, "1)", "'minimum' of the number 1 and a bool tensor", "cast"),
    ("where_of_numbers", MASK + "    output o = where(k, 1.0, 0.0)\n}", 3, "where", "no dtype for its result", "cast(c, to=f32)"),
    ("int_truncated", INTS + "    output o = add(i, 2.5)\n}", 3, "2.5", "would be truncated", "cast"),
    ("not_a_number", HEAD + "    output o = minimum(x, true)\n}", 3, "true", "operand 'b' of 'minimum' must be a tensor or a number", None),
    ("list_operand", HEAD + "    output o = minimum(x, [1, 2])\n}", 3, "[1", "must be a tensor or a number, got a list", None),
    ("undefined_operand", HEAD + "    output o = minimum(x, y)\n}", 3, "y)", "undefined tensor 'y'", None),
    ("number_without_tensor", HEAD + "    m = minimum(6.0)\n    output o = x | m\n}", 3, "6.0", "only with all its 2 operands given", "same call"),
]
# fmt: on


@pytest.mark.parametrize("case", MISTAKES, ids=[c[0] for c in MISTAKES])
def test_mistake_is_positioned(case):
    _, src, line, token, message, hint = case
    with pytest.raises(ng.NNError) as info:
        _ = ng.compile_source(src, "m.nn").onnx
    err = info.value
    assert message in err.message, err.render()
    assert_caret(err.render(), "m.nn", src.splitlines()[line - 1], line, token)
    assert err.expected
    if hint is not None:
        assert err.hint is not None and hint in err.hint, err.render()


def unknown_layer_hint(name: str) -> str | None:
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(HEAD + f"    output o = x | {name}(4)\n}}", "m.nn")
    assert f"unknown layer '{name}'" in info.value.message
    return info.value.hint


def test_families_come_from_the_record_and_the_family_module():
    layers = all_layers()
    assert family(layers["transpose"]) == "shape"  # a primitive: its Style.category
    assert family(layers["minimum"]) == "elementwise"
    assert family(layers["conv2d"]) == "conv"  # a layer: the module of its family
    assert family(layers["maxpool"]) == "pool"
    assert family(layers["dense"]) == "linear"


@pytest.mark.parametrize(
    "name", ["conv_transpose4d", "convtranspose2d", "conv_transpse1d", "transposed_conv2d"]
)
def test_a_convolution_is_never_hinted_as_another_family(name):
    hint = unknown_layer_hint(name)
    if hint is not None:
        best = hint.split("'")[1]
        assert family(all_layers()[best]) == "conv", hint


@pytest.mark.parametrize(
    "name,best",
    [
        ("conv_3d", "conv3d"),
        ("max_pool3d", "maxpool3d"),
        ("reluu", "relu"),  # relu6 itself became a layer when the activations landed
        ("dnse", "dense"),
        ("transpos", "transpose"),
    ],
)
def test_hints_within_the_family_still_come(name, best):
    assert unknown_layer_hint(name) == f"did you mean '{best}'?"
