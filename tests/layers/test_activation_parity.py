"""The activations of issue 15 against torch.nn with the module's own defaults: the forward to 1e-5
and every gradient (the input's, and prelu's slope) to 1e-4 in f32, run in onnxruntime. Each
input holds the kink points (0, 6, ±1, ±3, softplus's threshold), where the gradient must take
PyTorch's value, next to random values."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.autodiff.backward import backward
from nngraph.core.types import TensorType
from nngraph.errors import NNError
from nngraph.onnx.lower import check, lower

torch = pytest.importorskip("torch")
nn = torch.nn

SHAPE = (3, 4, 6)  # [batch, channels, length]
KINKS = [0.0, 6.0, -1.0, 1.0, -3.0, 3.0, 20.0, 2.0, -0.5, -6.0, 1e-3, -1e-3]


def sample(shape=SHAPE, seed: int = 0) -> np.ndarray:
    x = 3 * np.random.default_rng(seed).standard_normal(shape)
    x.flat[: len(KINKS)] = KINKS
    return x.astype(np.float32)


def run(call: str, x: np.ndarray):
    """y = x | call, loss = sum(y * r): nngraph's y and gradients, from onnxruntime."""
    dims = ", ".join(["batch", *map(str, x.shape[1:])])
    m = ng.compile_source(f"model M {{\n    input x: f32[{dims}]\n    output y = x | {call}\n}}")
    g = m.graph
    y = g.outputs["y"]
    yt = g.type(y)
    r = np.random.default_rng(1).standard_normal([x.shape[0], *yt.shape[1:]]).astype(np.float32)
    rn = g.add("r", "input", [], yt, None)
    prod = g.add("prod", "mul", [y, rn], yt, None, {})
    loss = g.add("loss", "reduce_sum", [prod], TensorType("f32", ()), None, {"axes": None, "keepdims": 0})
    params = g.params(trainable=True)
    wrt = [*params, "x"]
    grads = backward(g, loss, wrt)
    values = {p: g.node(p)["value"] for p in params}
    g.inputs = ["x", rn]
    g.outputs = {"y": y, **{f"grad/{w}": grads[w] for w in wrt}}
    g.prune()
    model = lower(g, g.inputs + params)
    check(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip(g.outputs, sess.run(None, {"x": x, "r": r, **values}), strict=True))
    return got, values, r


def torch_run(module, x: np.ndarray, r: np.ndarray):
    xt = torch.tensor(x, requires_grad=True)
    out = module(xt)
    (out * torch.tensor(r)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), {n: p.grad.numpy() for n, p in module.named_parameters()}


def close(a, b, tol: float, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol, err_msg=what)


CASES = [
    ("relu6", lambda: nn.ReLU6()),
    ("clip", lambda: nn.Hardtanh()),
    ("clip(min=-3, max=6)", lambda: nn.Hardtanh(-3.0, 6.0)),
    ("hardsigmoid", lambda: nn.Hardsigmoid()),
    ("hardswish", lambda: nn.Hardswish()),
    ("elu", lambda: nn.ELU()),
    ("elu(alpha=0.5)", lambda: nn.ELU(alpha=0.5)),
    ("selu", lambda: nn.SELU()),
    ("celu", lambda: nn.CELU()),
    ("celu(alpha=2.0)", lambda: nn.CELU(alpha=2.0)),
    ("softplus", lambda: nn.Softplus()),
    ("softplus(beta=2, threshold=4)", lambda: nn.Softplus(beta=2.0, threshold=4.0)),
    ("mish", lambda: nn.Mish()),
    ("softsign", lambda: nn.Softsign()),
    ("glu", lambda: nn.GLU()),
    ("glu(axis=1)", lambda: nn.GLU(dim=1)),
    ("prelu", lambda: nn.PReLU()),
    ("prelu(num_parameters=4)", lambda: nn.PReLU(num_parameters=4)),
    ("prelu(num_parameters=4, init=0.1)", lambda: nn.PReLU(num_parameters=4, init=0.1)),
]


@pytest.mark.parametrize("call,module", CASES, ids=[c for c, _ in CASES])
def test_activation_matches_torch(call, module):
    x = sample()
    got, values, r = run(call, x)
    net = module()
    with torch.no_grad():  # the slope starts where torch's does; copying it keeps the check exact
        for name, p in net.named_parameters():
            close(values[f"prelu_1.{name}"], p.numpy(), 0, f"initial {name}")
    y, gx, gp = torch_run(net, x, r)
    close(got["y"], y, 1e-5, f"{call} forward")
    close(got["grad/x"], gx, 1e-4, f"{call} d/dx")
    assert len(values) == len(gp)
    for name, grad in gp.items():
        close(got[f"grad/prelu_1.{name}"], grad, 1e-4, f"{call} d/d{name}")


def test_prelu_counts_one_slope_per_channel():
    with pytest.raises(NNError, match=r"prelu\(num_parameters=3\) has 3 slopes but f32\[batch,4,6\] has 4"):
        run("prelu(num_parameters=3)", sample())


def test_glu_needs_an_even_axis():
    with pytest.raises(NNError, match=r"'glu' splits axis 1 of f32\[batch,3\] in halves, but its size is 3"):
        run("glu(axis=1)", sample((2, 3)))


def test_clip_needs_min_below_max():
    with pytest.raises(NNError, match="'clip' needs min < max, got min=1, max=-1"):
        run("clip(min=1, max=-1)", sample())
