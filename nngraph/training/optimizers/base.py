"""The optimizer unit: one definition holds an optimizer's arguments, its state slots and its update.

The update runs inside the step model, so a rule adds graph nodes through an `UpdateEmitter`
(the training step hands one over) instead of computing arrays. It sees the parameters
of one dtype as ONE flat vector, and each slot as a flat vector beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from nngraph.training.settings import Arg, Setting


class UpdateEmitter(Protocol):
    """How a rule adds nodes to the training graph (the part of the step's emitter it needs, its
    constants bound to the parameters' dtype); each call returns the new node."""

    def op(self, name: str, inputs: list[str], **attrs: Any) -> str:
        """A node of registered op `name` over `inputs`, its type inferred."""
        ...

    def const(self, value: float) -> str:
        """A scalar in the dtype of the parameters being updated."""
        ...


@dataclass(frozen=True)
class Slot:
    """One piece of optimizer state: a flat vector over the parameters, the step model's input
    `optimizer.NAME` and output `next/optimizer.NAME` (`.f64` etc. appended for other dtypes)."""

    name: str
    start: float | str = 0.0  # every element's value before the first step, or the setting holding it
    when: Callable[[dict[str, Any]], bool] | None = None  # kept only for these settings; None: always


@dataclass(frozen=True)
class Update:
    """The nodes one update reads: the flat parameter and gradient, each slot by name, and the
    step's learning rate and count (1 at the first step), both cast to the parameters' dtype."""

    param: str
    grad: str
    state: dict[str, str]
    lr: str
    step: str


#: rule(emit, update, settings) -> (new parameter, new value of each slot by name)
Rule = Callable[[UpdateEmitter, Update, dict[str, Any]], tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Optimizer:
    """An optimizer as the `optimizer = NAME(...)` setting names it."""

    name: str
    args: tuple[Arg, ...]  # lr first: a positional value sets it, and schedules scale it
    slots: tuple[Slot, ...]
    rule: Rule
    check: Callable[[Setting], None] | None = None  # a mistake across settings, raised as NNError

    def slots_for(self, settings: dict[str, Any]) -> tuple[Slot, ...]:
        """The slots the step model carries for these settings, in declaration order, each start
        that names a setting (adagrad's `initial_accumulator_value`) replaced by its value."""
        kept = (s for s in self.slots if s.when is None or s.when(settings))
        return tuple(
            replace(s, start=float(settings[s.start])) if isinstance(s.start, str) else s for s in kept
        )


#: Every optimizer by name, in the order messages list them ("one of sgd, adam, adamw").
OPTIMIZERS: dict[str, Optimizer] = {}


def register(opt: Optimizer) -> Optimizer:
    """Make `opt` available to train sections."""
    if opt.name in OPTIMIZERS:
        raise ValueError(f"optimizer '{opt.name}' is registered twice")
    if not opt.args or opt.args[0].name != "lr":
        raise ValueError(f"optimizer '{opt.name}' must declare 'lr' as its first argument")
    names = {a.name for a in opt.args}
    for slot in opt.slots:
        if isinstance(slot.start, str) and slot.start not in names:
            raise ValueError(
                f"optimizer '{opt.name}' starts slot '{slot.name}' at an undeclared setting '{slot.start}'"
            )
    OPTIMIZERS[opt.name] = opt
    return opt
