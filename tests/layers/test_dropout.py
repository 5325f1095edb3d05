"""dropout's noise: sized from derived and symbolic dims, and in f64."""

from __future__ import annotations

import json

import numpy as np
from conftest import run_cli, small_run, tiny

import nngraph as ng
from nngraph.runtime.checkpoint import load_checkpoint
from nngraph.training.gradcheck import gradcheck

FLAT_DROP = """model M {
    input x: f32[batch, 7, 8]
    h = x | reshape([-1, 8]) | dropout(0.3) | dense(8)
    output y = h | reshape([batch, 7, 8]) | mean_steps
}
train M {
    data = DATA
    target t: f32[batch, 8]
    loss = mse(y, t)
    optimizer = sgd(lr=0.1)
    epochs = 2
}
"""


def test_dropout_over_a_derived_dim_trains(tmp_path, capsys):
    """A dropout after a flatten has noise of shape [batch*7, 8]: its size comes from batch.

    Regression: training raised KeyError on noise over a derived dim."""
    rng = np.random.default_rng(0)
    path = small_run(
        tmp_path, FLAT_DROP, {"x": rng.random((24, 7, 8), np.float32), "t": rng.random((24, 8), np.float32)}
    )
    rc, out, err = run_cli(capsys, "train", path, "--out", tmp_path / "o", "--json", "--quiet")
    assert rc == 0, err
    assert np.isfinite(json.loads(out.strip().splitlines()[-1])["final_loss"])


def test_gradcheck_sizes_dropout_noise_over_a_symbolic_length(tmp_path):
    """Regression: gradcheck sized every symbolic dim of the noise as the batch."""
    src = (
        "model M {\n    input x: f32[batch, seq, 8]\n    output y = x | dropout(0.1) | dense(8)\n}\n"
        "train M {\n    data = digits\n    target t: f32[batch, seq, 8]\n    loss = mse(y, t)\n    optimizer = sgd(lr=0.1)\n}\n"
    )
    c = ng.compile_source(src).training("grads")
    rng = np.random.default_rng(0)
    batch = {"x": rng.random((3, 7, 8), np.float32), "t": rng.random((3, 7, 8), np.float32)}
    rows = gradcheck(c, batch, per_param=4)
    assert max(r.max_rel_fd for r in rows) < 1e-4 and max(r.max_rel_onnx for r in rows) < 1e-3


def test_dropout_model_in_f64_trains_from_the_cli(tmp_path, capsys):
    """Regression: a dropout model in f64 did not train from the CLI."""
    model = (
        "model D {\n    input image: f64[batch, 64]\n"
        "    output logits = image | dense(16) | relu | dropout(0.1) | dense(10)\n}\n"
    )
    src = tiny(
        "data = digits",
        "target label: i64[batch]",
        "loss = cross_entropy(logits, label)",
        "metrics = [accuracy]",
        "epochs = 3",
        model=model,
    )
    (tmp_path / "d.nn").write_text(src)
    rc, out, err = run_cli(
        capsys, "train", tmp_path / "d.nn", "--out", tmp_path / "o", "--epochs", "1", "--quiet"
    )
    assert rc == 0, err
    assert "trained D:" in out
    history = json.loads((tmp_path / "o" / "history.json").read_text())
    assert len(history) == 1 and np.isfinite(history[0]["loss"])
    arrays, _ = load_checkpoint(tmp_path / "o" / "checkpoint.npz")
    assert arrays["dense_1.weight"].dtype == np.float64
