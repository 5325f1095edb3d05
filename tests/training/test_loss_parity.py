"""The losses of issue 15 against torch.nn.functional with torch's defaults: the forward to 1e-5
and the gradient of every float input to 1e-4 in f32, run in onnxruntime. Each case compiles a
tiny model whose output is the loss (or, for cosine_similarity, sum(y * r) of the layer's y)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.autodiff.backward import backward
from nngraph.core.types import TensorType
from nngraph.onnx.lower import check, lower

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(0)


def normal(*shape, scale=1.0):
    return (scale * RNG.standard_normal(shape)).astype(np.float32)


def probs(*shape, axis=1):
    z = np.exp(normal(*shape, scale=2.0))
    p = z / z.sum(axis, keepdims=True)
    p.flat[::7] = 0.0  # zero targets: xlogy(0, 0) = 0
    return (p / p.sum(axis, keepdims=True)).astype(np.float32)


def decl(a: np.ndarray) -> str:
    dt = {np.dtype(np.float32): "f32", np.dtype(np.int64): "i64"}[a.dtype]
    return f"{dt}[{', '.join(['batch', *map(str, a.shape[1:])])}]"


def run(call: str, inputs: dict[str, np.ndarray]):
    """nngraph's value of `call` and the gradients of its float inputs, from onnxruntime."""
    lines = "".join(f"    input {k}: {decl(v)}\n" for k, v in inputs.items())
    m = ng.compile_source(f"model M {{\n{lines}    output l = {call}\n}}", "loss.nn")
    g = m.graph
    out = g.outputs["l"]
    t = g.type(out)
    feeds = dict(inputs)
    if t.rank:  # a layer's tensor: the loss sum(y * r)
        r = np.random.default_rng(1).standard_normal([inputs["x"].shape[0], *t.shape[1:]]).astype(np.float32)
        rn = g.add("r", "input", [], t, None)
        prod = g.add("prod", "mul", [out, rn], t, None, {})
        loss = g.add("sum", "reduce_sum", [prod], TensorType("f32", ()), None, {"axes": None, "keepdims": 0})
        g.inputs.append(rn)
        feeds["r"] = r
    else:
        loss, r = out, None
    wrt = [k for k, v in inputs.items() if v.dtype == np.float32]
    grads = backward(g, loss, wrt)
    g.outputs = {"l": out, **{f"grad/{w}": grads[w] for w in wrt}}
    g.prune()
    model = lower(g, list(g.inputs))
    check(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    got = dict(zip(g.outputs, sess.run(None, {n: feeds[n] for n in names}), strict=True))
    return got, r


def torch_run(fn, inputs: dict[str, np.ndarray], r):
    ts = {k: torch.tensor(v, requires_grad=v.dtype == np.float32) for k, v in inputs.items()}
    out = fn(**ts)
    (out * torch.tensor(r)).sum().backward() if r is not None else out.backward()
    grads = {k: t.grad.numpy() for k, t in ts.items() if t.requires_grad}
    return out.detach().numpy(), grads


def parity(call: str, fn, skip: tuple[str, ...] = (), **inputs) -> None:
    """Forward and the gradient of every float input but those in `skip`."""
    got, r = run(call, inputs)
    want, grads = torch_run(fn, inputs, r)
    np.testing.assert_allclose(got["l"], want, rtol=1e-5, atol=1e-5, err_msg=call)
    for k, gk in grads.items():
        if k in skip:
            continue
        np.testing.assert_allclose(got[f"grad/{k}"], gk, rtol=1e-4, atol=1e-4, err_msg=f"{call}: d/d{k}")


LABELS = RNG.integers(0, 4, 6)
SEQ_LABELS = RNG.integers(0, 4, (3, 5))
PIX_LABELS = RNG.integers(0, 3, (2, 4, 5))
W4 = [1.0, 2.0, 0.5, 3.0]


@pytest.mark.parametrize(
    "call, fn",
    [
        ("cross_entropy(x, y)", lambda x, y: F.cross_entropy(x, y)),
        ("cross_entropy(x, y, label_smoothing=0.1)", lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1)),
        ("cross_entropy(x, y, reduction=sum)", lambda x, y: F.cross_entropy(x, y, reduction="sum")),
        ("cross_entropy(x, y, weight=[1, 2, 0.5, 3])", lambda x, y: F.cross_entropy(x, y, torch.tensor(W4))),
        ("cross_entropy(x, y, ignore_index=1)", lambda x, y: F.cross_entropy(x, y, ignore_index=1)),
        (
            "cross_entropy(x, y, weight=[1, 2, 0.5, 3], ignore_index=3, label_smoothing=0.2)",
            lambda x, y: F.cross_entropy(x, y, torch.tensor(W4), ignore_index=3, label_smoothing=0.2),
        ),
        (
            "cross_entropy(x, y, weight=[1, 2, 0.5, 3], ignore_index=0, reduction=sum)",
            lambda x, y: F.cross_entropy(x, y, torch.tensor(W4), ignore_index=0, reduction="sum"),
        ),
    ],
)
def test_cross_entropy_on_labels(call, fn):
    parity(call, fn, x=normal(6, 4, scale=2.0), y=LABELS)


