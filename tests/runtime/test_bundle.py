"""Bundles: labels and preprocessing in a model's metadata, checked when written, used by
Session.prepare and classify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ROOT, run_cli

import nngraph as ng
from nngraph.errors import NNError
from nngraph.runtime import Session, write_bundle
from nngraph.runtime.bundle import KEY, Bundle, Preprocess, read_bundle

MLP = ROOT / "examples" / "digits_mlp.nn"


def test_bundle_round_trip(plain, tmp_path):
    out = write_bundle(plain, tmp_path / "b.onnx", labels="abcdefghij", scale=0.5, mean=0.25, std=2.0)
    s = Session(out)
    b = s.bundle
    assert b.inputs["image"].shape == ["batch", 1, 8, 8] and b.inputs["image"].dtype == "f32"
    assert b.outputs["logits"].shape == ["batch", 10] and b.labels == list("abcdefghij")
    assert b.labels_output == "logits" and b.outputs_are == "logits"
    x = np.full((3, 1, 8, 8), 4.0)
    np.testing.assert_allclose(s.prepare("image", x), (4.0 * 0.5 - 0.25) / 2.0)
    assert s.prepare("image", x).dtype == np.float32
    labels, probs = s.classify(x)
    ref = Session(plain)(image=s.prepare("image", x))["logits"]
    assert labels == ["abcdefghij"[i] for i in ref.argmax(-1)]
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    assert Session(plain).bundle is None  # a plain model loads as before
    assert "nngraph_version" in s.metadata  # the model's other metadata is kept


def test_rewriting_a_bundle_replaces_its_metadata(plain, tmp_path):
    p = write_bundle(plain, tmp_path / "b.onnx", labels=range(10))
    write_bundle(p, labels=list("0123456789"), scale=2)  # in place
    s = Session(p)
    assert s.bundle.preprocess["image"].scale == 2.0
    import onnx

    assert [m.key for m in onnx.load(str(p)).metadata_props].count(KEY) == 1


def test_relabelling_a_bundle_keeps_its_preprocessing_and_rescaling_keeps_its_labels(tmp_path, capsys):
    """Regression: rewriting a bundle dropped what it was not given (relabelling lost the preprocessing)."""
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


def test_bundle_label_count_is_checked(plain, tmp_path):
    with pytest.raises(ng.NNError, match="3 labels for output 'logits', whose last axis has 10 classes"):
        write_bundle(plain, tmp_path / "b.onnx", labels=["a", "b", "c"])
    with pytest.raises(ng.NNError, match="no output 'logit'") as e:
        write_bundle(plain, tmp_path / "b.onnx", labels=range(10), output="logit")
    assert "logits" in e.value.hint


def test_per_channel_preprocessing():
    p = Preprocess(scale=1.0, mean=[1.0, 2.0], std=[1.0, 4.0])
    out = p.apply(np.ones((1, 2, 3, 3)))
    assert out[0, 0].tolist() == [[0.0] * 3] * 3 and out[0, 1].tolist() == [[-0.25] * 3] * 3
    with pytest.raises(ng.NNError, match="per-channel preprocessing has 2 values"):
        p.apply(np.ones((1, 3, 2, 2)))


def test_bundle_checks_its_preprocessing(tmp_path: Path):
    """Regression: bundles took preprocessing values and dtypes unchecked."""
    img = tmp_path / "img.onnx"
    ng.compile_source(
        "model C {\n    input image: f32[batch, 1, 8, 8]\n    output logits = image | flatten | dense(3)\n}\n"
    ).save(img)
    for kw, says in (
        ({"std": 0}, "must be a finite number > 0"),
        ({"std": float("nan")}, "finite"),
        ({"mean": [0.1, 0.2]}, "2 values, but the input has 1 channels"),
        ({"mean": "x"}, "is not a number"),
    ):
        with pytest.raises(ng.NNError) as info:
            write_bundle(img, tmp_path / "b.onnx", **kw)
        assert says in info.value.message
    tok = tmp_path / "tok.onnx"
    ng.compile_source(
        "model T {\n    input ids: i64[batch, 4]\n    output y = ids | embedding(10, 2) | flatten | dense(3)\n}\n"
    ).save(tok)
    with pytest.raises(ng.NNError) as info:
        write_bundle(tok, tmp_path / "t.onnx", scale=0.5)
    assert "needs a float input" in info.value.message
    with pytest.raises(ng.NNError) as info:
        write_bundle(_text(tmp_path), tmp_path / "x.onnx")
    assert "is not an ONNX model" in info.value.message


def _text(tmp_path: Path) -> Path:
    p = tmp_path / "notes.onnx"
    p.write_bytes(b"\xff\xff\xff\xff not protobuf")
    return p


def test_corrupt_bundle_metadata_is_a_clear_error():
    with pytest.raises(ng.NNError, match="not a valid bundle"):
        Bundle.from_json('{"inputs": 3}')


def test_classify_without_labels_says_how(plain):
    with pytest.raises(ng.NNError, match="classify needs a bundle with class labels") as e:
        Session(plain).classify(np.zeros((1, 1, 8, 8)))
    assert "write_bundle" in e.value.hint


def test_classify_refuses_per_position_scores(tmp_path: Path):
    """Regression: classify took per-position scores."""
    path = tmp_path / "seq.onnx"
    ng.compile_source("model S {\n    input x: f32[batch, 3, 4]\n    output y = x | dense(2)\n}\n").save(path)
    write_bundle(path, path, labels=["a", "b"])
    with pytest.raises(ng.NNError) as info:
        ng.runtime.Session(path).classify(np.zeros((1, 3, 4), np.float32))
    assert "one label per sample" in info.value.message


def test_raw_input_that_is_not_numbers_is_an_nnerror(tmp_path, capsys):
    """Regression: classify on raw input that is not numbers was not an NNError."""
    assert run_cli(capsys, "compile", MLP, "-o", tmp_path / "m.onnx")[0] == 0
    write_bundle(tmp_path / "m.onnx", scale=1 / 16, labels=list(range(10)))
    s = Session(tmp_path / "m.onnx")
    for raw in ("abc", [["a"] * 64]):
        with pytest.raises(NNError, match="not numbers of type float32"):
            s.classify(raw)
