"""Optimizer updates as graph nodes: the whole update of a step lives in the ONNX model.

Each function takes a parameter, its gradient and the step's learning rate and
step count (graph nodes), adds the update nodes through `op`, and returns the
new parameter and the new values of its state slots. The formulas are
PyTorch's (torch.optim.SGD, Adam, AdamW), so losses match step for step.
"""

from __future__ import annotations

from collections.abc import Callable

Op = Callable[..., str]  # op(name, inputs, **attrs) -> node
Const = Callable[[float], str]

SLOTS = {"sgd": ("momentum",), "adam": ("m", "v"), "adamw": ("m", "v")}


def slots(name: str, settings: dict) -> tuple[str, ...]:
    if name == "sgd" and not settings["momentum"]:
        return ()
    return SLOTS[name]


def sgd(
    op: Op, c: Const, p: str, g: str, state: dict[str, str], lr: str, t: str, s: dict
) -> tuple[str, dict[str, str]]:
    if s["weight_decay"]:
        g = op("add", [g, op("mul", [p, c(s["weight_decay"])])])
    new_state = {}
    if s["momentum"]:
        buf = op("add", [op("mul", [state["momentum"], c(s["momentum"])]), g])
        # torch starts the buffer at the first gradient; a zero buffer times momentum gives the same
        new_state["momentum"] = buf
        g = op("add", [g, op("mul", [buf, c(s["momentum"])])]) if s["nesterov"] else buf
    return op("sub", [p, op("mul", [g, lr])]), new_state


def adam(
    op: Op, c: Const, p: str, g: str, state: dict[str, str], lr: str, t: str, s: dict, decoupled: bool = False
) -> tuple[str, dict[str, str]]:
    b1, b2 = s["beta1"], s["beta2"]
    if s["weight_decay"] and not decoupled:
        g = op("add", [g, op("mul", [p, c(s["weight_decay"])])])
    if s["weight_decay"] and decoupled:
        p = op("mul", [p, op("sub", [c(1.0), op("mul", [lr, c(s["weight_decay"])])])])
    m = op("add", [op("mul", [state["m"], c(b1)]), op("mul", [g, c(1 - b1)])])
    v = op("add", [op("mul", [state["v"], c(b2)]), op("mul", [op("mul", [g, g]), c(1 - b2)])])
    # bias corrections 1 - beta^t, from the step input
    bc1 = op("sub", [c(1.0), op("pow", [c(b1), t])])
    bc2 = op("sub", [c(1.0), op("pow", [c(b2), t])])
    denom = op("add", [op("div", [op("sqrt", [v]), op("sqrt", [bc2])]), c(s["eps"])])
    step = op("div", [op("mul", [m, op("div", [lr, bc1])]), denom])
    return op("sub", [p, step]), {"m": m, "v": v}


def update(name: str, *args, **kw):
    if name == "sgd":
        return sgd(*args, **kw)
    return adam(*args, decoupled=(name == "adamw"), **kw)
