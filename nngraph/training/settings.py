"""Call-like settings such as adam(lr=1e-3), and the arguments a unit declares for them.

Optimizers, schedules and the train section's other call-like settings declare their
arguments as `Arg`s (name, default, limit), so spec.py checks them all one way, with
the same messages, and a new optimizer or schedule brings its own limits along.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nngraph.errors import Span


@dataclass
class Setting:
    """A call-like setting such as adam(lr=1e-3): its name and keyword values."""

    name: str
    args: dict[str, Any]
    span: Span
    spans: dict[str, Span] = field(default_factory=dict)  # where each keyword value was written
    name_spans: dict[str, Span] = field(default_factory=dict)  # and each keyword's name


@dataclass(frozen=True)
class Limit:
    """What a number must be: a test, and the words a message shows ("in [0, 1)")."""

    test: Callable[[float], bool]
    text: str


# The values PyTorch rejects are rejected here too.
AT_LEAST_0 = Limit(lambda v: v >= 0, ">= 0")
AT_LEAST_1 = Limit(lambda v: v >= 1, ">= 1")
ABOVE_0 = Limit(lambda v: v > 0, "> 0")
FRACTION = Limit(lambda v: 0 <= v < 1, "in [0, 1)")  # momentum, Adam's betas


@dataclass(frozen=True)
class Arg:
    """One keyword of a setting. The default's type is the type a value must have (bool, float
    or int; an int setting refuses 1.5, a float one takes 1); a None default takes anything."""

    name: str
    default: Any
    limit: Limit | None = None


def defaults(args: Sequence[Arg]) -> dict[str, Any]:
    """Each argument's default, in declaration order (the order messages and metadata list them)."""
    return {a.name: a.default for a in args}
