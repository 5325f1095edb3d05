"""Values an expression evaluates to, and the checked conversion of call arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nngraph.errors import NNError, Span, nearest
from nngraph.layers.args import ArgSpec, Symbol
from nngraph.layers.init import INITS


@dataclass(frozen=True)
class Tensor:
    node: str


@dataclass
class LayerValue:
    """A layer (built-in or block) with its arguments bound, maybe waiting for its input tensors.

    Applying the same LayerValue twice reuses its parameters: that is how weights are shared.
    """

    callee: Any  # LayerDef or ast.BlockDef
    kind: str
    span: Span
    tensors: list[Tensor] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # instance path, given at first application or by assignment
    word: str | None = None  # the bare name it came from, when it came from one


def describe(v: Any) -> str:
    if isinstance(v, Tensor):
        return "a tensor"
    if isinstance(v, LayerValue):
        return f"the layer '{v.kind}'"
    if isinstance(v, Symbol):
        return f"the name '{v.name}'"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, int):
        return f"the integer {v}"
    if isinstance(v, float):
        return f"the number {v}"
    if isinstance(v, str):
        return f'the string "{v}"'
    if isinstance(v, list):
        return "an empty list" if not v else "a list"
    return type(v).__name__


_KIND_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a word or string",
    "ints": "an integer or a list of integers",
    "padding": "an integer, a list of integers, same or valid",
    "shape": "a list of dims (integers, -1, or dim names)",
    "init": "one of " + ", ".join(INITS),
    "layer": "a named layer applied above, such as emb after emb = embedding(...)",
}


def kind_words(kind: str) -> str:
    if kind.startswith("choice:"):
        return "one of " + ", ".join(kind[7:].split("|"))
    return _KIND_WORDS.get(kind, kind)


def _word(v: Any) -> str | None:
    if isinstance(v, Symbol):
        return v.name
    if isinstance(v, str):
        return v
    if isinstance(v, LayerValue) and v.word is not None and not v.tensors:
        return v.word
    return None


_LIMITS = {
    ">= 0": lambda v: v >= 0,
    "> 0": lambda v: v > 0,
    ">= 1": lambda v: v >= 1,
    "in [0, 1)": lambda v: 0 <= v < 1,
    "in [0, 1]": lambda v: 0 <= v <= 1,
}


def _within(spec: ArgSpec, v: float, span: Span, owner: str) -> Any:
    if spec.limit is not None and not _LIMITS[spec.limit](v):
        raise NNError(
            f"argument '{spec.name}' of {owner} must be {spec.limit}, got {v:g}",
            span,
            expected=f"{spec.name} {spec.limit}",
        )
    return v


def convert(spec: ArgSpec, v: Any, span: Span, owner: str) -> Any:
    """Check one argument against its kind and return its Python value."""

    def bad() -> NNError:
        if isinstance(v, Symbol) and spec.kind in ("int", "float", "ints", "bool"):
            return NNError(
                f"undefined name '{v.name}' in argument '{spec.name}' of {owner}",
                span,
                expected=kind_words(spec.kind),
            )
        return NNError(
            f"argument '{spec.name}' of {owner} must be {kind_words(spec.kind)}, got {describe(v)}",
            span,
            expected=kind_words(spec.kind),
        )

    k = spec.kind
    if k == "int":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
            raise bad()
        return _within(spec, int(v), span, owner)
    if k == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad()
        return _within(spec, float(v), span, owner)
    if k == "bool":
        if not isinstance(v, bool):
            err = bad()
            if isinstance(v, Symbol) and v.name.lower() in ("true", "false"):
                err.hint = f"did you mean '{v.name.lower()}'? (.nn writes true and false in lower case)"
            raise err
        return v
    if k == "ints":
        items = v if isinstance(v, list) else [v]
        if not items or any(isinstance(i, bool) or not isinstance(i, int) for i in items):
            raise bad()
        return list(items) if isinstance(v, list) else int(v)
    if k == "padding":
        w = _word(v)
        if w is not None:
            if w not in ("same", "valid"):
                err = NNError(f"unknown padding '{w}' for {owner}", span, expected="same, valid, or integers")
                raise err.suggest(w, ["same", "valid"])
            return w
        return convert(ArgSpec(spec.name, "ints"), v, span, owner)
    if k == "shape":
        if not isinstance(v, list) or not v:
            raise bad()
        out = []
        for i in v:
            if isinstance(i, Symbol):
                out.append(i)
            elif isinstance(i, int) and not isinstance(i, bool):
                out.append(i)
            else:
                raise bad()
        return out
    if k == "layer":
        if not isinstance(v, LayerValue) or v.name is None:
            raise bad()
        return v.name
    if k == "str" or k == "init" or k.startswith("choice:"):
        w = _word(v)
        if w is None:
            raise bad()
        options = INITS if k == "init" else (k[7:].split("|") if k.startswith("choice:") else None)
        if options is not None and w not in options:
            err = NNError(
                f"unknown value '{w}' for argument '{spec.name}' of {owner}", span, expected=kind_words(k)
            )
            best = nearest(w, options)
            if best:
                err.hint = f"did you mean '{best}'?"
            raise err
        return w
    raise AssertionError(f"unknown argument kind {k}")
