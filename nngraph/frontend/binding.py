"""Argument binding: a call's positional and keyword values matched to the layer's or block's
signature, each checked against its kind and converted to the Python value the layer takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nngraph.errors import NNError, Span, nearest
from nngraph.frontend.diagnostics import undefined, unknown_argument
from nngraph.frontend.scope import Scope
from nngraph.frontend.values import LayerValue, Tensor, describe
from nngraph.layers.args import ArgSpec, Symbol, SymDim
from nngraph.layers.init import INITS
from nngraph.layers.registry import LayerDef
from nngraph.syntax import ast

#: evaluates a block parameter's default expression (in an empty scope)
Evaluate = Callable[[ast.Expr, Scope], Any]


def signature(lv: LayerValue) -> tuple[int | None, list[ArgSpec]]:
    """How many input tensors the layer or block takes (None: one or more), and its other arguments."""
    if isinstance(lv.callee, LayerDef):
        return lv.callee.n_tensors, lv.callee.params
    b: ast.BlockDef = lv.callee
    n = sum(1 for p in b.params if (p.type or "tensor") == "tensor")
    specs = [
        ArgSpec(p.name, p.type, p.default, p.default is None)
        for p in b.params
        if (p.type or "tensor") != "tensor"
    ]
    return n, specs


def ready(lv: LayerValue) -> bool:
    """Whether the layer value holds all its input tensors, so a call applies it at once."""
    n, _ = signature(lv)
    return len(lv.tensors) >= 1 if n is None else len(lv.tensors) == n


def bind_args(
    lv: LayerValue,
    pos: list,
    spans: list[Span],
    kws: dict,
    span: Span,
    scope: Scope,
    dims: set[str],
    evaluate: Evaluate,
    name_spans: dict[str, Span] | None = None,
) -> None:
    """Fill `lv.tensors` and `lv.args` from a call's positional values `pos` (at `spans`) and
    keyword values `kws` (name -> (value, span)); defaults for the rest. `dims` are the model's
    dim names, for the message on an undefined one."""
    n, specs = signature(lv)
    owner = f"'{lv.kind}'"
    i = 0
    while i < len(pos) and isinstance(pos[i], Tensor) and (n is None or i < n):
        lv.tensors.append(pos[i])
        i += 1
    if (
        i < len(pos)
        and isinstance(pos[i], list)
        and any(isinstance(v, Tensor) for v in pos[i])
        and not (specs and specs[0].kind == "tensors")  # a block's list parameter takes it
    ):
        raise NNError(
            f"{owner} takes its tensors as separate arguments, not a list",
            spans[i],
            expected=f"{lv.kind}(a, b, ...)",
            hint=f"spread a list into the arguments with '...': {lv.kind}(xs...)",
        )
    if (
        n is not None
        and i < min(n, len(pos))
        and isinstance(pos[i], Symbol)
        and any(isinstance(v, Tensor) for v in pos[i + 1 :])
    ):  # a misspelled tensor before other tensors: cross_entropy(logitz, label)
        undefined(pos[i], scope, dims)
    rest = list(zip(pos[i:], spans[i:], strict=True))
    if len(rest) > len(specs):
        v, s = rest[len(specs)]
        if isinstance(v, Tensor):
            raise NNError(
                f"{owner} takes {n} input tensor{'s' if n != 1 else ''}, got more",
                s,
                expected=f"{n} tensor argument{'s' if n != 1 else ''}",
            )
        raise NNError(
            f"too many arguments for {owner}: it takes {len(specs)} besides its input",
            s,
            expected=_sig_words(lv.kind, specs),
        )
    given: dict[str, tuple[Any, Span]] = {}
    for spec, (v, s) in zip(specs, rest, strict=False):
        if isinstance(v, Tensor) and spec.kind != "tensor":
            want = (
                "a layer"
                if spec.kind == "layer" and isinstance(lv.callee, ast.BlockDef)
                else kind_words(spec.kind)
            )
            raise NNError(
                f"argument '{spec.name}' of {owner} must be {want}, got a tensor",
                s,
                expected=_sig_words(lv.kind, specs),
                hint="tensors come before the other arguments"
                + (f", e.g. x | {lv.kind}(m, ...)" if n is None or n > 1 else ""),
            )
        given[spec.name] = (v, s)
    names = [s.name for s in specs]
    for k, (v, s) in kws.items():
        if k not in names:
            where = (name_spans or {}).get(k, s)
            tensor_params = (
                [p.name for p in lv.callee.params if (p.type or "tensor") == "tensor"]
                if isinstance(lv.callee, ast.BlockDef)
                else []
            )
            if k in tensor_params:
                raise NNError(
                    f"'{k}' is a tensor input of block '{lv.kind}': tensors are passed by position",
                    where,
                    expected=f"{lv.kind}({', '.join(tensor_params)}"
                    + "".join(f", {sp.name}=..." for sp in specs)
                    + ")",
                    hint=f"give the tensors {', '.join(tensor_params)} in that order, without names",
                )
            unknown_argument(k, owner, where, names, _sig_words(lv.kind, specs))
        if k in given:
            raise NNError(
                f"argument '{k}' of {owner} given both by position and by name",
                s,
                expected="each argument once",
            )
        given[k] = (v, s)
    for spec in specs:
        if spec.name in given:
            v, s = given[spec.name]
            if isinstance(v, Symbol) and spec.kind in ("tensor",):
                undefined(v, scope, dims)
            if isinstance(lv.callee, ast.BlockDef):
                if isinstance(v, Symbol) and spec.kind != "str":
                    undefined(v, scope, dims, "name")
                lv.args[spec.name] = convert_block_arg(spec, v, s, owner)
            else:
                lv.args[spec.name] = convert_arg(spec, v, s, owner, scope, dims)
        elif spec.required:
            raise NNError(
                f"{owner} is missing its argument '{spec.name}'",
                span,
                expected=_sig_words(lv.kind, specs),
            )
        else:
            lv.args[spec.name] = (
                spec.default
                if isinstance(lv.callee, LayerDef)
                else convert_block_arg(spec, evaluate(spec.default, Scope("")), spec.default.span, owner)
            )


def convert_block_arg(spec: ArgSpec, v: Any, span: Span, owner: str) -> Any:
    """A block's argument: as a layer's (`convert`), except that a `layer` parameter holds the
    layer value itself, so the block applies that very instance (shared weights, tying)."""
    if spec.kind == "layer":
        if not isinstance(v, LayerValue):
            raise NNError(
                f"argument '{spec.name}' of {owner} must be a layer, got {describe(v)}",
                span,
                expected="a layer or block: a name such as enc after enc = dense(16), or a call such as dense(16)",
            )
        n, _ = signature(v)
        if v.tensors and (n is None or len(v.tensors) >= n):
            raise NNError(
                f"argument '{spec.name}' of {owner} must be a layer, got a layer applied to its inputs",
                span,
                expected="the layer without its input tensors, e.g. dense(16) or enc",
            )
        return v
    return convert(spec, v, span, owner)


def convert_arg(spec: ArgSpec, v: Any, span: Span, owner: str, scope: Scope, dims: set[str]) -> Any:
    """`convert`, after refusing a bare name where the kind takes no words."""
    if (
        isinstance(v, Symbol)
        and spec.kind not in ("padding", "shape", "str", "init")
        and not spec.kind.startswith("choice:")
    ):
        undefined(v, scope, dims, "name")
    return convert(spec, v, span, owner)


def _sig_words(kind: str, specs: list[ArgSpec]) -> str:
    parts = [s.name if s.required else f"{s.name}={_fmt(s.default)}" for s in specs]
    return f"{kind}({', '.join(parts)})"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, ast.Node) or v is None:  # None: optional, nothing by default
        return "..."
    return str(v)


_KIND_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a word or string",
    "ints": "an integer or a list of integers",
    "floats": "a number or a list of numbers",
    "padding": "an integer, a list of integers, same or valid",
    "shape": "a list of dims (integers, -1, dim names, or dims such as x.shape[2] * 2)",
    "init": "one of " + ", ".join(INITS),
    "layer": "a named layer applied above, such as emb after emb = embedding(...)",
    "dim": "an integer or a dim (x.shape[2])",
    "tensors": "a list of tensors",
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
        if isinstance(v, Symbol) and spec.kind in ("int", "float", "ints", "floats", "bool"):
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
    if isinstance(v, SymDim) and k in ("int", "float", "ints"):
        raise NNError(
            f"argument '{spec.name}' of {owner} needs a number known when the model compiles, "
            f"but this is the symbolic dim '{v.expr}'",
            span,
            expected=kind_words(k),
            hint=f"'{v.expr}' is known only when the model runs: a layer's sizes come from its input's "
            "static dims (a number in the input's type)",
        )
    if k == "dim":
        if isinstance(v, SymDim):
            return v
        return convert(ArgSpec(spec.name, "int", limit=spec.limit), v, span, owner)
    if k == "tensors":
        if not isinstance(v, (list, tuple)) or any(not isinstance(i, Tensor) for i in v):
            raise bad()
        return list(v)
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
    if k == "floats":  # always a list: one number is a list of one (a class weight that broadcasts)
        items = v if isinstance(v, list) else [v]
        if not items or any(isinstance(i, bool) or not isinstance(i, (int, float)) for i in items):
            raise bad()
        return [float(i) for i in items]
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
            if isinstance(i, (Symbol, SymDim)):
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
