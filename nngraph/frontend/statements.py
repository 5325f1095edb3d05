"""The statement interpreter: a model's statements run top to bottom, elaborating blocks and
layers into primitive operators.

Names may be rebound (`h = h | relu`). A call with all its input tensors builds nodes; a call
without them is a layer value that can be applied later, and applying one layer value twice
shares its weights. Shape rules raise plain ShapeErrors; the layer emitter attaches spans.
"""

from __future__ import annotations

from typing import Any

from nngraph.core.ir import Graph
from nngraph.core.types import DTYPES, TensorType
from nngraph.errors import NNError, Span
from nngraph.frontend.blocks import check_block, has_if
from nngraph.frontend.diagnostics import undefined
from nngraph.frontend.expressions import Evaluator
from nngraph.frontend.program import Program
from nngraph.frontend.scope import Scope
from nngraph.frontend.summary import SummaryRow
from nngraph.frontend.values import LayerValue, Tensor, describe
from nngraph.layers.args import Symbol
from nngraph.syntax import ast

#: the largest static dim an input may declare (ONNX stores dims as int64; no tensor is near this)
MAX_DIM = 2**40
#: the most repetitions a `repeat` builds (each copies its body into the graph; a deep model has
#: tens to hundreds, and a typo of 100000000 would otherwise run for hours)
MAX_REPEAT = 10_000


#: how deep a block may call itself (a recursive U-Net of depth 4 needs 5; a condition that never
#: stops the recursion would otherwise build forever)
MAX_RECURSION = 64


#: Name scopes of the training step (gradients, optimizer update): no layer may take them.
RESERVED_SCOPES = {"grad": "backward", "update": "optimizer"}