def test_cross_entropy_ignores_padding_outside_the_classes():
    y = LABELS.copy()
    y[[1, 4]] = -100  # torch's own default ignore_index, given explicitly
    parity(
        "cross_entropy(x, y, ignore_index=-100, label_smoothing=0.1)",
        lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1),
        x=normal(6, 4),
        y=y,
    )


def test_cross_entropy_classes_on_axis_1_as_pytorch():
    """A U-Net's [batch, classes, h, w] against [batch, h, w] (regression: this said
    'expected: labels shaped [batch, 3, 4]')."""
    x = normal(2, 3, 4, 5)
    parity("cross_entropy(x, y)", lambda x, y: F.cross_entropy(x, y), x=x, y=PIX_LABELS)
    parity(
        "cross_entropy(x, y, weight=[0.2, 1, 2], ignore_index=2)",
        lambda x, y: F.cross_entropy(x, y, torch.tensor([0.2, 1.0, 2.0]), ignore_index=2),
        x=x,
        y=PIX_LABELS,
    )


def test_cross_entropy_of_a_sequence_model_keeps_its_classes_last():
    parity(
        "cross_entropy(x, y, ignore_index=0)",
        lambda x, y: F.cross_entropy(x.permute(0, 2, 1), y, ignore_index=0),
        x=normal(3, 5, 4),
        y=SEQ_LABELS,
    )


def test_the_class_axis_can_be_named_where_the_shapes_cannot_tell():
    x, y = normal(3, 4, 4), RNG.integers(0, 4, (3, 4))
    parity("cross_entropy(x, y, axis=-1)", lambda x, y: F.cross_entropy(x.permute(0, 2, 1), y), x=x, y=y)
    parity("cross_entropy(x, y, axis=1)", lambda x, y: F.cross_entropy(x, y), x=x, y=y)


@pytest.mark.parametrize(
    "call, fn",
    [
        ("cross_entropy(x, t)", lambda x, t: F.cross_entropy(x, t)),
        (
            "cross_entropy(x, t, weight=[1, 2, 0.5, 3], label_smoothing=0.1, reduction=sum)",
            lambda x, t: F.cross_entropy(x, t, torch.tensor(W4), label_smoothing=0.1, reduction="sum"),
        ),
    ],
)
def test_cross_entropy_on_probability_targets(call, fn):
    parity(call, fn, x=normal(6, 4), t=probs(6, 4))


def test_cross_entropy_on_probability_targets_of_n_d_logits():
    parity(
        "cross_entropy(x, t, weight=[1, 2, 0.5])",
        lambda x, t: F.cross_entropy(x, t, torch.tensor([1.0, 2.0, 0.5])),
        x=normal(2, 3, 5),
        t=probs(2, 3, 5),
    )
    parity(
        "cross_entropy(x, t, axis=-1)",
        lambda x, t: F.cross_entropy(x.permute(0, 2, 1), t.permute(0, 2, 1)),
        x=normal(2, 5, 3),
        t=probs(2, 5, 3, axis=-1),
    )


