"""The optimizers of issue 15 (rmsprop, adagrad, sgd's dampening, adam's and adamw's amsgrad, lion)
against an independent reference over 10 steps of a small model, run in onnxruntime: every
parameter and every optimizer slot after every step, at 1e-5 (rel and abs, f32). The reference is
torch.optim with the same settings (its defaults where the .nn uses the defaults); Lion, which
torch.optim lacks, is the paper's rule in NumPy over torch's gradients, and over the step model's
own gradients from the state each step started at. Bad option values are nngraph errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.errors import NNError
from nngraph.runtime.stepper import Stepper

torch = pytest.importorskip("torch")

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
}}
"""

STEPS = 10
TOL = 1e-5

#: each slot's name in torch.optim's per-parameter state
TORCH_STATE = {
    "momentum": "momentum_buffer",
    "m": "exp_avg",
    "v": "exp_avg_sq",
    "v_max": "max_exp_avg_sq",
    "square_avg": "square_avg",
    "grad_avg": "grad_avg",
    "sum": "sum",
}


def batches(n: int = STEPS):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((8, 5)).astype(np.float32), rng.integers(0, 3, 8)) for _ in range(n)]


def compiled(opt: str):
    return ng.compile_source(SRC.format(opt=opt), "o.nn")


def ours(opt: str):
    """The step model's parameters and slots after each step, the lr fed as the setting's value."""
    c = compiled(opt).training("step")
    st = Stepper(c.to_onnx().SerializeToString(), c.initial)
    lr = np.array(c.interface.settings["lr"], np.float32)
    states = []
    for i, (x, t) in enumerate(batches(), 1):
        st.run({"x": x, "t": t, "lr": lr, "step": np.array(i)})
        states.append(st.state())
    return c, states


def forward(w1, b1, w2, b2, x, t):
    out = torch.tanh(torch.tensor(x) @ w1 + b1) @ w2 + b2
    return torch.nn.functional.cross_entropy(out, torch.tensor(t))


def torch_params(c):
    return [torch.tensor(c.initial[p].copy(), requires_grad=True) for p in c.interface.params]


def assert_params(c, state, params, i):
    for name, p in zip(c.interface.params, params, strict=True):
        np.testing.assert_allclose(
            state[name], p.detach().numpy(), rtol=TOL, atol=TOL, err_msg=f"{name} after step {i}"
        )


CASES = [
    ("rmsprop()", lambda t, p: t.optim.RMSprop(p)),
    ("rmsprop(lr=0.01, alpha=0.9, eps=1e-6)", lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6)),
    (
        "rmsprop(lr=0.01, momentum=0.9, centered=true, weight_decay=0.1)",
        lambda t, p: t.optim.RMSprop(p, lr=0.01, momentum=0.9, centered=True, weight_decay=0.1),
    ),
    ("rmsprop(lr=0.005, centered=true)", lambda t, p: t.optim.RMSprop(p, lr=0.005, centered=True)),
    ("adagrad()", lambda t, p: t.optim.Adagrad(p)),
    (
        "adagrad(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.1, eps=1e-6)",
        lambda t, p: t.optim.Adagrad(
            p, lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.1, eps=1e-6
        ),
    ),
    (
        "sgd(lr=0.1, momentum=0.9, dampening=0.5)",
        lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5),
    ),
    (
        "sgd(lr=0.1, momentum=0.8, dampening=1, weight_decay=0.01)",
        lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.8, dampening=1.0, weight_decay=0.01),
    ),
    ("adam(lr=0.05, amsgrad=true)", lambda t, p: t.optim.Adam(p, lr=0.05, amsgrad=True)),
    (
        "adam(lr=0.05, beta2=0.9, weight_decay=0.01, amsgrad=true)",
        lambda t, p: t.optim.Adam(p, lr=0.05, betas=(0.9, 0.9), weight_decay=0.01, amsgrad=True),
    ),
    # beta2=0.9: the second moment falls within 10 steps, so its maximum differs from it
    (
        "adamw(lr=0.05, beta2=0.9, amsgrad=true)",
        lambda t, p: t.optim.AdamW(p, lr=0.05, betas=(0.9, 0.9), amsgrad=True),
    ),
]


