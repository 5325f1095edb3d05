"""Training end to end: the CLI reaching its accuracy, the NaN guard, fit from Python, what fit
refuses and the metrics it reports, on the CPU and on CUDA."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, nngraph, run_cli, tiny, tiny_digits

import nngraph as ng
from nngraph.training.trainer import Trainer

MLP = ROOT / "examples" / "digits_mlp.nn"
CNN = ROOT / "examples" / "digits_cnn.nn"


@pytest.mark.parametrize("example,target", [(MLP, 0.97), (CNN, 0.98)], ids=["mlp", "cnn"])
def test_train_reaches_held_out_accuracy(example, target, tmp_path):
    r = nngraph("train", str(example), "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"final_loss", "metrics", "steps", "seconds", "samples_per_second", "model"} <= set(result)
    assert result["metrics"]["accuracy"] >= target, result
    assert result["seconds"] < 60
    for name in ("model.onnx", "checkpoint.npz", "history.json"):
        assert (tmp_path / name).is_file()
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == result["epochs"] and history[-1]["val_accuracy"] == pytest.approx(
        result["metrics"]["accuracy"]
    )
    # the written inference model scores the same on the same held-out split
    r = nngraph("eval", str(tmp_path / "model.onnx"), "--data", "digits", "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["split"].startswith("held-out") and ev["accuracy"] == pytest.approx(
        result["metrics"]["accuracy"], abs=1e-6
    )


def test_nan_loss_stops_with_the_step_named_and_keeps_the_last_checkpoint(tmp_path):
    src = MLP.read_text().replace("sgd(lr=0.05, momentum=0.9)", "sgd(lr=1e6, momentum=0.9)")
    bad = tmp_path / "bad.nn"
    bad.write_text(src)
    r = nngraph("train", str(bad), "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "the loss became nan at step" in r.stderr or "the loss became inf at step" in r.stderr
    assert "clip_norm" in r.stderr


def test_fit_from_python_with_arrays():
    from nngraph.runtime.data import load_digits

    d = load_digits(flat=True)
    m = ng.compile_file(MLP)
    result = m.trainer().fit(d.inputs["image"], d.targets["label"], epochs=3)
    train, _ = d.split(0.2, 0)  # the section's validation fraction and seed
    assert result.steps == 3 * int(np.ceil(len(train) / 32))
    assert result.metrics["accuracy"] > 0.85
    assert result.history[0]["loss"] > result.history[-1]["loss"]


def test_trainer_on_cuda_says_it_ran_there():
    from nngraph.runtime.session import available_devices

    if "cuda" not in available_devices():
        pytest.skip("needs onnxruntime with a CUDA provider")
    try:
        trainer = ng.compile_file(MLP).trainer(device="cuda")
    except ng.NNError as e:
        pytest.skip(f"CUDA provider does not start here: {e.message}")
    result = trainer.fit(epochs=2)
    assert result.device == "cuda" and result.metrics["accuracy"] > 0.5


def test_a_diverging_run_names_only_a_checkpoint_it_wrote(tmp_path: Path, capsys):
    """Regression: a diverging run named a checkpoint it had not written."""
    src = tiny(
        "data = digits",
        "target label: i64[batch]",
        "loss = cross_entropy(logits, label)",
        "optimizer = sgd(lr=1e38)",
    )
    (tmp_path / "nan.nn").write_text(src)
    rc, _, err = run_cli(capsys, "train", tmp_path / "nan.nn", "--out", tmp_path / "out", "--quiet")
    assert rc == 1 and "the loss became" in err
    assert "no checkpoint was written yet" in err and not (tmp_path / "out" / "checkpoint.npz").exists()


@pytest.mark.parametrize("kw", [{"epochs": 0}, {"empty": True}])
def test_fit_refuses_zero_epochs_and_no_samples(kw):
    """Regression: epochs=0 silently meant the section's count, and data without samples was taken."""
    tr = ng.compile_source(
        tiny("data = digits", "target label: i64[batch]", "loss = cross_entropy(logits, label)")
    ).trainer(progress=False)
    with pytest.raises(ng.NNError) as info:
        if kw.get("empty"):
            tr.fit(np.zeros((0, 64), np.float32), np.zeros(0, np.int64), epochs=1)
        else:
            tr.fit(epochs=kw["epochs"])
    assert ("epochs must be" in info.value.message) or ("no samples" in info.value.message)
    assert tr.step == 0


BN_MODEL = "model M {\n    input x: f32[batch, 4]\n    output logits = x | dense(8) | batchnorm | relu | dense(3)\n}\n"


def _bn_train(batch: int, validation: float = 0.2) -> str:
    return BN_MODEL + (
        "train M {\n    data = digits\n    target lab: i64[batch]\n    loss = cross_entropy(logits, lab)\n"
        f"    optimizer = sgd(lr=0.1)\n    batch = {batch}\n    epochs = 2\n    validation = {validation}\n"
        "    metrics = [accuracy]\n}\n"
    )


def test_a_last_batch_of_one_does_not_poison_batchnorm():
    """17 training samples in batches of 8 leave one: it is skipped, and the running variance stays finite.

    Regression: a last batch of one made the running variance NaN, which poisoned eval."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(21, 4)).astype(np.float32), rng.integers(0, 3, 21)
    tr = ng.compile_source(_bn_train(8)).trainer(progress=False)
    result = tr.fit(x, y)
    assert result.steps == 4  # 2 epochs x 2 full batches
    assert np.isfinite(tr.stepper.state()["batchnorm_1.running_var"]).all()
    assert all(np.isfinite(row["val_loss"]) for row in result.history)
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(_bn_train(1)).trainer(progress=False).fit(x, y)
    assert "at least 2 samples per batch" in info.value.message


def test_training_metrics_are_reported():
    """Regression: training metrics were not reported per epoch, nor as the metrics with nothing held out."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    result = ng.compile_source(_bn_train(8, validation=0)).trainer(progress=False).fit(x, y)
    assert all(0 <= row["accuracy"] <= 1 for row in result.history)
    assert result.metrics == {"accuracy": result.history[-1]["accuracy"]} and result.metrics_on == "training"


def test_history_is_written_with_every_checkpoint(tmp_path: Path, monkeypatch):
    """Regression: history.json was not written with every checkpoint: a killed run left them out of step."""
    src = tiny_digits("epochs = 2")
    tr = ng.compile_source(src, "t.nn").trainer(out=tmp_path, progress=False)
    seen = []
    real = Trainer.save_checkpoint

    def spy(self, path):
        real(self, path)
        seen.append(len(self.history))

    monkeypatch.setattr(Trainer, "save_checkpoint", spy)
    tr.fit()

    assert seen == [1, 2] and len(json.loads((tmp_path / "history.json").read_text())) == 2
