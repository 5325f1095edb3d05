"""Every example compiles, passes the ONNX checker, and runs in onnxruntime with the same
results as the NumPy reference evaluation of its graph; the ResNets have torchvision's
parameter counts, and the character-level language model learns."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import EXAMPLES, ROOT, SMALL_EXAMPLES, random_feeds

import nngraph as ng
from nngraph.onnx.lower import check
from nngraph.ops.reference import evaluate


def test_examples_exist():
    names = {p.stem for p in EXAMPLES}
    assert {"mlp", "cnn", "digits_cnn", "residual_cnn", "resnet18"} <= names


@pytest.mark.parametrize("path", SMALL_EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_matches_numpy(path, tmp_path):
    m = ng.compile_file(path)
    out = m.save(tmp_path / f"{path.stem}.onnx")
    model = onnx.load(out)
    check(model)
    sess = ng.runtime.Session(out)
    for batch in (1, 3):
        feeds = random_feeds(m, batch)
        got = sess(**feeds)
        want = evaluate(m.graph, feeds)
        assert set(got) == set(want) == set(m.graph.outputs)
        for name in want:
            t = m.graph.type(m.graph.outputs[name])
            assert got[name].shape[0] == batch and got[name].ndim == t.rank
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


def test_resnet18_has_torchvision_parameter_count(root):
    r = subprocess.run(
        [sys.executable, "-m", "nngraph.cli", "summary", str(root / "examples" / "resnet18.nn"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    s = json.loads(r.stdout)
    assert s["params"] == 11_689_512
    assert s["outputs"] == {"logits": "f32[batch,1000]"}


def test_resnet18_compiles_to_valid_onnx(root, tmp_path):
    m = ng.compile_file(root / "examples" / "resnet18.nn")
    out = m.save(tmp_path / "r18.onnx")
    sess = ng.runtime.Session(out)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    (logits,) = sess(image=x).values()
    assert logits.shape == (1, 1000) and np.isfinite(logits).all()


def test_resnet50_has_torchvisions_parameter_count():
    r = subprocess.run(
        [sys.executable, "-m", "nngraph.cli", "summary", str(ROOT / "examples" / "resnet50.nn"), "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["params"] == 25_557_032 and d["outputs"] == {"logits": "f32[batch,1000]"}


def test_mobilenetv2_has_torchvisions_parameter_count():
    """examples/mobilenetv2.nn is torchvision's mobilenet_v2 (width 1.0), written with relu6."""
    m = ng.compile_file(ROOT / "examples" / "mobilenetv2.nn")
    assert m.summary_dict()["params"] == 3_504_872
    assert len(m.graph.nodes_with("relu6")) == 35


def test_char_lm_beats_the_unigram_entropy(root, tmp_path, monkeypatch):
    """Two epochs of examples/char_lm.nn already predict the held-out tail of its text better
    than the best context-free model; the sampling script runs on the trained model."""
    monkeypatch.syspath_prepend(str(root / "examples"))
    import generate_text as gt

    data = gt.make_data(out=tmp_path / "char_lm.npz")
    with np.load(data) as z, np.load(root / "examples" / "char_lm.npz") as shipped:
        np.testing.assert_array_equal(z["tokens"], shipped["tokens"])  # the shipped data is up to date
        assert z["tokens"].shape[1] == gt.SEQ and np.array_equal(z["tokens"][:, 1:], z["next"][:, :-1])
    m = ng.compile_file(root / "examples" / "char_lm.nn")
    m.trainer(out=tmp_path / "lm", threads=2, progress=False).fit(epochs=2)
    r = gt.score(str(tmp_path / "lm" / "model.onnx"))
    assert r["held_out_loss"] < r["unigram_entropy"] - 0.5, r
    text = gt.sample(str(tmp_path / "lm" / "model.onnx"), "The ", 20)
    assert text.startswith("The ") and len(text) == 24
