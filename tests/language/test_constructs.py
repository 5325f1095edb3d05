"""The language's constructs, checked by the graphs and numbers they produce."""

from __future__ import annotations

import numpy as np
import pytest

import nngraph as ng
from nngraph.core.types import TensorType
from nngraph.errors import NNError


def run(m, **feeds):
    return ng.runtime.Session(m.onnx.SerializeToString())(**feeds)


def params(m) -> dict[str, np.ndarray]:
    return {p: m.graph.node(p)["value"] for p in m.graph.params()}


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
    (w,) = params(m1).values()
    want = np.maximum(X @ w, 0)
    np.testing.assert_allclose(run(m1, x=X)["o"], want, rtol=1e-5)
    np.testing.assert_allclose(run(m2, x=X)["o"], want, rtol=1e-5)


def test_arithmetic_on_tensors_and_numbers():
    m = ng.compile_source("model M {\n input x: f32[batch, 6]\n output o = -x * 2 + x / 4 - 1\n}")
    np.testing.assert_allclose(run(m, x=X)["o"], -X * 2 + X / 4 - 1, rtol=1e-6)


def test_number_arithmetic_in_arguments():
    m = ng.compile_source("model M {\n input x: f32[batch, 6]\n output o = x | dense(3 * 4 - 2)\n}")
    assert m.graph.type(m.graph.outputs["o"]) == TensorType("f32", ("batch", 10))


def test_named_layer_shares_weights():
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 6]\n enc = dense(6)\n a = x | enc\n b = a | enc\n output o = b\n}"
    )
    p = params(m)
    assert sorted(p) == ["enc.bias", "enc.weight"]
    w, b = p["enc.weight"], p["enc.bias"]
    np.testing.assert_allclose(run(m, x=X)["o"], (X @ w + b) @ w + b, rtol=1e-5)


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
    p = params(m)
    assert len(p) == 6
    h = X
    for i in (1, 2, 3):
        h = np.tanh(h @ p[f"dense_{i}.weight"] + p[f"dense_{i}.bias"])
    np.testing.assert_allclose(run(m, x=X)["o"], h, rtol=1e-5, atol=1e-6)


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
    out = run(m, x=X)
    np.testing.assert_allclose(out["p"], 1 / (1 + np.exp(-X)), rtol=1e-6)
    np.testing.assert_allclose(out["q"], np.maximum(X, 0))


