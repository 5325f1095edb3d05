"""--resume: bit for bit a straight run, with the checkpoint's seed; the model written when only
it is missing; another model's checkpoint, a finished run, no checkpoint, and Ctrl-C."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from conftest import OK_LINES, ROOT, nngraph, run_cli, tiny, tiny_digits

from nngraph.runtime.checkpoint import load_checkpoint
from nngraph.training.trainer import Trainer

MLP = ROOT / "examples" / "digits_mlp.nn"
CNN = ROOT / "examples" / "digits_cnn.nn"


def test_resume_is_bit_exact(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert nngraph("train", str(CNN), "--out", str(full), "--epochs", "2", "--quiet").returncode == 0
    assert nngraph("train", str(CNN), "--out", str(part), "--epochs", "1", "--quiet").returncode == 0
    r = nngraph("train", str(CNN), "--out", str(part), "--epochs", "2", "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    a, ma = load_checkpoint(full / "checkpoint.npz")
    b, mb = load_checkpoint(part / "checkpoint.npz")
    assert ma["step"] == mb["step"] and ma["epoch"] == mb["epoch"] == 2
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_resume_keeps_the_checkpoints_seed(tmp_path: Path, capsys):
    """Regression: --resume without --seed drew a new one, which reshuffled the held-out split."""
    f = tmp_path / "t.nn"
    f.write_text(tiny_digits("epochs = 2", "optimizer = sgd(lr=0.1)"))
    straight, split = tmp_path / "a", tmp_path / "b"
    assert run_cli(capsys, "train", f, "--seed", 3, "--epochs", 2, "--out", straight, "--quiet")[0] == 0
    assert run_cli(capsys, "train", f, "--seed", 3, "--epochs", 1, "--out", split, "--quiet")[0] == 0
    assert (
        run_cli(capsys, "train", f, "--resume", "--epochs", 2, "--out", split, "--quiet")[0] == 0
    )  # no --seed
    a, ma = load_checkpoint(straight / "checkpoint.npz")
    b, mb = load_checkpoint(split / "checkpoint.npz")
    assert ma["seed"] == mb["seed"] == 3
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    rc, _, err = run_cli(
        capsys, "train", f, "--resume", "--epochs", 3, "--seed", 4, "--out", split, "--quiet"
    )
    assert rc == 1 and "trained with seed 3, not 4" in err


def test_resume_of_a_finished_run_without_its_model_writes_the_model(tmp_path, capsys):
    """A run stopped after its last checkpoint but before model.onnx: resume writes the model.

    Regression: such a run was resumed without writing model.onnx."""
    out = tmp_path / "run"
    assert run_cli(capsys, "train", MLP, "--epochs", "1", "--out", out, "--quiet")[0] == 0
    first = (out / "model.onnx").read_bytes()
    (out / "model.onnx").unlink()
    rc, _, err = run_cli(capsys, "train", MLP, "--epochs", "1", "--out", out, "--resume", "--quiet")
    assert rc == 0, err
    assert (out / "model.onnx").read_bytes() == first
    rc, _, err = run_cli(capsys, "train", MLP, "--epochs", "1", "--out", out, "--resume", "--quiet")
    assert rc == 1 and "nothing left to train" in err  # with the model there, there is nothing to do


def test_resume_from_another_models_checkpoint(tmp_path, monkeypatch, capsys):
    """Regression: resuming from another model's checkpoint was not a clear error."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.nn").write_text(tiny(*OK_LINES))
    rc, _, err = run_cli(capsys, "train", MLP, "--out", "mlp", "--epochs", "1", "--quiet")
    assert rc == 0, err
    rc, _, err = run_cli(capsys, "train", "f.nn", "--out", "tiny", "--quiet")
    assert rc == 0, err
    shutil.copy(tmp_path / "mlp" / "checkpoint.npz", tmp_path / "tiny" / "checkpoint.npz")
    rc, out, err = run_cli(capsys, "train", "f.nn", "--out", "tiny", "--resume", "--epochs", "2", "--quiet")
    assert rc == 1 and "trained" not in out and "Traceback" not in err
    assert "does not fit model Tiny" in err, err
    assert "'dense_1.weight'" in err and "[64, 128]" in err and "[64, 10]" in err


def test_resume_with_every_epoch_done(tmp_path, monkeypatch, capsys):
    """Regression: resuming with every epoch done did not say there is nothing left to train."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.nn").write_text(tiny(*OK_LINES))  # epochs = 1
    rc, _, err = run_cli(capsys, "train", "f.nn", "--out", "o", "--quiet")
    assert rc == 0, err
    before = (tmp_path / "o" / "checkpoint.npz").read_bytes()
    rc, out, err = run_cli(capsys, "train", "f.nn", "--out", "o", "--resume", "--quiet")
    assert rc == 1 and "trained" not in out
    assert "error: nothing left to train" in err and "1 of 1 epochs" in err
    assert (tmp_path / "o" / "checkpoint.npz").read_bytes() == before
    rc, out, err = run_cli(capsys, "train", "f.nn", "--out", "o", "--resume", "--epochs", "2", "--quiet")
    assert rc == 0 and "trained Tiny" in out, err


def test_a_train_that_fails_before_writing_leaves_no_empty_folder(tmp_path, capsys):
    """Regression: a train that failed before writing left the --out folder it made."""
    out = tmp_path / "new" / "run"
    rc, _, err = run_cli(capsys, "train", ROOT / "examples" / "digits_mlp.nn", "--resume", "--out", out)
    assert rc == 1 and "no checkpoint" in err
    assert not out.exists()


def test_ctrl_c_during_training_says_where_to_resume(tmp_path: Path, capsys, monkeypatch):
    """Regression: Ctrl-C during training did not say where --resume continues."""
    f = tmp_path / "t.nn"
    f.write_text(tiny_digits("epochs = 3"))

    def interrupted(self, *a, **kw):
        self.save_checkpoint(tmp_path / "out" / "checkpoint.npz")
        self.epoch = 1
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    rc, _, err = run_cli(capsys, "train", f, "--out", tmp_path / "out", "--quiet")
    assert rc == 130 and "interrupted" in err and "--resume continues" in err and "Traceback" not in err
