"""Training numbers that used to be wrong, checked against NumPy: eval's MAE per element,
early stopping on mae and across --resume, raw gradients under clip_norm, f16 attention
masks, two top_k metrics, dropout in f64, and gradcheck on batchnorm and clip_norm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import run_cli as cli
from onnx import numpy_helper

import nngraph as ng
from nngraph.runtime.checkpoint import load_checkpoint
from nngraph.runtime.data import load_digits, load_npz
from nngraph.runtime.evaluate import evaluate_file

TINY = "model Tiny {\n    input image: f32[batch, 64]\n    output logits = image | dense(10)\n}\n"


def tiny(*lines: str, model: str = TINY) -> str:
    name = model.split()[1]
    return model + f"\ntrain {name} {{\n" + "".join(f"    {ln}\n" for ln in lines) + "}\n"


def session(model) -> ort.InferenceSession:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def run(c, feeds: dict) -> dict[str, np.ndarray]:
    """Run a compiled training model (step, grads or eval) on `feeds` plus its initial state."""
    full = {**{k: v for k, v in c.initial.items() if k in c.interface.order}, **feeds}
    outs = session(c.to_onnx()).run(None, {k: full[k] for k in c.interface.order})
    return dict(zip(c.interface.outputs, outs, strict=True))


def digits_batch(n: int = 64) -> dict[str, np.ndarray]:
    d = load_digits(flat=True)
    return {"image": d.inputs["image"][:n], "label": d.targets["label"][:n]}


# ---- 11. eval's MAE is per element, on the held-out split of the npz -------------------------

REG = "model R {\n    input x: f32[batch, 7]\n    output p = x | dense(4)\n}\n"


def regression_data(path: Path, n: int = 80) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 7)).astype(np.float32)
    w = rng.standard_normal((7, 4)).astype(np.float32)
    y = (x @ w + 0.1 * rng.standard_normal((n, 4))).astype(np.float32)
    np.savez(path, x=x, y=y)


def regression(*extra: str) -> str:
    return tiny(
        'data = npz("reg.npz")',
        "target y: f32[batch, 4]",
        "loss = mse(p, y)",
        "batch = 16",
        "metrics = [mae]",
        "validation = 0.25",
        *extra,
        model=REG,
    )


def test_eval_mae_is_per_element_on_the_held_out_split(tmp_path, monkeypatch, capsys):
    regression_data(tmp_path / "reg.npz")
    (tmp_path / "r.nn").write_text(regression("optimizer = sgd(lr=0.05)", "epochs = 1"))
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, "train", "r.nn", "--out", "o", "--quiet")
    assert rc == 0, err
    model = tmp_path / "o" / "model.onnx"
    result = evaluate_file(model, data=str(tmp_path / "reg.npz"))
    assert result["split"].startswith("held-out"), result

    # the held-out samples: the documented seeded split of the file, 20 of the 80 rows
    _, held = load_npz(tmp_path / "reg.npz", ["x"], ["y"]).split(0.25, 0)
    x, y = held.inputs["x"], held.targets["y"]
    assert result["samples"] == len(x) == 20
    pred = session(model.read_bytes()).run(None, {"x": x})[0]
    mae = float(np.mean(np.abs(pred.astype(np.float64) - y)))
    assert result["mae"] == pytest.approx(mae, rel=1e-6)
    assert result["mae"] != pytest.approx(mae * 4, rel=1e-3)  # not summed over the 4 outputs
    history = json.loads((tmp_path / "o" / "history.json").read_text())
    assert history[-1]["val_mae"] == pytest.approx(mae, rel=1e-5)  # training's mae is per element

    # every sample, and another file, are scored on everything
    everything = evaluate_file(model, data=str(tmp_path / "reg.npz"), everything=True)
    assert everything["split"] == "all" and everything["samples"] == 80
    regression_data(tmp_path / "other.npz", n=30)
    assert evaluate_file(model, data=str(tmp_path / "other.npz"))["split"] == "all"


# ---- 12. early stopping on mae: lower is better ----------------------------------------------


def test_early_stopping_on_mae_waits_while_it_improves(tmp_path, monkeypatch, capsys):
    regression_data(tmp_path / "reg.npz")
    epochs = 6
    src = regression(
        "optimizer = sgd(lr=0.02)",
        f"epochs = {epochs}",
        "early_stopping = early_stopping(metric=mae, patience=1)",
    )
    (tmp_path / "r.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, "train", "r.nn", "--out", "o", "--quiet")
    assert rc == 0, err
    maes = [row["val_mae"] for row in json.loads((tmp_path / "o" / "history.json").read_text())]
    # the rule by hand: stop after the first epoch whose val_mae is not below the best so far
    expected = epochs
    for i in range(1, epochs):
        if i < len(maes) and maes[i] >= min(maes[:i]):
            expected = i + 1
            break
    assert len(maes) == expected, maes
    assert len(maes) >= 3 and maes[1] < maes[0] and maes[2] < maes[1], maes  # it did improve, and went on


# ---- 13. early stopping's state survives --resume --------------------------------------------


def test_early_stopping_stops_at_the_same_epoch_after_resume(tmp_path, monkeypatch, capsys):
    # a large learning rate: the held-out loss bounces and stops improving after a few epochs
    src = tiny(
        "data = digits",
        "target label: i64[batch]",
        "loss = cross_entropy(logits, label)",
        "optimizer = sgd(lr=2.0, momentum=0.9)",
        "epochs = 15",
        "early_stopping = early_stopping(metric=loss, patience=2)",
    )
    (tmp_path / "f.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, "train", "f.nn", "--out", "full", "--quiet")
    assert rc == 0, err
    full = json.loads((tmp_path / "full" / "history.json").read_text())
    stop = len(full)
    assert 3 <= stop < 15, [r["val_loss"] for r in full]
    _, meta = load_checkpoint(tmp_path / "full" / "checkpoint.npz")
    es = meta["early_stopping"]
    assert set(es) >= {"best", "patience_left", "stopped"}
    assert es["stopped"] is True and es["patience_left"] == 0
    assert es["best"] == pytest.approx(min(r["val_loss"] for r in full))

    # the epoch before the stop, then resumed with the full count: it stops where the straight run did
    rc, _, err = cli(capsys, "train", "f.nn", "--out", "part", "--epochs", stop - 1, "--quiet")
    assert rc == 0, err
    _, meta = load_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert meta["early_stopping"]["stopped"] is False
    assert meta["early_stopping"]["patience_left"] == 1
    rc, _, err = cli(capsys, "train", "f.nn", "--out", "part", "--resume", "--quiet")
    assert rc == 0, err
    part = json.loads((tmp_path / "part" / "history.json").read_text())
    assert len(part) == stop
    assert [r["val_loss"] for r in part] == pytest.approx([r["val_loss"] for r in full], rel=1e-6)
    # and a further resume has nothing left to do
    rc, _, err = cli(capsys, "train", "f.nn", "--out", "part", "--resume", "--quiet")
    assert rc == 1 and "nothing left to train" in err and "early stopping" in err


# ---- 14. clip_norm belongs to the step: the grads model's gradients are raw ------------------


def test_clip_norm_leaves_the_gradients_model_raw_and_shrinks_the_step():
    lines = ["data = digits", "target label: i64[batch]", "loss = cross_entropy(logits, label)"]
    lines.append("optimizer = sgd(lr=0.1)")
    plain = ng.compile_source(tiny(*lines), "plain.nn")
    clipped = ng.compile_source(tiny(*lines, "clip_norm = 0.01"), "clip.nn")
    batch = digits_batch()

    g_plain = run(plain.training("grads"), batch)
    g_clip = run(clipped.training("grads"), batch)
    names = [k for k in g_plain if k.startswith("grad/")]
    assert names == ["grad/dense_1.weight", "grad/dense_1.bias"]
    for k in names:
        np.testing.assert_allclose(g_clip[k], g_plain[k], rtol=1e-6, atol=1e-6, err_msg=k)
    norm = float(np.sqrt(sum(np.sum(g_plain[k].astype(np.float64) ** 2) for k in names)))
    assert norm > 0.1  # far above clip_norm: clipping would show

    # the gradient by hand: softmax minus one-hot, over the batch mean
    w, b = plain.training("grads").initial["dense_1.weight"], plain.training("grads").initial["dense_1.bias"]
    x, y = batch["image"].astype(np.float64), batch["label"]
    z = x @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    np.testing.assert_allclose(g_plain["grad/dense_1.weight"], x.T @ p / len(y), atol=1e-6)

    step_feeds = {**batch, "lr": np.array(0.1, np.float32), "step": np.array(1, np.int64)}
    sp, sc = plain.training("step"), clipped.training("step")
    s_plain, s_clip = run(sp, step_feeds), run(sc, step_feeds)

    def step_norm(c, out):
        return float(
            np.sqrt(
                sum(
                    np.sum((out[f"next/{k}"].astype(np.float64) - c.initial[k]) ** 2)
                    for k in c.interface.params
                )
            )
        )

    assert step_norm(sp, s_plain) == pytest.approx(0.1 * norm, rel=1e-4)
    assert step_norm(sc, s_clip) == pytest.approx(0.1 * 0.01, rel=1e-3)  # lr * clip_norm
    # in the direction of the raw gradient
    for k in sp.interface.params:
        np.testing.assert_allclose(
            s_clip[f"next/{k}"] - sc.initial[k],
            -0.1 * g_plain[f"grad/{k}"] * (0.01 / norm),
            atol=1e-7,
            err_msg=k,
        )


# ---- 15. f16 attention with a padding mask ---------------------------------------------------


def attention_reference(x, mask, w_in, b_in, w_out, b_out, heads):
    """nn.MultiheadAttention (batch_first, self-attention) with key padding, in float64."""
    n, s, e = x.shape
    d = e // heads
    qkv = x @ w_in.T + b_in
    q, k, v = (qkv[..., i * e : (i + 1) * e].reshape(n, s, heads, d).transpose(0, 2, 1, 3) for i in range(3))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    scores = np.where(mask[:, None, None, :] > 0, scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, s, e)
    return ctx @ w_out.T + b_out


def test_f16_attention_with_a_padding_mask_is_finite_and_right():
    src = (
        "model H {\n    input x: f16[batch, 5, 8]\n    input m: f16[batch, 5]\n"
        "    output c = attention(x, m, heads=2)\n}\n"
    )
    model = ng.compile_source(src, "h.nn").onnx
    w = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    weights = [
        w[f"attention_1.{n}"] for n in ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")
    ]
    sess = session(model)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 8)).astype(np.float16)
    ones = np.ones((3, 5), np.float16)
    some = ones.copy()
    some[1, 3:] = 0
    some[2, 0] = 0
    for mask in (ones, some):
        (c,) = sess.run(None, {"x": x, "m": mask})
        assert c.dtype == np.float16 and c.shape == (3, 5, 8)
        assert np.isfinite(c).all(), mask
        ref = attention_reference(x.astype(np.float64), mask, *weights, heads=2)
        np.testing.assert_allclose(c.astype(np.float64), ref, atol=1e-2, rtol=1e-2)

    # the same model in f32 on the same weights, all keys kept
    f32 = ng.compile_source(src.replace("f16", "f32"), "h32.nn").onnx
    for init in f32.graph.initializer:
        if init.name.startswith("attention_1."):
            init.CopyFrom(numpy_helper.from_array(w[init.name].astype(np.float32), init.name))
    (c32,) = session(f32).run(None, {"x": x.astype(np.float32), "m": ones.astype(np.float32)})
    (c16,) = sess.run(None, {"x": x, "m": ones})
    np.testing.assert_allclose(c16.astype(np.float32), c32, atol=1e-2, rtol=1e-2)


# ---- 16. two top_k_accuracy metrics ----------------------------------------------------------


def test_two_top_k_metrics_get_their_own_outputs():
    src = tiny(
        "data = digits",
        "target label: i64[batch]",
        "loss = cross_entropy(logits, label)",
        "optimizer = sgd(lr=0.1)",
        "metrics = [accuracy, top_k_accuracy(k=2), top_k_accuracy(k=3)]",
    )
    c = ng.compile_source(src, "t.nn").training("step")
    assert c.interface.outputs[:4] == ["loss", "accuracy", "top_2_accuracy", "top_3_accuracy"]
    batch = digits_batch(200)
    out = run(c, {**batch, "lr": np.array(0.1, np.float32), "step": np.array(1, np.int64)})

    x, y = batch["image"].astype(np.float64), batch["label"]
    z = x @ c.initial["dense_1.weight"] + c.initial["dense_1.bias"]  # the logits before the step
    rank = (z > z[np.arange(len(y)), y][:, None]).sum(1)  # how many logits beat the label's
    want = {
        "accuracy": np.mean(rank < 1),
        "top_2_accuracy": np.mean(rank < 2),
        "top_3_accuracy": np.mean(rank < 3),
    }
    assert len(set(want.values())) == 3, want  # the three differ on this batch
    for k, v in want.items():
        assert float(out[k]) == pytest.approx(v, abs=1e-6), k


# ---- 17. dropout in f64 ----------------------------------------------------------------------


def test_dropout_model_in_f64_trains_from_the_cli(tmp_path, capsys):
    model = (
        "model D {\n    input image: f64[batch, 64]\n"
        "    output logits = image | dense(16) | relu | dropout(0.1) | dense(10)\n}\n"
    )
    src = tiny(
        "data = digits",
        "target label: i64[batch]",
        "loss = cross_entropy(logits, label)",
        "metrics = [accuracy]",
        "epochs = 3",
        model=model,
    )
    (tmp_path / "d.nn").write_text(src)
    rc, out, err = cli(
        capsys, "train", tmp_path / "d.nn", "--out", tmp_path / "o", "--epochs", "1", "--quiet"
    )
    assert rc == 0, err
    assert "trained D:" in out
    history = json.loads((tmp_path / "o" / "history.json").read_text())
    assert len(history) == 1 and np.isfinite(history[0]["loss"])
    arrays, _ = load_checkpoint(tmp_path / "o" / "checkpoint.npz")
    assert arrays["dense_1.weight"].dtype == np.float64


# ---- 18. gradcheck -------------------------------------------------------------------------

GC_LINES = ["data = digits", "target label: i64[batch]", "loss = cross_entropy(logits, label)"]


def test_gradcheck_passes_on_a_dense_before_batchnorm(tmp_path, capsys):
    model = (
        "model G {\n    input image: f32[batch, 64]\n"
        "    output logits = image | dense(8) | batchnorm | relu | dense(10)\n}\n"
    )
    (tmp_path / "g.nn").write_text(tiny(*GC_LINES, model=model))
    rc, out, err = cli(capsys, "gradcheck", tmp_path / "g.nn")
    assert "batchnorm_1.scale" in out
    assert rc == 0 and "ok:" in out, out + err


def test_gradcheck_passes_with_clip_norm(tmp_path, capsys):
    model = (
        "model G {\n    input image: f32[batch, 64]\n"
        "    output logits = image | dense(8) | relu | dense(10)\n}\n"
    )
    (tmp_path / "g.nn").write_text(tiny(*GC_LINES, "clip_norm = 0.01", model=model))
    rc, out, err = cli(capsys, "gradcheck", tmp_path / "g.nn")
    assert rc == 0, out + err
    assert "ok: worst relative error vs finite differences" in out
    assert "dense_2.bias" in out and "FAILED" not in out


def test_a_shared_batchnorm_updates_its_statistics_once_per_application():
    """bn applied to a and then to b: running = blend(blend(running, stats(a)), stats(b)), as PyTorch."""
    src = (
        "model S {\n    input x: f32[batch, 4]\n    bn = batchnorm(momentum=0.1)\n"
        "    a = x | bn\n    b = (x * 2) | bn\n    output y = (a + b) | dense(3)\n}\n"
        "train S {\n    data = digits\n    target label: i64[batch]\n"
        "    loss = cross_entropy(y, label)\n    optimizer = sgd(lr=0.1)\n}\n"
    )
    c = ng.compile_source(src, "s.nn").training("grads")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    feeds = {"x": x, "label": rng.integers(0, 3, 16)}
    feeds.update({p: c.initial[p] for p in c.interface.params + c.interface.buffers})
    sess = session(c.to_onnx())
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()}), strict=True))
    m0, v0 = c.initial["bn.running_mean"], c.initial["bn.running_var"]
    mean1 = 0.9 * m0 + 0.1 * x.mean(0)
    var1 = 0.9 * v0 + 0.1 * x.var(0, ddof=1)
    mean2 = 0.9 * mean1 + 0.1 * (2 * x).mean(0)
    var2 = 0.9 * var1 + 0.1 * (2 * x).var(0, ddof=1)
    np.testing.assert_allclose(out["next/bn.running_mean"], mean2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["next/bn.running_var"], var2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [{"epochs": 0}, {"empty": True}])
def test_fit_refuses_zero_epochs_and_no_samples(kw):
    tr = ng.compile_source(
        tiny("data = digits", "target label: i64[batch]", "loss = cross_entropy(logits, label)")
    ).trainer(progress=False)
    with pytest.raises(ng.NNError) as info:
        if kw.get("empty"):
            tr.fit(np.zeros((0, 64), np.float32), np.zeros(0, np.int64), epochs=1)
        else:
            tr.fit(epochs=kw["epochs"])
    assert ("epochs must be" in info.value.message) or ("no samples" in info.value.message)
    assert tr.step == 0


def test_adam_in_float16_survives_a_zero_gradient(tmp_path: Path):
    """eps=1e-8 is 0 in float16; kept at float16's smallest step, 0/0 cannot happen (bias before batchnorm)."""
    rng = np.random.default_rng(0)
    data = tmp_path / "h.npz"
    np.savez(data, x=rng.standard_normal((64, 8)).astype(np.float16), label=rng.integers(0, 3, 64))
    src = (
        "model H {\n    input x: f16[batch, 8]\n    output y = x | dense(4) | batchnorm | relu | dense(3)\n}\n"
        f'train H {{\n    data = npz("{data}")\n    target label: i64[batch]\n'
        "    loss = cross_entropy(y, label)\n    optimizer = adam(lr=1e-3)\n    epochs = 3\n}\n"
    )
    result = ng.compile_source(src, str(tmp_path / "h.nn")).trainer(progress=False).fit()
    assert all(np.isfinite(row["loss"]) and np.isfinite(row["val_loss"]) for row in result.history)
    assert result.steps >= 6


