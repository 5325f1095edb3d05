"""Adagrad with learning-rate decay and L2 weight decay, as torch.optim.Adagrad: the accumulator
starts at `initial_accumulator_value`, and step t runs at lr / (1 + (t - 1) * lr_decay)."""

from __future__ import annotations

from typing import Any

from nngraph.training.optimizers.base import Optimizer, Slot, Update, UpdateEmitter, register
from nngraph.training.settings import AT_LEAST_0, Arg


def _rule(e: UpdateEmitter, u: Update, s: dict[str, Any]) -> tuple[str, dict[str, str]]:
    g = u.grad
    if s["weight_decay"]:
        g = e.op("add", [g, e.op("mul", [u.param, e.const(s["weight_decay"])])])
    lr = u.lr
    if s["lr_decay"]:
        decay = e.op("mul", [e.op("sub", [u.step, e.const(1.0)]), e.const(s["lr_decay"])])
        lr = e.op("div", [lr, e.op("add", [e.const(1.0), decay])])
    total = e.op("add", [u.state["sum"], e.op("mul", [g, g])])
    std = e.op("add", [e.op("sqrt", [total]), e.const(s["eps"])])
    return e.op("sub", [u.param, e.op("mul", [e.op("div", [g, std]), lr])]), {"sum": total}


ADAGRAD = register(
    Optimizer(
        "adagrad",
        args=(
            Arg("lr", 0.01, AT_LEAST_0),
            Arg("lr_decay", 0.0, AT_LEAST_0),
            Arg("weight_decay", 0.0, AT_LEAST_0),
            Arg("initial_accumulator_value", 0.0, AT_LEAST_0),
            Arg("eps", 1e-10, AT_LEAST_0),
        ),
        slots=(Slot("sum", start="initial_accumulator_value"),),  # the sum of squared gradients
        rule=_rule,
    )
)
