"""Passes keep numerics: each pass alone and the whole pipeline, on every small example, on
training steps and on the gradients of the sequence models."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ROOT, SMALL_EXAMPLES, random_feeds
from pass_helpers import CONV1D_NET, gemms, ops, run, step_feeds

import nngraph as ng
from nngraph.passes.manager import Runner
from nngraph.passes.pipeline import all_pass_names

SMALL = SMALL_EXAMPLES


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_every_pass_alone_and_the_pipeline_keep_outputs(path):
    m = ng.compile_file(path)
    feeds = random_feeds(m, 3)
    want = run(m.to_onnx(0), feeds)
    for name in all_pass_names():  # each pass alone: the others disabled
        runner = Runner(disabled=set(all_pass_names()) - {name}, check=True)
        got = run(m.to_onnx(2, runner), feeds)
        for k in want:
            np.testing.assert_allclose(
                got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=f"{path.stem} after {name}"
            )
    got = run(m.to_onnx(2, Runner(check=True)), feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("example", ["digits_mlp.nn", "digits_cnn.nn"])
def test_training_step_unchanged_by_passes(example):
    c = ng.compile_file(ROOT / "examples" / example).training("step")
    rng = np.random.default_rng(0)
    t = c.graph.type("image")
    feeds = {
        "image": rng.random([8 if isinstance(d, str) else d for d in t.shape], dtype=np.float32),
        "label": rng.integers(0, 10, 8),
        "lr": np.array(0.01, np.float32),
        "step": np.array(3),
        **c.initial,
    }
    for name, (_, shape) in c.interface.noise.items():
        feeds[name] = rng.random([8 if isinstance(d, str) else d for d in shape], dtype=np.float32)
    o0, o2 = c.to_onnx(0), c.to_onnx(2, Runner(check=True))
    layout = {"Reshape", "Transpose", "Unsqueeze", "Squeeze", "Shape"}  # metadata, or cheap copies
    compute = lambda m: sum(n.op_type not in layout for n in m.graph.node)
    assert compute(o2) < compute(o0)
    a, b = run(o0, feeds), run(o2, feeds)
    assert set(a) == set(b) and "loss" in a
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_training_fusions_on_1d_convolutions_and_3d_batchnorm():
    """fuse_batchnorm_train and conv_as_gemm together on 1-D convolutions: two BatchNormalizations,
    two weight-gradient GEMMs, and the step as without either rule."""
    m = ng.compile_source(CONV1D_NET)
    fused = m.training("step", level=2).to_onnx(2, Runner(check=True))
    plain_c = m.training("step", level=2, runner=Runner(disabled={"fuse_batchnorm_train"}))
    plain = plain_c.to_onnx(2, Runner(disabled={"conv_as_gemm"}))
    assert ops(fused)["BatchNormalization"] == 2 and "BatchNormalization" not in ops(plain)
    assert len(gemms(fused)) == 2
    feeds = step_feeds(plain_c, 5)
    a, b = run(plain, feeds), run(fused, feeds)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize(
    "example", ["digits_lstm.nn", "digits_gru.nn", "digits_transformer.nn", "char_lm.nn"]
)
def test_passes_keep_the_gradients_of_sequence_models(example):
    """Loss and every gradient of the -O2 gradients model equal -O0's. (Gradients, not the Adam
    step: attention's key bias has a zero gradient, float noise that Adam scales up to lr.)"""
    m = ng.compile_file(ROOT / "examples" / example)
    c0, c2 = m.training("grads", level=0), m.training("grads", level=2)
    rng = np.random.default_rng(0)
    feeds = dict(c0.initial)
    for n in c0.interface.inputs + c0.interface.targets:
        t = c0.graph.type(n)
        shape = [4 if isinstance(d, str) else d for d in t.shape]
        is_int = t.dtype.startswith("i")
        feeds[n] = (
            rng.integers(0, 10, shape).astype(t.np_dtype) if is_int else rng.random(shape, dtype=np.float32)
        )
    for name, (_, shape) in c0.interface.noise.items():
        feeds[name] = rng.random([4 if isinstance(d, str) else d for d in shape], dtype=np.float32)

    def outputs(model):
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        names = {i.name for i in sess.get_inputs()}
        got = sess.run(None, {k: v for k, v in feeds.items() if k in names})
        return dict(zip([o.name for o in sess.get_outputs()], got, strict=True))

    a, b = outputs(c0.to_onnx(0)), outputs(c2.to_onnx(2, Runner(check=True)))
    assert any(k.startswith("grad/") for k in a) and set(a) == set(b)
    for k in a:
        scale = max(1.0, float(np.abs(a[k]).max()))
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-5 * scale, err_msg=k)
