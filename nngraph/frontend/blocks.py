"""Blocks are checked where they are defined: a wrong name, parameter or return is reported at
the block, once, not at each application."""

from __future__ import annotations

from collections.abc import Collection

from nngraph.errors import NNError
from nngraph.frontend.binding import Evaluate, convert
from nngraph.frontend.scope import Scope
from nngraph.layers.args import ArgSpec
from nngraph.syntax import ast

BLOCK_PARAM_KINDS = ("tensor", "int", "float", "bool", "str", "ints")


def check_block(b: ast.BlockDef, layers: Collection[str], evaluate: Evaluate) -> None:
    """Refuse a block whose definition is wrong whatever it is applied to: its name, its
    parameters and their defaults, its returns."""
    if b.name in layers:
        raise NNError(f"block '{b.name}' has the name of a built-in layer", b.span, expected="another name")
    seen: set[str] = set()
    if not any((p.type or "tensor") == "tensor" for p in b.params):
        raise NNError(
            f"block '{b.name}' has no tensor parameter to take its input",
            b.span,
            expected="a first parameter such as 'x' (an untyped parameter is a tensor)",
        )
    for p in b.params:
        if p.name in seen:
            raise NNError(
                f"duplicate parameter '{p.name}' in block '{b.name}'",
                p.span,
                expected="distinct parameter names",
            )
        seen.add(p.name)
        kind = p.type or "tensor"
        if kind not in BLOCK_PARAM_KINDS:
            raise NNError(
                f"unknown parameter type '{kind}'",
                p.type_span,
                expected="one of " + ", ".join(BLOCK_PARAM_KINDS),
            ).suggest(kind, BLOCK_PARAM_KINDS)
        if p.default is not None:
            if kind == "tensor":
                raise NNError(
                    f"tensor parameter '{p.name}' cannot have a default",
                    p.default.span,
                    expected="no default",
                )
            convert(
                ArgSpec(p.name, kind),
                evaluate(p.default, Scope("")),
                p.default.span,
                f"block '{b.name}'",
            )
    nested = _returns_in_repeats(b.body)
    if nested:
        raise NNError(
            f"'return' inside 'repeat' in block '{b.name}': the block would return in the first round",
            nested[0].span,
            expected="'return expression' after the repeat, as the block's last statement",
            hint="assign inside the repeat (x = x | layer) and return after it",
        )
    if not any(isinstance(s, ast.Return) for s in b.body):
        raise NNError(
            f"block '{b.name}' never returns a tensor",
            b.close_span,
            expected="'return expression' at its end",
        )


def _returns_in_repeats(stmts: list[ast.Stmt]) -> list[ast.Return]:
    """Every 'return' nested in a repeat body, outermost first."""
    out: list[ast.Return] = []
    for st in stmts:
        if isinstance(st, ast.Repeat):
            out += [s for s in st.body if isinstance(s, ast.Return)] + _returns_in_repeats(st.body)
    return out
