"""The class-axis rule of the losses and metrics (last, or axis 1 as in PyTorch), the metrics of
issue 15 (f1, precision, recall, perplexity) against NumPy formulas, and the mistakes a user
makes with them, through train sections compiled to the eval model and run in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.errors import NNError
from nngraph.training.trainer import _average, _batch_term

RNG = np.random.default_rng(0)


def dims(shape) -> str:
    return ", ".join(["batch", *map(str, shape[1:])])


def source(p: np.ndarray, target: str, loss: str, metrics: str = "") -> str:
    return (
        f"model M {{\n input p: f32[{dims(p.shape)}]\n output o = p | identity\n}}\n"
        f"train M {{\n data = digits\n target t: {target}\n loss = {loss}\n{metrics}}}\n"
    )


def run(p: np.ndarray, y: np.ndarray, loss: str = "cross_entropy(o, t)", metrics: str = "") -> dict:
    target = f"{'i64' if y.dtype.kind == 'i' else 'f32'}[{dims(y.shape)}]"
    c = ng.compile_source(source(p, target, loss, metrics), "l.nn").training("eval")
    sess = ort.InferenceSession(c.to_onnx().SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(c.interface.outputs, sess.run(None, {"p": p, "t": y}), strict=True))


def log_softmax(x, axis):
    z = x - x.max(axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis, keepdims=True))


def macro(pred: np.ndarray, y: np.ndarray, c: int) -> dict[str, float]:
    """sklearn's precision/recall/f1_score(average="macro", zero_division=0), in NumPy."""
    pred, y = pred.ravel(), y.ravel()
    labels = np.unique(np.concatenate([pred, y]))
    out = {"precision": [], "recall": [], "f1": []}
    for k in labels:
        tp = np.sum((pred == k) & (y == k))
        fp, fn = np.sum((pred == k) & (y != k)), np.sum((pred != k) & (y == k))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        out["precision"].append(p)
        out["recall"].append(r)
        out["f1"].append(2 * p * r / (p + r) if p + r else 0.0)
    return {k: float(np.mean(v)) for k, v in out.items()}


PIX = RNG.standard_normal((3, 4, 5, 6)).astype(np.float32)  # [batch, classes, h, w]
PIX_Y = RNG.integers(0, 4, (3, 5, 6))


def test_segmentation_loss_and_metrics_count_per_pixel():
    out = run(PIX, PIX_Y, metrics=" metrics = [accuracy, top_k_accuracy(k=2), f1, precision, recall]\n")
    logp = log_softmax(PIX.astype(np.float64), 1)
    want = -np.take_along_axis(logp, PIX_Y[:, None], 1).mean()
    np.testing.assert_allclose(out["loss"], want, rtol=1e-6)
    pred = PIX.argmax(1)
    assert out["accuracy"] == pytest.approx(np.mean(pred == PIX_Y))
    rank = (PIX > np.take_along_axis(PIX, PIX_Y[:, None], 1)).sum(1)
    assert out["top_k_accuracy"] == pytest.approx(np.mean(rank < 2))
    for k, v in macro(pred, PIX_Y, 4).items():
        assert out[k] == pytest.approx(v, rel=1e-6), k


def test_macro_metrics_leave_out_classes_nobody_names():
    """Class 4 is in no label and no prediction; class 3 is predicted but never true."""
    p = RNG.standard_normal((8, 5)).astype(np.float32)
    p[:, 4] = -10
    y = RNG.integers(0, 3, 8)
    p[0, 3] = 10
    out = run(p, y, metrics=" metrics = [f1, precision, recall]\n")
    for k, v in macro(p.argmax(1), y, 5).items():
        assert out[k] == pytest.approx(v, rel=1e-6), k


def test_sequence_models_keep_their_classes_last_and_perplexity_skips_padding():
    p = RNG.standard_normal((2, 7, 5)).astype(np.float32)  # [batch, t, classes], as examples/char_lm.nn
    y = RNG.integers(0, 5, (2, 7))
    out = run(
        p, y, "cross_entropy(o, t, ignore_index=0)", " metrics = [accuracy, perplexity(ignore_index=0)]\n"
    )
    nll = -np.take_along_axis(log_softmax(p.astype(np.float64), -1), y[..., None], -1)[..., 0]
    want = nll[y != 0].mean()
    np.testing.assert_allclose(out["loss"], want, rtol=1e-6)
    np.testing.assert_allclose(out["perplexity"], np.exp(want), rtol=1e-5)
    assert out["accuracy"] == pytest.approx(np.mean(p.argmax(-1) == y))


def test_perplexity_averages_over_batches_as_the_exp_of_the_mean_cross_entropy():
    ces, sizes = [1.0, 2.5, 0.5], [4, 2, 1]
    total = sum(_batch_term("perplexity", float(np.exp(c))) * k for c, k in zip(ces, sizes, strict=True))
    assert _average("perplexity", total, 7) == pytest.approx(np.exp(np.average(ces, weights=sizes)))
    assert _average("accuracy", _batch_term("accuracy", 0.5) * 2 + 1.0 * 2, 4) == 0.75


