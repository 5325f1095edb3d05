"""nngraph eval and evaluate_file: the held-out split, per-element MAE, the data converted and
checked as training does (labels, shapes, NaN), training models refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    DIGITS_TRAIN,
    OK_LINES,
    ROOT,
    ort_session,
    regression,
    regression_data,
    run_cli,
    tiny,
    tiny_digits,
)

import nngraph as ng
from nngraph.runtime.data import load_npz
from nngraph.runtime.evaluate import evaluate_file

MLP = ROOT / "examples" / "digits_mlp.nn"


def test_eval_mae_is_per_element_on_the_held_out_split(tmp_path, monkeypatch, capsys):
    """Regression: eval's MAE was not the per-element mean over the held-out split of the npz."""
    regression_data(tmp_path / "reg.npz")
    (tmp_path / "r.nn").write_text(regression("optimizer = sgd(lr=0.05)", "epochs = 1"))
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "train", "r.nn", "--out", "o", "--quiet")
    assert rc == 0, err
    model = tmp_path / "o" / "model.onnx"
    result = evaluate_file(model, data=str(tmp_path / "reg.npz"))
    assert result["split"].startswith("held-out"), result

    # the held-out samples: the documented seeded split of the file, 20 of the 80 rows
    _, held = load_npz(tmp_path / "reg.npz", ["x"], ["y"]).split(0.25, 0)
    x, y = held.inputs["x"], held.targets["y"]
    assert result["samples"] == len(x) == 20
    pred = ort_session(model.read_bytes()).run(None, {"x": x})[0]
    mae = float(np.mean(np.abs(pred.astype(np.float64) - y)))
    assert result["mae"] == pytest.approx(mae, rel=1e-6)
    assert result["mae"] != pytest.approx(mae * 4, rel=1e-3)  # not summed over the 4 outputs
    history = json.loads((tmp_path / "o" / "history.json").read_text())
    assert history[-1]["val_mae"] == pytest.approx(mae, rel=1e-5)  # training's mae is per element

    # every sample, and another file, are scored on everything
    everything = evaluate_file(model, data=str(tmp_path / "reg.npz"), everything=True)
    assert everything["split"] == "all" and everything["samples"] == 80
    regression_data(tmp_path / "other.npz", n=30)
    assert evaluate_file(model, data=str(tmp_path / "other.npz"))["split"] == "all"


def _trained(tmp_path: Path, capsys) -> Path:
    f = tmp_path / "t.nn"
    f.write_text(tiny_digits("epochs = 1"))
    assert run_cli(capsys, "train", f, "--out", tmp_path / "out", "--quiet")[0] == 0
    return tmp_path / "out" / "model.onnx"


def test_eval_checks_labels_against_the_classes(tmp_path: Path, capsys):
    """Regression: eval did not check labels against the model's classes."""
    model = _trained(tmp_path, capsys)
    x = np.zeros((4, 64), np.float32)
    for labels, says in (
        (np.array([0, 1, 10, 2]), "range over 0..10"),
        (np.array([0, -1, 1, 2]), "range over -1..2"),
        (np.array([0.0, 1.0, 2.5, 1.0]), "holds float64 values"),
    ):
        data = tmp_path / "e.npz"
        np.savez(data, image=x, label=labels)
        with pytest.raises(ng.NNError) as info:
            evaluate_file(model, str(data))
        assert says in info.value.message


def test_eval_with_nothing_to_score(tmp_path: Path, capsys):
    """Regression: eval of an empty split was not refused."""
    model = _trained(tmp_path, capsys)
    data = tmp_path / "one.npz"
    np.savez(data, image=np.zeros((0, 64), np.float32), label=np.zeros(0, np.int64))
    with pytest.raises(ng.NNError) as info:
        evaluate_file(model, str(data))
    assert "no samples to score" in info.value.message


def test_eval_converts_data_as_training_does(tmp_path: Path, capsys):
    """Regression: eval did not convert the data as training does (f32 data for an f64 model)."""
    rng = np.random.default_rng(0)
    data = tmp_path / "d32.npz"
    np.savez(data, image=rng.random((20, 64), dtype=np.float32), label=rng.integers(0, 10, 20))
    f = tmp_path / "d.nn"
    f.write_text(
        "model D {\n    input image: f64[batch, 64]\n    output logits = image | dense(10)\n}\n"
        + DIGITS_TRAIN.replace("train Tiny", "train D").replace("data = digits", f'data = npz("{data}")')
        + "    epochs = 1\n}\n"
    )
    assert run_cli(capsys, "train", f, "--out", tmp_path / "out", "--quiet")[0] == 0
    result = evaluate_file(tmp_path / "out" / "model.onnx", str(data))
    assert result["samples"] == 4 and result["split"].startswith("held-out")


def test_eval_refuses_labels_of_the_wrong_shape_and_nan_inputs(tmp_path, capsys):
    """Regression: eval took labels of the wrong shape and NaN inputs."""
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


def test_eval_of_data_the_model_cannot_take_names_both_shapes(tmp_path, capsys):
    """Regression: eval blamed an internal batch of 512, not the data's shape."""
    src = "model M {\n    input image: f32[batch, 784]\n    output y = image | dense(10)\n}\n"
    (tmp_path / "m.nn").write_text(src)
    assert run_cli(capsys, "compile", tmp_path / "m.nn", "-o", tmp_path / "m.onnx")[0] == 0
    rc, _, err = run_cli(capsys, "eval", tmp_path / "m.onnx", "--data", "digits")
    assert rc == 1 and "1797 samples of shape [64]" in err and "takes [N, 784]" in err and "512" not in err


def test_eval_of_a_training_model_says_so(tmp_path, capsys):
    """Regression: eval of a step or grads model did not say it is a training model."""
    (tmp_path / "f.nn").write_text(tiny(*OK_LINES))
    assert run_cli(capsys, "compile", tmp_path / "f.nn", "--train", "-o", tmp_path / "step.onnx")[0] == 0
    rc, _, err = run_cli(capsys, "eval", tmp_path / "step.onnx")
    assert rc == 1 and "is a training model" in err
