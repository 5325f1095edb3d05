"""`nngraph eval` of models that score every position: a segmentation model's
[batch, classes, h, w] (classes on axis 1, as the losses find them) and a sequence model's
[batch, t, classes], against NumPy."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.runtime.evaluate import evaluate_file

RNG = np.random.default_rng(0)


def log_softmax(x, axis):
    z = x - x.max(axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis, keepdims=True))


@pytest.mark.parametrize("layout", ["segmentation", "sequence"])
def test_nngraph_eval_scores_every_position_on_the_class_axis(tmp_path, layout):
    """`nngraph eval` of a [batch, classes, h, w] or [batch, t, classes] model: accuracy per
    position (it divided by the samples, and took the last axis for the classes)."""
    if layout == "segmentation":
        src = "model U {\n input image: f32[batch, 1, 4, 5]\n output o = image | conv2d(3, kernel=1)\n}\n"
        x, y = RNG.standard_normal((6, 1, 4, 5)).astype(np.float32), RNG.integers(0, 3, (6, 4, 5))
    else:
        src = "model U {\n input image: f32[batch, 4, 5]\n output o = image | dense(3)\n}\n"
        x, y = RNG.standard_normal((6, 4, 5)).astype(np.float32), RNG.integers(0, 3, (6, 4))
    m = ng.compile_source(src, "u.nn")
    m.save(tmp_path / "u.onnx")
    np.savez(tmp_path / "d.npz", image=x, label=y)
    sess = ort.InferenceSession(str(tmp_path / "u.onnx"), providers=["CPUExecutionProvider"])
    scores = sess.run(None, {"image": x})[0].astype(np.float64)
    axis = 1 if layout == "segmentation" else -1
    got = evaluate_file(tmp_path / "u.onnx", str(tmp_path / "d.npz"))
    assert got["accuracy"] == pytest.approx(np.mean(scores.argmax(axis) == y))
    logp = log_softmax(scores, axis)
    want = -np.take_along_axis(logp, np.expand_dims(y, axis), axis).mean()
    assert got["loss"] == pytest.approx(want, rel=1e-6)
