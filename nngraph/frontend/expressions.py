"""Evaluating an expression of a model or block: constants, names, arithmetic, calls, and the
application of a layer value to its input tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nngraph.core.dims import canonical
from nngraph.errors import NNError, Span
from nngraph.frontend.binding import bind_args, ready, signature
from nngraph.frontend.diagnostics import undefined, unknown_layer
from nngraph.frontend.layer_context import LayerContext, LayerEmitter, constant
from nngraph.frontend.scope import Scope
from nngraph.frontend.state import BuildState
from nngraph.frontend.summary import SummaryRow
from nngraph.frontend.values import LayerValue, Tensor, describe
from nngraph.layers.args import Symbol, SymDim
from nngraph.layers.registry import LayerDef
from nngraph.ops import registry
from nngraph.syntax import ast


class Evaluator(BuildState):
    """Expressions over the build's state; the statement interpreter (a subclass) applies blocks."""

    model: ast.ModelDef  # the model being built, set when its statements start

    def apply_block(self, lv: LayerValue, tensors: list[Tensor], span: Span, scope: Scope) -> Tensor:
        raise NotImplementedError  # runs statements: see statements.Builder

    def eval(self, e: ast.Expr, scope: Scope) -> Any:
        if isinstance(e, (ast.Number, ast.String, ast.Bool)):
            return e.value
        if isinstance(e, ast.ListExpr):
            return [self.eval(i, scope) for i in e.items]
        if isinstance(e, ast.Name):
            return self.lookup(e.id, e.span, scope)
        if isinstance(e, ast.Call):
            return self.call(e, [], scope)
        if isinstance(e, ast.Pipe):
            x = self.tensor(self.eval(e.value, scope), e.value.span, "the input of a '|' pipeline", scope)
            if isinstance(e.stage, ast.Call):
                return self.call(e.stage, [x], scope)
            stage = self.lookup(e.stage.id, e.stage.span, scope)
            if isinstance(stage, str) and (stage in self.layers or stage in self.prog.blocks):
                stage = self.lookup(
                    stage, e.stage.span, Scope("", block=scope.block)
                )  # a str parameter naming a layer
            if not isinstance(stage, LayerValue):
                if isinstance(stage, Symbol):
                    unknown_layer(e.stage.id, e.stage.span, scope, self.layers, self.prog.blocks)
                raise NNError(
                    f"'{e.stage.id}' is {describe(stage)}, not a layer",
                    e.stage.span,
                    expected="a layer or block after '|'",
                )
            return self.apply(stage, [x], e.stage.span, scope, piped=True)
        if isinstance(e, ast.BinOp):
            return self.arith(e.op, self.eval(e.left, scope), self.eval(e.right, scope), e, scope)
        if isinstance(e, ast.Neg):
            v = self.eval(e.operand, scope)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return -v
            return self.arith("*", v, -1, e, scope)
        if isinstance(e, ast.Attr):
            return self.attribute(e, scope)
        if isinstance(e, ast.Index):
            return self.index(e, scope)
        if isinstance(e, ast.Compare):
            return self.compare(e, scope)
        if isinstance(e, ast.BoolOp):
            left = self.truth(e.left, scope, f"the left side of '{e.op}'")
            if left == (e.op == "or"):  # decided by the left side: the right one is not evaluated
                return left
            return self.truth(e.right, scope, f"the right side of '{e.op}'")
        if isinstance(e, ast.Not):
            return not self.truth(e.operand, scope, "the operand of 'not'")
        if isinstance(e, ast.Spread):
            raise NNError(
                "'...' spreads a list only into the arguments of a call",
                e.span,
                expected="a call such as concat(skips...)",
            )
        raise AssertionError(e)

    # ---- shapes, lists and conditions: values known when the model compiles ------------------

    def attribute(self, e: ast.Attr, scope: Scope) -> Any:
        """`x.shape` (a list of dims: ints where static, symbolic dims where not) and `x.rank`."""
        if e.name not in TENSOR_ATTRIBUTES:
            raise NNError(
                f"unknown attribute '.{e.name}'",
                e.name_span,
                expected="x.shape or x.rank of a tensor x",
            ).suggest(e.name, TENSOR_ATTRIBUTES)
        v = self.eval(e.value, scope)
        t = self.tensor(v, e.value.span, f"the value before '.{e.name}'", scope)
        typ = self.graph.type(t.node)
        if e.name == "rank":
            return typ.rank
        return [d if isinstance(d, int) else SymDim(d) for d in typ.shape]

    def index(self, e: ast.Index, scope: Scope) -> Any:
        """`xs[i]` of a list, a shape or several results; negative indices count from the end."""
        v = self.eval(e.value, scope)
        if isinstance(v, Symbol):
            undefined(v, scope, self.dims, "name")
        if isinstance(v, Tensor):
            raise NNError(
                "a tensor cannot be indexed with [...]",
                e.span,
                expected="x.shape[i] for one of its dims, or slice(axis, start, end) for a part of it",
            )
        if not isinstance(v, (list, tuple)):
            raise NNError(
                f"{describe(v)} cannot be indexed with [...]",
                e.value.span,
                expected="a list, a shape (x.shape) or several results",
            )
        i = self.eval(e.index, scope)
        if isinstance(i, Symbol):
            undefined(i, scope, self.dims, "name")
        if isinstance(i, bool) or not isinstance(i, int):
            raise NNError(
                f"an index must be an integer, got {describe(i)}",
                e.index.span,
                expected="an integer known when the model compiles, such as 0 or -1",
            )
        if not -len(v) <= i < len(v):
            raise NNError(
                f"index {i} is out of range for {describe(v)} of {len(v)} item{'s' if len(v) != 1 else ''}",
                e.index.span,
                expected=f"an index from {-len(v)} to {len(v) - 1}" if v else "a list with items",
            )
        return v[i]

    def compare(self, e: ast.Compare, scope: Scope) -> bool:
        """`a == b`, `a < b`, ...: numbers, bools and words (bare or strings), decided at compile time."""
        a, b = self.eval(e.left, scope), self.eval(e.right, scope)
        # a bare word beside a word is a word: `act == gelu` with act = "gelu"
        a, b = (_as_word(a, b), _as_word(b, a))
        for v, s in ((a, e.left.span), (b, e.right.span)):
            self.static(v, s, f"'{e.op}'", scope)
        kinds = {_kind(a), _kind(b)}
        if len(kinds) != 1 or (e.op not in ("==", "!=") and kinds != {"number"}):
            raise NNError(
                f"'{e.op}' cannot compare {describe(a)} with {describe(b)}",
                e.op_span,
                expected="numbers on both sides"
                if e.op not in ("==", "!=")
                else "two numbers, two bools or two words",
            )
        return {
            "==": lambda: a == b,
            "!=": lambda: a != b,
            "<": lambda: a < b,
            "<=": lambda: a <= b,
            ">": lambda: a > b,
            ">=": lambda: a >= b,
        }[e.op]()

    def static(self, v: Any, span: Span, what: str, scope: Scope) -> None:
        """Refuse a value a condition cannot be decided on when the model compiles."""
        if isinstance(v, Symbol):
            undefined(v, scope, self.dims, "name")
        if isinstance(v, SymDim):
            raise NNError(
                f"{what} on the symbolic dim '{v.expr}' cannot be decided when the model compiles",
                span,
                expected="numbers, bools, words, or dims that are numbers in the input's type",
                hint=f"'{v.expr}' is known only when the model runs; a condition picks layers at compile time",
            )
        if isinstance(v, Tensor):
            raise NNError(
                f"{what} works on values known when the model compiles, not on a tensor",
                span,
                expected="numbers, bools, words or static dims (x.shape[1])",
            )
        if _kind(v) is None:
            raise NNError(
                f"{what} works on numbers, bools and words, not on {describe(v)}",
                span,
                expected="numbers, bools, words or static dims (x.shape[1])",
            )

    def truth(self, e: ast.Expr, scope: Scope, what: str) -> bool:
        """A condition's value: true or false, nothing else."""
        v = self.eval(e, scope)
        if isinstance(v, bool):
            return v
        self.static(v, e.span, what, scope)
        raise NNError(
            f"{what} must be true or false, got {describe(v)}",
            e.span,
            expected="a comparison such as stride == 1, a bool parameter, or true/false",
            hint="write n != 0 for a number" if _kind(v) == "number" else None,
        )

    def dim_arith(self, op: str, a: Any, b: Any, e: ast.Node) -> Any:
        """Arithmetic with a symbolic dim: a symbolic dim again (canonical), or an int where the
        symbols cancel (`H - H`)."""
        for v in (a, b):
            if isinstance(v, bool) or not isinstance(v, (int, SymDim)):
                raise NNError(
                    f"'{op}' of a symbolic dim takes integers and dims, not {describe(v)}",
                    e.span,
                    expected="a dim expression such as H // 2 or W * 2",
                )
        if op == "/":
            raise NNError(
                f"'/' of the symbolic dim '{(a if isinstance(a, SymDim) else b).expr}': whether it divides "
                "exactly is known only when the model runs",
                e.span,
                expected="'//' for integer division, as in H // 2",
            )
        if op == "//" and b == 0:
            raise NNError("division by zero", e.span, expected="a divisor other than 0")
        text = lambda v: v.expr if isinstance(v, SymDim) else str(v)  # noqa: E731
        d = canonical(f"({text(a)}){op}({text(b)})")
        return d if isinstance(d, int) else SymDim(d)

    def find_block(self, name: str, span: Span, scope: Scope) -> ast.BlockDef | None:
        """The block `name` if the code running in `scope` may call it: blocks of its own file
        and of the files that file imports (a library block must not lean on its importer's)."""
        b = self.prog.blocks.get(name)
        model = getattr(self, "model", None)
        here = scope.block.span.file if scope.block is not None else model.span.file if model else None
        if b is None or here is None or self.prog.sees(here, b.span.file):
            return b
        raise NNError(
            f"block '{name}' is defined in {Path(b.span.file).name}, which {Path(here).name} does not import",
            span,
            expected=f"a block of {Path(here).name} or of a file it imports",
            hint=f"import the file that defines '{name}' at the top of {Path(here).name}",
        )

    def lookup(self, name: str, span: Span, scope: Scope) -> Any:
        if name in scope.vars:
            return scope.vars[name]
        callee = self.layers.get(name) or self.find_block(name, span, scope)
        if callee is None:
            return Symbol(name, span)
        lv = LayerValue(callee, name, span, word=name)
        # defaults; a missing required argument is reported here
        bind_args(lv, [], [], {}, span, scope, self.dims, self.eval)
        return lv

    def tensor(self, v: Any, span: Span, what: str, scope: Scope | None = None) -> Tensor:
        if isinstance(v, Tensor):
            return v
        if isinstance(v, Symbol):
            undefined(v, scope, self.dims)
        if isinstance(v, tuple):
            raise NNError(
                f"{what} is {describe(v)}, not a tensor",
                span,
                expected="a tensor",
                hint=f"take them apart first: {', '.join('abcdefgh'[: min(len(v), 8)])} = ...",
            )
        if isinstance(v, list) and v and all(isinstance(i, Tensor) for i in v):
            raise NNError(
                f"{what} is {describe(v)}, not a tensor",
                span,
                expected="a tensor",
                hint="pick one with [i], or spread them into a call: concat(xs..., axis=1)",
            )
        if isinstance(v, LayerValue):
            n, _ = signature(v)
            if v.tensors and n is not None and len(v.tensors) < n:
                got = len(v.tensors)
                raise NNError(
                    f"{what} is '{v.kind}' given {got} of its {n} input tensors, not a tensor",
                    span,
                    expected=f"all {n} tensors, e.g. {v.kind}({', '.join(['a', 'b', 'c', 'd'][:n])})",
                    hint=f"give it all {n}, or pipe the first one in: x | {v.word or v.kind}(...)",
                )
            raise NNError(
                f"{what} is the layer '{v.kind}', not a tensor",
                span,
                expected="a tensor",
                hint=f"apply the layer to a tensor: x | {v.word or v.kind}",
            )
        raise NNError(f"{what} must be a tensor, got {describe(v)}", span, expected="a tensor")

    def arith(self, op: str, a: Any, b: Any, e: ast.Node, scope: Scope) -> Any:
        nums = (int, float)
        if op == "+" and isinstance(a, list) and isinstance(b, list):
            return a + b  # lists join: skips = skips + [h]
        if isinstance(a, SymDim) or isinstance(b, SymDim):
            return self.dim_arith(op, a, b, e)
        if op == "//":
            return self.floordiv(a, b, e, scope)
        if (
            isinstance(a, nums)
            and isinstance(b, nums)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
        ):
            if op == "/" and b == 0:
                raise NNError("division by zero", e.span, expected="a divisor other than 0")
            if op == "/" and isinstance(a, int) and isinstance(b, int) and a % b == 0:
                return a // b  # exact integer division stays an integer: dim / heads
            # one operation, not all four: `n - 0` must not divide by zero
            return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b}[op]()
        for v in (a, b):
            if isinstance(v, Symbol):
                undefined(v, scope, self.dims)
            if isinstance(v, (list, tuple)) and v and all(isinstance(i, Tensor) for i in v):
                raise NNError(
                    f"'{op}' works on tensors and numbers, not on {describe(v)}",
                    e.span,
                    expected="tensors or numbers on both sides",
                    hint="pick one with [i], or take several results apart first: a, b = ..."
                    if op != "+"
                    else "lists join with + only with another list: skips + [h]",
                )
            if not isinstance(v, (Tensor, int, float)) or isinstance(v, bool):
                raise NNError(
                    f"'{op}' works on tensors and numbers, not on {describe(v)}",
                    e.span,
                    expected="tensors or numbers on both sides",
                )
        ta = a if isinstance(a, Tensor) else None
        tb = b if isinstance(b, Tensor) else None
        like = self.graph.type((ta or tb).node)
        xa = ta.node if ta else constant(self, a, like, e.span)
        xb = tb.node if tb else constant(self, b, like, e.span)
        opname = {"+": "add", "-": "sub", "*": "mul", "/": "div"}[op]
        name = scope.instance_name(opname)
        node = LayerEmitter(self, e.span, name).op(opname, [xa, xb])
        self.rows.append(SummaryRow(name, opname, node, 0, name.count("/")))
        return Tensor(node)

    def floordiv(self, a: Any, b: Any, e: ast.Node, scope: Scope) -> Any:
        """`a // b`: integer division, rounding down as Python and NumPy do, of numbers and dims."""
        for v in (a, b):
            if isinstance(v, Symbol):
                undefined(v, scope, self.dims)
            if isinstance(v, Tensor):
                raise NNError(
                    "'//' divides numbers and dims (x.shape[2] // 2), not tensors",
                    e.span,
                    expected="numbers or dims on both sides",
                    hint="'/' divides tensors; on integer tensors it truncates toward zero",
                )
            if not _is_number(v):
                raise NNError(
                    f"'//' works on numbers and dims, not on {describe(v)}",
                    e.span,
                    expected="numbers or dims on both sides",
                )
        if b == 0:
            raise NNError("division by zero", e.span, expected="a divisor other than 0")
        return a // b

    def callee(self, func: str, span: Span, scope: Scope) -> LayerValue:
        """What the name of a call stands for: a layer value in scope, a built-in layer or a block."""
        target = scope.vars.get(func)
        if target is None:
            callee = self.layers.get(func) or self.find_block(func, span, scope)
            target = LayerValue(callee, func, span) if callee else Symbol(func, span)
        if not isinstance(target, LayerValue):
            if isinstance(target, Symbol):
                unknown_layer(func, span, scope, self.layers, self.prog.blocks)
            raise NNError(
                f"'{func}' is {describe(target)}, not a layer",
                span,
                expected="a layer or block to call",
            )
        return target

    def call(self, e: ast.Call, piped: list[Tensor], scope: Scope) -> Any:
        target = self.callee(e.func, e.func_span, scope)
        pos, spans = list(piped), [e.span] * len(piped)
        for a in e.args:
            if not isinstance(a, ast.Spread):
                pos.append(self.eval(a, scope))
                spans.append(a.span)
                continue
            items = self.eval(a.value, scope)  # concat(skips...): the list's items, in order
            if isinstance(items, Symbol):
                undefined(items, scope, self.dims, "name")
            if not isinstance(items, (list, tuple)):
                raise NNError(
                    f"'...' spreads a list into arguments, but this is {describe(items)}",
                    a.value.span,
                    expected="a list, e.g. concat(skips...)",
                )
            pos += items
            spans += [a.span] * len(items)
        kws: dict[str, tuple[Any, Span]] = {}
        name_spans: dict[str, Span] = {}
        for k in e.kwargs:
            if k.name in kws:
                raise NNError(
                    f"argument '{k.name}' given twice", k.span, expected="each argument once"
                )  # at the name
            kws[k.name] = (self.eval(k.value, scope), k.value.span)
            name_spans[k.name] = k.span
        return self.call_values(target, e.func, pos, spans, kws, name_spans, e.span, scope)

    def call_values(
        self,
        target: LayerValue,
        func: str,
        pos: list,
        spans: list[Span],
        kws: dict[str, tuple[Any, Span]],
        name_spans: dict[str, Span],
        span: Span,
        scope: Scope,
    ) -> Any:
        """The call `func(...)` of `target` on evaluated arguments: a tensor when its input tensors
        are all given, else a layer value waiting for them."""
        if func in scope.vars and not target.tensors:  # `m = minimum` then m(x, 6.0)
            pos = self.number_operands(target, pos, spans, span, scope)
        if func in scope.vars:  # an assigned layer instance: only tensors may be added
            if kws or any(not isinstance(v, Tensor) for v in pos):
                raise NNError(
                    f"'{func}' is a layer instance with its arguments already set",
                    span,
                    expected=f"only input tensors, e.g. {func}(x) or x | {func}",
                )
            return self.apply(
                target,
                [self.tensor(v, s, "an input", scope) for v, s in zip(pos, spans, strict=True)],
                span,
                scope,
            )
        pos = self.number_operands(target, pos, spans, span, scope)
        lv = LayerValue(target.callee, target.kind, span)
        bind_args(lv, pos, spans, kws, span, scope, self.dims, self.eval, name_spans)
        if ready(lv):
            return self.apply(lv, [], span, scope)
        return lv

    def number_operands(
        self, target: LayerValue, pos: list, spans: list[Span], span: Span, scope: Scope
    ) -> list:
        """`pos` with each number in an operand position of a primitive operator of two or more
        tensors (`minimum(x, 6.0)`, `sub(1, x)`, `where(c, x, 0.0)`) made a scalar constant of the
        other operands' dtype, as the number of `x * 0.5` is; other layers' arguments pass as given."""
        d = target.callee
        n = d.n_tensors if isinstance(d, LayerDef) and d.op is not None else None
        if n is None or n < 2 or target.tensors:
            return pos
        operands = pos[:n]
        if all(isinstance(v, Tensor) for v in operands):
            return pos
        names = [i.rstrip("?") for i in registry.get(d.op).inputs]
        for name, v, s in zip(names, operands, spans, strict=False):
            if isinstance(v, Symbol):
                undefined(v, scope, self.dims)
            if not isinstance(v, Tensor) and not _is_number(v):
                raise NNError(
                    f"operand '{name}' of '{d.name}' must be a tensor or a number, got {describe(v)}",
                    s,
                    expected=f"{d.name}({', '.join(names)}) on tensors or numbers",
                )
        if len(operands) < n:
            raise NNError(
                f"'{d.name}' takes a number as an operand only with all its {n} operands given",
                spans[len(operands) - 1],
                expected=f"{d.name}(x, {_number_words(next(v for v in operands if _is_number(v)))}) "
                f"or x | {d.name}(...)",  # every operand is a tensor or a number, and not all tensors
                hint="a number takes its dtype from the tensor beside it, so that tensor comes in the same call",
            )
        tensors = [v for v in operands if isinstance(v, Tensor)]
        if not tensors:
            raise NNError(
                f"'{d.name}' needs a tensor among its operands, got only numbers",
                span,
                expected=f"a tensor, e.g. {d.name}({', '.join(['x', *map(_number_words, operands[1:])])})",
                hint="a number takes the dtype of the tensor beside it",
            )
        types = [self.graph.type(t.node) for t in tensors]
        like = next((t for t in types if t.dtype != "bool"), types[0])
        if like.dtype == "bool" and d.name == "where":
            raise NNError(
                "'where' of a bool condition and numbers has no dtype for its result",
                span,
                expected="a tensor among a and b, whose dtype the numbers take",
                hint="for 1.0 where c holds and 0.0 elsewhere write cast(c, to=f32)",
            )
        return [
            Tensor(constant(self, v, like, s, d.name)) if i < n and _is_number(v) else v
            for i, (v, s) in enumerate(zip(pos, spans, strict=True))
        ]

    def apply(self, lv: LayerValue, more: list[Tensor], span: Span, scope: Scope, piped: bool = False) -> Any:
        # the piped tensor comes first, as in `x | sub(y)`, also when the layer was held in a name
        tensors = more + lv.tensors if piped else lv.tensors + more
        n, _ = signature(lv)
        if n is not None and len(tensors) != n:
            raise NNError(
                f"'{lv.kind}' takes {n} input tensor{'s' if n != 1 else ''}, got {len(tensors)}",
                span,
                expected=f"{n} input tensor{'s' if n != 1 else ''}",
            )
        if lv.name is None:
            lv.name = scope.instance_name(lv.kind)
        if isinstance(lv.callee, ast.BlockDef):
            return self.apply_block(lv, tensors, span, scope)
        ctx = LayerContext(self, lv, span, scope)
        before = self.param_elements
        out = lv.callee.build(ctx, [t.node for t in tensors], lv.args)
        first = out
        while isinstance(first, tuple):  # several results: lstm(..., return_state=true)
            first = first[0]
        self.rows.append(
            SummaryRow(lv.name, lv.kind, first, self.param_elements - before, lv.name.count("/"))
        )
        return _results(out)


#: what `x.NAME` may ask of a tensor
TENSOR_ATTRIBUTES = ("shape", "rank")


def _results(out: Any) -> Any:
    """A layer's node, or its nested tuple of nodes, as tensors."""
    return tuple(_results(o) for o in out) if isinstance(out, tuple) else Tensor(out)


def _kind(v: Any) -> str | None:
    """What a condition may compare: a number, a bool or a word."""
    if isinstance(v, bool):
        return "bool"
    if _is_number(v):
        return "number"
    if isinstance(v, str):
        return "word"
    return None


def _as_word(v: Any, other: Any) -> Any:
    """A bare name (or a built-in layer's bare name) beside a word is that word."""
    if not isinstance(other, (str, Symbol)) and not (isinstance(other, LayerValue) and other.word):
        return v
    if isinstance(v, Symbol):
        return v.name if isinstance(other, str) else v
    if isinstance(v, LayerValue) and v.word is not None and not v.tensors:
        return v.word
    return v


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_words(v: Any) -> str:
    return str(v) if _is_number(v) else "y"