@pytest.mark.parametrize(
    "call, fn",
    [
        ("nll(x, y)", lambda x, y: F.nll_loss(x, y)),
        ("nll(x, y, reduction=sum)", lambda x, y: F.nll_loss(x, y, reduction="sum")),
        (
            "nll(x, y, weight=[1, 2, 0.5, 3], ignore_index=2)",
            lambda x, y: F.nll_loss(x, y, torch.tensor(W4), ignore_index=2),
        ),
    ],
)
def test_nll(call, fn):
    parity(call, fn, x=normal(6, 4), y=LABELS)


def test_nll_of_log_softmax_is_cross_entropy_on_n_d_input():
    parity(
        "nll(log_softmax(x, axis=1), y)",
        lambda x, y: F.nll_loss(F.log_softmax(x, dim=1), y),
        x=normal(2, 3, 4, 5),
        y=PIX_LABELS,
    )


def test_nll_leaves_an_impossible_class_out():
    """-inf where a class is impossible: NLLLoss gathers, so the other rows stay finite."""
    x = normal(6, 4)
    x[:, 3] = -np.inf
    y = np.where(LABELS == 3, 0, LABELS)
    got, _ = run("nll(x, y)", {"x": x, "y": y})
    np.testing.assert_allclose(got["l"], F.nll_loss(torch.tensor(x), torch.tensor(y)).item(), rtol=1e-6)
    assert np.isfinite(got["grad/x"]).all()


@pytest.mark.parametrize(
    "call, fn",
    [
        ("kl_div(x, t)", lambda x, t: F.kl_div(x, t, reduction="batchmean")),
        pytest.param(
            "kl_div(x, t, reduction=mean)",
            lambda x, t: F.kl_div(x, t, reduction="mean"),
            marks=pytest.mark.filterwarnings("ignore:reduction. .mean. divides"),
        ),
        ("kl_div(x, t, reduction=sum)", lambda x, t: F.kl_div(x, t, reduction="sum")),
    ],
)
def test_kl_div(call, fn):
    x = np.log(probs(5, 4) + 0.05).astype(np.float32)
    # the target's gradient log(t) + 1 - x is nan in torch where t = 0 (xlogy): not compared
    parity(call, fn, skip=("t",), x=x, t=probs(5, 4))


def test_kl_div_with_log_targets():
    parity(
        "kl_div(x, t, log_target=true)",
        lambda x, t: F.kl_div(x, t, reduction="batchmean", log_target=True),
        x=normal(5, 4),
        t=normal(5, 4),
    )


B = (RNG.random((6, 3)) > 0.5).astype(np.float32)


@pytest.mark.parametrize(
    "call, fn",
    [
        ("binary_cross_entropy(x, t)", lambda x, t: F.binary_cross_entropy_with_logits(x, t)),
        (
            "binary_cross_entropy(x, t, pos_weight=[1, 3, 0.5])",
            lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor([1.0, 3.0, 0.5])),
        ),
        (
            "binary_cross_entropy(x, t, pos_weight=2, weight=[1, 0.5, 2], reduction=sum)",
            lambda x, t: F.binary_cross_entropy_with_logits(
                x, t, weight=torch.tensor([1.0, 0.5, 2.0]), pos_weight=torch.tensor([2.0]), reduction="sum"
            ),
        ),
    ],
)
def test_binary_cross_entropy_with_logits(call, fn):
    parity(call, fn, x=normal(6, 3, scale=3.0), t=B)


