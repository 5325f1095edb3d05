"""Command-line behaviour found by walking through every command as a new user would."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import ROOT, run_cli

from nngraph.runtime.data import load_csv

CNN = ROOT / "examples" / "digits_cnn.nn"


@pytest.mark.parametrize(
    "args, why",
    [
        (
            ["--dump-after", "fold_batchnorm", "--disable", "fold_batchnorm"],
            "--disable fold_batchnorm turned it off",
        ),
        (["--dump-after", "fuse_batchnorm_train"], "add --train"),
        (["--dump-after", "fuse_gemm", "-O0"], "-O0 does not include it"),
    ],
)
def test_dump_after_a_pass_that_did_not_run_fails_and_says_why(args, why, capsys):
    rc, out, err = run_cli(capsys, "compile", CNN, *args)
    assert rc == 1 and out == ""
    assert "did not run, so there is nothing to dump" in err and why in err


def test_dump_after_prints_the_graph_and_the_report_when_asked(capsys):
    rc, out, _ = run_cli(capsys, "compile", CNN, "--dump-after", "fuse_gemm", "--report")
    assert rc == 0
    report, dump = out.split("# model DigitsCNN")
    assert "nodes before" in report and "fuse_gemm" in report
    assert "image: f32[batch,1,8,8] = input" in dump and "= gemm(" in dump


def test_train_and_grads_together_are_a_usage_error(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "compile", CNN, "--train", "--grads", "-o", tmp_path / "m.onnx")
    assert rc == 2 and "not allowed with" in err
    assert not (tmp_path / "m.onnx").exists()


def test_a_training_model_cannot_be_written_over_its_own_state(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "compile", CNN, "--train", "-o", tmp_path / "st.npz")
    assert rc == 1 and "initial state is written beside it" in err
    assert not (tmp_path / "st.npz").exists()
    rc, out, _ = run_cli(capsys, "compile", CNN, "--train", "-o", tmp_path / "st.onnx")
    assert rc == 0
    onnx.checker.check_model(onnx.load(tmp_path / "st.onnx"))
    assert "optimizer.m" in np.load(tmp_path / "st.npz")


def test_a_csv_header_naming_the_target_picks_the_label_column(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.random((6, 3))
    labels = np.array([0, 1, 2, 1, 0, 2])
    rows = ["label,a,b,c"] + [
        f"{y},{','.join(f'{v:.3f}' for v in x)}" for y, x in zip(labels, feats, strict=True)
    ]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    ds = load_csv(tmp_path / "d.csv", ["x"], ["label"]).arrays()
    np.testing.assert_array_equal(ds["label"], labels)
    np.testing.assert_allclose(ds["x"], feats, atol=1e-3)
    # a header that does not name the target: the last column
    last = ["a,b,c,d"] + [
        f"{','.join(f'{v:.3f}' for v in x)},{y}" for y, x in zip(labels, feats, strict=True)
    ]
    (tmp_path / "e.csv").write_text("\n".join(last) + "\n")
    np.testing.assert_array_equal(load_csv(tmp_path / "e.csv", ["x"], ["label"]).arrays()["label"], labels)


def test_a_huge_repeat_count_is_refused_at_once(tmp_path, capsys):
    f = tmp_path / "r.nn"
    f.write_text(
        "model M {\n    input x: f32[batch, 4]\n    h = x\n    repeat 100000000 {\n        h = h | relu\n    }\n    output y = h\n}\n"
    )
    rc, _, err = run_cli(capsys, "check", f)
    assert rc == 1 and "r.nn:4:12" in err and "at most 10,000 repetitions" in err


def test_gradcheck_tolerance_must_be_a_positive_number(capsys):
    for bad in ("-1", "nan", "0", "x"):
        rc, _, err = run_cli(capsys, "gradcheck", ROOT / "examples" / "digits_mlp.nn", "--tol", bad)
        assert rc == 2 and "--tol" in err, bad


def test_an_unknown_model_lists_the_files_models(capsys):
    rc, _, err = run_cli(capsys, "compile", ROOT / "examples" / "digits_mlp.nn", "--model", "Nope")
    assert rc == 1 and "no model named 'Nope'" in err and "one of: DigitsMLP" in err


def test_early_stopping_says_that_it_stopped(tmp_path, capsys):
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


def test_eval_of_data_the_model_cannot_take_names_both_shapes(tmp_path, capsys):
    src = "model M {\n    input image: f32[batch, 784]\n    output y = image | dense(10)\n}\n"
    (tmp_path / "m.nn").write_text(src)
    assert run_cli(capsys, "compile", tmp_path / "m.nn", "-o", tmp_path / "m.onnx")[0] == 0
    rc, _, err = run_cli(capsys, "eval", tmp_path / "m.onnx", "--data", "digits")
    assert rc == 1 and "1797 samples of shape [64]" in err and "takes [N, 784]" in err and "512" not in err


def test_writing_under_a_file_says_the_file_is_in_the_way(tmp_path, capsys):
    (tmp_path / "m.onnx").write_bytes(b"x")
    rc, _, err = run_cli(capsys, "compile", CNN, "-o", tmp_path / "m.onnx" / "x.onnx")
    assert rc == 1 and "m.onnx is a file, not a folder" in err


def test_a_train_that_fails_before_writing_leaves_no_empty_folder(tmp_path, capsys):
    out = tmp_path / "new" / "run"
    rc, _, err = run_cli(capsys, "train", ROOT / "examples" / "digits_mlp.nn", "--resume", "--out", out)
    assert rc == 1 and "no checkpoint" in err
    assert not out.exists()


@pytest.mark.parametrize("name", ["m.npz", "m.nn", ""])
def test_compile_refuses_an_output_name_that_is_not_a_model(name, tmp_path, capsys):
    target = str(tmp_path / name) if name else ""
    rc, _, err = run_cli(capsys, "compile", CNN, "-o", target)
    assert rc == 1 and ("an .onnx file name" in err or "-o needs a file name" in err)
    assert not (tmp_path / name).is_file()
