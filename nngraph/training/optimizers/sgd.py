"""SGD with optional momentum, Nesterov momentum and L2 weight decay, as torch.optim.SGD."""

from __future__ import annotations

from typing import Any

from nngraph.errors import NNError
from nngraph.training.optimizers.base import Optimizer, Slot, Update, UpdateEmitter, register
from nngraph.training.settings import AT_LEAST_0, FRACTION, Arg, Setting


def _rule(e: UpdateEmitter, u: Update, s: dict[str, Any]) -> tuple[str, dict[str, str]]:
    g = u.grad
    if s["weight_decay"]:
        g = e.op("add", [g, e.op("mul", [u.param, e.const(s["weight_decay"])])])
    new_state = {}
    if s["momentum"]:
        buf = e.op("add", [e.op("mul", [u.state["momentum"], e.const(s["momentum"])]), g])
        # torch starts the buffer at the first gradient; a zero buffer times momentum gives the same
        new_state["momentum"] = buf
        g = e.op("add", [g, e.op("mul", [buf, e.const(s["momentum"])])]) if s["nesterov"] else buf
    return e.op("sub", [u.param, e.op("mul", [g, u.lr])]), new_state


def _check(s: Setting) -> None:
    if s.args["nesterov"] and not s.args["momentum"]:
        raise NNError(
            "sgd(nesterov=true) needs a momentum", s.spans.get("nesterov", s.span), expected="momentum > 0"
        )


SGD = register(
    Optimizer(
        "sgd",
        args=(
            Arg("lr", 0.01, AT_LEAST_0),
            Arg("momentum", 0.0, FRACTION),
            Arg("nesterov", False),
            Arg("weight_decay", 0.0, AT_LEAST_0),
        ),
        slots=(Slot("momentum", when=lambda s: bool(s["momentum"])),),  # plain SGD keeps no state
        rule=_rule,
        check=_check,
    )
)
