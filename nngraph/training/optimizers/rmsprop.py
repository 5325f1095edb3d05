"""RMSprop with optional momentum, centering and L2 weight decay, as torch.optim.RMSprop:
eps is added to the root of the (centered) square average, outside the square root."""

from __future__ import annotations

from typing import Any

from nngraph.training.optimizers.base import Optimizer, Slot, Update, UpdateEmitter, register
from nngraph.training.settings import AT_LEAST_0, FRACTION, Arg


def _ema(e: UpdateEmitter, old: str, new: str, keep: float) -> str:
    """keep * old + (1 - keep) * new"""
    return e.op("add", [e.op("mul", [old, e.const(keep)]), e.op("mul", [new, e.const(1 - keep)])])


def _rule(e: UpdateEmitter, u: Update, s: dict[str, Any]) -> tuple[str, dict[str, str]]:
    g = u.grad
    if s["weight_decay"]:
        g = e.op("add", [g, e.op("mul", [u.param, e.const(s["weight_decay"])])])
    square_avg = _ema(e, u.state["square_avg"], e.op("mul", [g, g]), s["alpha"])
    new_state = {"square_avg": square_avg}
    variance = square_avg
    if s["centered"]:  # the running variance: the square average less the square of the mean
        grad_avg = new_state["grad_avg"] = _ema(e, u.state["grad_avg"], g, s["alpha"])
        variance = e.op("sub", [square_avg, e.op("mul", [grad_avg, grad_avg])])
    step = e.op("div", [g, e.op("add", [e.op("sqrt", [variance]), e.const(s["eps"])])])
    if s["momentum"]:
        step = new_state["momentum"] = e.op(
            "add", [e.op("mul", [u.state["momentum"], e.const(s["momentum"])]), step]
        )
    return e.op("sub", [u.param, e.op("mul", [step, u.lr])]), new_state


RMSPROP = register(
    Optimizer(
        "rmsprop",
        args=(
            Arg("lr", 0.01, AT_LEAST_0),
            Arg("alpha", 0.99, FRACTION),
            Arg("eps", 1e-8, AT_LEAST_0),
            Arg("momentum", 0.0, FRACTION),
            Arg("centered", False),
            Arg("weight_decay", 0.0, AT_LEAST_0),
        ),
        slots=(
            Slot("square_avg"),  # the running average of the squared gradient
            Slot("grad_avg", when=lambda s: bool(s["centered"])),  # and of the gradient, to center it
            Slot("momentum", when=lambda s: bool(s["momentum"])),  # the momentum buffer of the scaled steps
        ),
        rule=_rule,
    )
)
