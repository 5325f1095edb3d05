"""Adam (L2 weight decay added to the gradient) and AdamW (decoupled decay), as torch.optim.Adam
and AdamW: one rule, the decay applied one way or the other; amsgrad=true divides by the running
maximum of the second moment (slot `v_max`), as torch does."""

from __future__ import annotations

from typing import Any

from nngraph.training.optimizers.base import Optimizer, Slot, Update, UpdateEmitter, register
from nngraph.training.settings import AT_LEAST_0, FRACTION, Arg


def _rule(e: UpdateEmitter, u: Update, s: dict[str, Any], decoupled: bool) -> tuple[str, dict[str, str]]:
    p, g = u.param, u.grad
    b1, b2 = s["beta1"], s["beta2"]
    if s["weight_decay"] and not decoupled:
        g = e.op("add", [g, e.op("mul", [p, e.const(s["weight_decay"])])])
    if s["weight_decay"] and decoupled:
        p = e.op("mul", [p, e.op("sub", [e.const(1.0), e.op("mul", [u.lr, e.const(s["weight_decay"])])])])
    m = e.op("add", [e.op("mul", [u.state["m"], e.const(b1)]), e.op("mul", [g, e.const(1 - b1)])])
    v = e.op(
        "add", [e.op("mul", [u.state["v"], e.const(b2)]), e.op("mul", [e.op("mul", [g, g]), e.const(1 - b2)])]
    )
    # bias corrections 1 - beta^t, from the step input
    bc1 = e.op("sub", [e.const(1.0), e.op("pow", [e.const(b1), u.step])])
    bc2 = e.op("sub", [e.const(1.0), e.op("pow", [e.const(b2), u.step])])
    new_state = {"m": m, "v": v}
    if s["amsgrad"]:  # torch: max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq), bias-corrected as v is
        v = new_state["v_max"] = e.op("maximum", [u.state["v_max"], v])
    denom = e.op("add", [e.op("div", [e.op("sqrt", [v]), e.op("sqrt", [bc2])]), e.const(s["eps"])])
    step = e.op("div", [e.op("mul", [m, e.op("div", [u.lr, bc1])]), denom])
    return e.op("sub", [p, step]), new_state


def _args(weight_decay: float) -> tuple[Arg, ...]:
    return (
        Arg("lr", 1e-3, AT_LEAST_0),
        Arg("beta1", 0.9, FRACTION),
        Arg("beta2", 0.999, FRACTION),
        Arg("eps", 1e-8, AT_LEAST_0),
        Arg("weight_decay", weight_decay, AT_LEAST_0),
        Arg("amsgrad", False),
    )


# first and second moments, and with amsgrad the largest second moment so far
_SLOTS = (Slot("m"), Slot("v"), Slot("v_max", when=lambda s: bool(s["amsgrad"])))
ADAM = register(Optimizer("adam", _args(0.0), _SLOTS, lambda e, u, s: _rule(e, u, s, decoupled=False)))
ADAMW = register(Optimizer("adamw", _args(0.01), _SLOTS, lambda e, u, s: _rule(e, u, s, decoupled=True)))
