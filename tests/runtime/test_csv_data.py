"""CSV data files: with and without a header (one naming the target picks the label column),
regression targets, and the errors of bad cells, float32 overflow and other separators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

import nngraph as ng
from nngraph.errors import NNError
from nngraph.runtime.data import load_csv


def test_load_csv_with_and_without_header(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("1,2,0\n3.5,4,1\n\n5,6,2\n")
    ds = load_csv(plain, "x", "y")
    assert ds.inputs["x"].dtype == np.float32 and ds.inputs["x"].tolist() == [[1, 2], [3.5, 4], [5, 6]]
    assert ds.targets["y"].dtype == np.int64 and ds.targets["y"].tolist() == [0, 1, 2]

    headed = tmp_path / "headed.csv"
    headed.write_text("species,a,b\n2,0.5,1\n1.0,0.25,2\n")
    ds = load_csv(headed, ["x"], ["y"], label_column="species")
    assert ds.inputs["x"].tolist() == [[0.5, 1], [0.25, 2]] and ds.targets["y"].tolist() == [2, 1]
    ds = load_csv(headed, ["x"], ["y"], label_column=0)
    assert ds.targets["y"].tolist() == [2, 1]


def test_a_csv_header_naming_the_target_picks_the_label_column(tmp_path):
    """Regression: a header naming the target did not pick the label column, as README promised."""
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


def test_csv_first_row_with_one_bad_cell_is_an_error_not_a_header(tmp_path: Path):
    """Regression: a first row with one bad cell was taken for a header."""
    csv = tmp_path / "d.csv"
    csv.write_text("1,2,,0\n3,4,5,1\n6,7,8,0\n")
    with pytest.raises(ng.NNError) as info:
        load_csv(csv, ["x"], ["y"])
    assert "line 1, column 3" in info.value.message
    csv.write_text("a,b,c,label\n3,4,5,1\n")  # a real header: every cell a name
    assert len(load_csv(csv, ["x"], ["y"])) == 1


def test_load_csv_errors(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n1,2,0\n3,4,1\n")
    with pytest.raises(NNError) as e:
        load_csv(p, "x", "y", label_column="lable")
    assert "no column 'lable'" in str(e.value) and "'a', 'b', 'label'" in str(e.value)
    assert "did you mean 'label'?" in str(e.value)
    with pytest.raises(NNError, match=r"inputs \['x', 'z'\] and targets \['y'\]"):
        load_csv(p, ["x", "z"], ["y"])
    with pytest.raises(NNError, match="out of range"):
        load_csv(p, "x", "y", label_column=3)

    p.write_text("1,2,0\n3,four,1\n")
    with pytest.raises(NNError) as e:
        load_csv(p, "x", "y")
    assert "line 2, column 2: 'four' is not a number" in str(e.value)
    assert "d.csv:2:1" in str(e.value) and "3,four,1" in str(e.value)  # points at the line

    p.write_text("1,2,0\n3,4,1.5\n")
    with pytest.raises(NNError, match="label 1.5 is not an integer"):
        load_csv(p, "x", "y")
    p.write_text("1,2,0\n3,4\n")
    with pytest.raises(NNError, match="line 2 has 2 columns"):
        load_csv(p, "x", "y")
    p.write_text("a,b,c\n")
    with pytest.raises(NNError, match="no data"):
        load_csv(p, "x", "y")


def test_csv_values_that_overflow_float32(tmp_path: Path):
    """Regression: values that overflow float32 were not reported."""
    csv = tmp_path / "o.csv"
    csv.write_text("1,3e39,0\n")
    with pytest.raises(ng.NNError) as info:
        load_csv(csv, ["x"], ["y"])
    assert "overflows float32" in info.value.message and info.value.span.line == 1


def test_csv_with_semicolons_says_only_commas(tmp_path: Path):
    """Regression: a file separated by ';' got no hint."""
    csv = tmp_path / "s.csv"
    csv.write_text("1;2;0\n3;4;1\n")
    with pytest.raises(ng.NNError) as info:
        load_csv(csv, ["x"], ["y"])
    assert "1 column" in info.value.message and info.value.hint == "only commas separate columns"


def test_csv_regression_targets_are_read_as_numbers(tmp_path: Path):
    """Regression: float targets were not read as numbers (mse on a CSV failed)."""
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


def test_eval_reads_a_float_target_from_csv_as_training_did(tmp_path, capsys):
    """Regression: eval did not read a float CSV target as training did."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    rows = ["a,b,c,t"] + [f"{a:.4f},{b:.4f},{c:.4f},{a - 2 * b:.4f}" for a, b, c in x]
    (tmp_path / "reg.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "r.nn").write_text(
        "model R {\n    input x: f32[batch, 3]\n    output y = x | dense(1) | reshape([batch])\n}\n"
        f'train R {{\n    data = csv("{tmp_path / "reg.csv"}")\n    target t: f32[batch]\n'
        "    loss = mse(y, t)\n    optimizer = adam(lr=0.05)\n    epochs = 3\n    metrics = [mae]\n}\n"
    )
    assert run_cli(capsys, "train", tmp_path / "r.nn", "--out", tmp_path / "o", "--quiet")[0] == 0
    rc, out, err = run_cli(
        capsys, "eval", tmp_path / "o" / "model.onnx", "--data", tmp_path / "reg.csv", "--all"
    )
    assert rc == 0, err
    assert "samples 60" in out and "mae" in out
