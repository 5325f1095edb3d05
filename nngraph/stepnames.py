"""The output names of the training-step and gradients-only models (README, "The training-step
model"): the one place they are spelled, shared by the compiler that writes them and the runtime
that reads them (so: no imports but the standard library)."""

from __future__ import annotations

NEXT = "next/"
GRAD = "grad/"


def next_name(state: str) -> str:
    """The output holding the new value of a parameter, buffer or optimizer slot."""
    return NEXT + state


def grad_name(param: str) -> str:
    """The gradients-only model's output holding a parameter's gradient."""
    return GRAD + param


def state_of(output: str) -> str | None:
    """The parameter, buffer or slot a `next/` output advances; None for other outputs."""
    return output[len(NEXT) :] if output.startswith(NEXT) else None
