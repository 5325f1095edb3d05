"""Symbolic dims in one canonical form, so that equal sizes compare equal.

Shape inference writes symbolic dims as expression strings ("seq+seq", "(batch*6)//6"). Two
spellings of one size must be one string, or a valid model is refused: a flatten undone by a
reshape gives "(batch*6)//6" where the input says "batch". Every dim is read as a polynomial
in its symbols with integer coefficients (a floor division by a constant is divided out where
it is exact, else kept as one term with only its constant moved out; max, min and % are kept
as terms with canonical arguments) and written back in one order. A dim that is a constant
becomes an int. It is a normal form for sums and products, not a full algebra: equal sizes
written through different floor divisions can still differ.
"""

from __future__ import annotations

import ast
from functools import lru_cache

Poly = dict[tuple[str, ...], int]  # monomial (its factors, sorted; repeated for powers) -> coefficient


class _Unknown(Exception):
    """An expression outside the dim language: the dim is left as written."""


def canonical(d: int | str) -> int | str:
    """The canonical spelling of a dim (an int when it is a constant)."""
    if isinstance(d, int) or d.isidentifier():
        return d
    return _canonical(d)


@lru_cache(maxsize=8192)
def _canonical(text: str) -> int | str:
    try:
        p = _poly(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, _Unknown):
        return text
    if set(p) <= {()}:
        return p.get((), 0)
    return _render(p)


def _const(p: Poly) -> int | None:
    return p.get((), 0) if set(p) <= {()} else None


def _add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for m, c in b.items():
        out[m] = out.get(m, 0) + sign * c
    return {m: c for m, c in out.items() if c}


def _mul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = tuple(sorted(ma + mb))
            out[m] = out.get(m, 0) + ca * cb
    return {m: c for m, c in out.items() if c}


def _atom(text: str) -> Poly:
    return {(text,): 1}


def _poly(node: ast.AST) -> Poly:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return {(): node.value} if node.value else {}
    if isinstance(node, ast.Name):
        return {(node.id,): 1}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        p = _poly(node.operand)
        return {m: -c for m, c in p.items()} if isinstance(node.op, ast.USub) else p
    if isinstance(node, ast.BinOp):
        a, b = _poly(node.left), _poly(node.right)
        if isinstance(node.op, ast.Add):
            return _add(a, b)
        if isinstance(node.op, ast.Sub):
            return _add(a, b, -1)
        if isinstance(node.op, ast.Mult):
            return _mul(a, b)
        k = _const(b)
        if isinstance(node.op, ast.FloorDiv) and k is not None and k > 0:
            return _floordiv(a, k)
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)):
            ka = _const(a)
            if ka is not None and k:
                return {(): ka // k if isinstance(node.op, ast.FloorDiv) else ka % k}
            op = "//" if isinstance(node.op, ast.FloorDiv) else "%"
            return _atom(f"{_factor(a)}{op}{_factor(b)}")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("max", "min"):
        if node.keywords or not node.args:
            raise _Unknown
        args = [_poly(a) for a in node.args]
        consts = [_const(a) for a in args]
        if all(c is not None for c in consts):
            return {(): (max if node.func.id == "max" else min)(consts)} if any(consts) else {}
        texts = sorted({_render(a) for a in args})
        return _atom(texts[0]) if len(texts) == 1 else _atom(f"{node.func.id}({','.join(texts)})")
    raise _Unknown


def _floordiv(p: Poly, k: int) -> Poly:
    """p // k for integer-valued symbols. The constant moves out in whole multiples of k
    ((len-1)//2+1 is (len+1)//2); when k divides every other coefficient the division is exact
    ((batch*6)//6 is batch); otherwise the rest stays one term, as written."""
    c = p.get((), 0)
    sym = {m: v for m, v in p.items() if m}
    shift = {(): c // k} if c // k else {}
    if all(v % k == 0 for v in sym.values()):
        return _add({m: v // k for m, v in sym.items()}, shift)
    rest = _add(sym, {(): c % k} if c % k else {})
    return _add(_atom(f"{_factor(rest)}//{k}"), shift)


def _factor(p: Poly) -> str:
    """p written to sit next to a higher-precedence operator."""
    text = _render(p) if p else "0"
    return text if text.isidentifier() or text.isdigit() else f"({text})"


def _render(p: Poly) -> str:
    """Terms by falling degree then name, the constant last; in a term the int factor last."""
    if not p:
        return "0"
    terms = sorted(p.items(), key=lambda mc: (-len(mc[0]), mc[0]))
    out = ""
    for i, (m, c) in enumerate(terms):
        factors = [f if f.isidentifier() or (len(m) == 1 and abs(c) == 1 and c > 0) else f"({f})" for f in m]
        mag = abs(c)
        body = "*".join(factors + ([str(mag)] if mag != 1 or not m else []))
        if i == 0:
            out = ("-" if c < 0 else "") + body
        else:
            out += ("-" if c < 0 else "+") + body
    return out


def bind(shapes: list[tuple], arrays: list) -> dict[str, int]:
    """The sizes the symbols of these declared shapes take in these arrays (a plain name only)."""
    known: dict[str, int] = {}
    for shape, a in zip(shapes, arrays, strict=True):
        for d, n in zip(shape, a.shape, strict=True):
            if isinstance(d, str) and d.isidentifier():
                known[d] = int(n)
    return known


def value(d: int | str, known: dict[str, int]) -> int | None:
    """The size of dim d once its symbols take these sizes: "batch*32" with batch 4 is 128.
    None while a symbol is unknown."""
    if isinstance(d, int):
        return d
    try:
        tree = ast.parse(d, mode="eval")
    except (SyntaxError, ValueError):
        return None

    class _Sub(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return ast.Constant(known[node.id]) if node.id in known else node

    v = _canonical(ast.unparse(_Sub().visit(tree)))
    return v if isinstance(v, int) else None
