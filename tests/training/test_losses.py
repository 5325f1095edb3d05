"""Losses and metrics against NumPy formulas, through the compiled eval model in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng

RNG = np.random.default_rng(0)
P = RNG.standard_normal((6, 4)).astype(np.float32)
LABELS = np.array([0, 3, 1, 1, 2, 3])
T = RNG.standard_normal((6, 4)).astype(np.float32)
B = (RNG.random((6, 4)) > 0.5).astype(np.float32)


def run(loss: str, target: str, metrics: str = "", y=None):
    src = (
        "model M {\n input p: f32[batch, 4]\n output o = p | identity\n}\n"
        f"train M {{\n data = digits\n target t: {target}\n loss = {loss}\n{metrics}}}\n"
    )
    c = ng.compile_source(src, "l.nn").training("eval")
    sess = ort.InferenceSession(c.to_onnx().SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(c.interface.outputs, sess.run(None, {"p": P, "t": y}), strict=True))


def log_softmax(x):
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(smoothing):
    out = run(f"cross_entropy(o, t, label_smoothing={smoothing})", "i64[batch]", y=LABELS)
    target = np.eye(4)[LABELS] * (1 - smoothing) + smoothing / 4
    np.testing.assert_allclose(
        out["loss"], -(log_softmax(P.astype(np.float64)) * target).sum(-1).mean(), rtol=1e-6
    )


def test_binary_cross_entropy_with_logits():
    out = run("binary_cross_entropy(o, t)", "f32[batch, 4]", y=B)
    x = P.astype(np.float64)
    want = np.mean(-(B * np.log(1 / (1 + np.exp(-x))) + (1 - B) * np.log(1 - 1 / (1 + np.exp(-x)))))
    np.testing.assert_allclose(out["loss"], want, rtol=1e-5)


@pytest.mark.parametrize(
    "loss,formula",
    [
        ("mse(o, t)", lambda d: np.mean(d**2)),
        ("l1(o, t)", lambda d: np.mean(np.abs(d))),
        (
            "huber(o, t, delta=0.5)",
            lambda d: np.mean(np.where(np.abs(d) < 0.5, 0.5 * d**2, 0.5 * (np.abs(d) - 0.25))),
        ),
    ],
)
def test_regression_losses(loss, formula):
    out = run(loss, "f32[batch, 4]", y=T)
    np.testing.assert_allclose(out["loss"], formula(P.astype(np.float64) - T), rtol=1e-5)


def test_classification_metrics():
    out = run("cross_entropy(o, t)", "i64[batch]", " metrics = [accuracy, top_k_accuracy(k=2)]\n", y=LABELS)
    assert out["accuracy"] == pytest.approx(np.mean(P.argmax(-1) == LABELS))
    rank = (P > P[np.arange(6), LABELS][:, None]).sum(-1)
    assert out["top_k_accuracy"] == pytest.approx(np.mean(rank < 2))


def test_mae_metric():
    out = run("mse(o, t)", "f32[batch, 4]", " metrics = [mae]\n", y=T)
    assert out["mae"] == pytest.approx(np.mean(np.abs(P - T)), rel=1e-6)