class Builder(Evaluator):
    """Runs one model's statements into a graph; `start`, then (for a training build) targets and
    the loss, then `finish`."""

    def __init__(self, prog: Program, seed: int = 0, training: bool = False):
        super().__init__(prog, seed, training)
        for b in prog.blocks.values():
            check_block(b, self.layers, self.eval)

    def start(self, m: ast.ModelDef) -> Scope:
        """Run the model's statements; the graph is complete but not yet pruned or checked for unused inputs.

        Input names (the model's, and its train section's targets) are kept from layer instances
        and graph nodes: an input must reach ONNX under the name it was given, and `input relu_1`
        after a relu, or a target 'dense_1', would otherwise get a suffix. Reserving the targets in
        the inference build too keeps parameter names equal in both (trained weights go by name)."""
        self.model = m
        self.graph = Graph(m.name, source_hash=self.prog.source_hash())
        self.scope = Scope("")
        train = self.prog.trains.get(m.name)
        inputs = [st.name for st in m.body if isinstance(st, ast.InputDecl)]
        inputs += [td.name for td in train.targets] if train is not None else []
        self.scope.taken.update(inputs)
        self.graph.reserve(inputs)
        self.run(m.body, self.scope)
        for name, decl in self.scope.pending_outputs.items():
            if name in self.scope.assigned:  # `output h` then `h = ...`: h's final value
                self.graph.outputs[name] = self.tensor(
                    self.scope.vars[name], decl.span, f"output '{name}'"
                ).node
                continue
            raise NNError(
                f"output '{name}' is declared but never assigned",
                decl.span,
                expected=f"a statement '{name} = ...' after the declaration",
            )
        self.graph.outputs = {o: self.graph.outputs[o] for o in self.scope.output_order}
        if not self.graph.outputs:
            raise NNError(
                f"model '{m.name}' has no output", m.span, expected="at least one 'output name = expression'"
            )
        return self.scope

    def finish(self) -> tuple[Graph, list[SummaryRow]]:
        self.graph.prune()
        for inp in self.graph.inputs:
            if self.graph.g.out_degree(inp) == 0 and inp not in self.graph.outputs.values():
                what = "target" if inp in self.targets else "input"
                raise NNError(
                    f"{what} '{inp}' is never used",
                    self.graph.node(inp)["span"],
                    expected=f"every {what} to reach an output or the loss",
                    hint="remove it, or use it",
                )
        live = set(self.graph.g)
        return self.graph, [r for r in self.rows if r.node in live]

    def run(self, stmts: list[ast.Stmt], scope: Scope) -> None:
        scope.bodies.append((stmts, 0))
        try:
            for i, st in enumerate(stmts):
                scope.bodies[-1] = (stmts, i)
                if scope.returned is not None:
                    if i > 0 and isinstance(stmts[i - 1], ast.Return):
                        raise NNError(
                            "statement after 'return' is never reached",
                            st.span,
                            expected="'return' as the last statement of a block",
                        )
                    break  # an `if` branch returned: the block ends there
                self.statement(st, scope)
        finally:
            scope.bodies.pop()

    def statement(self, st: ast.Stmt, scope: Scope) -> None:
        if isinstance(st, ast.InputDecl):
            self.input_decl(st, scope)
        elif isinstance(st, ast.Assign):
            self.bind(st.name, st.span, self.eval(st.value, scope), scope)
        elif isinstance(st, ast.Unpack):
            self.unpack(st.targets, self.eval(st.value, scope), st.value.span, scope)
        elif isinstance(st, ast.If):
            if self.truth(st.cond, scope, "the condition of 'if'"):
                self.run(st.body, scope)
            elif st.orelse is not None:
                self.run(st.orelse, scope)
        elif isinstance(st, ast.For):
            items = self.eval(st.items, scope)
            if isinstance(items, Symbol):
                undefined(items, scope, self.dims, "name")
            if not isinstance(items, (list, tuple)):
                raise NNError(
                    f"'for' runs over a list, but this is {describe(items)}",
                    st.items.span,
                    expected="a list, such as skips after skips = skips + [h]",
                    hint="for a count write 'repeat i in N { ... }'" if isinstance(items, int) else None,
                )
            for item in list(items):
                self.bind(st.var, st.var_span, item, scope)
                self.run(st.body, scope)
        elif isinstance(st, ast.OutputDecl):
            self.output_decl(st, scope)
        elif isinstance(st, ast.Return):
            if scope.block is None:
                raise NNError(
                    "'return' belongs in a block; a model names its results with 'output'",
                    st.span,
                    expected="output name = expression",
                )
            values = tuple(self.result(self.eval(v, scope), v.span, scope) for v in st.values)
            scope.returned = values[0] if len(values) == 1 else values
        elif isinstance(st, ast.Repeat):
            n = self.eval(st.count, scope)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise NNError(
                    f"repeat count must be a positive integer, got {describe(n)}",
                    st.count.span,
                    expected="an integer >= 1, such as 'repeat 4 { ... }'",
                )
            if n > MAX_REPEAT:
                raise NNError(
                    f"repeat count {n:,} would build a graph too large to compile",
                    st.count.span,
                    expected=f"at most {MAX_REPEAT:,} repetitions",
                )
            for i in range(n):
                if st.var is not None:
                    self.bind(st.var, st.var_span, i, scope)
                self.run(st.body, scope)

    def result(self, v: Any, span: Span, scope: Scope) -> Any:
        """One value a block returns: a tensor, a list of tensors, or a block's several results."""
        if isinstance(v, (list, tuple)) and all(
            isinstance(i, Tensor) or isinstance(i, (list, tuple)) for i in v
        ):
            for i in v:
                self.result(i, span, scope)
            return v
        return self.tensor(v, span, "the value a block returns", scope)

    def unpack(self, targets: list[ast.Target], value: Any, span: Span, scope: Scope) -> None:
        """`a, b = value` and `out, (h, c) = value`: one name per result, nested as written."""
        if isinstance(value, Symbol):
            undefined(value, scope, self.dims)
        if not isinstance(value, (tuple, list)):
            raise NNError(
                f"{len(targets)} names take {len(targets)} results, but this is {describe(value)}",
                span,
                expected=f"a block that returns {len(targets)} values (return a, b) or a list of {len(targets)}",
            )
        if len(value) != len(targets):
            raise NNError(
                f"{len(targets)} names for {describe(value) if isinstance(value, tuple) else describe(value) + f' of {len(value)}'}",
                span,
                expected=f"as many names as results: {len(value)}",
            )
        for t, v in zip(targets, value, strict=True):
            if isinstance(t, ast.TargetName):
                self.bind(t.name, t.span, v, scope)
            else:
                self.unpack(t.items, v, t.span, scope)

    def input_decl(self, st: ast.InputDecl | ast.TargetDecl, scope: Scope) -> None:
        if scope.block is not None:
            raise NNError(
                "'input' belongs in a model; a block takes its tensors as parameters",
                st.span,
                expected=f"a parameter of block '{scope.block.name}'",
            )
        self.check_fresh(st.name, st.span, scope)
        dtype = st.type.dtype
        if dtype not in DTYPES:
            raise NNError(
                f"unknown dtype '{dtype}'", st.type.dtype_span, expected="one of " + ", ".join(DTYPES)
            ).suggest(dtype, DTYPES)
        shape = []
        for d in st.type.dims:
            if isinstance(d.value, str) and "*" in d.value:  # 16*H: H is the dim name
                name, factor = d.value.split("*")
                if int(factor) == 0:
                    raise NNError(
                        f"bad dim {d.value} in the type of input '{st.name}': a multiple of 0 is empty",
                        d.span,
                        expected="a positive factor, such as 16*H",
                    )
                self.dims.add(name)
            elif isinstance(d.value, str):
                self.dims.add(d.value)
            elif isinstance(d.value, float) or d.value <= 0:
                raise NNError(
                    f"bad dim {d.value} in the type of input '{st.name}'",
                    d.span,
                    expected="a positive integer or a dim name such as batch",
                )
            elif d.value > MAX_DIM:
                raise NNError(
                    f"dim {d.value} in the type of input '{st.name}' is larger than a tensor can be",
                    d.span,
                    expected=f"a size up to {MAX_DIM:,}, or a dim name such as batch",
                )
            shape.append(d.value)
        node = self.graph.add(
            st.name, "input", [], TensorType(dtype, tuple(shape)), st.span, order=self.tick()
        )
        self.graph.inputs.append(node)
        scope.vars[st.name] = Tensor(node)
        scope.defined_at[st.name] = st.span

    def output_decl(self, st: ast.OutputDecl, scope: Scope) -> None:
        if scope.block is not None:
            raise NNError(
                "'output' belongs in a model; a block ends with 'return'",
                st.span,
                expected="return expression",
            )
        if st.name in self.graph.outputs or st.name in scope.pending_outputs:
            raise NNError(f"duplicate output '{st.name}'", st.span, expected="each output named once")
        scope.output_order.append(st.name)
        if st.value is None:
            scope.pending_outputs[st.name] = st  # the value the name holds at the end of the model
            if st.name in scope.vars:
                self.tensor(scope.vars[st.name], st.span, f"output '{st.name}'")
                scope.assigned.add(st.name)
            return
        self.bind(st.name, st.span, self.eval(st.value, scope), scope)
        self.graph.outputs[st.name] = self.tensor(
            scope.vars[st.name], st.value.span, f"output '{st.name}'"
        ).node

    def bind(self, name: str, span: Span, value: Any, scope: Scope) -> None:
        if name in self.layers or name in self.prog.blocks:
            what = "built-in layer" if name in self.layers else "block"
            raise NNError(
                f"'{name}' is the name of a {what}; a tensor cannot take it",
                span,
                expected="another name",
                hint=f"try '{name}_out'",
            )
        if name in self.graph.inputs and scope.block is None:
            raise NNError(
                f"duplicate name '{name}': it is an input (declared at {scope.defined_at[name]})",
                span,
                expected="a new name for this tensor",
            )
        if isinstance(value, LayerValue) and value.name is None:
            if name in RESERVED_SCOPES:  # a layer's name scopes its nodes: grad/matmul would be backward's
                raise NNError(
                    f"'{name}' cannot name a layer: nngraph names the training step's "
                    f"{RESERVED_SCOPES[name]} nodes {name}/...",
                    span,
                    expected="another name",
                    hint=f"try '{name}_layer'",
                )
            value.name = scope.instance_name(value.kind, name)
        if isinstance(value, Symbol):
            undefined(value, scope, self.dims)
        scope.vars[name] = value
        scope.defined_at[name] = span
        if name in scope.pending_outputs:
            self.tensor(value, span, f"output '{name}'")
            scope.assigned.add(name)

    def check_fresh(self, name: str, span: Span, scope: Scope) -> None:
        if name in scope.vars:
            raise NNError(
                f"duplicate name '{name}' (first defined at {scope.defined_at[name]})",
                span,
                expected="a new name",
            )

    def apply_block(self, lv: LayerValue, tensors: list[Tensor], span: Span, scope: Scope) -> Any:
        b: ast.BlockDef = lv.callee
        if b.name in scope.stack:
            chain = " -> ".join([*scope.stack[scope.stack.index(b.name) :], b.name])
            if not any(has_if(self.prog.blocks[n].body) for n in scope.stack[scope.stack.index(b.name) :]):
                raise NNError(
                    f"block '{b.name}' calls itself ({chain}) with no 'if' to stop it",
                    span,
                    expected="a block that does not call itself, or calls itself inside an 'if'",
                    hint="use 'repeat N { ... }' to stack layers, or 'if depth > 0 { ... }' around the call",
                )
            if scope.stack.count(b.name) >= MAX_RECURSION:
                raise NNError(
                    f"block '{b.name}' calls itself more than {MAX_RECURSION} deep: its 'if' never stops it",
                    span,
                    expected=f"a recursion that ends within {MAX_RECURSION} calls, e.g. on a depth that "
                    "counts down: if depth > 0 { ... b(depth=depth - 1) ... }",
                )
        inner = Scope(lv.name, block=b, stack=scope.stack + (b.name,))
        tparams = [p for p in b.params if (p.type or "tensor") == "tensor"]
        for p, t in zip(tparams, tensors, strict=True):
            inner.vars[p.name] = t
            inner.defined_at[p.name] = p.span
        for k, v in lv.args.items():
            inner.vars[k] = v
            inner.defined_at[k] = span
        try:
            self.run(b.body, inner)
        except NNError as err:
            note = f"in block '{b.name}' applied at {span}"
            if note not in err.notes:  # a recursive block is noted once per call site
                err.notes.append(note)
            raise
        if inner.returned is None:
            raise NNError(
                f"block '{b.name}' never returns a tensor",
                b.close_span,
                expected="'return expression' at its end",
            )
        return inner.returned