@pytest.mark.parametrize("soft", [False, True])
def test_binary_cross_entropy_on_probabilities(soft):
    p = (1 / (1 + np.exp(-normal(6, 3, scale=2.0)))).astype(np.float32)
    t = RNG.random((6, 3)).astype(np.float32) if soft else B
    parity(
        "binary_cross_entropy(p, t, from_logits=false)", lambda p, t: F.binary_cross_entropy(p, t), p=p, t=t
    )
    parity(
        "binary_cross_entropy(p, t, from_logits=false, weight=[1, 2, 3], reduction=sum)",
        lambda p, t: F.binary_cross_entropy(p, t, weight=torch.tensor([1.0, 2.0, 3.0]), reduction="sum"),
        p=p,
        t=t,
    )


def test_binary_cross_entropy_on_probabilities_clamps_its_logs_at_minus_100():
    p = np.array([[0.0, 1.0, 0.3]], np.float32)
    t = np.array([[1.0, 0.0, 1.0]], np.float32)
    got, _ = run("binary_cross_entropy(p, t, from_logits=false)", {"p": p, "t": t})
    want = F.binary_cross_entropy(torch.tensor(p), torch.tensor(t)).item()
    np.testing.assert_allclose(got["l"], want, rtol=1e-6)
    assert np.isfinite(got["grad/p"]).all()


@pytest.mark.parametrize(
    "call, fn",
    [
        ("mse(x, t)", lambda x, t: F.mse_loss(x, t)),
        ("mse(x, t, reduction=sum)", lambda x, t: F.mse_loss(x, t, reduction="sum")),
        ("l1(x, t, reduction=sum)", lambda x, t: F.l1_loss(x, t, reduction="sum")),
        ("huber(x, t, delta=0.5)", lambda x, t: F.huber_loss(x, t, delta=0.5)),
        ("huber(x, t, reduction=sum)", lambda x, t: F.huber_loss(x, t, reduction="sum")),
        ("smooth_l1(x, t)", lambda x, t: F.smooth_l1_loss(x, t)),
        (
            "smooth_l1(x, t, beta=0.5, reduction=sum)",
            lambda x, t: F.smooth_l1_loss(x, t, reduction="sum", beta=0.5),
        ),
        ("smooth_l1(x, t, beta=0)", lambda x, t: F.smooth_l1_loss(x, t, beta=0.0)),
    ],
)
def test_regression_losses(call, fn):
    parity(call, fn, x=normal(5, 4, scale=2.0), t=normal(5, 4))


@pytest.mark.parametrize(
    "call, fn, shape",
    [
        ("cosine_similarity(x, z)", lambda x, z: F.cosine_similarity(x, z), (5, 4)),
        ("cosine_similarity(x, z, axis=-1)", lambda x, z: F.cosine_similarity(x, z, dim=-1), (2, 3, 4)),
        ("cosine_similarity(x, z, eps=1e-3)", lambda x, z: F.cosine_similarity(x, z, eps=1e-3), (3, 4, 2)),
    ],
)
def test_cosine_similarity_layer(call, fn, shape):
    x, z = normal(*shape), normal(*shape)
    parity(call, fn, x=x, z=z)


def test_cosine_similarity_divides_a_norm_under_eps_by_eps():
    """As torch's forward; below eps the gradient is 0 through the norm, where torch's clamp
    (made under no_grad) runs it through the unclamped norm."""
    x, z = normal(3, 4), normal(3, 4)
    x[0] *= 1e-2
    got, _ = run("cosine_similarity(x, z, eps=0.5)", {"x": x, "z": z})
    want = F.cosine_similarity(torch.tensor(x), torch.tensor(z), eps=0.5).numpy()
    np.testing.assert_allclose(got["l"], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "call, fn",
    [
        ("cosine_embedding(x, z, y)", lambda x, z, y: F.cosine_embedding_loss(x, z, y)),
        (
            "cosine_embedding(x, z, y, margin=-0.2, reduction=sum)",
            lambda x, z, y: F.cosine_embedding_loss(x, z, y, margin=-0.2, reduction="sum"),
        ),
    ],
)
def test_cosine_embedding(call, fn):
    y = np.array([1, -1, 1, -1, -1, 1])
    parity(call, fn, x=normal(6, 4), z=normal(6, 4), y=y)
