"""nngraph compile: --dump-after of passes that ran or did not, --train and --grads, and the -o
names it refuses."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import ROOT, run_cli

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
    """Regression: --dump-after of a pass that did not run did not fail and say why."""
    rc, out, err = run_cli(capsys, "compile", CNN, *args)
    assert rc == 1 and out == ""
    assert "did not run, so there is nothing to dump" in err and why in err


def test_dump_after_prints_the_graph_and_the_report_when_asked(capsys):
    """Regression: --dump-after ignored --report."""
    rc, out, _ = run_cli(capsys, "compile", CNN, "--dump-after", "fuse_gemm", "--report")
    assert rc == 0
    report, dump = out.split("# model DigitsCNN")
    assert "nodes before" in report and "fuse_gemm" in report
    assert "image: f32[batch,1,8,8] = input" in dump and "= gemm(" in dump


def test_train_and_grads_together_are_a_usage_error(tmp_path, capsys):
    """Regression: --train and --grads were taken together."""
    rc, _, err = run_cli(capsys, "compile", CNN, "--train", "--grads", "-o", tmp_path / "m.onnx")
    assert rc == 2 and "not allowed with" in err
    assert not (tmp_path / "m.onnx").exists()


def test_a_training_model_cannot_be_written_over_its_own_state(tmp_path, capsys):
    """Regression: -o X.npz for a training model was overwritten by its initial state."""
    rc, _, err = run_cli(capsys, "compile", CNN, "--train", "-o", tmp_path / "st.npz")
    assert rc == 1 and "initial state is written beside it" in err
    assert not (tmp_path / "st.npz").exists()
    rc, out, _ = run_cli(capsys, "compile", CNN, "--train", "-o", tmp_path / "st.onnx")
    assert rc == 0
    onnx.checker.check_model(onnx.load(tmp_path / "st.onnx"))
    assert "optimizer.m" in np.load(tmp_path / "st.npz")


def test_writing_under_a_file_says_the_file_is_in_the_way(tmp_path, capsys):
    """Regression: writing under a file did not name the file in the way."""
    (tmp_path / "m.onnx").write_bytes(b"x")
    rc, _, err = run_cli(capsys, "compile", CNN, "-o", tmp_path / "m.onnx" / "x.onnx")
    assert rc == 1 and "m.onnx is a file, not a folder" in err


@pytest.mark.parametrize("name", ["m.npz", "m.nn", ""])
def test_compile_refuses_an_output_name_that_is_not_a_model(name, tmp_path, capsys):
    """Regression: compile took an empty -o, and wrote an inference model under an .npz or .nn name."""
    target = str(tmp_path / name) if name else ""
    rc, _, err = run_cli(capsys, "compile", CNN, "-o", target)
    assert rc == 1 and ("an .onnx file name" in err or "-o needs a file name" in err)
    assert not (tmp_path / name).is_file()