def test_import_relative_to_the_importing_file(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.nn").write_text("block twice(x) {\n return x + x\n}\n")
    (tmp_path / "m.nn").write_text(
        'import "lib/blocks.nn"\nmodel M {\n input x: f32[batch, 6]\n output o = x | twice\n}\n'
    )
    m = ng.compile_file(tmp_path / "m.nn")
    np.testing.assert_allclose(run(m, x=X)["o"], 2 * X)
    add = next(n for n in m.graph.g if m.graph.node(n)["op"] == "add")
    assert m.graph.node(add)["span"].file.endswith("blocks.nn")


def test_symbolic_dims_are_carried_through():
    src = "model M {\n input t: f32[batch, seq, 8]\n output o = t | dense(4) | reshape([batch, -1])\n}"
    m = ng.compile_source(src)
    assert m.graph.type(m.graph.outputs["o"]).shape[0] == "batch"
    out = run(m, t=np.ones((2, 5, 8), np.float32))["o"]
    assert out.shape == (2, 20)


def test_every_node_has_a_span_and_every_edge_a_type():
    m = ng.compile_source("model M {\n input x: f32[batch, 6]\n output o = x | dense(4) | gelu\n}", "s.nn")
    for n, d in m.graph.g.nodes(data=True):
        assert d["span"] is not None and d["span"].file == "s.nn", n
    for u, _v, d in m.graph.g.edges(data=True):
        assert d["type"] == m.graph.type(u)


def test_graph_printer_line_format():
    m = ng.compile_source("model M {\n input x: f32[batch, 6]\n output o = x | relu\n}", "p.nn")
    assert "relu_1: f32[batch,6] = relu(x) @ p.nn:3:17" in str(m).splitlines()


def test_initialization_is_seeded_and_pytorch_like():
    src = "model M {\n input x: f32[batch, 400]\n output o = x | dense(300) | dense(300, init=he_normal)\n}"
    a, b, c = ng.compile_source(src, seed=1), ng.compile_source(src, seed=1), ng.compile_source(src, seed=2)
    pa, pb, pc = params(a), params(b), params(c)
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert not np.array_equal(pa["dense_1.weight"], pc["dense_1.weight"])
    w = pa["dense_1.weight"]  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(w).max() <= 1 / np.sqrt(400) and np.abs(w).max() > 0.9 / np.sqrt(400)
    assert abs(pa["dense_2.weight"].std() - np.sqrt(2 / 300)) < 0.01  # he_normal
    assert not pa["dense_2.bias"].any()


def test_batchnorm_running_statistics_are_buffers_not_parameters():
    m = ng.compile_source("model M {\n input x: f32[batch, 3, 4, 4]\n output o = x | batchnorm\n}")
    assert m.param_count == 6
    assert m.graph.param_count(False) == 6


@pytest.mark.parametrize(
    "call,shape",
    [
        ("conv1d(4, kernel=3)", ("batch", 4, 14)),
        ("conv1d(4, kernel=3, stride=2, padding=1, dilation=2)", ("batch", 4, 7)),
        ("maxpool(2)", ("batch", 2, 8)),
        ("avgpool1d(4, stride=2, padding=2)", ("batch", 2, 9)),
        ("transpose([0, 2, 1])", ("batch", 16, 2)),
        ("slice(axis=2, start=2, end=10)", ("batch", 2, 8)),
        ("flatten", ("batch", 32)),
        ("softmax(axis=1)", ("batch", 2, 16)),
    ],
)
def test_sequence_layers_shapes(call, shape):
    m = ng.compile_source(f"model M {{\n input x: f32[batch, 2, 16]\n output o = x | {call}\n}}")
    assert m.graph.type(m.graph.outputs["o"]).shape == shape
    out = run(m, x=np.ones((3, 2, 16), np.float32))["o"]
    assert out.shape == tuple(3 if d == "batch" else d for d in shape)


def test_declared_output_takes_the_final_value():
    src = "model M {\n input x: f32[batch, 6]\n output h\n h = x | relu\n h = h * 2\n}"
    np.testing.assert_allclose(run(ng.compile_source(src), x=X)["h"], np.maximum(X, 0) * 2)


def test_block_string_parameter_names_a_layer():
    src = 'block act(x, f: str = "relu") {\n return x | f\n}\nmodel M {\n input x: f32[batch, 6]\n'
    src += ' output a = x | act\n output b = x | act(f="tanh")\n}'
    out = run(ng.compile_source(src), x=X)
    np.testing.assert_allclose(out["a"], np.maximum(X, 0))
    np.testing.assert_allclose(out["b"], np.tanh(X), rtol=1e-6)


@pytest.mark.parametrize(
    "body,message",
    [
        ("output o = x | transpose(1)", "transpose"),
        ("output o = x | dense(99999999999999)", "more than nngraph can hold"),
        ("input m: bool[batch]\n output o = (m + 1) + x", "bool"),
        ("input i: i64[batch, 6]\n output o = (i * 2.5) + x", "truncated"),
    ],
)
def test_more_mistakes_are_positioned(body, message):
    with pytest.raises(ng.NNError) as e:
        _ = ng.compile_source(f"model M {{\n input x: f32[batch, 6]\n {body}\n}}", "m.nn").onnx
    assert message in e.value.message and e.value.span is not None


def test_an_imported_block_cannot_call_a_block_of_its_importer(tmp_path):
    """Blocks resolve in their own file and its imports: lib.nn used from main.nn must not lean
    on main.nn's blocks (elsewhere it would not compile); through an import chain it may."""
    (tmp_path / "lib.nn").write_text("block wrap(x) {\n    return x | helper\n}\n")
    (tmp_path / "main.nn").write_text(
        'import "lib.nn"\nblock helper(x) {\n    return x | relu\n}\n'
        "model M {\n    input x: f32[batch, 4]\n    output y = x | wrap\n}\n"
    )
    with pytest.raises(NNError) as e:
        ng.compile_file(tmp_path / "main.nn")
    text = e.value.render()
    assert (
        "lib.nn:2:16" in text and "block 'helper' is defined in main.nn, which lib.nn does not import" in text
    )
    (tmp_path / "helpers.nn").write_text("block helper(x) {\n    return x | relu\n}\n")
    (tmp_path / "lib.nn").write_text('import "helpers.nn"\nblock wrap(x) {\n    return x | helper\n}\n')
    (tmp_path / "main.nn").write_text(
        'import "lib.nn"\nmodel M {\n    input x: f32[batch, 4]\n    output y = x | wrap | helper\n}\n'
    )
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    y = ng.runtime.Session(ng.compile_file(tmp_path / "main.nn").to_onnx().SerializeToString()).run({"x": x})
    np.testing.assert_array_equal(y["y"], np.maximum(x, 0))


@pytest.mark.parametrize("name", ["batchnorm_train", "conv_patches", "conv_gemm_grad_weight"])
def test_operators_the_compiler_makes_are_not_layers(name):
    """Operators made by passes and gradient rules are no names a .nn file can call."""
    src = f"model M {{\n    input x: f32[batch, 2, 4, 4]\n    output y = x | {name}\n}}\n"
    with pytest.raises(NNError, match="unknown layer"):
        ng.compile_source(src)
