"""User mistakes that used to crash, pass silently or point nowhere: each is now a clear
NNError (CLI exit 1, `error:` on stderr, no traceback) or an argparse usage error (exit 2),
with the position, what was expected and a hint where there is one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from conftest import run_cli as cli

import nngraph as ng
from nngraph.errors import NNError

MLP = ROOT / "examples" / "digits_mlp.nn"

TINY = "model Tiny {\n    input image: f32[batch, 64]\n    output logits = image | dense(10)\n}\n"
# a correct train section for Tiny, one setting a line; the cases below swap or add lines
OK_LINES = [
    "data = digits",
    "target label: i64[batch]",
    "loss = cross_entropy(logits, label)",
    "optimizer = sgd(lr=0.1)",
    "epochs = 1",
]


def tiny(*lines: str) -> str:
    return TINY + "\ntrain Tiny {\n" + "".join(f"    {ln}\n" for ln in lines) + "}\n"


def replaced(index: int, line: str) -> list[str]:
    out = list(OK_LINES)
    out[index] = line
    return out


def nngraph(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "nngraph.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def assert_caret(text: str, file: str, src_line: str, line: int, token: str) -> None:
    """`text` is positioned at `file:line:col`, col being where `token` starts on the line,
    quotes the line and puts the caret under that column."""
    col = src_line.index(token) + 1
    assert f"{file}:{line}:{col}: error: " in text, text
    rendered = text[text.index(f"{file}:{line}:") :].splitlines()
    assert rendered[1].endswith(src_line), text
    caret = rendered[2]
    assert caret.index("^") - caret.index("|") - 2 == col - 1, text


# ---- 1. negative seeds and batch sizes -------------------------------------------------------


def test_negative_seed_on_the_command_line_is_a_usage_error(tmp_path):
    (tmp_path / "f.nn").write_text(TINY)
    r = nngraph("check", "f.nn", "--seed", "-1", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "must be 0 or more" in r.stderr and "--seed" in r.stderr
    assert "Traceback" not in r.stderr


def test_random_batch_zero_is_a_usage_error(tmp_path):
    m = tmp_path / "m.onnx"
    ng.compile_source(TINY, "m.nn").save(m)
    r = nngraph("run", m, "--random", "0")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "must be 1 or more" in r.stderr and "--random" in r.stderr
    assert "Traceback" not in r.stderr


def test_negative_seed_from_python_is_an_nnerror():
    with pytest.raises(ng.NNError, match="seed must be an integer >= 0"):
        ng.compile_source(TINY, seed=-1)


# ---- 2. zero kernels and strides ------------------------------------------------------------

IMG = "model M {\n    input img: f32[batch, 1, 8, 8]\n    output o = img | %s\n}\n"


@pytest.mark.parametrize(
    "layer,message",
    [
        ("conv2d(4, kernel=0)", "kernel must be 1 or more"),
        ("maxpool(0)", "kernel must be 1 or more"),
        ("conv2d(4, kernel=3, stride=0)", "stride must be 1 or more"),
    ],
    ids=["conv_kernel_0", "maxpool_0", "conv_stride_0"],
)
def test_zero_kernel_or_stride_fails_at_check(layer, message, tmp_path, capsys):
    src = IMG % layer
    (tmp_path / "m.nn").write_text(src)
    with pytest.raises(NNError) as info:
        ng.compile_source(src, "m.nn")
    assert message in info.value.message, info.value.render()
    rc, out, err = cli(capsys, "check", tmp_path / "m.nn")
    assert rc == 1 and "error:" in err and message in err and "ok:" not in out
    src_line = src.splitlines()[2]
    assert_caret(err, str(tmp_path / "m.nn"), src_line, 3, layer.split("(")[0])


# ---- 3. mistakes in the train section, found by check ---------------------------------------

# (id, lines, line number of the fault in the file, token under the caret, message parts, hint)
# fmt: off
TRAIN_CASES = [
    ("unknown_loss", replaced(2, "loss = cross_entropi(logits, label)"), 9, "cross_entropi", ["cross_entropi"], "cross_entropy"),
    ("negative_lr", replaced(3, "optimizer = sgd(lr=-0.1)"), 10, "-0.1", ["'lr'", "must be >= 0"], None),
    ("momentum_1_5", replaced(3, "optimizer = sgd(momentum=1.5)"), 10, "1.5", ["'momentum'", "in [0, 1)"], None),
    ("beta1_2", replaced(3, "optimizer = adam(beta1=2.0)"), 10, "2.0", ["'beta1'", "in [0, 1)"], None),
    ("step_every_0", [*OK_LINES, "schedule = step(every=0)"], 12, "0", ["'every'", ">= 1"], None),
    ("step_every_float", [*OK_LINES, "schedule = step(every=2.5)"], 12, "2.5", ["'every'", "must be an integer"], None),
    ("negative_seed", [*OK_LINES, "seed = -5"], 12, "-5", ["'seed'", ">= 0"], None),
    (
        "early_stopping_unmeasured",
        [*OK_LINES, "metrics = [accuracy]", "early_stopping = early_stopping(metric=acc, patience=1)"],
        13, "acc", ["'acc'", "which is not measured"], "accuracy",
    ),
    ("top_k_over_classes", [*OK_LINES, "metrics = [top_k_accuracy(k=20)]"], 12, "top_k_accuracy", ["always 1"], None),
    ("missing_data_file", replaced(0, 'data = npz("missing.npz")'), 7, '"missing.npz"', ["missing.npz", "does not exist"], None),
]
# fmt: on


@pytest.mark.parametrize("case", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_check_finds_train_section_mistakes(case, tmp_path, monkeypatch, capsys):
    _, lines, line, token, messages, hint = case
    src = tiny(*lines)
    (tmp_path / "f.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "check", "f.nn")
    assert rc == 1, out + err
    assert "train section ok" not in out and "Traceback" not in err
    for part in messages:
        assert part in err, err
    src_line = src.splitlines()[line - 1]
    assert_caret(err, "f.nn", src_line, line, token)
    if hint is not None:
        assert f"hint: did you mean '{hint}'?" in err, err


def test_misspelt_optimizer_setting_names_it_and_suggests(tmp_path, monkeypatch, capsys):
    (tmp_path / "f.nn").write_text(tiny(*replaced(3, "optimizer = sgd(lr=0.1, momentun=0.9)")))
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "check", "f.nn")
    assert rc == 1 and "train section ok" not in out
    assert "'sgd' has no setting 'momentun'" in err and "f.nn:10:" in err
    assert "hint: did you mean 'momentum'?" in err


def test_misspelt_optimizer_setting_caret_is_under_the_name(tmp_path, monkeypatch, capsys):
    src = tiny(*replaced(3, "optimizer = sgd(lr=0.1, momentun=0.9)"))
    (tmp_path / "f.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, "check", "f.nn")
    assert rc == 1
    assert_caret(err, "f.nn", src.splitlines()[9], 10, "momentun")


def test_check_says_the_train_section_is_ok(tmp_path, monkeypatch, capsys):
    np.savez(tmp_path / "d.npz", image=np.zeros((4, 64), np.float32), label=np.zeros(4, np.int64))
    monkeypatch.chdir(tmp_path)
    for name, lines in {
        "digits.nn": OK_LINES,
        "npz.nn": [*replaced(0, 'data = npz("d.npz")'), "metrics = [accuracy, top_k_accuracy(k=3)]"],
    }.items():
        (tmp_path / name).write_text(tiny(*lines))
        rc, out, err = cli(capsys, "check", name)
        assert rc == 0, err
        assert f"{name}: ok: model Tiny, 650 parameters; train section ok" in out


# ---- 4. a misspelt tensor in the loss --------------------------------------------------------


@pytest.mark.parametrize(
    "loss,target,token",
    [
        ("cross_entropy(logitz, label)", "label: i64[batch]", "logitz"),
        ("mse(logit, label)", "label: f32[batch, 10]", "logit"),
    ],
    ids=["cross_entropy", "mse"],
)
def test_misspelt_loss_tensor_is_undefined_with_a_hint(loss, target, token, tmp_path, monkeypatch, capsys):
    src = tiny("data = digits", f"target {target}", f"loss = {loss}")
    (tmp_path / "f.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, "check", "f.nn")
    assert rc == 1 and "Traceback" not in err
    assert f"undefined tensor '{token}'" in err
    assert "hint: did you mean 'logits'?" in err
    assert_caret(err, "f.nn", src.splitlines()[8], 9, token + ",")


# ---- 5. nngraph run with bad --input ---------------------------------------------------------


@pytest.fixture
def small_onnx(tmp_path) -> Path:
    path = tmp_path / "m.onnx"
    ng.compile_source(TINY, "m.nn").save(path)
    np.save(tmp_path / "a.npy", np.zeros((2, 64), np.float32))
    return path


def test_run_input_given_twice(small_onnx, tmp_path, capsys):
    a = tmp_path / "a.npy"
    rc, out, err = cli(capsys, "run", small_onnx, "--input", f"image={a}", "--input", f"image={a}")
    assert rc == 1 and err.startswith("error:") and "given twice" in err and "image" in err
    assert "ran " not in out


def test_run_random_and_input_both_given(small_onnx, tmp_path, capsys):
    rc, out, err = cli(capsys, "run", small_onnx, "--random", "2", "--input", f"image={tmp_path / 'a.npy'}")
    assert rc == 1 and err.startswith("error:") and "both given" in err
    assert "--random" in err and "--input" in err and "ran " not in out


def test_run_input_that_is_an_npz_archive(small_onnx, tmp_path, capsys):
    np.savez(tmp_path / "b.npz", image=np.zeros((2, 64), np.float32))
    rc, _, err = cli(capsys, "run", small_onnx, "--input", f"image={tmp_path / 'b.npz'}")
    assert rc == 1 and err.startswith("error:") and "archive" in err and "b.npz" in err


def test_run_input_that_is_a_text_file(small_onnx, tmp_path, capsys):
    (tmp_path / "t.txt").write_text("1 2 3\n")
    rc, _, err = cli(capsys, "run", small_onnx, "--input", f"image={tmp_path / 't.txt'}")
    assert rc == 1 and err.startswith("error:")
    assert "not a .npy array" in err and "t.txt" in err
    assert "allow_pickle" not in err and "pickle" not in err


# ---- 6. embedding ids out of range -----------------------------------------------------------

EMB = "model E {\n    input ids: i64[batch, 5]\n    output y = ids | embedding(10, 4)\n}\n"


def test_run_with_ids_outside_the_embedding(tmp_path, capsys):
    m = tmp_path / "e.onnx"
    ng.compile_source(EMB, "e.nn").save(m)
    ids = np.full((2, 5), 50, np.int64)
    np.save(tmp_path / "ids.npy", ids)
    rc, out, err = cli(capsys, "run", m, "--input", f"ids={tmp_path / 'ids.npy'}")
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
    nngraph passes keep it quiet, so the user reads one message: ours."""
    m = tmp_path / "e.onnx"
    ng.compile_source(EMB, "e.nn").save(m)
    np.save(tmp_path / "ids.npy", np.full((2, 5), 50, np.int64))
    r = nngraph("run", m, "--input", f"ids={tmp_path / 'ids.npy'}")
    assert r.returncode == 1
    assert r.stderr.startswith("error: onnxruntime could not run the model"), r.stderr
    assert "[E:onnxruntime" not in r.stderr and r.stderr.count("out of data bounds") == 1


