"""Names that collide with the ones nngraph makes (generated layer names, internal constants,
the training models' own inputs and scopes): kept apart, or refused with a message."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import ort_session, run_cli

import nngraph as ng
from nngraph.compiler import compile_source
from nngraph.errors import NNError


def test_an_input_named_like_a_generated_layer_keeps_its_name():
    """Regression: an input declared after a layer of its name got a suffix in ONNX."""
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
    """The target reserves 'dense_1' in both builds, so the trained weights find their names.

    Regression: the two builds did not reserve the target's name alike."""
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


def test_outputs_named_like_internal_constants():
    """Regression: output const = x * 2 collided with its initializer in ONNX (an SSA error at compile)."""
    src = (
        "model M {\n    input x: f32[batch, 4]\n    output const = x * 2\n    output const_2 = x * 3 + 1\n}\n"
    )
    x = np.array([[1.0, -2.0, 3.0, 0.5]], np.float32)
    for level in (0, 2):
        a, b = ort_session(ng.compile_source(src).to_onnx(level)).run(None, {"x": x})
        np.testing.assert_allclose(a, x * 2)
        np.testing.assert_allclose(b, x * 3 + 1)


@pytest.mark.parametrize("decl", ["input lr: f32[batch, 64]", "input step: f32[batch, 64]"])
def test_inputs_named_like_the_step_models_own(decl):
    """Regression: inputs named lr or step clashed with the ONNX step model's own."""
    name = decl.split()[1].rstrip(":")
    src = f"model T {{\n    {decl}\n    output logits = {name} | dense(10)\n}}\n" + (
        "train T {\n    data = digits\n    target label: i64[batch]\n    loss = cross_entropy(logits, label)\n}\n"
    )
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(src, "t.nn").training("step")
    assert f"'{name}' is a name the training models use" in info.value.message and info.value.span.line == 2


def test_layers_cannot_take_the_training_step_scopes():
    """Regression: a layer named grad or update was drawn as the backward graph or the optimizer step."""
    for name in ("grad", "update"):
        with pytest.raises(NNError, match=f"'{name}' cannot name a layer"):
            compile_source(
                f"model M {{\n    input x: f32[batch, 8]\n    {name} = dense(4)\n    output y = x | {name}\n}}\n"
            )
