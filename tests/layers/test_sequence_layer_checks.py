"""Sequence layers without PyTorch: recurrent layers over one step, argument checks, sinusoid
tables in f16, and f16 attention with a padding mask against a NumPy reference."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ort_session
from onnx import numpy_helper

import nngraph as ng
from nngraph.errors import NNError
from nngraph.ops.reference import evaluate


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_a_recurrent_layer_over_one_step_keeps_its_hidden_weights(kind):
    """PyTorch's layer has weight_hh_l0 at any length (its gradient is 0 over one step).

    Regression: over one step rnn, lstm and gru dropped weight_hh."""
    m = ng.compile_source(
        f"model M {{\n    input x: f32[batch, 1, 3]\n    output y = x | {kind}(4)\n}}\n"
        "train M {\n    data = digits\n    target t: f32[batch, 1, 4]\n    loss = mse(y, t)\n    optimizer = sgd(lr=0.1)\n}\n"
    )
    params = set(m.graph.params())
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    assert {f"{kind}_1.weight_hh_l0", f"{kind}_1.weight_ih_l0"} <= params
    assert m.param_count == gates * 4 * (3 + 4 + 2)
    grads = m.training("grads").graph.outputs
    assert f"grad/{kind}_1.weight_hh_l0" in grads


def test_sequence_layer_arguments_are_checked(tmp_path):
    """Regression: positional took max_len < 1 and transformer_encoder a third tensor."""
    with pytest.raises(NNError, match="'max_len' of 'positional' must be >= 1, got 0"):
        ng.compile_source(
            "model M {\n    input x: f32[batch, seq, 4]\n    output y = x | positional(learned, max_len=0)\n}\n"
        )
    with pytest.raises(
        NNError, match="transformer_encoder takes x and an optional padding mask, got 3 tensors"
    ):
        ng.compile_source(
            "model M {\n    input x: f32[batch, 5, 4]\n    input m: f32[batch, 5]\n"
            "    output y = transformer_encoder(x, m, m, heads=2)\n}\n"
        )


def test_sinusoid_positions_in_f16_are_as_exact_as_f16_allows():
    """Regression: the table was computed in f16, off by 0.05 at position 2000."""
    m = ng.compile_source("model M {\n    input x: f16[batch, seq, 8]\n    output y = x | positional\n}\n")
    x = np.zeros((1, 2048, 8), np.float16)
    got = ort.InferenceSession(m.onnx.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )[0]
    want = evaluate(m.graph, {"x": x.astype(np.float16)})["y"]
    assert np.abs(got.astype(np.float64) - want.astype(np.float64)).max() <= 1e-3  # f16 steps are 5e-4 near 1


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
    """Regression: f16 attention with a padding mask was not finite and right."""
    src = (
        "model H {\n    input x: f16[batch, 5, 8]\n    input m: f16[batch, 5]\n"
        "    output c = attention(x, m, heads=2)\n}\n"
    )
    model = ng.compile_source(src, "h.nn").onnx
    w = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    weights = [
        w[f"attention_1.{n}"] for n in ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")
    ]
    sess = ort_session(model)
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
    (c32,) = ort_session(f32).run(None, {"x": x.astype(np.float32), "m": ones.astype(np.float32)})
    (c16,) = sess.run(None, {"x": x, "m": ones})
    np.testing.assert_allclose(c16.astype(np.float32), c32, atol=1e-2, rtol=1e-2)
