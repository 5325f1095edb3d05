"""Big and odd models: long pipelines, wide training graphs, names that collide with generated
ones, and out-of-range sizes. Each is an error with a message, or works, never a traceback."""

from __future__ import annotations

import random

import networkx as nx
import numpy as np
import onnx
import pytest
from conftest import ROOT, run_cli

import nngraph as ng
from nngraph.core.ir import Graph
from nngraph.core.types import TensorType
from nngraph.errors import NNError


def pipeline(stages: int, layer: str = "relu") -> str:
    return "model M {\n    input x: f32[batch, 4]\n    output y = x" + f" | {layer}" * stages + "\n}\n"


def test_a_pipeline_past_pythons_default_recursion_limit_compiles():
    m = ng.compile_source(pipeline(1500))
    model = m.to_onnx()
    assert [n.op_type for n in model.graph.node] == ["Relu"] * 1500
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    y = ng.runtime.Session(model.SerializeToString()).run({"x": x})["y"]
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_a_pipeline_too_deep_for_the_stack_is_an_error(tmp_path, capsys):
    f = tmp_path / "deep.nn"
    f.write_text(pipeline(20000))
    with pytest.raises(NNError) as e:
        ng.compile_file(f)
    assert "nests too deeply" in str(e.value) and "deep.nn" in str(e.value)
    rc, _, err = run_cli(capsys, "compile", f, "-o", tmp_path / "m.onnx")
    assert rc == 1 and "Traceback" not in err and "nests too deeply" in err
    assert "split the longest pipelines" in err


def test_a_deep_model_trains_and_writes_its_weights(tmp_path, capsys):
    """250 dense layers: autodiff, passes and lowering stay linear in the graph (the training
    graph's hundreds of outputs once made pruning and output naming quadratic)."""
    src = pipeline(250, "dense(4)") + (
        f'train M {{\n data = npz("{tmp_path / "d.npz"}")\n target t: f32[batch, 4]\n loss = mse(y, t)\n'
        " optimizer = sgd(lr=0.01)\n epochs = 1\n}\n"
    )
    (tmp_path / "deep.nn").write_text(src)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(8, 4)).astype(np.float32), t=np.zeros((8, 4), np.float32))
    rc, _, err = run_cli(capsys, "train", tmp_path / "deep.nn", "--out", tmp_path / "out")
    assert rc == 0, err
    model = onnx.load(tmp_path / "out" / "model.onnx")
    assert len(model.graph.initializer) == 500


def test_reach_walks_match_networkx():
    rng = random.Random(0)
    g = Graph("g")
    ids = []
    for i in range(60):
        ins = rng.sample(ids, min(len(ids), rng.randint(0, 3)))
        ids.append(g.add(f"n{i}", "input" if not ins else "add", ins, TensorType("f32", (1,)), None))
    for n in rng.sample(ids, 5):
        assert g.upstream([n]) == nx.ancestors(g.g, n) | {n}
        assert g.downstream([n]) == nx.descendants(g.g, n) | {n}
    some = rng.sample(ids, 4)
    assert g.upstream(some) == set().union(*(nx.ancestors(g.g, n) | {n} for n in some))


def test_an_input_named_like_a_generated_layer_keeps_its_name():
    src = """
model M {
    input x: f32[batch, 4]
    h = x | relu
    input relu_1: f32[batch, 4]
    output y = h + relu_1
}
"""
    model = ng.compile_source(src).to_onnx()
    assert [i.name for i in model.graph.input] == ["x", "relu_1"]
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    y = ng.runtime.Session(model.SerializeToString()).run({"x": x, "relu_1": x})["y"]
    np.testing.assert_array_equal(y, np.maximum(x, 0) + x)


def test_a_target_named_like_a_layer_keeps_trained_weights_in_model_onnx(tmp_path, capsys):
    """The target reserves 'dense_1' in both builds, so the trained weights find their names."""
    src = """
model M {
    input x: f32[batch, 4]
    output y = x | dense(3)
}
train M {
    data = npz("DATA")
    target dense_1: f32[batch, 3]
    loss = mse(y, dense_1)
    optimizer = sgd(lr=0.5)
    epochs = 3
}
"""
    (tmp_path / "m.nn").write_text(src.replace("DATA", str(tmp_path / "d.npz")))
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x=rng.normal(size=(16, 4)).astype(np.float32),
        dense_1=np.ones((16, 3), np.float32),
    )
    rc, _, err = run_cli(capsys, "train", tmp_path / "m.nn", "--out", tmp_path / "out")
    assert rc == 0, err
    ckpt = np.load(tmp_path / "out" / "checkpoint.npz")
    model = onnx.load(tmp_path / "out" / "model.onnx")
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    assert set(weights) == {"dense_2.weight", "dense_2.bias"}
    for name, w in weights.items():
        np.testing.assert_array_equal(w, ckpt[name])
    assert [i.name for i in ng.compile_file(tmp_path / "m.nn").to_onnx().graph.initializer] == list(weights)


