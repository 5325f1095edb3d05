"""The Stepper runs training models: it leaves the initial arrays alone, keeps what it returned,
repeats bit for bit, matches the CPU on CUDA, and reports failed runs as NNErrors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

import nngraph as ng
from nngraph.errors import NNError

MLP = ROOT / "examples" / "digits_mlp.nn"
CNN = ROOT / "examples" / "digits_cnn.nn"


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


def test_a_failed_bound_run_is_an_nnerror():
    """IOBinding runs fail with a bare RuntimeError; the Stepper reports it like any run error.

    Regression: failed IOBinding runs were bare RuntimeErrors."""
    from nngraph.runtime.stepper import Stepper

    src = """
model M {
    input image: f32[batch, 64]
    output y = image | dense(10)
}
train M {
    data = digits
    target label: i64[batch]
    loss = cross_entropy(y, label)
    optimizer = sgd(lr=0.1)
}
"""
    c = ng.compile_source(src).training("step")
    st = Stepper(c.to_onnx().SerializeToString(), c.initial)
    feeds = {
        "image": np.zeros((4, 64), np.float32),
        "label": np.zeros(5, np.int64),  # one label too many: the loss's shapes disagree at run time
        "lr": np.array(0.1, np.float32),
        "step": np.array(1),
    }
    with pytest.raises(NNError) as e:
        st.run(feeds)
    assert "onnxruntime could not run the training step" in str(e.value)


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