def test_training_with_ids_outside_the_embedding_fails_before_training(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20, (40, 5)).astype(np.int64)
    ids[3, 2] = 19  # the largest id is 19
    np.savez(tmp_path / "d.npz", ids=ids, label=rng.integers(0, 3, 40).astype(np.int64))
    src = (
        "model E {\n    input ids: i64[batch, 5]\n"
        "    output logits = ids | embedding(10, 4) | flatten | dense(3)\n}\n"
        'train E {\n    data = npz("d.npz")\n    target label: i64[batch]\n'
        "    loss = cross_entropy(logits, label)\n    epochs = 1\n}\n"
    )
    (tmp_path / "e.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "train", "e.nn", "--out", "o", "--quiet")
    assert rc == 1 and "Traceback" not in err and "trained" not in out
    assert "error: ids of 'ids' range over 0..19" in err, err
    assert "num=20" in err.split("hint:")[1]
    assert not (tmp_path / "o" / "checkpoint.npz").exists()


# ---- 7. saving onto a directory --------------------------------------------------------------


def test_save_onto_a_directory(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(NNError, match="is a directory"):
        ng.compile_source(TINY, "m.nn").save(d)
    (tmp_path / "f.nn").write_text(TINY)
    rc, out, err = cli(capsys, "compile", tmp_path / "f.nn", "-o", d)
    assert rc == 1 and err.startswith("error:") and "is a directory" in err
    assert ".tmp" not in err and "wrote" not in out
    assert d.is_dir() and list(d.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.nn"]  # no temporary file left


# ---- 8. an --out that cannot be written ------------------------------------------------------


def test_unwritable_out_fails_before_training(tmp_path, monkeypatch, capsys):
    from nngraph.training.trainer import Trainer

    def no_fit(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(Trainer, "fit", no_fit)
    (tmp_path / "f.nn").write_text(tiny(*OK_LINES))
    rc, out, err = cli(capsys, "train", tmp_path / "f.nn", "--out", "/proc/nonexistent/x", "--quiet")
    assert rc == 1 and err.startswith("error: cannot write into --out /proc/nonexistent/x")
    assert "trained" not in out


# ---- 9. --resume with a checkpoint that does not fit, or nothing left ------------------------


def test_resume_from_another_models_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.nn").write_text(tiny(*OK_LINES))
    rc, _, err = cli(capsys, "train", MLP, "--out", "mlp", "--epochs", "1", "--quiet")
    assert rc == 0, err
    rc, _, err = cli(capsys, "train", "f.nn", "--out", "tiny", "--quiet")
    assert rc == 0, err
    shutil.copy(tmp_path / "mlp" / "checkpoint.npz", tmp_path / "tiny" / "checkpoint.npz")
    rc, out, err = cli(capsys, "train", "f.nn", "--out", "tiny", "--resume", "--epochs", "2", "--quiet")
    assert rc == 1 and "trained" not in out and "Traceback" not in err
    assert "does not fit model Tiny" in err, err
    assert "'dense_1.weight'" in err and "[64, 128]" in err and "[64, 10]" in err


def test_resume_with_every_epoch_done(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.nn").write_text(tiny(*OK_LINES))  # epochs = 1
    rc, _, err = cli(capsys, "train", "f.nn", "--out", "o", "--quiet")
    assert rc == 0, err
    before = (tmp_path / "o" / "checkpoint.npz").read_bytes()
    rc, out, err = cli(capsys, "train", "f.nn", "--out", "o", "--resume", "--quiet")
    assert rc == 1 and "trained" not in out
    assert "error: nothing left to train" in err and "1 of 1 epochs" in err
    assert (tmp_path / "o" / "checkpoint.npz").read_bytes() == before
    rc, out, err = cli(capsys, "train", "f.nn", "--out", "o", "--resume", "--epochs", "2", "--quiet")
    assert rc == 0 and "trained Tiny" in out, err


# ---- 10. the one trained model of a file is picked without --model ---------------------------


def test_train_picks_the_only_model_with_a_train_section(tmp_path, monkeypatch, capsys):
    src = (
        "model A {\n    input image: f32[batch, 64]\n    output logits = image | dense(10)\n}\n"
        "model B {\n    input image: f32[batch, 64]\n    output logits = image | dense(12) | relu | dense(10)\n}\n"
        "train B {\n    data = digits\n    target label: i64[batch]\n"
        "    loss = cross_entropy(logits, label)\n    epochs = 1\n}\n"
    )
    (tmp_path / "two.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "train", "two.nn", "--out", "o", "--quiet")
    assert rc == 0, err
    assert "trained B:" in out
    from nngraph.runtime.checkpoint import load_checkpoint

    arrays, meta = load_checkpoint(tmp_path / "o" / "checkpoint.npz")
    assert meta["model"] == "B" and arrays["dense_1.weight"].shape == (64, 12)


def test_eval_of_a_training_model_says_so(tmp_path, capsys):
    (tmp_path / "f.nn").write_text(tiny(*OK_LINES))
    assert cli(capsys, "compile", tmp_path / "f.nn", "--train", "-o", tmp_path / "step.onnx")[0] == 0
    rc, _, err = cli(capsys, "eval", tmp_path / "step.onnx")
    assert rc == 1 and "is a training model" in err


def test_graph_into_a_closed_pipe_is_quiet():
    r = subprocess.run(
        f"{sys.executable} -m nngraph.cli graph {ROOT / 'examples' / 'resnet50.nn'} | head -1",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert r.stdout.startswith("# model") and "Broken pipe" not in r.stderr and "Traceback" not in r.stderr
