"""Training end to end: the CLI, resume bit for bit, the NaN guard, the Python API,
and the training-step model run by bare onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import nngraph as ng
from nngraph.runtime.checkpoint import load_checkpoint

MLP = ROOT / "examples" / "digits_mlp.nn"
CNN = ROOT / "examples" / "digits_cnn.nn"


def nngraph(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "nngraph.cli", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize("example,target", [(MLP, 0.97), (CNN, 0.98)], ids=["mlp", "cnn"])
def test_train_reaches_held_out_accuracy(example, target, tmp_path):
    r = nngraph("train", str(example), "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"final_loss", "metrics", "steps", "seconds", "samples_per_second", "model"} <= set(result)
    assert result["metrics"]["accuracy"] >= target, result
    assert result["seconds"] < 60
    for name in ("model.onnx", "checkpoint.npz", "history.json"):
        assert (tmp_path / name).is_file()
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == result["epochs"] and history[-1]["val_accuracy"] == pytest.approx(
        result["metrics"]["accuracy"]
    )
    # the written inference model scores the same on the same held-out split
    r = nngraph("eval", str(tmp_path / "model.onnx"), "--data", "digits", "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["split"].startswith("held-out") and ev["accuracy"] == pytest.approx(
        result["metrics"]["accuracy"], abs=1e-6
    )


def test_resume_is_bit_exact(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert nngraph("train", str(CNN), "--out", str(full), "--epochs", "2", "--quiet").returncode == 0
    assert nngraph("train", str(CNN), "--out", str(part), "--epochs", "1", "--quiet").returncode == 0
    r = nngraph("train", str(CNN), "--out", str(part), "--epochs", "2", "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    a, ma = load_checkpoint(full / "checkpoint.npz")
    b, mb = load_checkpoint(part / "checkpoint.npz")
    assert ma["step"] == mb["step"] and ma["epoch"] == mb["epoch"] == 2
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_nan_loss_stops_with_the_step_named_and_keeps_the_last_checkpoint(tmp_path):
    src = MLP.read_text().replace("sgd(lr=0.05, momentum=0.9)", "sgd(lr=1e6, momentum=0.9)")
    bad = tmp_path / "bad.nn"
    bad.write_text(src)
    r = nngraph("train", str(bad), "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "the loss became nan at step" in r.stderr or "the loss became inf at step" in r.stderr
    assert "clip_norm" in r.stderr


def test_fit_from_python_with_arrays():
    from nngraph.runtime.data import load_digits

    d = load_digits(flat=True)
    m = ng.compile_file(MLP)
    result = m.trainer().fit(d.inputs["image"], d.targets["label"], epochs=3)
    train, _ = d.split(0.2, 0)  # the section's validation fraction and seed
    assert result.steps == 3 * int(np.ceil(len(train) / 32))
    assert result.metrics["accuracy"] > 0.85
    assert result.history[0]["loss"] > result.history[-1]["loss"]


def test_data_mismatch_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "d.npz", image=np.zeros((10, 8, 8), np.float32), label=np.zeros(10, np.int64))
    src = MLP.read_text().replace("data      = digits", 'data      = npz("d.npz")')
    (tmp_path / "m.nn").write_text(src)
    r = nngraph("train", str(tmp_path / "m.nn"), "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "image" in r.stderr and "f32[batch, 64]" in r.stderr.replace("f32[batch,64]", "f32[batch, 64]")


def test_compile_train_and_bare_onnxruntime_example(tmp_path):
    step = tmp_path / "step.onnx"
    r = nngraph("compile", str(MLP), "--train", "-o", str(step))
    assert r.returncode == 0, r.stderr
    example = ROOT / "examples" / "train_with_onnxruntime.py"
    assert (
        len([ln for ln in example.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")])
        <= 30
    )
    r = subprocess.run(
        [
            sys.executable,
            str(example),
            str(step),
            str(step.with_suffix(".npz")),
            str(ROOT / "nngraph" / "data" / "digits.npz"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["nngraph_imported"] is False
    assert last["loss"] < 0.5


def test_gradients_model_and_gradcheck():
    r = nngraph("gradcheck", str(CNN), "--batch", "4", "--per-param", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: worst relative error vs finite differences" in r.stdout
    assert "residual_1/conv2d_1.weight" in r.stdout


def test_step_model_interface_names_are_documented():
    c = ng.compile_file(CNN).training("step")
    i = c.interface
    assert i.order[:4] == ["image", "label", "lr", "step"]
    assert "residual_1/batchnorm_1.running_mean" in i.buffers and i.slots == ["optimizer.m", "optimizer.v"]
    n = sum(int(np.prod(c.initial[p].shape)) for p in i.params)
    assert c.initial["optimizer.m"].shape == (n,)
    assert i.outputs[:2] == ["loss", "accuracy"] and "next/dense_1.weight" in i.outputs
    readme = (ROOT / "README.md").read_text()
    for name in ("`lr`", "`step`", "`next/", "`grad/", "nngraph_training"):
        assert name in readme, name


def test_stepper_leaves_the_initial_arrays_alone():
    from nngraph.runtime.stepper import Stepper

    c = ng.compile_file(MLP).training("step")
    before = {k: v.copy() for k, v in c.initial.items()}
    st = Stepper(c.to_onnx().SerializeToString(), c.initial)
    rng = np.random.default_rng(0)
    for i in (1, 2, 3):
        feeds = {
            "image": rng.random((4, 64), dtype=np.float32),
            "label": rng.integers(0, 10, 4),
            "lr": np.array(0.1, np.float32),
            "step": np.array(i),
        }
        feeds.update({k: rng.random((4, 128), dtype=np.float32) for k in c.interface.noise})
        st.run(feeds)
    assert all(np.array_equal(before[k], c.initial[k]) for k in before)
    assert not np.array_equal(st.state()["dense_1.weight"], before["dense_1.weight"])


def test_stepper_gradients_model_keeps_its_parameters_between_calls():
    """A gradients model advances only its buffers: every call sees the initial parameters, so
    the same batch gives the same loss and gradients, call after call."""
    from nngraph.runtime.stepper import Stepper

    c = ng.compile_file(ROOT / "examples" / "digits_cnn.nn").training("grads")
    st = Stepper(c.to_onnx(2).SerializeToString(), c.initial)
    rng = np.random.default_rng(0)
    feeds = {"image": rng.random((8, 1, 8, 8), dtype=np.float32), "label": rng.integers(0, 10, 8)}
    for name, (_, shape) in c.interface.noise.items():
        feeds[name] = rng.random([8 if isinstance(d, str) else d for d in shape], dtype=np.float32)
    first = st.run(feeds)
    assert any(k.startswith("grad/") for k in first)
    for _ in range(2):
        again = st.run(feeds)
        for k in first:  # batchnorm's running statistics advance, but they do not feed the loss
            np.testing.assert_allclose(again[k], first[k], rtol=1e-6, atol=1e-7, err_msg=k)
    state = st.state()
    for p in c.interface.params:
        np.testing.assert_array_equal(state[p], c.initial[p])


def test_stepper_results_are_not_overwritten_by_later_steps():
    from nngraph.runtime.stepper import Stepper

    c = ng.compile_file(ROOT / "examples" / "digits_mlp.nn").training("step")
    st = Stepper(c.to_onnx(2).SerializeToString(), c.initial)
    rng = np.random.default_rng(0)

    def feeds(i):
        f = {
            "image": rng.random((8, 64), dtype=np.float32),
            "label": rng.integers(0, 10, 8),
            "lr": np.array(0.1, np.float32),
            "step": np.array(i),
        }
        for name, (_, shape) in c.interface.noise.items():
            f[name] = rng.random([8 if isinstance(d, str) else d for d in shape], dtype=np.float32)
        return f

    results, kept = [], []
    for i in range(1, 6):
        results.append(st.run(feeds(i)))
        kept.append({k: v.copy() for k, v in results[-1].items()})  # as returned, before the next step
    for r, k in zip(results, kept, strict=True):
        assert all(np.array_equal(r[n], k[n]) for n in r)
    assert len({float(r["loss"]) for r in results}) == 5  # five different batches, five losses


# ---- the CUDA path: the same steps as on the CPU ----------------------------------------------


def _digits_cnn_steps(device: str, steps: int = 20) -> tuple[list[float], dict[str, np.ndarray]]:
    """`steps` Adam steps of the digits CNN on real digits batches of 64, with fixed dropout noise:
    the loss of each step and the final state."""
    from nngraph.runtime.data import load_digits
    from nngraph.runtime.stepper import Stepper

    c = ng.compile_file(CNN).training("step")
    st = Stepper(c.to_onnx(2).SerializeToString(), c.initial, device=device)
    data = load_digits()
    rng = np.random.default_rng(0)
    losses = []
    for i in range(steps):
        idx = rng.choice(len(data.targets["label"]), 64, replace=False)
        feeds = {
            "image": data.inputs["image"][idx],
            "label": data.targets["label"][idx],
            "lr": np.array(1e-3, np.float32),
            "step": np.array(i + 1),
        }
        for name, (_, shape) in c.interface.noise.items():
            feeds[name] = rng.random([64 if isinstance(d, str) else d for d in shape], dtype=np.float32)
        losses.append(float(st.run(feeds)["loss"]))
    return losses, st.state()


def test_twenty_cpu_steps_repeat_bit_for_bit():
    (a, sa), (b, sb) = _digits_cnn_steps("cpu"), _digits_cnn_steps("cpu")
    assert a == b and a[-1] < a[0]
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_twenty_cuda_steps_match_the_cpu():
    """Issue #7: on a GPU the digits CNN gives the CPU's losses to 1e-4 over 20 steps, with its
    parameters and optimizer state kept on the device between steps."""
    from nngraph.runtime.session import available_devices

    if "cuda" not in available_devices():
        pytest.skip("needs onnxruntime with a CUDA provider")
    try:
        gpu, gpu_state = _digits_cnn_steps("cuda")
    except ng.NNError as e:
        pytest.skip(f"CUDA provider does not start here: {e.message}")
    cpu, cpu_state = _digits_cnn_steps("cpu")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)
    for k in cpu_state:
        np.testing.assert_allclose(gpu_state[k], cpu_state[k], rtol=1e-3, atol=1e-4, err_msg=k)


def test_trainer_on_cuda_says_it_ran_there():
    from nngraph.runtime.session import available_devices

    if "cuda" not in available_devices():
        pytest.skip("needs onnxruntime with a CUDA provider")
    try:
        trainer = ng.compile_file(MLP).trainer(device="cuda")
    except ng.NNError as e:
        pytest.skip(f"CUDA provider does not start here: {e.message}")
    result = trainer.fit(epochs=2)
    assert result.device == "cuda" and result.metrics["accuracy"] > 0.5