def test_an_input_dim_too_large_for_any_tensor_is_positioned():
    src = "model M {\n    input x: f32[batch, 99999999999999999999999]\n    output y = x | relu\n}\n"
    with pytest.raises(NNError) as e:
        ng.compile_source(src, "big.nn")
    text = str(e.value)
    assert "big.nn:2:25" in text and "larger than a tensor can be" in text


@pytest.mark.parametrize(
    "axes, why, allowed",
    [
        ("[7]", "7 is out of range", "[-3, 2]"),
        ("[-4]", "-4 is out of range", "[-3, 2]"),
        ("[1, -3]", "twice", "[-4, 3]"),
    ],
)
def test_unsqueeze_axes_are_checked_before_onnx(axes, why, allowed):
    src = f"model M {{\n    input x: f32[batch, 4]\n    output y = unsqueeze(x, axes={axes})\n}}\n"
    with pytest.raises(NNError) as e:
        ng.compile_source(src, "u.nn")
    assert why in str(e.value) and allowed in str(e.value)


def test_unsqueeze_in_range_matches_numpy():
    src = "model M {\n    input x: f32[batch, 4]\n    output y = unsqueeze(x, axes=[-1, 0])\n}\n"
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    y = ng.runtime.Session(ng.compile_source(src).to_onnx().SerializeToString()).run({"x": x})["y"]
    assert y.shape == np.expand_dims(x, (-1, 0)).shape == (1, 2, 4, 1)


def test_a_failed_bound_run_is_an_nnerror():
    """IOBinding runs fail with a bare RuntimeError; the Stepper reports it like any run error."""
    from nngraph.runtime.stepper import Stepper

    src = """
model M {
    input image: f32[batch, 64]
    output y = image | dense(10)
}
train M {
    data = digits
    target label: i64[batch]
    loss = cross_entropy(y, label)
    optimizer = sgd(lr=0.1)
}
"""
    c = ng.compile_source(src).training("step")
    st = Stepper(c.to_onnx().SerializeToString(), c.initial)
    feeds = {
        "image": np.zeros((4, 64), np.float32),
        "label": np.zeros(5, np.int64),  # one label too many: the loss's shapes disagree at run time
        "lr": np.array(0.1, np.float32),
        "step": np.array(1),
    }
    with pytest.raises(NNError) as e:
        st.run(feeds)
    assert "onnxruntime could not run the training step" in str(e.value)


def test_dim_names_in_arithmetic_say_what_they_are():
    src = "model M {\n    input x: f32[batch, 8]\n    output y = x | reshape([batch * 2, 4])\n}\n"
    with pytest.raises(NNError) as e:
        ng.compile_source(src, "r.nn")
    text = str(e.value.render())
    assert "r.nn:3:29" in text and "'batch' is a dim name, not a value" in text
    assert "reshape([-1, 4])" in text


F64_GELU = """
model M {
    input image: f64[batch, 64]
    output y = image | dense(10) | gelu
}
train M {
    data = digits
    target label: i64[batch]
    loss = cross_entropy(y, label)
    optimizer = sgd(lr=0.1)
    epochs = 1
}
"""


def test_an_operator_onnxruntime_lacks_in_f64_is_an_nnerror(tmp_path, capsys):
    """onnxruntime's CPU provider has no float64 Erf (gelu): loading says so, in Session and train."""
    model = ng.compile_source(F64_GELU).to_onnx().SerializeToString()
    try:
        ng.runtime.Session(model)
    except NNError as e:
        assert "no Erf kernel" in str(e) and "f32" in str(e)
    else:
        pytest.skip("this onnxruntime has a float64 Erf kernel")
    (tmp_path / "m.nn").write_text(F64_GELU)
    rc, _, err = run_cli(capsys, "train", tmp_path / "m.nn", "--out", tmp_path / "out")
    assert rc == 1 and "Traceback" not in err and "no Erf kernel" in err


def test_integer_division_truncates_toward_zero_as_documented():
    src = "model M {\n    input a: i64[batch]\n    input b: i64[batch]\n    output y = a / b\n}\n"
    s = ng.runtime.Session(ng.compile_source(src).to_onnx().SerializeToString())
    a, b = np.array([-7, 7, -8, 9]), np.array([2, 2, 3, -4])
    np.testing.assert_array_equal(s.run({"a": a, "b": b})["y"], np.trunc(a / b).astype(np.int64))
    assert "`-7 / 2` is `-3`" in (ROOT / "grammar" / "README.md").read_text()


@pytest.mark.parametrize(
    "shape, stages",
    [
        ("f32[batch, 4]", "slice(axis=1, start=5)"),
        ("f32[batch, seq, 3]", "slice(axis=1, start=-1) | slice(axis=1, start=1)"),
    ],
)
def test_a_slice_that_takes_nothing_is_an_error(shape, stages):
    """Python's clamping makes the slice valid, but a dense after it would output zeros silently."""
    src = f"model M {{\n    input x: {shape}\n    output y = x | {stages} | dense(2)\n}}\n"
    with pytest.raises(NNError) as e:
        ng.compile_source(src, "s.nn")
    assert "gives an empty tensor" in str(e.value) and "s.nn:3:" in e.value.render()
