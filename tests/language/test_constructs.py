"""The language's constructs, checked by the graphs and numbers they produce."""

from __future__ import annotations

import numpy as np
from conftest import ort_session, param_values, run_model

import nngraph as ng
from nngraph.core.types import TensorType

X = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)


def test_pipeline_nested_calls_and_keywords_agree():
    src = """
    model M {
        input x: f32[batch, 6]     # comments go anywhere
        a = x | dense(4, bias=false) | relu
        output o = a
    }"""
    nested = src.replace("x | dense(4, bias=false) | relu", "relu(dense(x, units=4, bias=false))")
    m1, m2 = ng.compile_source(src), ng.compile_source(nested)
    (w,) = param_values(m1).values()
    want = np.maximum(X @ w, 0)
    np.testing.assert_allclose(run_model(m1, x=X)["o"], want, rtol=1e-5)
    np.testing.assert_allclose(run_model(m2, x=X)["o"], want, rtol=1e-5)


def test_arithmetic_on_tensors_and_numbers():
    m = ng.compile_source("model M {\n input x: f32[batch, 6]\n output o = -x * 2 + x / 4 - 1\n}")
    np.testing.assert_allclose(run_model(m, x=X)["o"], -X * 2 + X / 4 - 1, rtol=1e-6)


def test_number_arithmetic_in_arguments():
    m = ng.compile_source("model M {\n input x: f32[batch, 6]\n output o = x | dense(3 * 4 - 2)\n}")
    assert m.graph.type(m.graph.outputs["o"]) == TensorType("f32", ("batch", 10))


def test_named_layer_shares_weights():
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 6]\n enc = dense(6)\n a = x | enc\n b = a | enc\n output o = b\n}"
    )
    p = param_values(m)
    assert sorted(p) == ["enc.bias", "enc.weight"]
    w, b = p["enc.weight"], p["enc.bias"]
    np.testing.assert_allclose(run_model(m, x=X)["o"], (X @ w + b) @ w + b, rtol=1e-5)


def test_block_instance_shares_weights_but_each_call_is_fresh():
    src = """
    block mlp(x, width: int, act: str = "relu") {
        return x | dense(width) | relu | dense(6)
    }
    model M {
        input x: f32[batch, 6]
        shared = mlp(8)
        a = x | shared | shared
        output o = a | mlp(width=8) | mlp(8)
    }"""
    m = ng.compile_source(src)
    weights = [p for p in m.graph.params() if p.endswith(".weight")]
    assert len(weights) == 2 + 2 + 2  # one shared instance, two fresh ones
    assert "shared/dense_1.weight" in weights


def test_repeat_makes_distinct_layers():
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 6]\n h = x\n repeat 3 {\n h = h | dense(6) | tanh\n }\n output o = h\n}"
    )
    p = param_values(m)
    assert len(p) == 6
    h = X
    for i in (1, 2, 3):
        h = np.tanh(h @ p[f"dense_{i}.weight"] + p[f"dense_{i}.bias"])
    np.testing.assert_allclose(run_model(m, x=X)["o"], h, rtol=1e-5, atol=1e-6)


def test_repeat_count_from_block_parameter():
    src = "block stack(x, n: int = 2) {\n h = x\n repeat n { h = h | dense(6) }\n return h\n}\n"
    src += "model M {\n input x: f32[batch, 6]\n output o = x | stack(n=4)\n}"
    assert sum(1 for p in ng.compile_source(src).graph.params() if p.endswith("weight")) == 4


def test_block_defaults_and_typed_parameters():
    src = """
    block conv_block(x, channels: int, kernel: int = 3, act: bool = true) {
        return x | conv2d(channels, kernel=kernel, padding=same)
    }
    model M {
        input img: f32[batch, 2, 8, 8]
        output o = img | conv_block(4) | conv_block(5, kernel=1)
    }"""
    m = ng.compile_source(src)
    shapes = {p: m.graph.type(p).shape for p in m.graph.params() if p.endswith("weight")}
    assert shapes == {
        "conv_block_1/conv2d_1.weight": (4, 2, 3, 3),
        "conv_block_2/conv2d_1.weight": (5, 4, 1, 1),
    }


def test_two_step_output_and_several_outputs():
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 6]\n output p\n output q = x | relu\n p = x | sigmoid\n}"
    )
    out = run_model(m, x=X)
    np.testing.assert_allclose(out["p"], 1 / (1 + np.exp(-X)), rtol=1e-6)
    np.testing.assert_allclose(out["q"], np.maximum(X, 0))


def test_import_relative_to_the_importing_file(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.nn").write_text("block twice(x) {\n return x + x\n}\n")
    (tmp_path / "m.nn").write_text(
        'import "lib/blocks.nn"\nmodel M {\n input x: f32[batch, 6]\n output o = x | twice\n}\n'
    )
    m = ng.compile_file(tmp_path / "m.nn")
    np.testing.assert_allclose(run_model(m, x=X)["o"], 2 * X)
    add = next(n for n in m.graph.g if m.graph.node(n)["op"] == "add")
    assert m.graph.node(add)["span"].file.endswith("blocks.nn")


def test_symbolic_dims_are_carried_through():
    src = "model M {\n input t: f32[batch, seq, 8]\n output o = t | dense(4) | reshape([batch, -1])\n}"
    m = ng.compile_source(src)
    assert m.graph.type(m.graph.outputs["o"]).shape[0] == "batch"
    out = run_model(m, t=np.ones((2, 5, 8), np.float32))["o"]
    assert out.shape == (2, 20)


def test_declared_output_takes_the_final_value():
    src = "model M {\n input x: f32[batch, 6]\n output h\n h = x | relu\n h = h * 2\n}"
    np.testing.assert_allclose(run_model(ng.compile_source(src), x=X)["h"], np.maximum(X, 0) * 2)


def test_block_string_parameter_names_a_layer():
    src = 'block act(x, f: str = "relu") {\n return x | f\n}\nmodel M {\n input x: f32[batch, 6]\n'
    src += ' output a = x | act\n output b = x | act(f="tanh")\n}'
    out = run_model(ng.compile_source(src), x=X)
    np.testing.assert_allclose(out["a"], np.maximum(X, 0))
    np.testing.assert_allclose(out["b"], np.tanh(X), rtol=1e-6)


def test_a_held_layer_takes_the_piped_tensor_first():
    """Regression: x | s with s = sub(y) computed y - x."""
    src = (
        "model M {\n    input x: f32[batch, 2]\n    input y: f32[batch, 2]\n    s = sub(y)\n"
        "    output d1 = x | sub(y)\n    output d2 = x | s\n}\n"
    )
    sess = ort_session(ng.compile_source(src).onnx)
    x, y = np.array([[1.0, 2.0]], np.float32), np.array([[10.0, 20.0]], np.float32)
    d1, d2 = sess.run(None, {"x": x, "y": y})
    np.testing.assert_array_equal(d1, x - y)
    np.testing.assert_array_equal(d2, x - y)


def test_output_of_a_bound_name_is_its_final_value():
    """Regression: 'output h' on a name already bound froze the value h had at the declaration."""
    src = "model M {\n    input x: f32[batch, 4]\n    h = x | relu\n    output h\n    h = h * 10\n}\n"
    (out,) = ort_session(ng.compile_source(src).onnx).run(None, {"x": np.array([[1, -2, 3, 4]], np.float32)})
    np.testing.assert_array_equal(out, [[10, 0, 30, 40]])
