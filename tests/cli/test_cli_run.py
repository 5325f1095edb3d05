"""nngraph run: mistakes in --input and --random are clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, run_cli

import nngraph as ng


@pytest.fixture
def small_onnx(tmp_path) -> Path:
    path = tmp_path / "m.onnx"
    ng.compile_source(TINY, "m.nn").save(path)
    np.save(tmp_path / "a.npy", np.zeros((2, 64), np.float32))
    return path


def test_run_input_given_twice(small_onnx, tmp_path, capsys):
    """Regression: an --input given twice was taken."""
    a = tmp_path / "a.npy"
    rc, out, err = run_cli(capsys, "run", small_onnx, "--input", f"image={a}", "--input", f"image={a}")
    assert rc == 1 and err.startswith("error:") and "given twice" in err and "image" in err
    assert "ran " not in out


def test_run_random_and_input_both_given(small_onnx, tmp_path, capsys):
    """Regression: --random and --input were taken together."""
    rc, out, err = run_cli(
        capsys, "run", small_onnx, "--random", "2", "--input", f"image={tmp_path / 'a.npy'}"
    )
    assert rc == 1 and err.startswith("error:") and "both given" in err
    assert "--random" in err and "--input" in err and "ran " not in out


def test_run_input_that_is_an_npz_archive(small_onnx, tmp_path, capsys):
    """Regression: an .npz archive as --input was not a clear error."""
    np.savez(tmp_path / "b.npz", image=np.zeros((2, 64), np.float32))
    rc, _, err = run_cli(capsys, "run", small_onnx, "--input", f"image={tmp_path / 'b.npz'}")
    assert rc == 1 and err.startswith("error:") and "archive" in err and "b.npz" in err


def test_run_input_that_is_a_text_file(small_onnx, tmp_path, capsys):
    """Regression: a text file as --input was not a clear error (it spoke of pickles)."""
    (tmp_path / "t.txt").write_text("1 2 3\n")
    rc, _, err = run_cli(capsys, "run", small_onnx, "--input", f"image={tmp_path / 't.txt'}")
    assert rc == 1 and err.startswith("error:")
    assert "not a .npy array" in err and "t.txt" in err
    assert "allow_pickle" not in err and "pickle" not in err
