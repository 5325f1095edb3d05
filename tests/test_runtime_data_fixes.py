"""Runtime and data behaviour that used to be wrong or to end in a traceback: the seed kept on
--resume, regression targets and header detection in CSV files, eval's label checks, Ctrl-C,
non-finite data, Session and bundle argument checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli as cli

import nngraph as ng
from nngraph.runtime.bundle import write_bundle
from nngraph.runtime.checkpoint import load_checkpoint
from nngraph.runtime.data import load_csv
from nngraph.runtime.evaluate import evaluate_file
from nngraph.training.trainer import Trainer

TINY = "model Tiny {\n    input image: f32[batch, 64]\n    output logits = image | dense(10)\n}\n"
TRAIN = (
    "train Tiny {\n    data = digits\n    target label: i64[batch]\n    loss = cross_entropy(logits, label)\n"
)


def tiny(*lines: str) -> str:
    return TINY + TRAIN + "".join(f"    {ln}\n" for ln in lines) + "}\n"


def test_resume_keeps_the_checkpoints_seed(tmp_path: Path, capsys):
    f = tmp_path / "t.nn"
    f.write_text(tiny("epochs = 2", "optimizer = sgd(lr=0.1)"))
    straight, split = tmp_path / "a", tmp_path / "b"
    assert cli(capsys, "train", f, "--seed", 3, "--epochs", 2, "--out", straight, "--quiet")[0] == 0
    assert cli(capsys, "train", f, "--seed", 3, "--epochs", 1, "--out", split, "--quiet")[0] == 0
    assert cli(capsys, "train", f, "--resume", "--epochs", 2, "--out", split, "--quiet")[0] == 0  # no --seed
    a, ma = load_checkpoint(straight / "checkpoint.npz")
    b, mb = load_checkpoint(split / "checkpoint.npz")
    assert ma["seed"] == mb["seed"] == 3
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    rc, _, err = cli(capsys, "train", f, "--resume", "--epochs", 3, "--seed", 4, "--out", split, "--quiet")
    assert rc == 1 and "trained with seed 3, not 4" in err


def test_csv_regression_targets_are_read_as_numbers(tmp_path: Path):
    csv = tmp_path / "r.csv"
    csv.write_text("1,2,0.5\n3,4,-1.25\n5,6,2\n")
    ds = load_csv(csv, ["x"], ["t"], float_labels=True)
    np.testing.assert_array_equal(ds.targets["t"], [0.5, -1.25, 2.0])
    src = (
        "model R {\n    input x: f32[batch, 2]\n    output y = x | dense(1) | reshape([batch])\n}\n"
        f'train R {{\n    data = csv("{csv}")\n    target t: f32[batch]\n    loss = mse(y, t)\n'
        "    validation = 0\n    epochs = 1\n}\n"
    )
    result = ng.compile_source(src, str(tmp_path / "r.nn")).trainer(progress=False).fit()
    assert np.isfinite(result.final_loss)


def test_csv_first_row_with_one_bad_cell_is_an_error_not_a_header(tmp_path: Path):
    csv = tmp_path / "d.csv"
    csv.write_text("1,2,,0\n3,4,5,1\n6,7,8,0\n")
    with pytest.raises(ng.NNError) as info:
        load_csv(csv, ["x"], ["y"])
    assert "line 1, column 3" in info.value.message
    csv.write_text("a,b,c,label\n3,4,5,1\n")  # a real header: every cell a name
    assert len(load_csv(csv, ["x"], ["y"])) == 1


def test_csv_values_that_overflow_float32(tmp_path: Path):
    csv = tmp_path / "o.csv"
    csv.write_text("1,3e39,0\n")
    with pytest.raises(ng.NNError) as info:
        load_csv(csv, ["x"], ["y"])
    assert "overflows float32" in info.value.message and info.value.span.line == 1


def test_csv_with_semicolons_says_only_commas(tmp_path: Path):
    csv = tmp_path / "s.csv"
    csv.write_text("1;2;0\n3;4;1\n")
    with pytest.raises(ng.NNError) as info:
        load_csv(csv, ["x"], ["y"])
    assert "1 column" in info.value.message and info.value.hint == "only commas separate columns"


def _trained(tmp_path: Path, capsys) -> Path:
    f = tmp_path / "t.nn"
    f.write_text(tiny("epochs = 1"))
    assert cli(capsys, "train", f, "--out", tmp_path / "out", "--quiet")[0] == 0
    return tmp_path / "out" / "model.onnx"


def test_eval_checks_labels_against_the_classes(tmp_path: Path, capsys):
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
    model = _trained(tmp_path, capsys)
    data = tmp_path / "one.npz"
    np.savez(data, image=np.zeros((0, 64), np.float32), label=np.zeros(0, np.int64))
    with pytest.raises(ng.NNError) as info:
        evaluate_file(model, str(data))
    assert "no samples to score" in info.value.message


def test_ctrl_c_during_training_says_where_to_resume(tmp_path: Path, capsys, monkeypatch):
    f = tmp_path / "t.nn"
    f.write_text(tiny("epochs = 3"))

    def interrupted(self, *a, **kw):
        self.save_checkpoint(tmp_path / "out" / "checkpoint.npz")
        self.epoch = 1
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    rc, _, err = cli(capsys, "train", f, "--out", tmp_path / "out", "--quiet")
    assert rc == 130 and "interrupted" in err and "--resume continues" in err and "Traceback" not in err


def test_write_errors_name_the_file_asked_for(tmp_path: Path):
    m = ng.compile_source(TINY)
    target = tmp_path / "a_file"
    target.write_text("")
    with pytest.raises(ng.NNError) as info:
        m.save(target / "model.onnx")  # its folder is a file
    assert "model.onnx" in info.value.message and ".tmp" not in info.value.message


def test_early_stopping_on_a_metric_needs_held_out_data():
    src = tiny("metrics = [accuracy]", "validation = 0", "early_stopping = early_stopping(metric=accuracy)")
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(src, "t.nn").train_spec()
    assert "validation = 0 holds none out" in info.value.message


def test_non_finite_data_is_reported_before_training(tmp_path: Path):
    data = tmp_path / "n.npz"
    x = np.ones((8, 64), np.float32)
    x[5, 7] = np.nan
    np.savez(data, image=x, label=np.zeros(8, np.int64))
    src = TINY + TRAIN.replace("data = digits", f'data = npz("{data}")') + "}\n"
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(src, str(tmp_path / "t.nn")).trainer(progress=False).fit()
    assert "holds nan at sample 5" in info.value.message and "[5, 7]" in info.value.message


def test_session_argument_mistakes(tmp_path: Path):
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


def test_bundle_checks_its_preprocessing(tmp_path: Path):
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


def test_classify_refuses_per_position_scores(tmp_path: Path):
    path = tmp_path / "seq.onnx"
    ng.compile_source("model S {\n    input x: f32[batch, 3, 4]\n    output y = x | dense(2)\n}\n").save(path)
    write_bundle(path, path, labels=["a", "b"])
    with pytest.raises(ng.NNError) as info:
        ng.runtime.Session(path).classify(np.zeros((1, 3, 4), np.float32))
    assert "one label per sample" in info.value.message


def test_a_write_clears_temporary_files_a_killed_run_left(tmp_path: Path):
    from nngraph.fileio import atomic_write_bytes

    stale = tmp_path / ".checkpoint.npz.abc123.tmp"
    stale.write_bytes(b"half")
    other = tmp_path / ".model.onnx.abc123.tmp"  # another file's: left alone
    other.write_bytes(b"half")
    atomic_write_bytes(tmp_path / "checkpoint.npz", b"whole")
    assert (tmp_path / "checkpoint.npz").read_bytes() == b"whole"
    assert not stale.exists() and other.exists()


def test_history_is_written_with_every_checkpoint(tmp_path: Path, monkeypatch):
    src = tiny("epochs = 2")
    tr = ng.compile_source(src, "t.nn").trainer(out=tmp_path, progress=False)
    seen = []
    real = Trainer.save_checkpoint

    def spy(self, path):
        real(self, path)
        seen.append(len(self.history))

    monkeypatch.setattr(Trainer, "save_checkpoint", spy)
    tr.fit()
    import json

    assert seen == [1, 2] and len(json.loads((tmp_path / "history.json").read_text())) == 2


def test_eval_converts_data_as_training_does(tmp_path: Path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "d32.npz"
    np.savez(data, image=rng.random((20, 64), dtype=np.float32), label=rng.integers(0, 10, 20))
    f = tmp_path / "d.nn"
    f.write_text(
        "model D {\n    input image: f64[batch, 64]\n    output logits = image | dense(10)\n}\n"
        + TRAIN.replace("train Tiny", "train D").replace("data = digits", f'data = npz("{data}")')
        + "    epochs = 1\n}\n"
    )
    assert cli(capsys, "train", f, "--out", tmp_path / "out", "--quiet")[0] == 0
    result = evaluate_file(tmp_path / "out" / "model.onnx", str(data))
    assert result["samples"] == 4 and result["split"].startswith("held-out")
