"""SGD with optional momentum, dampening, Nesterov momentum and L2 weight decay, as torch.optim.SGD."""

from __future__ import annotations

from typing import Any

from nngraph.errors import NNError
from nngraph.training.optimizers.base import Optimizer, Slot, Update, UpdateEmitter, register
from nngraph.training.settings import AT_LEAST_0, FRACTION, Arg, Limit, Setting

UNIT = Limit(lambda v: 0 <= v <= 1, "in [0, 1]")  # dampening: 1 - dampening scales each later gradient


def _rule(e: UpdateEmitter, u: Update, s: dict[str, Any]) -> tuple[str, dict[str, str]]:
    g = u.grad
    if s["weight_decay"]:
        g = e.op("add", [g, e.op("mul", [u.param, e.const(s["weight_decay"])])])
    new_state = {}
    if s["momentum"]:
        # torch starts the buffer at the first gradient itself, undamped: from a zero buffer that is
        # momentum * 0 + g at step 1, then momentum * buf + (1 - dampening) * g
        scaled = g
        if s["dampening"]:
            later = e.op(
                "minimum", [e.op("sub", [u.step, e.const(1.0)]), e.const(1.0)]
            )  # 0 at step 1, then 1
            scaled = e.op(
                "mul", [g, e.op("sub", [e.const(1.0), e.op("mul", [later, e.const(s["dampening"])])])]
            )
        buf = e.op("add", [e.op("mul", [u.state["momentum"], e.const(s["momentum"])]), scaled])
        new_state["momentum"] = buf
        g = e.op("add", [g, e.op("mul", [buf, e.const(s["momentum"])])]) if s["nesterov"] else buf
    return e.op("sub", [u.param, e.op("mul", [g, u.lr])]), new_state


def _check(s: Setting) -> None:
    if s.args["nesterov"] and not s.args["momentum"]:
        raise NNError(
            "sgd(nesterov=true) needs a momentum", s.spans.get("nesterov", s.span), expected="momentum > 0"
        )
    if s.args["nesterov"] and s.args["dampening"]:
        raise NNError(
            "sgd(nesterov=true) needs zero dampening, as torch.optim.SGD does",
            s.spans.get("dampening", s.span),
            expected="dampening = 0",
        )


SGD = register(
    Optimizer(
        "sgd",
        args=(
            Arg("lr", 0.01, AT_LEAST_0),
            Arg("momentum", 0.0, FRACTION),
            Arg("nesterov", False),
            Arg("weight_decay", 0.0, AT_LEAST_0),
            Arg("dampening", 0.0, UNIT),
        ),
        slots=(Slot("momentum", when=lambda s: bool(s["momentum"])),),  # plain SGD keeps no state
        rule=_rule,
        check=_check,
    )
)