def test_a_diverging_run_names_only_a_checkpoint_it_wrote(tmp_path: Path, capsys):
    src = tiny(
        "data = digits",
        "target label: i64[batch]",
        "loss = cross_entropy(logits, label)",
        "optimizer = sgd(lr=1e38)",
    )
    (tmp_path / "nan.nn").write_text(src)
    rc, _, err = cli(capsys, "train", tmp_path / "nan.nn", "--out", tmp_path / "out", "--quiet")
    assert rc == 1 and "the loss became" in err
    assert "no checkpoint was written yet" in err and not (tmp_path / "out" / "checkpoint.npz").exists()


BN_MODEL = "model M {\n    input x: f32[batch, 4]\n    output logits = x | dense(8) | batchnorm | relu | dense(3)\n}\n"


def _bn_train(batch: int, validation: float = 0.2) -> str:
    return BN_MODEL + (
        "train M {\n    data = digits\n    target lab: i64[batch]\n    loss = cross_entropy(logits, lab)\n"
        f"    optimizer = sgd(lr=0.1)\n    batch = {batch}\n    epochs = 2\n    validation = {validation}\n"
        "    metrics = [accuracy]\n}\n"
    )


def test_a_last_batch_of_one_does_not_poison_batchnorm():
    """17 training samples in batches of 8 leave one: it is skipped, and the running variance stays finite."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(21, 4)).astype(np.float32), rng.integers(0, 3, 21)
    tr = ng.compile_source(_bn_train(8)).trainer(progress=False)
    result = tr.fit(x, y)
    assert result.steps == 4  # 2 epochs x 2 full batches
    assert np.isfinite(tr.stepper.state()["batchnorm_1.running_var"]).all()
    assert all(np.isfinite(row["val_loss"]) for row in result.history)
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(_bn_train(1)).trainer(progress=False).fit(x, y)
    assert "at least 2 samples per batch" in info.value.message


def test_training_metrics_are_reported():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    result = ng.compile_source(_bn_train(8, validation=0)).trainer(progress=False).fit(x, y)
    assert all(0 <= row["accuracy"] <= 1 for row in result.history)
    assert result.metrics == {"accuracy": result.history[-1]["accuracy"]} and result.metrics_on == "training"


@pytest.mark.parametrize(
    "line, says",
    [
        ("optimizer = sgd(lr=0.1, nesterov=true)", "needs a momentum"),
        ("clip_norm = 0", "clip_norm must be > 0"),
    ],
)
def test_settings_pytorch_refuses(line, says):
    src = tiny("data = digits", "target label: i64[batch]", "loss = cross_entropy(logits, label)", line)
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(src, "t.nn").train_spec()
    assert says in info.value.message


def test_a_held_layer_takes_the_piped_tensor_first():
    src = (
        "model M {\n    input x: f32[batch, 2]\n    input y: f32[batch, 2]\n    s = sub(y)\n"
        "    output d1 = x | sub(y)\n    output d2 = x | s\n}\n"
    )
    sess = session(ng.compile_source(src).onnx)
    x, y = np.array([[1.0, 2.0]], np.float32), np.array([[10.0, 20.0]], np.float32)
    d1, d2 = sess.run(None, {"x": x, "y": y})
    np.testing.assert_array_equal(d1, x - y)
    np.testing.assert_array_equal(d2, x - y)


@pytest.mark.parametrize(
    "init, bound", [("he_uniform", np.sqrt(6 / 64)), ("xavier_uniform", np.sqrt(6 / (64 + 64)))]
)
def test_recurrent_input_weights_use_their_own_fan_in(init, bound):
    m = ng.compile_source(
        f"model M {{\n    input x: f32[batch, 5, 64]\n    output y = x | lstm(16, init={init})\n}}\n"
    )
    w = m.graph.node("lstm_1.weight_ih_l0")["value"]
    assert w.shape == (64, 64)
    assert 0.9 * bound < np.abs(w).max() <= bound


@pytest.mark.parametrize("decl", ["input lr: f32[batch, 64]", "input step: f32[batch, 64]"])
def test_inputs_named_like_the_step_models_own(decl):
    name = decl.split()[1].rstrip(":")
    src = f"model T {{\n    {decl}\n    output logits = {name} | dense(10)\n}}\n" + (
        "train T {\n    data = digits\n    target label: i64[batch]\n    loss = cross_entropy(logits, label)\n}\n"
    )
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(src, "t.nn").training("step")
    assert f"'{name}' is a name the training models use" in info.value.message and info.value.span.line == 2


def test_output_of_a_bound_name_is_its_final_value():
    src = "model M {\n    input x: f32[batch, 4]\n    h = x | relu\n    output h\n    h = h * 10\n}\n"
    (out,) = session(ng.compile_source(src).onnx).run(None, {"x": np.array([[1, -2, 3, 4]], np.float32)})
    np.testing.assert_array_equal(out, [[10, 0, 30, 40]])


def test_gradcheck_passes_through_a_cast(tmp_path: Path, capsys):
    f = tmp_path / "gc.nn"
    f.write_text(
        "model C {\n    input image: f32[batch, 64]\n    output logits = image | dense(16) | cast(to=f32) | relu"
        " | dense(10)\n}\n" + "\n".join(["train C {", *GC_LINES, "}"]) + "\n"
    )
    rc, out, _ = cli(capsys, "gradcheck", f)
    assert rc == 0 and "ok:" in out


def test_outputs_named_like_internal_constants():
    src = (
        "model M {\n    input x: f32[batch, 4]\n    output const = x * 2\n    output const_2 = x * 3 + 1\n}\n"
    )
    x = np.array([[1.0, -2.0, 3.0, 0.5]], np.float32)
    for level in (0, 2):
        a, b = session(ng.compile_source(src).to_onnx(level)).run(None, {"x": x})
        np.testing.assert_allclose(a, x * 2)
        np.testing.assert_allclose(b, x * 3 + 1)
