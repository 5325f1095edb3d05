"""Bugs found by walking the runtime, the checkpoints and the sequence layers as users would:
each test fails on the code before its fix."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ROOT, run_cli

import nngraph as ng
from nngraph.errors import NNError
from nngraph.ops.reference import evaluate
from nngraph.runtime import Session
from nngraph.runtime.bundle import read_bundle, write_bundle
from nngraph.runtime.checkpoint import load_checkpoint
from nngraph.training.gradcheck import gradcheck

MLP = ROOT / "examples" / "digits_mlp.nn"


def small_run(tmp_path, body: str, data: dict, extra: str = "") -> str:
    """A .nn file training `body` on an .npz of `data`; returns its path."""
    np.savez(tmp_path / "d.npz", **data)
    (tmp_path / "m.nn").write_text(body.replace("DATA", f'npz("{tmp_path / "d.npz"}")') + extra)
    return str(tmp_path / "m.nn")


# ---- command line, checkpoints, eval ------------------------------------------------------------


def test_seed_given_as_seed_equals_n_seeds_the_run(tmp_path, capsys):
    runs = {}
    for form in (["--seed", "5"], ["--seed=5"], []):
        out = tmp_path / ("_".join(form) or "none")
        rc, text, err = run_cli(
            capsys, "train", MLP, "--epochs", "1", "--out", out, "--json", "--quiet", *form
        )
        assert rc == 0, err
        runs[tuple(form)] = (
            json.loads(text.strip().splitlines()[-1])["final_loss"],
            load_checkpoint(out / "checkpoint.npz")[1]["seed"],
        )
    assert runs[("--seed=5",)] == runs[("--seed", "5")]
    assert runs[("--seed=5",)][1] == 5 and runs[()][1] == 0 and runs[()][0] != runs[("--seed", "5")][0]


def test_resume_of_a_finished_run_without_its_model_writes_the_model(tmp_path, capsys):
    """A run stopped after its last checkpoint but before model.onnx: resume writes the model."""
    out = tmp_path / "run"
    assert run_cli(capsys, "train", MLP, "--epochs", "1", "--out", out, "--quiet")[0] == 0
    first = (out / "model.onnx").read_bytes()
    (out / "model.onnx").unlink()
    rc, _, err = run_cli(capsys, "train", MLP, "--epochs", "1", "--out", out, "--resume", "--quiet")
    assert rc == 0, err
    assert (out / "model.onnx").read_bytes() == first
    rc, _, err = run_cli(capsys, "train", MLP, "--epochs", "1", "--out", out, "--resume", "--quiet")
    assert rc == 1 and "nothing left to train" in err  # with the model there, there is nothing to do


def test_eval_reads_a_float_target_from_csv_as_training_did(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    rows = ["a,b,c,t"] + [f"{a:.4f},{b:.4f},{c:.4f},{a - 2 * b:.4f}" for a, b, c in x]
    (tmp_path / "reg.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "r.nn").write_text(
        "model R {\n    input x: f32[batch, 3]\n    output y = x | dense(1) | reshape([batch])\n}\n"
        f'train R {{\n    data = csv("{tmp_path / "reg.csv"}")\n    target t: f32[batch]\n'
        "    loss = mse(y, t)\n    optimizer = adam(lr=0.05)\n    epochs = 3\n    metrics = [mae]\n}\n"
    )
    assert run_cli(capsys, "train", tmp_path / "r.nn", "--out", tmp_path / "o", "--quiet")[0] == 0
    rc, out, err = run_cli(
        capsys, "eval", tmp_path / "o" / "model.onnx", "--data", tmp_path / "reg.csv", "--all"
    )
    assert rc == 0, err
    assert "samples 60" in out and "mae" in out


def test_one_npy_array_under_an_npz_name_is_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "arr.npy", np.zeros((4, 64), np.float32))
    (tmp_path / "arr.npy").rename(tmp_path / "arr.npz")
    with pytest.raises(NNError, match="is one .npy array, not an .npz archive"):
        load_checkpoint(tmp_path / "arr.npz")
    assert run_cli(capsys, "compile", MLP, "-o", tmp_path / "m.onnx")[0] == 0
    rc, _, err = run_cli(capsys, "eval", tmp_path / "m.onnx", "--data", tmp_path / "arr.npz")
    assert rc == 1 and "is one .npy array" in err and "Traceback" not in err
    (tmp_path / "empty.npy").write_bytes(b"")
    rc, _, err = run_cli(capsys, "run", tmp_path / "m.onnx", "--input", f"image={tmp_path / 'empty.npy'}")
    assert rc == 1 and "cannot read input 'image'" in err and "Traceback" not in err


def test_eval_refuses_labels_of_the_wrong_shape_and_nan_inputs(tmp_path, capsys):
    assert run_cli(capsys, "compile", MLP, "-o", tmp_path / "m.onnx")[0] == 0
    rng = np.random.default_rng(0)
    image = rng.random((20, 64), dtype=np.float32)
    np.savez(tmp_path / "n1.npz", image=image, label=rng.integers(0, 10, (20, 1)))
    rc, _, err = run_cli(capsys, "eval", tmp_path / "m.onnx", "--data", tmp_path / "n1.npz")
    assert rc == 1 and "'label' has shape [1] per sample, but the model outputs [10] per sample" in err
    image[3, 5] = np.nan
    np.savez(tmp_path / "nan.npz", image=image, label=rng.integers(0, 10, 20))
    rc, _, err = run_cli(capsys, "eval", tmp_path / "m.onnx", "--data", tmp_path / "nan.npz")
    assert rc == 1 and "holds nan at sample 3" in err and "evaluation needs finite numbers" in err


def test_relabelling_a_bundle_keeps_its_preprocessing_and_rescaling_keeps_its_labels(tmp_path, capsys):
    assert run_cli(capsys, "compile", MLP, "-o", tmp_path / "m.onnx")[0] == 0
    write_bundle(tmp_path / "m.onnx", tmp_path / "a.onnx", scale=1 / 16, labels=list("abcdefghij"))
    write_bundle(tmp_path / "a.onnx", tmp_path / "b.onnx", labels=[f"digit {i}" for i in range(10)])
    write_bundle(tmp_path / "b.onnx", tmp_path / "c.onnx", scale=0.5)
    meta = lambda p: read_bundle(ort.InferenceSession(str(p)).get_modelmeta().custom_metadata_map)  # noqa: E731
    b, c = meta(tmp_path / "b.onnx"), meta(tmp_path / "c.onnx")
    assert b.preprocess["image"].scale == 1 / 16 and b.labels[3] == "digit 3"
    assert c.preprocess["image"].scale == 0.5 and c.labels == b.labels
    with pytest.raises(NNError, match="not an ONNX model"):
        write_bundle(b"garbage", tmp_path / "x.onnx")


def test_session_refuses_negative_embedding_ids_as_pytorch_does(tmp_path, capsys):
    assert run_cli(capsys, "compile", ROOT / "examples" / "transformer.nn", "-o", tmp_path / "t.onnx")[0] == 0
    s = Session(tmp_path / "t.onnx")
    ok = s(tokens=np.full((1, 4), 3, np.int64))["logits"]
    assert np.isfinite(ok).all()
    with pytest.raises(NNError, match="ids must be in 0..rows-1"):
        s(tokens=np.array([[3, -1, 3, 3]], np.int64))


def test_raw_input_that_is_not_numbers_is_an_nnerror(tmp_path, capsys):
    assert run_cli(capsys, "compile", MLP, "-o", tmp_path / "m.onnx")[0] == 0
    write_bundle(tmp_path / "m.onnx", scale=1 / 16, labels=list(range(10)))
    s = Session(tmp_path / "m.onnx")
    for raw in ("abc", [["a"] * 64]):
        with pytest.raises(NNError, match="not numbers of type float32"):
            s.classify(raw)


# ---- sequence layers, dropout noise, checks -----------------------------------------------------

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
    """A dropout after a flatten has noise of shape [batch*7, 8]: its size comes from batch."""
    rng = np.random.default_rng(0)
    path = small_run(
        tmp_path, FLAT_DROP, {"x": rng.random((24, 7, 8), np.float32), "t": rng.random((24, 8), np.float32)}
    )
    rc, out, err = run_cli(capsys, "train", path, "--out", tmp_path / "o", "--json", "--quiet")
    assert rc == 0, err
    assert np.isfinite(json.loads(out.strip().splitlines()[-1])["final_loss"])


def test_gradcheck_sizes_dropout_noise_over_a_symbolic_length(tmp_path):
    src = (
        "model M {\n    input x: f32[batch, seq, 8]\n    output y = x | dropout(0.1) | dense(8)\n}\n"
        "train M {\n    data = digits\n    target t: f32[batch, seq, 8]\n    loss = mse(y, t)\n    optimizer = sgd(lr=0.1)\n}\n"
    )
    c = ng.compile_source(src).training("grads")
    rng = np.random.default_rng(0)
    batch = {"x": rng.random((3, 7, 8), np.float32), "t": rng.random((3, 7, 8), np.float32)}
    rows = gradcheck(c, batch, per_param=4)
    assert max(r.max_rel_fd for r in rows) < 1e-4 and max(r.max_rel_onnx for r in rows) < 1e-3


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_a_recurrent_layer_over_one_step_keeps_its_hidden_weights(kind):
    """PyTorch's layer has weight_hh_l0 at any length (its gradient is 0 over one step)."""
    m = ng.compile_source(
        f"model M {{\n    input x: f32[batch, 1, 3]\n    output y = x | {kind}(4)\n}}\n"
        "train M {\n    data = digits\n    target t: f32[batch, 1, 4]\n    loss = mse(y, t)\n    optimizer = sgd(lr=0.1)\n}\n"
    )
    params = set(m.graph.params())
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    assert {f"{kind}_1.weight_hh_l0", f"{kind}_1.weight_ih_l0"} <= params
    assert m.param_count == gates * 4 * (3 + 4 + 2)
    grads = m.training("grads").graph.outputs
    assert f"grad/{kind}_1.weight_hh_l0" in grads


