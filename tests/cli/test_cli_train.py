"""nngraph train: --seed in either spelling, an --out it cannot write, and the file's one trained
model picked without --model."""

from __future__ import annotations

import json

from conftest import OK_LINES, ROOT, run_cli, tiny

from nngraph.runtime.checkpoint import load_checkpoint

MLP = ROOT / "examples" / "digits_mlp.nn"


def test_seed_given_as_seed_equals_n_seeds_the_run(tmp_path, capsys):
    """Regression: train --seed=5 (and abbreviations) seeded nothing."""
    runs = {}
    for form in (["--seed", "5"], ["--seed=5"], []):
        out = tmp_path / ("_".join(form) or "none")
        rc, text, err = run_cli(
            capsys, "train", MLP, "--epochs", "1", "--out", out, "--json", "--quiet", *form
        )
        assert rc == 0, err
        runs[tuple(form)] = (
            json.loads(text.strip().splitlines()[-1])["final_loss"],
            load_checkpoint(out / "checkpoint.npz")[1]["seed"],
        )
    assert runs[("--seed=5",)] == runs[("--seed", "5")]
    assert runs[("--seed=5",)][1] == 5 and runs[()][1] == 0 and runs[()][0] != runs[("--seed", "5")][0]


def test_unwritable_out_fails_before_training(tmp_path, monkeypatch, capsys):
    """Regression: an --out that cannot be written was found only after training."""
    from nngraph.training.trainer import Trainer

    def no_fit(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(Trainer, "fit", no_fit)
    (tmp_path / "f.nn").write_text(tiny(*OK_LINES))
    rc, out, err = run_cli(capsys, "train", tmp_path / "f.nn", "--out", "/proc/nonexistent/x", "--quiet")
    assert rc == 1 and err.startswith("error: cannot write into --out /proc/nonexistent/x")
    assert "trained" not in out


def test_train_picks_the_only_model_with_a_train_section(tmp_path, monkeypatch, capsys):
    """Regression: train did not pick the file's one trained model without --model."""
    src = (
        "model A {\n    input image: f32[batch, 64]\n    output logits = image | dense(10)\n}\n"
        "model B {\n    input image: f32[batch, 64]\n    output logits = image | dense(12) | relu | dense(10)\n}\n"
        "train B {\n    data = digits\n    target label: i64[batch]\n"
        "    loss = cross_entropy(logits, label)\n    epochs = 1\n}\n"
    )
    (tmp_path / "two.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "train", "two.nn", "--out", "o", "--quiet")
    assert rc == 0, err
    assert "trained B:" in out
    from nngraph.runtime.checkpoint import load_checkpoint

    arrays, meta = load_checkpoint(tmp_path / "o" / "checkpoint.npz")
    assert meta["model"] == "B" and arrays["dense_1.weight"].shape == (64, 12)
