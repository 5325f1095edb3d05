"""Arguments of the commands: a bad --seed, --random or --tol is a usage error (exit 2); an
unknown --model lists the file's models."""

from __future__ import annotations

from conftest import ROOT, TINY, nngraph, run_cli

import nngraph as ng


def test_negative_seed_on_the_command_line_is_a_usage_error(tmp_path):
    """Regression: a negative --seed was not a usage error."""
    (tmp_path / "f.nn").write_text(TINY)
    r = nngraph("check", "f.nn", "--seed", "-1", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "must be 0 or more" in r.stderr and "--seed" in r.stderr
    assert "Traceback" not in r.stderr


def test_random_batch_zero_is_a_usage_error(tmp_path):
    """Regression: --random 0 was not a usage error."""
    m = tmp_path / "m.onnx"
    ng.compile_source(TINY, "m.nn").save(m)
    r = nngraph("run", m, "--random", "0")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "must be 1 or more" in r.stderr and "--random" in r.stderr
    assert "Traceback" not in r.stderr


def test_gradcheck_tolerance_must_be_a_positive_number(capsys):
    """Regression: gradcheck took a --tol that is not a positive number."""
    for bad in ("-1", "nan", "0", "x"):
        rc, _, err = run_cli(capsys, "gradcheck", ROOT / "examples" / "digits_mlp.nn", "--tol", bad)
        assert rc == 2 and "--tol" in err, bad


def test_an_unknown_model_lists_the_files_models(capsys):
    """Regression: --model of an unknown name did not list the file's models."""
    rc, _, err = run_cli(capsys, "compile", ROOT / "examples" / "digits_mlp.nn", "--model", "Nope")
    assert rc == 1 and "no model named 'Nope'" in err and "one of: DigitsMLP" in err
