"""The training step and gradients models: the interface README documents, run by bare
onnxruntime; raw gradients under clip_norm, metric outputs, and f16 numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ROOT, nngraph, ort_session, tiny

import nngraph as ng
from nngraph.runtime.data import load_digits

MLP = ROOT / "examples" / "digits_mlp.nn"
CNN = ROOT / "examples" / "digits_cnn.nn"


def test_step_model_interface_names_are_documented():
    c = ng.compile_file(CNN).training("step")
    i = c.interface
    assert i.order[:4] == ["image", "label", "lr", "step"]
    assert "residual_1/batchnorm_1.running_mean" in i.buffers and i.slots == ["optimizer.m", "optimizer.v"]
    n = sum(int(np.prod(c.initial[p].shape)) for p in i.params)
    assert c.initial["optimizer.m"].shape == (n,)
    assert i.outputs[:2] == ["loss", "accuracy"] and "next/dense_1.weight" in i.outputs
    readme = (ROOT / "README.md").read_text()
    for name in ("`lr`", "`step`", "`next/", "`grad/", "nngraph_training"):
        assert name in readme, name


def test_compile_train_and_bare_onnxruntime_example(tmp_path):
    step = tmp_path / "step.onnx"
    r = nngraph("compile", str(MLP), "--train", "-o", str(step))
    assert r.returncode == 0, r.stderr
    example = ROOT / "examples" / "train_with_onnxruntime.py"
    assert (
        len([ln for ln in example.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")])
        <= 30
    )
    r = subprocess.run(
        [
            sys.executable,
            str(example),
            str(step),
            str(step.with_suffix(".npz")),
            str(ROOT / "nngraph" / "data" / "digits.npz"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["nngraph_imported"] is False
    assert last["loss"] < 0.5


def run(c, feeds: dict) -> dict[str, np.ndarray]:
    """Run a compiled training model (step, grads or eval) on `feeds` plus its initial state."""
    full = {**{k: v for k, v in c.initial.items() if k in c.interface.order}, **feeds}
    outs = ort_session(c.to_onnx()).run(None, {k: full[k] for k in c.interface.order})
    return dict(zip(c.interface.outputs, outs, strict=True))


def digits_batch(n: int = 64) -> dict[str, np.ndarray]:
    d = load_digits(flat=True)
    return {"image": d.inputs["image"][:n], "label": d.targets["label"][:n]}


def test_clip_norm_leaves_the_gradients_model_raw_and_shrinks_the_step():
    """Regression: the gradients model's gradients were clipped; clip_norm belongs to the step."""
    lines = ["data = digits", "target label: i64[batch]", "loss = cross_entropy(logits, label)"]
    lines.append("optimizer = sgd(lr=0.1)")
    plain = ng.compile_source(tiny(*lines), "plain.nn")
    clipped = ng.compile_source(tiny(*lines, "clip_norm = 0.01"), "clip.nn")
    batch = digits_batch()

    g_plain = run(plain.training("grads"), batch)
    g_clip = run(clipped.training("grads"), batch)
    names = [k for k in g_plain if k.startswith("grad/")]
    assert names == ["grad/dense_1.weight", "grad/dense_1.bias"]
    for k in names:
        np.testing.assert_allclose(g_clip[k], g_plain[k], rtol=1e-6, atol=1e-6, err_msg=k)
    norm = float(np.sqrt(sum(np.sum(g_plain[k].astype(np.float64) ** 2) for k in names)))
    assert norm > 0.1  # far above clip_norm: clipping would show

    # the gradient by hand: softmax minus one-hot, over the batch mean
    w, b = plain.training("grads").initial["dense_1.weight"], plain.training("grads").initial["dense_1.bias"]
    x, y = batch["image"].astype(np.float64), batch["label"]
    z = x @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    np.testing.assert_allclose(g_plain["grad/dense_1.weight"], x.T @ p / len(y), atol=1e-6)

    step_feeds = {**batch, "lr": np.array(0.1, np.float32), "step": np.array(1, np.int64)}
    sp, sc = plain.training("step"), clipped.training("step")
    s_plain, s_clip = run(sp, step_feeds), run(sc, step_feeds)

    def step_norm(c, out):
        return float(
            np.sqrt(
                sum(
                    np.sum((out[f"next/{k}"].astype(np.float64) - c.initial[k]) ** 2)
                    for k in c.interface.params
                )
            )
        )

    assert step_norm(sp, s_plain) == pytest.approx(0.1 * norm, rel=1e-4)
    assert step_norm(sc, s_clip) == pytest.approx(0.1 * 0.01, rel=1e-3)  # lr * clip_norm
    # in the direction of the raw gradient
    for k in sp.interface.params:
        np.testing.assert_allclose(
            s_clip[f"next/{k}"] - sc.initial[k],
            -0.1 * g_plain[f"grad/{k}"] * (0.01 / norm),
            atol=1e-7,
            err_msg=k,
        )