@pytest.mark.parametrize("opt,make", CASES, ids=[c[0] for c in CASES])
def test_every_parameter_and_slot_matches_torch_optim_over_ten_steps(opt, make):
    c, states = ours(opt)
    params = torch_params(c)
    optim = make(torch, params)
    for i, ((x, t), state) in enumerate(zip(batches(), states, strict=True), 1):
        optim.zero_grad()
        forward(*params, x, t).backward()
        optim.step()
        assert_params(c, state, params, i)
        for slot in c.interface.slots:
            key = TORCH_STATE[slot.removeprefix("optimizer.")]
            want = np.concatenate([optim.state[p][key].numpy().ravel() for p in params])
            np.testing.assert_allclose(
                state[slot], want, rtol=TOL, atol=TOL, err_msg=f"{slot} after step {i}"
            )


def test_the_adagrad_accumulator_starts_at_its_initial_value_and_the_slots_follow_the_settings():
    c = compiled("adagrad(initial_accumulator_value=0.25)").training("step")
    assert c.interface.slots == ["optimizer.sum"]
    np.testing.assert_array_equal(
        c.initial["optimizer.sum"], np.full(5 * 7 + 7 + 7 * 3 + 3, 0.25, np.float32)
    )
    for opt, slots in [
        ("rmsprop()", ["square_avg"]),
        ("rmsprop(centered=true)", ["square_avg", "grad_avg"]),
        ("rmsprop(momentum=0.5, centered=true)", ["square_avg", "grad_avg", "momentum"]),
        ("adam(amsgrad=true)", ["m", "v", "v_max"]),
        ("adamw(amsgrad=true)", ["m", "v", "v_max"]),
        ("sgd(momentum=0.9, dampening=0.1)", ["momentum"]),
        ("lion()", ["m"]),
    ]:
        got = compiled(opt).training("step").interface.slots
        assert got == [f"optimizer.{s}" for s in slots], opt


def lion_numpy(p, g, m, lr, b1, b2, wd):
    """The paper's update (Chen et al. 2023, Algorithm 2) in float32."""
    f = np.float32
    c = f(b1) * m + f(1 - b1) * g
    p = p - f(lr) * (np.sign(c) + f(wd) * p)
    return p, f(b2) * m + f(1 - b2) * g


LION = [
    ("lion()", dict(lr=1e-4, b1=0.9, b2=0.99, wd=0.0)),
    ("lion(lr=0.01, beta1=0.8, beta2=0.9, weight_decay=0.5)", dict(lr=0.01, b1=0.8, b2=0.9, wd=0.5)),
]


@pytest.mark.parametrize("opt,h", LION, ids=[c[0] for c in LION])
def test_lion_matches_the_papers_rule_in_numpy_over_torchs_gradients(opt, h):
    c, states = ours(opt)
    assert c.interface.settings == {
        "lr": h["lr"],
        "beta1": h["b1"],
        "beta2": h["b2"],
        "weight_decay": h["wd"],
    }
    params = torch_params(c)
    m = [np.zeros(p.shape, np.float32) for p in params]
    for i, ((x, t), state) in enumerate(zip(batches(), states, strict=True), 1):
        for p in params:
            p.grad = None
        forward(*params, x, t).backward()
        with torch.no_grad():
            for k, p in enumerate(params):
                new_p, m[k] = lion_numpy(p.numpy(), p.grad.numpy(), m[k], **h)
                p.copy_(torch.from_numpy(new_p))
        assert_params(c, state, params, i)
        flat_m = np.concatenate([mk.ravel() for mk in m])
        np.testing.assert_allclose(
            state["optimizer.m"], flat_m, rtol=TOL, atol=TOL, err_msg=f"m after step {i}"
        )


