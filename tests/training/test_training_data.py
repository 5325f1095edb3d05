"""Data meets the training model: shapes, a static batch dim, samples along another dim,
non-finite values and ids outside an embedding, each refused before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DIGITS_TRAIN, ROOT, TINY, nngraph, run_cli, small_run

import nngraph as ng

MLP = ROOT / "examples" / "digits_mlp.nn"


def test_data_mismatch_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "d.npz", image=np.zeros((10, 8, 8), np.float32), label=np.zeros(10, np.int64))
    src = MLP.read_text().replace("data      = digits", 'data      = npz("d.npz")')
    (tmp_path / "m.nn").write_text(src)
    r = nngraph("train", str(tmp_path / "m.nn"), "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "image" in r.stderr and "f32[batch, 64]" in r.stderr.replace("f32[batch,64]", "f32[batch, 64]")


def test_a_static_batch_dim_in_training_data_is_refused():
    """Batches vary in size (the last one is smaller): a model fixed to 4 samples cannot train.

    Regression: training data took a static batch dim."""
    from nngraph.errors import NNError

    src = """
model M {
    input image: f32[4, 64]
    output y = image | dense(10)
}
train M {
    data = digits
    target label: i64[4]
    loss = cross_entropy(y, label)
    optimizer = sgd(lr=0.1)
}
"""
    with pytest.raises(NNError) as e:
        ng.compile_source(src).trainer().dataset()
    assert "input 'image' is f32[4, 64]" in str(e.value) and "f32[batch, 64]" in str(e.value)


def test_non_finite_data_is_reported_before_training(tmp_path: Path):
    """Regression: NaN or inf in the data was not reported before training."""
    data = tmp_path / "n.npz"
    x = np.ones((8, 64), np.float32)
    x[5, 7] = np.nan
    np.savez(data, image=x, label=np.zeros(8, np.int64))
    src = TINY + DIGITS_TRAIN.replace("data = digits", f'data = npz("{data}")') + "}\n"
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(src, str(tmp_path / "t.nn")).trainer(progress=False).fit()
    assert "holds nan at sample 5" in info.value.message and "[5, 7]" in info.value.message


def test_an_input_with_samples_along_another_dim_says_how_to_declare_it(tmp_path, capsys):
    """Initial states are [layers, batch, hidden] as in PyTorch; training data holds samples first.

    Regression: such an input did not say how to declare it."""
    rng = np.random.default_rng(0)
    body = (
        "model M {\n    input x: f32[batch, 5, 3]\n    input h0: f32[1, batch, 4]\n"
        "    output y = gru(x, h0, hidden=4, return_sequences=false)\n}\n"
        "train M {\n    data = DATA\n    target t: f32[batch, 4]\n    loss = mse(y, t)\n    optimizer = sgd(lr=0.1)\n    batch = 8\n}\n"
    )
    data = {
        "x": rng.random((16, 5, 3), np.float32),
        "h0": rng.random((16, 1, 4), np.float32),
        "t": rng.random((16, 4), np.float32),
    }
    path = small_run(tmp_path, body, data)
    for cmd in (["check", path], ["train", path, "--out", tmp_path / "o"]):
        rc, _, err = run_cli(capsys, *cmd)
        assert rc == 1 and "has them along dim 1 ('batch')" in err, err
        assert "declare it as f32[batch, 1, 4]" in err and "h0 | transpose([1, 0, 2])" in err
    fixed = body.replace("input h0: f32[1, batch, 4]", "input h0: f32[batch, 1, 4]").replace(
        "gru(x, h0,", "gru(x, h0 | transpose([1, 0, 2]),"
    )
    path = small_run(tmp_path, fixed, data)
    rc, _, err = run_cli(capsys, "train", path, "--out", tmp_path / "o2", "--quiet")
    assert rc == 0, err


def test_training_with_ids_outside_the_embedding_fails_before_training(tmp_path, monkeypatch, capsys):
    """Regression: ids outside the embedding were not caught before training."""
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
    rc, out, err = run_cli(capsys, "train", "e.nn", "--out", "o", "--quiet")
    assert rc == 1 and "Traceback" not in err and "trained" not in out
    assert "error: ids of 'ids' range over 0..19" in err, err
    assert "num=20" in err.split("hint:")[1]
    assert not (tmp_path / "o" / "checkpoint.npz").exists()
