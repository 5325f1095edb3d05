"""Learning-rate schedules: the rate is an input of the step model, so changing it needs no recompilation."""

from __future__ import annotations

import math

from nngraph.training.spec import Setting


def learning_rate(base: float, schedule: Setting, step: int, epoch: int, total_steps: int) -> float:
    """The rate for global step `step` (1-based) in epoch `epoch` (0-based)."""
    a = schedule.args
    name = schedule.name
    if name == "constant":
        return base
    if name == "step":
        return base * a["gamma"] ** (epoch // max(1, int(a["every"])))
    if name == "cosine":
        t = min(1.0, (step - 1) / max(1, total_steps))
        return a["min_lr"] + (base - a["min_lr"]) * 0.5 * (1 + math.cos(math.pi * t))
    warm = max(1, int(a["steps"]))
    if step <= warm:
        return base * step / warm
    if name == "warmup":
        return base
    t = min(1.0, (step - warm) / max(1, total_steps - warm))  # warmup_cosine
    return a["min_lr"] + (base - a["min_lr"]) * 0.5 * (1 + math.cos(math.pi * t))