def test_lion_is_the_papers_rule_on_the_step_models_own_gradients():
    """Each step from the state it started at, with the gradients model's gradients: the rule alone."""
    h = dict(lr=0.01, b1=0.8, b2=0.9, wd=0.5)
    model = compiled("lion(lr=0.01, beta1=0.8, beta2=0.9, weight_decay=0.5)")
    c, grads = model.training("step"), model.training("grads")
    st = Stepper(c.to_onnx().SerializeToString(), c.initial)
    sess = ort.InferenceSession(grads.to_onnx().SerializeToString(), providers=["CPUExecutionProvider"])
    params = c.interface.params
    for i, (x, t) in enumerate(batches(), 1):
        before = st.state()
        out = sess.run(None, {"x": x, "t": t, **{p: before[p] for p in params}})
        g = dict(zip([o.name for o in sess.get_outputs()], out, strict=True))
        st.run({"x": x, "t": t, "lr": np.array(h["lr"], np.float32), "step": np.array(i)})
        after = st.state()
        flat = lambda d, prefix="": np.concatenate([d[prefix + p].ravel() for p in params])
        want_p, want_m = lion_numpy(flat(before), flat(g, "grad/"), before["optimizer.m"], **h)
        np.testing.assert_allclose(after["optimizer.m"], want_m, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(flat(after), want_p, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "opt,message,hint",
    [
        ("rmsprop(alpha=1)", "setting 'alpha' of 'rmsprop' must be in [0, 1), got 1", None),
        ("rmsprop(momentum=-0.5)", "setting 'momentum' of 'rmsprop' must be in [0, 1), got -0.5", None),
        ("rmsprop(eps=-1e-8)", "setting 'eps' of 'rmsprop' must be >= 0, got -1e-08", None),
        ("rmsprop(centred=true)", "'rmsprop' has no setting 'centred'", "did you mean 'centered'?"),
        ("rmsprop(centered=1)", "setting 'centered' of 'rmsprop'", None),
        ("adagrad(lr_decay=-0.1)", "setting 'lr_decay' of 'adagrad' must be >= 0, got -0.1", None),
        (
            "adagrad(initial_accumulator_value=-1)",
            "setting 'initial_accumulator_value' of 'adagrad' must be >= 0, got -1",
            None,
        ),
        ("adagrad(weight_decay=-1)", "setting 'weight_decay' of 'adagrad' must be >= 0, got -1", None),
        ("adagrad(eps=-1)", "setting 'eps' of 'adagrad' must be >= 0, got -1", None),
        ("adagrad(initial_accumulator=0.1)", "'adagrad' has no setting 'initial_accumulator'", None),
        ("sgd(momentum=0.9, dampening=1.5)", "setting 'dampening' of 'sgd' must be in [0, 1], got 1.5", None),
        (
            "sgd(momentum=0.9, dampening=-0.1)",
            "setting 'dampening' of 'sgd' must be in [0, 1], got -0.1",
            None,
        ),
        ("sgd(momentum=0.9, nesterov=true, dampening=0.1)", "sgd(nesterov=true) needs zero dampening", None),
        ("adam(amsgrad=1)", "setting 'amsgrad' of 'adam'", None),
        ("adamw(amsgrd=true)", "'adamw' has no setting 'amsgrd'", "did you mean 'amsgrad'?"),
        ("lion(beta1=1)", "setting 'beta1' of 'lion' must be in [0, 1), got 1", None),
        ("lion(beta2=-0.1)", "setting 'beta2' of 'lion' must be in [0, 1), got -0.1", None),
        ("lion(lr=-1)", "setting 'lr' of 'lion' must be >= 0, got -1", None),
        ("lion(weight_decay=-1)", "setting 'weight_decay' of 'lion' must be >= 0, got -1", None),
        ("lino(lr=0.1)", "unknown optimizer 'lino'", "did you mean 'lion'?"),
        ("rmsprp()", "unknown optimizer 'rmsprp'", "did you mean 'rmsprop'?"),
    ],
)
def test_bad_option_values_are_nngraph_errors(opt, message, hint):
    with pytest.raises(NNError) as e:
        compiled(opt).train_spec()
    assert message in e.value.message, e.value.render()
    if hint is not None:
        assert e.value.hint == hint, e.value.render()
    assert e.value.span is not None, e.value.render()
