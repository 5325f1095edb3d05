"""Blocks are checked where they are defined: a wrong name, parameter or return is reported at
the block, once, not at each application."""

from __future__ import annotations

from collections.abc import Collection

from nngraph.errors import NNError
from nngraph.frontend.binding import Evaluate, convert_block_arg
from nngraph.frontend.scope import Scope
from nngraph.layers.args import ArgSpec
from nngraph.syntax import ast

BLOCK_PARAM_KINDS = ("tensor", "int", "float", "bool", "str", "ints", "dim", "layer", "tensors")


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
            convert_block_arg(
                ArgSpec(p.name, kind),
                evaluate(p.default, Scope("")),
                p.default.span,
                f"block '{b.name}'",
            )
    nested = _returns_in_loops(b.body)
    if nested:
        ret, loop = nested[0]
        raise NNError(
            f"'return' inside '{loop}' in block '{b.name}': the block would return in the first round",
            ret.span,
            expected=f"'return expression' after the {loop}, as the block's last statement",
            hint=f"assign inside the {loop} (x = x | layer) and return after it",
        )
    for stmts in _statement_lists(b.body):
        for i, st in enumerate(stmts[:-1]):
            if isinstance(st, ast.Return):
                raise NNError(
                    "statement after 'return' is never reached",
                    stmts[i + 1].span,
                    expected="'return' as the last statement of a block or of an 'if' branch",
                )
    if not _returns(b.body):
        raise NNError(
            f"block '{b.name}' never returns a tensor",
            b.close_span,
            expected="'return expression' at its end",
        )


def _statement_lists(stmts: list[ast.Stmt]) -> list[list[ast.Stmt]]:
    """`stmts` and every statement list nested in it (repeat, for and if bodies)."""
    out = [stmts]
    for st in stmts:
        for inner in _bodies(st):
            out += _statement_lists(inner)
    return out


def _bodies(st: ast.Stmt) -> list[list[ast.Stmt]]:
    if isinstance(st, (ast.Repeat, ast.For)):
        return [st.body]
    if isinstance(st, ast.If):
        return [st.body] + ([st.orelse] if st.orelse is not None else [])
    return []


def _returns(stmts: list[ast.Stmt]) -> bool:
    """Whether a 'return' is reachable: in `stmts` or in one of its `if` branches."""
    return any(
        isinstance(st, ast.Return) or (isinstance(st, ast.If) and any(_returns(b) for b in _bodies(st)))
        for st in stmts
    )


def has_if(stmts: list[ast.Stmt]) -> bool:
    """Whether an `if` is among `stmts` or nested in them (a block may call itself only inside one)."""
    return any(isinstance(st, ast.If) or has_if_in(st) for st in stmts)


def has_if_in(st: ast.Stmt) -> bool:
    return any(has_if(b) for b in _bodies(st))


def _returns_in_loops(stmts: list[ast.Stmt], loop: str | None = None) -> list[tuple[ast.Return, str]]:
    """Every 'return' nested in a repeat or for body (through ifs too), outermost first, with
    the word of its loop."""
    out: list[tuple[ast.Return, str]] = []
    for st in stmts:
        if isinstance(st, ast.Return) and loop is not None:
            out.append((st, loop))
        inner = "repeat" if isinstance(st, ast.Repeat) else "for" if isinstance(st, ast.For) else loop
        for b in _bodies(st):
            out += _returns_in_loops(b, inner)
    return out
