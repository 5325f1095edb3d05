"""Optimizers and schedules: PyTorch and closed forms, the registries, and a unit added in a test."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nngraph as ng
from nngraph.errors import NNError
from nngraph.runtime.data import load_digits
from nngraph.runtime.stepper import Stepper
from nngraph.training.optimizers import OPTIMIZERS, Optimizer, Slot, register
from nngraph.training.schedules import SCHEDULES, learning_rate, schedule
from nngraph.training.settings import AT_LEAST_0, AT_LEAST_1, FRACTION, Arg, Setting

SRC = """
model M {{
    input x: f32[batch, 5]
    output o = x | dense(7) | tanh | dense(3)
}}
train M {{
    data = digits
    target t: i64[batch]
    loss = cross_entropy(o, t)
    optimizer = {opt}
    {extra}
}}
"""


def steps(opt: str, extra: str = "", n: int = 10):
    c = ng.compile_source(SRC.format(opt=opt, extra=extra), "o.nn").training("step")
    st = Stepper(c.to_onnx().SerializeToString(), c.initial)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 5)).astype(np.float32), rng.integers(0, 3, 8)) for _ in range(n)]
    losses = []
    for i, (x, t) in enumerate(batches, 1):
        losses.append(
            float(st.run({"x": x, "t": t, "lr": np.array(0.1, np.float32), "step": np.array(i)})["loss"])
        )
    return c, st, batches, losses


def torch_run(c, batches, make_opt, clip=None):
    torch = pytest.importorskip("torch")
    w1, b1, w2, b2 = (
        torch.tensor(c.initial[k].copy(), requires_grad=True)
        for k in ("dense_1.weight", "dense_1.bias", "dense_2.weight", "dense_2.bias")
    )
    opt = make_opt(torch, [w1, b1, w2, b2])
    losses = []
    for x, t in batches:
        opt.zero_grad()
        out = torch.tanh(torch.tensor(x) @ w1 + b1) @ w2 + b2
        loss = torch.nn.functional.cross_entropy(out, torch.tensor(t))
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_([w1, b1, w2, b2], clip)
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize(
    "opt,make",
    [
        ("sgd(lr=0.1)", lambda t, p: t.optim.SGD(p, lr=0.1)),
        (
            "sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=0.01)",
            lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        ),
        (
            "adam(lr=0.1, beta1=0.8, weight_decay=0.01)",
            lambda t, p: t.optim.Adam(p, lr=0.1, betas=(0.8, 0.999), weight_decay=0.01),
        ),
        ("adamw(lr=0.1)", lambda t, p: t.optim.AdamW(p, lr=0.1)),
    ],
)
def test_optimizers_match_pytorch(opt, make):
    c, _, batches, ours = steps(opt)
    np.testing.assert_allclose(ours, torch_run(c, batches, make), rtol=1e-4)


def test_clip_norm_matches_pytorch():
    c, _, batches, ours = steps("sgd(lr=0.1)", "clip_norm = 0.05")
    np.testing.assert_allclose(
        ours, torch_run(c, batches, lambda t, p: t.optim.SGD(p, lr=0.1), clip=0.05), rtol=1e-4
    )


def test_schedules():
    s = lambda name, **a: Setting(name, a, None)
    assert learning_rate(0.1, s("constant"), 5, 0, 100) == 0.1
    assert learning_rate(0.1, s("step", every=2, gamma=0.5), 1, 5, 100) == pytest.approx(0.1 * 0.25)
    assert learning_rate(0.1, s("cosine", min_lr=0.0), 1, 0, 100) == pytest.approx(0.1)
    assert learning_rate(0.1, s("cosine", min_lr=0.0), 51, 0, 100) == pytest.approx(0.05)
    assert learning_rate(0.1, s("warmup", steps=10), 5, 0, 100) == pytest.approx(0.05)
    assert learning_rate(0.1, s("warmup_cosine", steps=10, min_lr=0.0), 10, 0, 100) == pytest.approx(0.1)
    mid = learning_rate(0.1, s("warmup_cosine", steps=10, min_lr=0.0), 55, 0, 100)
    assert mid == pytest.approx(0.05 * (1 + math.cos(math.pi * 45 / 90)))


def test_early_stopping_stops(tmp_path):
    src = (
        "model M {\n input image: f32[batch, 64]\n output logits = image | dense(10)\n}\n"
        "train M {\n data = digits\n target label: i64[batch]\n loss = cross_entropy(logits, label)\n"
        " optimizer = sgd(lr=0.0)\n epochs = 50\n metrics = [accuracy]\n"
        " early_stopping = early_stopping(metric=accuracy, patience=2)\n}\n"
    )
    result = ng.compile_source(src, "e.nn").trainer().fit(dataset=load_digits(flat=True))
    assert result.epochs == 3  # lr 0 never improves: the first epoch sets the best, two more exhaust patience


def test_the_registries_list_each_unit_with_its_slots_and_arguments():
    assert {n: [(s.name, s.start) for s in o.slots] for n, o in OPTIMIZERS.items()} == {
        "sgd": [("momentum", 0.0)],
        "adam": [("m", 0.0), ("v", 0.0), ("v_max", 0.0)],
        "adamw": [("m", 0.0), ("v", 0.0), ("v_max", 0.0)],
        "rmsprop": [("square_avg", 0.0), ("grad_avg", 0.0), ("momentum", 0.0)],
        "adagrad": [("sum", "initial_accumulator_value")],  # a start that names the setting holding it
        "lion": [("m", 0.0)],
    }
    assert all(o.args[0].name == "lr" for o in OPTIMIZERS.values())
    assert {n: [a.name for a in s.args] for n, s in SCHEDULES.items()} == {
        "constant": [],
        "step": ["every", "gamma"],
        "cosine": ["min_lr"],
        "warmup": ["steps"],
        "warmup_cosine": ["steps", "min_lr"],
    }
    for opt, slots in [
        ("sgd(lr=0.1)", []),
        ("sgd(lr=0.1, momentum=0.9)", ["optimizer.momentum"]),
        ("adam(lr=0.1)", ["optimizer.m", "optimizer.v"]),
        ("adamw(lr=0.1)", ["optimizer.m", "optimizer.v"]),
        ("adam(lr=0.1, amsgrad=true)", ["optimizer.m", "optimizer.v", "optimizer.v_max"]),
        ("rmsprop(lr=0.1)", ["optimizer.square_avg"]),
        ("adagrad(lr=0.1)", ["optimizer.sum"]),
        ("lion(lr=0.1)", ["optimizer.m"]),
    ]:
        c = ng.compile_source(SRC.format(opt=opt, extra=""), "o.nn").training("step")
        assert c.interface.slots == slots, opt
        assert [o for o in c.interface.outputs if o.startswith("next/optimizer")] == [
            f"next/{s}" for s in slots
        ]


def test_every_optimizer_and_schedule_has_its_line_in_the_grammar_doc(root):
    doc = (root / "grammar" / "README.md").read_text()
    section = doc[doc.index("## Train sections") :]
    for name in [*OPTIMIZERS, *SCHEDULES]:
        assert f"`{name}(" in section or f"`{name}`" in section, name


def test_unit_mistakes_are_told_to_its_author():
    with pytest.raises(ValueError, match="registered twice"):
        register(OPTIMIZERS["sgd"])
    with pytest.raises(ValueError, match="'lr' as its first argument"):
        register(Optimizer("nolr", (Arg("beta", 0.9),), (), lambda e, u, s: (u.param, {})))
    with pytest.raises(ValueError, match="starts slot 'buf' at an undeclared setting 'bufstart'"):
        register(
            Optimizer(
                "nostart", (Arg("lr", 0.1),), (Slot("buf", start="bufstart"),), lambda e, u, s: (u.param, {})
            )
        )
    forgetful = register(
        Optimizer("forgetful", (Arg("lr", 0.1),), (Slot("buf"),), lambda e, u, s: (u.param, {}))
    )
    try:
        with pytest.raises(ValueError, match=r"updated the slots \[\], but carries \['buf'\]"):
            ng.compile_source(SRC.format(opt="forgetful", extra=""), "o.nn").training("step")
    finally:
        del OPTIMIZERS[forgetful.name]


DIGITS = """
model MLP {{
    input image: f32[batch, 64]
    output logits = image | dense(16) | relu | dense(10)
}}
train MLP {{
    data = digits
    target label: i64[batch]
    loss = cross_entropy(logits, label)
    optimizer = {opt}
    batch = 64
    {extra}
}}
"""


def digits_spec(opt: str, extra: str = ""):
    return ng.compile_source(DIGITS.format(opt=opt, extra=extra), "d.nn").train_spec()


def _signum(e, u, s):
    """Sign-SGD with momentum (signum): buf = beta*buf + (1-beta)*g; p -= lr*sign(buf)."""
    buf = e.op(
        "add",
        [e.op("mul", [u.state["buf"], e.const(s["beta"])]), e.op("mul", [u.grad, e.const(1 - s["beta"])])],
    )
    return e.op("sub", [u.param, e.op("mul", [e.op("sign", [buf]), u.lr])]), {"buf": buf}


@pytest.fixture
def signum():
    """A throwaway optimizer, registered for one test; its buffer starts at 0.5 to show `start` is honoured."""
    unit = register(
        Optimizer(
            "signum",
            (Arg("lr", 0.01, AT_LEAST_0), Arg("beta", 0.9, FRACTION)),
            (Slot("buf", start=0.5),),
            _signum,
        )
    )
    yield unit
    del OPTIMIZERS[unit.name]


def test_an_optimizer_registered_in_a_test_trains_the_digits_mlp_as_its_numpy_rule(signum):
    import onnxruntime as ort

    lr, beta = 0.01, 0.8
    model = ng.compile_source(DIGITS.format(opt=f"signum(lr={lr}, beta={beta})", extra=""), "d.nn")
    c, grads = model.training("step"), model.training("grads")
    assert c.interface.optimizer == "signum" and c.interface.settings == {"lr": lr, "beta": beta}
    assert c.interface.slots == ["optimizer.buf"]
    np.testing.assert_array_equal(
        c.initial["optimizer.buf"], np.full(16 * 64 + 16 + 10 * 16 + 10, 0.5, np.float32)
    )
    st = Stepper(c.to_onnx().SerializeToString(), c.initial)
    grad_sess = ort.InferenceSession(grads.to_onnx().SerializeToString())
    params = c.interface.params
    ds = load_digits(flat=True)
    x, t = ds.inputs["image"], ds.targets["label"]
    for i in range(1, 6):
        xb, tb = x[64 * i : 64 * (i + 1)], t[64 * i : 64 * (i + 1)]
        before = st.state()
        feeds = {"image": xb, "label": tb, **{p: before[p] for p in params}}
        g = dict(zip([o.name for o in grad_sess.get_outputs()], grad_sess.run(None, feeds), strict=True))
        st.run({"image": xb, "label": tb, "lr": np.array(lr, np.float32), "step": np.array(i)})
        after = st.state()
        # the NumPy rule over the flat vectors, from the state the step started at
        flat_p = np.concatenate([before[p].ravel() for p in params])
        flat_g = np.concatenate([g[f"grad/{p}"].ravel() for p in params])
        buf = np.float32(beta) * before["optimizer.buf"] + np.float32(1 - beta) * flat_g
        want = flat_p - np.sign(buf) * np.float32(lr)
        np.testing.assert_allclose(after["optimizer.buf"], buf, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(
            np.concatenate([after[p].ravel() for p in params]), want, rtol=1e-6, atol=1e-7
        )


def test_a_registered_optimizer_is_checked_by_its_declared_arguments(signum):
    for opt, message, hint in [
        ("signm(lr=0.1)", "unknown optimizer 'signm'", "did you mean 'signum'?"),
        ("signum(bta=0.5)", "'signum' has no setting 'bta'", "did you mean 'beta'?"),
        ("signum(beta=1)", "setting 'beta' of 'signum' must be in [0, 1), got 1", None),
    ]:
        with pytest.raises(NNError) as e:
            digits_spec(opt)
        assert message in e.value.message and e.value.hint == hint, e.value.render()
    assert digits_spec("signum(0.2)").optimizer.args == {"lr": 0.2, "beta": 0.9}  # defaults filled in


@pytest.fixture
def inverse_sqrt():
    """A throwaway schedule, registered for one test: linear warmup, then 1/sqrt(step) decay."""

    @schedule("inverse_sqrt", Arg("warm", 4, AT_LEAST_1))
    def rate(base, a, step, epoch, total):
        return base * min(step / a["warm"], math.sqrt(a["warm"] / step))

    yield SCHEDULES["inverse_sqrt"]
    del SCHEDULES["inverse_sqrt"]


def test_a_schedule_registered_in_a_test_feeds_the_trainer_its_rates(inverse_sqrt):
    with pytest.raises(NNError) as e:
        digits_spec("sgd(lr=0.1)", "schedule = inverse_sqrt(warm=0)")
    assert "setting 'warm' of 'inverse_sqrt' must be >= 1, got 0" in e.value.message
    with pytest.raises(NNError) as e:
        digits_spec("sgd(lr=0.1)", "schedule = inverse_sqr()")
    assert e.value.hint == "did you mean 'inverse_sqrt'?"
    assert digits_spec("sgd(lr=0.1)", "schedule = inverse_sqrt").schedule.args == {"warm": 4}

    src = DIGITS.format(opt="sgd(lr=0.1)", extra="schedule = inverse_sqrt(3)\n    epochs = 2")
    trainer = ng.compile_source(src, "d.nn").trainer()
    fed: list[float] = []
    run = trainer.stepper.run
    trainer.stepper.run = lambda feeds: fed.append(float(feeds["lr"])) or run(feeds)
    result = trainer.fit()
    k = np.arange(1, len(fed) + 1)
    want = (0.1 * np.minimum(k / 3, np.sqrt(3 / k))).astype(np.float32)
    assert len(fed) > 2 * 3 and fed == want.tolist()  # past the warmup, into the decay
    assert [row["lr"] for row in result.history] == [fed[len(fed) // 2 - 1], fed[-1]]  # each epoch's last
