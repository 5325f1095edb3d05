"""The embeddable runtime: checked inputs, device choice, and no compiler imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nngraph as ng
from nngraph.runtime import InputError, Session

SRC = "model M {\n input image: f32[batch, 1, 8, 8]\n input bias: f32[batch, 10]\n output o = (image | flatten | dense(10)) + bias\n}"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return ng.compile_source(SRC).save(tmp_path_factory.mktemp("rt") / "m.onnx")


def feeds(batch=2):
    return {"image": np.zeros((batch, 1, 8, 8), np.float32), "bias": np.ones((batch, 10), np.float32)}


def test_runs_on_cpu_by_default(model_path):
    s = Session(model_path)
    assert s.device == "cpu"
    np.testing.assert_allclose(
        s(**feeds())["o"], np.ones((2, 10)) + ng.compile_source(SRC).graph.node("dense_1.bias")["value"]
    )


def test_unknown_input_name_suggests(model_path):
    with pytest.raises(InputError) as e:
        Session(model_path)(imgae=np.zeros((1, 1, 8, 8), np.float32), bias=np.zeros((1, 10), np.float32))
    assert "unknown input 'imgae'" in e.value.message and "image" in e.value.hint


def test_missing_input_names_expected_shape(model_path):
    with pytest.raises(InputError) as e:
        Session(model_path)(image=np.zeros((1, 1, 8, 8), np.float32))
    assert "missing input 'bias' f32[batch, 10]" in e.value.message


def test_wrong_shape_names_input_and_expected_shape(model_path):
    with pytest.raises(InputError) as e:
        Session(model_path)(image=np.zeros((2, 1, 28, 28), np.float32), bias=np.zeros((2, 10), np.float32))
    assert "input 'image' has shape [2, 1, 28, 28], expected f32[batch, 1, 8, 8]" in e.value.message


def test_inconsistent_symbolic_dim(model_path):
    f = feeds(2)
    f["bias"] = np.zeros((3, 10), np.float32)
    with pytest.raises(InputError, match="input 'bias' has shape"):
        Session(model_path)(**f)


def test_wrong_dtype(model_path):
    f = feeds()
    f["image"] = f["image"].astype(np.float64)
    with pytest.raises(InputError) as e:
        Session(model_path)(**f)
    assert "dtype float64, expected f32[batch, 1, 8, 8]" in e.value.message and "astype" in e.value.hint


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ng.NNError, match="model file not found"):
        Session(tmp_path / "nope.onnx")


def cuda_works(model_path) -> bool:
    return Session(model_path, device="auto").device == "cuda"


def test_cuda_when_unusable_says_so(model_path):
    if cuda_works(model_path):
        pytest.skip("CUDA works here")
    with pytest.raises(ng.NNError) as e:
        Session(model_path, device="cuda")
    assert "CUDA was asked for" in e.value.message and "--device cpu" in e.value.expected


def test_auto_device_runs_and_says_where(model_path):
    s = Session(model_path, device="auto")
    assert s.device in ("cpu", "cuda")
    assert s(**feeds())["o"].shape == (2, 10)


def test_cuda_matches_cpu(model_path):
    if not cuda_works(model_path):
        pytest.skip("needs a working CUDA provider")
    f = feeds(4)
    np.testing.assert_allclose(
        Session(model_path, device="cuda")(**f)["o"], Session(model_path)(**f)["o"], rtol=1e-4
    )


def test_runtime_import_pulls_no_compiler_dependencies():
    code = "import sys, nngraph.runtime; bad = [m for m in ('lark', 'networkx') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
