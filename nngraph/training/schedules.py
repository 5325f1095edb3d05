"""Learning-rate schedules, one small unit each: the arguments and the rate at a step.

The rate is an input of the step model, so the trainer evaluates the schedule per batch and
changing it needs no recompilation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nngraph.training.settings import ABOVE_0, AT_LEAST_0, AT_LEAST_1, Arg, Setting

#: rate(base, settings, step, epoch, total_steps): the rate for global step `step` (1-based)
#: in epoch `epoch` (0-based) of a run of `total_steps` batches, from the optimizer's lr `base`.
Rate = Callable[[float, dict[str, Any], int, int, int], float]


@dataclass(frozen=True)
class Schedule:
    """A schedule as the `schedule = NAME(...)` setting names it."""

    name: str
    args: tuple[Arg, ...]
    rate: Rate


#: Every schedule by name, in the order messages list them.
SCHEDULES: dict[str, Schedule] = {}


def register(s: Schedule) -> Schedule:
    """Make `s` available to train sections."""
    if s.name in SCHEDULES:
        raise ValueError(f"schedule '{s.name}' is registered twice")
    SCHEDULES[s.name] = s
    return s


def schedule(name: str, *args: Arg) -> Callable[[Rate], Rate]:
    """Register the decorated rate function as schedule `name`, taking `args`."""

    def add(rate: Rate) -> Rate:
        register(Schedule(name, args, rate))
        return rate

    return add


def learning_rate(base: float, schedule: Setting, step: int, epoch: int, total_steps: int) -> float:
    """The rate for global step `step` (1-based) in epoch `epoch` (0-based)."""
    return SCHEDULES[schedule.name].rate(base, schedule.args, step, epoch, total_steps)


def _cosine_from(base: float, min_lr: float, t: float) -> float:
    """From base at t=0 down to min_lr at t=1, as CosineAnnealingLR."""
    return min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * t))


def _warmup_steps(a: dict[str, Any]) -> int:
    return max(1, int(a["steps"]))


@schedule("constant")
def _constant(base: float, a: dict[str, Any], step: int, epoch: int, total: int) -> float:
    return base


@schedule("step", Arg("every", 10, AT_LEAST_1), Arg("gamma", 0.1, ABOVE_0))
def _step(base: float, a: dict[str, Any], step: int, epoch: int, total: int) -> float:
    return base * a["gamma"] ** (epoch // max(1, int(a["every"])))  # every N epochs


@schedule("cosine", Arg("min_lr", 0.0, AT_LEAST_0))
def _cosine(base: float, a: dict[str, Any], step: int, epoch: int, total: int) -> float:
    return _cosine_from(base, a["min_lr"], min(1.0, (step - 1) / max(1, total)))  # over the whole run


@schedule("warmup", Arg("steps", 100, AT_LEAST_0))
def _warmup(base: float, a: dict[str, Any], step: int, epoch: int, total: int) -> float:
    warm = _warmup_steps(a)  # linear warmup over N steps, then constant
    return base * step / warm if step <= warm else base


@schedule("warmup_cosine", Arg("steps", 100, AT_LEAST_0), Arg("min_lr", 0.0, AT_LEAST_0))
def _warmup_cosine(base: float, a: dict[str, Any], step: int, epoch: int, total: int) -> float:
    warm = _warmup_steps(a)
    if step <= warm:
        return base * step / warm
    return _cosine_from(base, a["min_lr"], min(1.0, (step - warm) / max(1, total - warm)))
