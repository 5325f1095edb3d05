"""Evaluating an expression of a model or block: constants, names, arithmetic, calls, and the
application of a layer value to its input tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nngraph.errors import NNError, Span
from nngraph.frontend.binding import bind_args, ready, signature
from nngraph.frontend.diagnostics import undefined, unknown_layer
from nngraph.frontend.layer_context import LayerContext, LayerEmitter, constant
from nngraph.frontend.scope import Scope
from nngraph.frontend.state import BuildState
from nngraph.frontend.summary import SummaryRow
from nngraph.frontend.values import LayerValue, Tensor, describe
from nngraph.layers.args import Symbol
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
        raise AssertionError(e)

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
        if (
            isinstance(a, nums)
            and isinstance(b, nums)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
        ):
            if op == "/" and b == 0:
                raise NNError("division by zero", e.span)
            if op == "/" and isinstance(a, int) and isinstance(b, int) and a % b == 0:
                return a // b  # exact integer division stays an integer: dim / heads
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
        for v in (a, b):
            if isinstance(v, Symbol):
                undefined(v, scope, self.dims)
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
        pos = piped + [self.eval(a, scope) for a in e.args]
        spans = [e.span] * len(piped) + [a.span for a in e.args]
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

    def apply(
        self, lv: LayerValue, more: list[Tensor], span: Span, scope: Scope, piped: bool = False
    ) -> Tensor:
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
        self.rows.append(SummaryRow(lv.name, lv.kind, out, self.param_elements - before, lv.name.count("/")))
        return Tensor(out)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_words(v: Any) -> str:
    return str(v) if _is_number(v) else "y"
