"""Every example compiles, passes the ONNX checker, and runs in onnxruntime
with the same results as the NumPy reference evaluation of its graph."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import EXAMPLES, random_feeds

import nngraph as ng
from nngraph.onnx.lower import check
from nngraph.ops.reference import evaluate


def test_examples_exist():
    names = {p.stem for p in EXAMPLES}
    assert {"mlp", "cnn", "digits_cnn", "residual_cnn", "resnet18"} <= names


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if not p.stem.startswith("resnet")], ids=lambda p: p.stem
)
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
