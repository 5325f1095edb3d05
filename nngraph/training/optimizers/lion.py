"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2):
the sign of an interpolation of momentum and gradient, with decoupled weight decay.

    c = beta1 * m + (1 - beta1) * g
    p = p - lr * (sign(c) + weight_decay * p)
    m = beta2 * m + (1 - beta2) * g
"""

from __future__ import annotations

from typing import Any

from nngraph.training.optimizers.base import Optimizer, Slot, Update, UpdateEmitter, register
from nngraph.training.settings import AT_LEAST_0, FRACTION, Arg


def _ema(e: UpdateEmitter, old: str, new: str, keep: float) -> str:
    """keep * old + (1 - keep) * new"""
    return e.op("add", [e.op("mul", [old, e.const(keep)]), e.op("mul", [new, e.const(1 - keep)])])


def _rule(e: UpdateEmitter, u: Update, s: dict[str, Any]) -> tuple[str, dict[str, str]]:
    m = u.state["m"]
    direction = e.op("sign", [_ema(e, m, u.grad, s["beta1"])])
    if s["weight_decay"]:
        direction = e.op("add", [direction, e.op("mul", [u.param, e.const(s["weight_decay"])])])
    new_p = e.op("sub", [u.param, e.op("mul", [direction, u.lr])])
    return new_p, {"m": _ema(e, m, u.grad, s["beta2"])}


LION = register(
    Optimizer(
        "lion",
        args=(
            Arg("lr", 1e-4, AT_LEAST_0),
            Arg("beta1", 0.9, FRACTION),
            Arg("beta2", 0.99, FRACTION),
            Arg("weight_decay", 0.0, AT_LEAST_0),
        ),
        slots=(Slot("m"),),  # the momentum, an average of the gradients at rate beta2
        rule=_rule,
    )
)
