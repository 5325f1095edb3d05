"""Running a one-layer .nn model against its torch.nn module: the forward and the gradient of
sum(y * r) for a fixed random r, w.r.t. the input and every parameter, from onnxruntime; and the
same from torch with nngraph's initial parameters copied in. Used by the parity tests of this
folder (`from torch_parity import ...`)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

import nngraph as ng
from nngraph.autodiff.backward import backward
from nngraph.core.types import TensorType
from nngraph.onnx.lower import check, lower


def run(call: str, x: np.ndarray, dims: str | None = None):
    """y = x | call, loss = sum(y * r): ({"y", "grad/x", "grad/PARAM"...}, initial values by param
    name, r). `dims` declares x's dims (default: batch, then x's own sizes)."""
    dims = dims or ", ".join(["batch", *map(str, x.shape[1:])])
    m = ng.compile_source(f"model M {{\n    input x: f32[{dims}]\n    output y = x | {call}\n}}")
    g = m.graph
    y = g.outputs["y"]
    yt = g.type(y)
    shape = [x.shape[i] if not isinstance(d, int) else d for i, d in enumerate(yt.shape)]
    r = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    rn = g.add("r", "input", [], TensorType("f32", yt.shape), None)
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


def compare(torch, module, call: str, x: np.ndarray, dims: str | None = None, instance: str | None = None):
    """nngraph's `x | call` against `module` (its parameters set to nngraph's initial ones, named
    INSTANCE.NAME): the forward to 1e-5, the gradients of x and of every parameter to 1e-4."""
    got, values, r = run(call, x, dims)
    instance = instance or call.split("(")[0] + "_1"
    named = dict(module.named_parameters())
    assert {f"{instance}.{n}" for n in named} == set(values), (sorted(named), sorted(values))
    with torch.no_grad():
        for n, p in named.items():
            assert tuple(p.shape) == values[f"{instance}.{n}"].shape, n
            p.copy_(torch.tensor(values[f"{instance}.{n}"]))
    xt = torch.tensor(x, requires_grad=True)
    out = module(xt)
    (out * torch.tensor(r)).sum().backward()
    close(got["y"], out.detach().numpy(), 1e-5, f"{call} forward")
    close(got["grad/x"], xt.grad.numpy(), 1e-4, f"{call} d/dx")
    for n, p in named.items():
        close(got[f"grad/{instance}.{n}"], p.grad.numpy(), 1e-4, f"{call} d/d{n}")
    return values


def close(a, b, tol: float, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol, err_msg=what)


def sample(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