def test_two_top_k_metrics_get_their_own_outputs():
    """Regression: two top_k_accuracy metrics did not get outputs of their own."""
    src = tiny(
        "data = digits",
        "target label: i64[batch]",
        "loss = cross_entropy(logits, label)",
        "optimizer = sgd(lr=0.1)",
        "metrics = [accuracy, top_k_accuracy(k=2), top_k_accuracy(k=3)]",
    )
    c = ng.compile_source(src, "t.nn").training("step")
    assert c.interface.outputs[:4] == ["loss", "accuracy", "top_2_accuracy", "top_3_accuracy"]
    batch = digits_batch(200)
    out = run(c, {**batch, "lr": np.array(0.1, np.float32), "step": np.array(1, np.int64)})

    x, y = batch["image"].astype(np.float64), batch["label"]
    z = x @ c.initial["dense_1.weight"] + c.initial["dense_1.bias"]  # the logits before the step
    rank = (z > z[np.arange(len(y)), y][:, None]).sum(1)  # how many logits beat the label's
    want = {
        "accuracy": np.mean(rank < 1),
        "top_2_accuracy": np.mean(rank < 2),
        "top_3_accuracy": np.mean(rank < 3),
    }
    assert len(set(want.values())) == 3, want  # the three differ on this batch
    for k, v in want.items():
        assert float(out[k]) == pytest.approx(v, abs=1e-6), k


def test_adam_in_float16_survives_a_zero_gradient(tmp_path: Path):
    """eps=1e-8 is 0 in float16; kept at float16's smallest step, 0/0 cannot happen (bias before batchnorm).

    Regression: eps rounded to 0 in float16, so Adam made 0/0 on a zero gradient."""
    rng = np.random.default_rng(0)
    data = tmp_path / "h.npz"
    np.savez(data, x=rng.standard_normal((64, 8)).astype(np.float16), label=rng.integers(0, 3, 64))
    src = (
        "model H {\n    input x: f16[batch, 8]\n    output y = x | dense(4) | batchnorm | relu | dense(3)\n}\n"
        f'train H {{\n    data = npz("{data}")\n    target label: i64[batch]\n'
        "    loss = cross_entropy(y, label)\n    optimizer = adam(lr=1e-3)\n    epochs = 3\n}\n"
    )
    result = ng.compile_source(src, str(tmp_path / "h.nn")).trainer(progress=False).fit()
    assert all(np.isfinite(row["loss"]) and np.isfinite(row["val_loss"]) for row in result.history)
    assert result.steps >= 6


def test_an_f16_training_step_opens_without_onnxruntime_warnings(capfd):
    """maxpool's backward held a Tile of constants, which onnxruntime could not fold in f16 and
    warned about on every session.

    Regression: onnxruntime warned on every f16 training session."""
    src = (
        "model M {\n    input image: f16[batch, 2, 6, 6]\n"
        "    output logits = image | conv2d(4, kernel=3, padding=same) | relu | maxpool(2) | flatten | dense(3)\n}\n"
        "train M {\n    data = digits\n    target label: i64[batch]\n    loss = cross_entropy(logits, label)\n"
        "    optimizer = sgd(lr=0.1)\n}\n"
    )
    model = ng.compile_source(src).training("step").to_onnx(2)
    assert not any(n.op_type == "Tile" for n in model.graph.node)
    ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert "Could not find a CPU kernel" not in capfd.readouterr().err
