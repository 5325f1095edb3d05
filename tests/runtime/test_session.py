"""Session, the embeddable runtime: checked inputs and arguments, device choice and its options,
run errors reported once, and no compiler imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, TINY, nngraph, run_cli

import nngraph as ng
from nngraph.errors import NNError
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


# ---- Session options -----------------------------------------------------------------------


def test_any_batch_size_and_threads(plain):
    s = Session(plain, threads=1, inter_threads=1)
    ref = Session(plain)
    for n in (1, 3, 64):
        x = np.random.default_rng(n).random((n, 1, 8, 8), dtype=np.float32)
        np.testing.assert_allclose(s(image=x)["logits"], ref(image=x)["logits"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ng.NNError, match="threads=-1 is not a thread count"):
        Session(plain, threads=-1)


def test_keep_on_device_returns_ortvalues(plain):
    import onnxruntime as ort

    s = Session(plain)
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    out = s.run({"image": x}, keep_on_device=True)
    assert isinstance(out["logits"], ort.OrtValue) and out["logits"].device_name().lower() == s.device
    np.testing.assert_allclose(out["logits"].numpy(), s(image=x)["logits"], rtol=1e-6)
    # an OrtValue feeds back in without a host copy, and is checked like an array
    v = s.ortvalue(x)
    np.testing.assert_allclose(s.run({"image": v})["logits"], s(image=x)["logits"], rtol=1e-6)
    with pytest.raises(InputError, match=r"input 'image' has shape \[4, 64\]"):
        s.run({"image": s.ortvalue(x.reshape(4, 64))})
    with pytest.raises(InputError, match="dtype float64"):
        s.run({"image": s.ortvalue(x.astype(np.float64))})


def test_cuda_graph_off_cuda_is_a_clear_error(plain):
    with pytest.raises(ng.NNError, match="cuda_graph=True needs device='cuda'"):
        Session(plain, cuda_graph=True)
    if cuda_works(plain):
        pytest.skip("CUDA works here: cuda_graph with device='cuda' or 'auto' is valid")
    with pytest.raises(ng.NNError, match="CUDA was asked for"):
        Session(plain, device="cuda", cuda_graph=True)
    with pytest.raises(ng.NNError, match="this session runs on the CPU"):
        Session(plain, device="auto", cuda_graph=True)


def test_cuda_graph_replays_fixed_shapes(plain):
    if not cuda_works(plain):
        pytest.skip("needs a working CUDA provider")
    s = Session(plain, device="cuda", cuda_graph=True)
    ref = Session(plain)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.random((8, 1, 8, 8), dtype=np.float32)
        np.testing.assert_allclose(s(image=x)["logits"], ref(image=x)["logits"], rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match="captured"):
        s(image=rng.random((4, 1, 8, 8), dtype=np.float32))


def test_keep_on_device_on_cuda(plain):
    if not cuda_works(plain):
        pytest.skip("needs a working CUDA provider")
    s = Session(plain, device="cuda")
    x = np.ones((2, 1, 8, 8), np.float32)
    out = s.run({"image": x}, keep_on_device=True)["logits"]
    assert out.device_name().lower() == "cuda"
    np.testing.assert_allclose(out.numpy(), Session(plain)(image=x)["logits"], rtol=1e-4)


def test_session_argument_mistakes(tmp_path: Path):
    """Regression: Session did not check its arguments (dict feeds, ragged lists, device, thread counts)."""
    path = tmp_path / "m.onnx"
    ng.compile_source(TINY).save(path)
    s = ng.runtime.Session(path)
    for call, says in (
        (lambda: s.run([np.zeros((1, 64), np.float32)]), "takes the inputs by name"),
        (lambda: s(image=[[0.0] * 64, [0.0] * 3]), "not a rectangular array"),
        (lambda: ng.runtime.Session(path, device=None), "is not a device"),
        (lambda: ng.runtime.Session(5), "an .onnx path"),
        (lambda: ng.runtime.Session(path, threads=2**40), "not a thread count"),
    ):
        with pytest.raises(ng.NNError) as info:
            call()
        assert says in info.value.message
    out = s(image=[[0.5] * 64])["logits"]  # a plain list of floats is fed as the model's float32
    assert out.shape == (1, 10)


# ---- run errors ---------------------------------------------------------------------------


def test_session_refuses_negative_embedding_ids_as_pytorch_does(tmp_path, capsys):
    """Regression: ONNX Gather read negative ids from the end of the table."""
    assert run_cli(capsys, "compile", ROOT / "examples" / "transformer.nn", "-o", tmp_path / "t.onnx")[0] == 0
    s = Session(tmp_path / "t.onnx")
    ok = s(tokens=np.full((1, 4), 3, np.int64))["logits"]
    assert np.isfinite(ok).all()
    with pytest.raises(NNError, match="ids must be in 0..rows-1"):
        s(tokens=np.array([[3, -1, 3, 3]], np.int64))


EMB = "model E {\n    input ids: i64[batch, 5]\n    output y = ids | embedding(10, 4)\n}\n"


def test_run_with_ids_outside_the_embedding(tmp_path, capsys):
    """Regression: ids outside the embedding failed in onnxruntime with no hint."""
    m = tmp_path / "e.onnx"
    ng.compile_source(EMB, "e.nn").save(m)
    ids = np.full((2, 5), 50, np.int64)
    np.save(tmp_path / "ids.npy", ids)
    rc, out, err = run_cli(capsys, "run", m, "--input", f"ids={tmp_path / 'ids.npy'}")
    assert rc == 1 and "ran " not in out
    assert "error: onnxruntime could not run" in err and "Traceback" not in err
    assert "hint:" in err and "embedding" in err.split("hint:")[1] and "ids" in err.split("hint:")[1]
    with pytest.raises(ng.NNError) as info:
        ng.runtime.Session(m)(ids=ids)
    assert "onnxruntime could not run" in info.value.message
    assert info.value.hint is not None and "embedding" in info.value.hint
    # ids inside the table run
    out = ng.runtime.Session(m)(ids=np.full((2, 5), 9, np.int64))
    assert out["y"].shape == (2, 5, 4)


def test_a_failed_run_is_reported_once_without_onnxruntimes_log_line(tmp_path):
    """onnxruntime logs a failed kernel itself (a red line on stderr, from C++); the run options
    nngraph passes keep it quiet, so the user reads one message: ours.

    Regression: onnxruntime's own log line came before nngraph's message."""
    m = tmp_path / "e.onnx"
    ng.compile_source(EMB, "e.nn").save(m)
    np.save(tmp_path / "ids.npy", np.full((2, 5), 50, np.int64))
    r = nngraph("run", m, "--input", f"ids={tmp_path / 'ids.npy'}")
    assert r.returncode == 1
    assert r.stderr.startswith("error: onnxruntime could not run the model"), r.stderr
    assert "[E:onnxruntime" not in r.stderr and r.stderr.count("out of data bounds") == 1


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
    """onnxruntime's CPU provider has no float64 Erf (gelu): loading says so, in Session and train.

    Regression: a missing kernel for the model's dtype was a traceback."""
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
