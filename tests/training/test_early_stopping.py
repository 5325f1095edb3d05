"""Early stopping: lower is better for mae, it says when and why it stopped, its state survives
--resume, and a metric needs held-out data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import regression, regression_data, run_cli, tiny, tiny_digits

import nngraph as ng
from nngraph.runtime.checkpoint import load_checkpoint


def test_early_stopping_says_that_it_stopped(tmp_path, capsys):
    """Regression: early stopping ended the run without saying so or why."""
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x=rng.normal(size=(64, 4)).astype(np.float32),
        t=rng.normal(size=(64, 1)).astype(np.float32),
    )
    (tmp_path / "m.nn").write_text(
        "model M {\n    input x: f32[batch, 4]\n    output y = x | dense(1)\n}\n"
        f'train M {{\n    data = npz("{tmp_path / "d.npz"}")\n    target t: f32[batch, 1]\n    loss = mse(y, t)\n'
        "    optimizer = sgd(lr=5.0)\n    epochs = 20\n    metrics = [mae]\n"
        "    early_stopping = early_stopping(metric=mae, patience=1)\n}\n"
    )
    rc, out, err = run_cli(capsys, "train", tmp_path / "m.nn", "--out", tmp_path / "o", "--json")
    assert rc == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert (
        res["epochs"] < 20
        and res["stopped_early"] == f"after epoch {res['epochs']}: val_mae did not improve for 1 epoch(s)"
    )


def test_early_stopping_on_mae_waits_while_it_improves(tmp_path, monkeypatch, capsys):
    """Regression: early stopping on mae took higher for better."""
    regression_data(tmp_path / "reg.npz")
    epochs = 6
    src = regression(
        "optimizer = sgd(lr=0.02)",
        f"epochs = {epochs}",
        "early_stopping = early_stopping(metric=mae, patience=1)",
    )
    (tmp_path / "r.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "train", "r.nn", "--out", "o", "--quiet")
    assert rc == 0, err
    maes = [row["val_mae"] for row in json.loads((tmp_path / "o" / "history.json").read_text())]
    # the rule by hand: stop after the first epoch whose val_mae is not below the best so far
    expected = epochs
    for i in range(1, epochs):
        if i < len(maes) and maes[i] >= min(maes[:i]):
            expected = i + 1
            break
    assert len(maes) == expected, maes
    assert len(maes) >= 3 and maes[1] < maes[0] and maes[2] < maes[1], maes  # it did improve, and went on


def test_early_stopping_stops_at_the_same_epoch_after_resume(tmp_path, monkeypatch, capsys):
    # a large learning rate: the held-out loss bounces and stops improving after a few epochs
    """Regression: early stopping's state did not survive --resume."""
    src = tiny(
        "data = digits",
        "target label: i64[batch]",
        "loss = cross_entropy(logits, label)",
        "optimizer = sgd(lr=2.0, momentum=0.9)",
        "epochs = 15",
        "early_stopping = early_stopping(metric=loss, patience=2)",
    )
    (tmp_path / "f.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "train", "f.nn", "--out", "full", "--quiet")
    assert rc == 0, err
    full = json.loads((tmp_path / "full" / "history.json").read_text())
    stop = len(full)
    assert 3 <= stop < 15, [r["val_loss"] for r in full]
    _, meta = load_checkpoint(tmp_path / "full" / "checkpoint.npz")
    es = meta["early_stopping"]
    assert set(es) >= {"best", "patience_left", "stopped"}
    assert es["stopped"] is True and es["patience_left"] == 0
    assert es["best"] == pytest.approx(min(r["val_loss"] for r in full))

    # the epoch before the stop, then resumed with the full count: it stops where the straight run did
    rc, _, err = run_cli(capsys, "train", "f.nn", "--out", "part", "--epochs", stop - 1, "--quiet")
    assert rc == 0, err
    _, meta = load_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert meta["early_stopping"]["stopped"] is False
    assert meta["early_stopping"]["patience_left"] == 1
    rc, _, err = run_cli(capsys, "train", "f.nn", "--out", "part", "--resume", "--quiet")
    assert rc == 0, err
    part = json.loads((tmp_path / "part" / "history.json").read_text())
    assert len(part) == stop
    assert [r["val_loss"] for r in part] == pytest.approx([r["val_loss"] for r in full], rel=1e-6)
    # and a further resume has nothing left to do
    rc, _, err = run_cli(capsys, "train", "f.nn", "--out", "part", "--resume", "--quiet")
    assert rc == 1 and "nothing left to train" in err and "early stopping" in err


def test_early_stopping_on_a_metric_needs_held_out_data():
    """Regression: early stopping on a metric was accepted with nothing held out."""
    src = tiny_digits(
        "metrics = [accuracy]", "validation = 0", "early_stopping = early_stopping(metric=accuracy)"
    )
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(src, "t.nn").train_spec()
    assert "validation = 0 holds none out" in info.value.message