def test_sequence_layer_arguments_are_checked(tmp_path):
    with pytest.raises(NNError, match="'max_len' of 'positional' must be >= 1, got 0"):
        ng.compile_source(
            "model M {\n    input x: f32[batch, seq, 4]\n    output y = x | positional(learned, max_len=0)\n}\n"
        )
    with pytest.raises(
        NNError, match="transformer_encoder takes x and an optional padding mask, got 3 tensors"
    ):
        ng.compile_source(
            "model M {\n    input x: f32[batch, 5, 4]\n    input m: f32[batch, 5]\n"
            "    output y = transformer_encoder(x, m, m, heads=2)\n}\n"
        )


def test_sinusoid_positions_in_f16_are_as_exact_as_f16_allows():
    m = ng.compile_source("model M {\n    input x: f16[batch, seq, 8]\n    output y = x | positional\n}\n")
    x = np.zeros((1, 2048, 8), np.float16)
    got = ort.InferenceSession(m.onnx.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )[0]
    want = evaluate(m.graph, {"x": x.astype(np.float16)})["y"]
    assert np.abs(got.astype(np.float64) - want.astype(np.float64)).max() <= 1e-3  # f16 steps are 5e-4 near 1


def test_an_input_with_samples_along_another_dim_says_how_to_declare_it(tmp_path, capsys):
    """Initial states are [layers, batch, hidden] as in PyTorch; training data holds samples first."""
    rng = np.random.default_rng(0)
    body = (
        "model M {\n    input x: f32[batch, 5, 3]\n    input h0: f32[1, batch, 4]\n"
        "    output y = gru(x, h0, hidden=4, return_sequences=false)\n}\n"
        "train M {\n    data = DATA\n    target t: f32[batch, 4]\n    loss = mse(y, t)\n    optimizer = sgd(lr=0.1)\n    batch = 8\n}\n"
    )
    data = {
        "x": rng.random((16, 5, 3), np.float32),
        "h0": rng.random((16, 1, 4), np.float32),
        "t": rng.random((16, 4), np.float32),
    }
    path = small_run(tmp_path, body, data)
    for cmd in (["check", path], ["train", path, "--out", tmp_path / "o"]):
        rc, _, err = run_cli(capsys, *cmd)
        assert rc == 1 and "has them along dim 1 ('batch')" in err, err
        assert "declare it as f32[batch, 1, 4]" in err and "h0 | transpose([1, 0, 2])" in err
    fixed = body.replace("input h0: f32[1, batch, 4]", "input h0: f32[batch, 1, 4]").replace(
        "gru(x, h0,", "gru(x, h0 | transpose([1, 0, 2]),"
    )
    path = small_run(tmp_path, fixed, data)
    rc, _, err = run_cli(capsys, "train", path, "--out", tmp_path / "o2", "--quiet")
    assert rc == 0, err


def test_check_builds_the_training_step_too(tmp_path, capsys):
    src = (
        "model M {\n    input x: f32[batch, seq, 8]\n    output y = x | lstm(3) | last_step\n}\n"
        "train M {\n    data = digits\n    target t: f32[batch, 3]\n    loss = mse(y, t)\n    optimizer = sgd(lr=0.1)\n}\n"
    )
    (tmp_path / "m.nn").write_text(src)
    rc, _, err = run_cli(capsys, "check", tmp_path / "m.nn")
    assert rc == 1 and "needs a fixed sequence length" in err and ":3:" in err


def test_an_f16_training_step_opens_without_onnxruntime_warnings(capfd):
    """maxpool's backward held a Tile of constants, which onnxruntime could not fold in f16 and
    warned about on every session."""
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
