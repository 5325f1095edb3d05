"""gradcheck, the command: it passes on correct gradients (the digits CNN, a dense before
batchnorm, clip_norm, a cast between float types)."""

from __future__ import annotations

from pathlib import Path

from conftest import ROOT, nngraph, run_cli, tiny

CNN = ROOT / "examples" / "digits_cnn.nn"


def test_gradients_model_and_gradcheck():
    r = nngraph("gradcheck", str(CNN), "--batch", "4", "--per-param", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: worst relative error vs finite differences" in r.stdout
    assert "residual_1/conv2d_1.weight" in r.stdout


GC_LINES = ["data = digits", "target label: i64[batch]", "loss = cross_entropy(logits, label)"]


def test_gradcheck_passes_on_a_dense_before_batchnorm(tmp_path, capsys):
    """Regression: a bias before batchnorm (a gradient near 0) was reported FAILED."""
    model = (
        "model G {\n    input image: f32[batch, 64]\n"
        "    output logits = image | dense(8) | batchnorm | relu | dense(10)\n}\n"
    )
    (tmp_path / "g.nn").write_text(tiny(*GC_LINES, model=model))
    rc, out, err = run_cli(capsys, "gradcheck", tmp_path / "g.nn")
    assert "batchnorm_1.scale" in out
    assert rc == 0 and "ok:" in out, out + err


def test_gradcheck_passes_with_clip_norm(tmp_path, capsys):
    """Regression: gradcheck did not pass with clip_norm set."""
    model = (
        "model G {\n    input image: f32[batch, 64]\n"
        "    output logits = image | dense(8) | relu | dense(10)\n}\n"
    )
    (tmp_path / "g.nn").write_text(tiny(*GC_LINES, "clip_norm = 0.01", model=model))
    rc, out, err = run_cli(capsys, "gradcheck", tmp_path / "g.nn")
    assert rc == 0, out + err
    assert "ok: worst relative error vs finite differences" in out
    assert "dense_2.bias" in out and "FAILED" not in out


def test_gradcheck_passes_through_a_cast(tmp_path: Path, capsys):
    """Regression: a no-op cast(to=f32) made gradcheck report FAILED on correct gradients."""
    f = tmp_path / "gc.nn"
    f.write_text(
        "model C {\n    input image: f32[batch, 64]\n    output logits = image | dense(16) | cast(to=f32) | relu"
        " | dense(10)\n}\n" + "\n".join(["train C {", *GC_LINES, "}"]) + "\n"
    )
    rc, out, _ = run_cli(capsys, "gradcheck", f)
    assert rc == 0 and "ok:" in out
