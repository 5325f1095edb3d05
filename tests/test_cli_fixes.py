"""Command-line behaviour found by walking through every command as a new user would."""

from __future__ import annotations

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
