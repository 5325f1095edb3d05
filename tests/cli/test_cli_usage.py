"""The nngraph command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
from conftest import ROOT, nngraph

CNN = str(ROOT / "examples" / "cnn.nn")


def test_check_ok():
    r = nngraph("check", CNN)
    assert r.returncode == 0 and "ok: model CNN" in r.stdout


def test_summary_table_and_json():
    r = nngraph("summary", CNN)
    assert r.returncode == 0
    assert "conv2d_1" in r.stdout and "output shape" in r.stdout and "params:" in r.stdout
    s = json.loads(nngraph("summary", CNN, "--json").stdout)
    assert s["model"] == "CNN"
    # the column counts trainable parameters, as the total and the diagram do (buffers apart, as PyTorch's)
    assert s["params"] == sum(layer["params"] for layer in s["layers"])
    bn = next(layer for layer in s["layers"] if layer["name"] == "batchnorm_1")
    assert bn["params"] == 2 * 16 and s["buffers"] == 2 * (16 + 32)
    assert s["layers"][0] == {
        "name": "conv2d_1",
        "op": "conv2d",
        "output": "f32[batch,16,8,8]",
        "params": 160,
        "depth": 0,
    }


def test_graph_listing():
    r = nngraph("graph", CNN)
    assert (
        r.returncode == 0
        and "conv2d_1/conv: f32[batch,16,8,8] = conv(image, conv2d_1.weight, conv2d_1.bias)" in r.stdout
    )


def test_compile_then_run(tmp_path):
    out = tmp_path / "cnn.onnx"
    r = nngraph("compile", CNN, "-o", str(out))
    assert r.returncode == 0, r.stderr
    onnx.checker.check_model(onnx.load(out), full_check=True)
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = nngraph("run", str(out), "--input", f"image={tmp_path / 'x.npy'}", "-o", str(tmp_path / "y.npz"))
    assert r.returncode == 0, r.stderr
    assert "ran" in r.stdout and "on cpu" in r.stdout
    with np.load(tmp_path / "y.npz") as y:
        assert y["logits"].shape == (5, 10)


def test_run_with_wrong_input_is_a_clear_error(tmp_path):
    out = tmp_path / "cnn.onnx"
    nngraph("compile", CNN, "-o", str(out))
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8), np.float32))
    r = nngraph("run", str(out), "--input", f"image={tmp_path / 'x.npy'}")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "input 'image' has shape [2, 8, 8], expected f32[batch, 1, 8, 8]" in r.stderr


def test_missing_file():
    r = nngraph("check", "nope/missing.nn")
    assert r.returncode == 1 and "file not found" in r.stderr and "Traceback" not in r.stderr


def test_check_a_block_library(tmp_path):
    f = tmp_path / "lib.nn"
    f.write_text("block mlp(x, n: int) {\n    return x | dense(n) | relu\n}\n")
    r = subprocess.run([sys.executable, "-m", "nngraph.cli", "check", str(f)], capture_output=True, text=True)
    assert r.returncode == 0 and "blocks mlp parsed" in r.stdout
    f.write_text("block mlp(x, n: int) {\n    return x | dense(n) | relu\n")
    r = subprocess.run([sys.executable, "-m", "nngraph.cli", "check", str(f)], capture_output=True, text=True)
    assert r.returncode == 1 and "never closed" in r.stderr


def test_graph_into_a_closed_pipe_is_quiet():
    """Regression: nngraph into a closed pipe printed a Broken pipe traceback."""
    r = subprocess.run(
        f"{sys.executable} -m nngraph.cli graph {ROOT / 'examples' / 'resnet50.nn'} | head -1",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert r.stdout.startswith("# model") and "Broken pipe" not in r.stderr and "Traceback" not in r.stderr