def test_the_u_net_loss_is_fused_and_its_gradients_agree():
    src = (
        "model U {\n input image: f32[batch, 1, 4, 4]\n"
        " output logits = image | conv2d(3, kernel=3, padding=same)\n}\n"
        "train U {\n data = digits\n target mask: i64[batch, 4, 4]\n loss = cross_entropy(logits, mask)\n}\n"
    )
    m = ng.compile_source(src, "u.nn")
    feeds = {
        "image": RNG.standard_normal((2, 1, 4, 4)).astype(np.float32),
        "mask": RNG.integers(0, 3, (2, 4, 4)),
    }
    outs = []
    for level in (0, 2):
        c = m.training("grads", level=level)
        model = c.to_onnx(level)
        ops = {n.op_type for n in model.graph.node}
        assert ("SoftmaxCrossEntropyLoss" in ops) == (level == 2)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        outs.append(
            dict(
                zip(
                    c.interface.outputs,
                    sess.run(None, {n: {**feeds, **c.initial}[n] for n in names}),
                    strict=True,
                )
            )
        )
    for k in outs[0]:
        np.testing.assert_allclose(outs[1][k], outs[0][k], rtol=1e-5, atol=1e-6, err_msg=k)


def fails(p_shape, target: str, loss: str, metrics: str = "") -> NNError:
    p = np.zeros(p_shape, np.float32)
    with pytest.raises(NNError) as e:
        ng.compile_source(source(p, target, loss, metrics), "l.nn").training("eval")
    return e.value


@pytest.mark.parametrize(
    "p_shape, target, loss, says, expected",
    [
        (
            (2, 2, 4, 5),
            "i64[batch, 4, 4]",
            "cross_entropy(o, t)",
            "logits f32[batch,2,4,5] and labels i64[batch,4,4] do not match",
            "[batch, 2, 4] (the classes last) or [batch, 4, 5] (the classes on axis 1, as in PyTorch)",
        ),
        ((2, 3), "i64[batch, 3]", "nll(o, t)", "nll: logits f32[batch,3] and labels i64[batch,3]", "[batch]"),
        ((2, 4, 4), "i64[batch, 4]", "cross_entropy(o, t)", "the shapes cannot tell", "axis=1"),
        ((2, 3, 5), "i64[batch, 5]", "cross_entropy(o, t, axis=-1)", "classes on axis -1", "[batch, 3]"),
        ((2, 3), "i64[batch]", "cross_entropy(o, t, weight=[1, 2])", "weight has 2 values", "3 numbers"),
        ((2, 3), "f32[batch, 3]", "cross_entropy(o, t, ignore_index=1)", "ignore_index applies", None),
        ((2, 3), "f32[batch, 2]", "cross_entropy(o, t)", "logits f32[batch,3] and probability targets", None),
        (
            (2, 3),
            "f32[batch, 3]",
            "binary_cross_entropy(o, t, pos_weight=[1, 2], from_logits=false)",
            "pos_weight has 2 values",
            None,
        ),
        (
            (2, 3),
            "f32[batch, 3]",
            "binary_cross_entropy(o, t, pos_weight=2, from_logits=false)",
            "needs logits",
            None,
        ),
        (
            (2, 3),
            "f32[batch, 4]",
            "kl_div(o, t)",
            "kl_div: prediction f32[batch,3] and target f32[batch,4]",
            None,
        ),
        ((2, 3), "f32[batch, 3]", "smooth_l1(o, t, beta=-1)", "must be >= 0", None),
        (
            (2, 3),
            "i64[batch, 2]",
            "cosine_embedding(o, o, t)",
            "inputs f32[batch,3] and targets i64[batch,2]",
            None,
        ),
        ((2, 3), "f32[batch, 3]", "cross_entropy(o, t, reduction=none)", "unknown value 'none'", "mean, sum"),
    ],
)
def test_mistakes_name_both_shapes(p_shape, target, loss, says, expected):
    e = fails(p_shape, target, loss)
    assert says in e.message, e.render()
    if expected:
        assert expected in (e.expected or ""), e.render()


def test_a_metric_mismatch_is_the_metric_s_own():
    e = fails((2, 3, 4, 5), "i64[batch, 4, 5]", "cross_entropy(o, t)", " metrics = [f1(axis=2)]\n")
    assert e.message.startswith("f1: logits f32[batch,3,4,5] with their classes on axis 2"), e.render()
    e = fails((2, 4, 4), "i64[batch, 4]", "cross_entropy(o, t, axis=1)", " metrics = [perplexity]\n")
    assert e.message.startswith("perplexity: logits"), e.render()
