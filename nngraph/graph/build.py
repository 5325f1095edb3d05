"""AST -> Graph: evaluate a model's statements, elaborating blocks and layers into primitive operators.

Statements run top to bottom; names may be rebound (`h = h | relu`). A call
with all its input tensors builds nodes; a call without them is a layer value
that can be applied later, and applying one layer value twice shares its
weights. Shape rules raise plain ShapeErrors; this module attaches spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from nngraph.core.emit import Emitter
from nngraph.core.ir import Graph
from nngraph.core.types import DTYPES, TensorType
from nngraph.errors import NNError, ShapeError, Span
from nngraph.graph.program import Program, pick_model
from nngraph.graph.values import LayerValue, Tensor, convert, describe
from nngraph.layers import LayerDef, all_layers
from nngraph.layers.args import ArgSpec, Symbol
from nngraph.layers.init import initialize
from nngraph.ops import registry
from nngraph.syntax import ast

BLOCK_PARAM_KINDS = ("tensor", "int", "float", "bool", "str", "ints")

#: the largest static dim an input may declare (ONNX stores dims as int64; no tensor is near this)
MAX_DIM = 2**40
#: the most repetitions a `repeat` builds (each copies its body into the graph; a deep model has
#: tens to hundreds, and a typo of 100000000 would otherwise run for hours)
MAX_REPEAT = 10_000


#: Name scopes of the training step (gradients, optimizer update): no layer may take them.
RESERVED_SCOPES = {"grad": "backward", "update": "optimizer"}


@dataclass
class Scope:
    """Names visible in a model body or in one application of a block."""

    prefix: str
    block: ast.BlockDef | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    defined_at: dict[str, Span] = field(default_factory=dict)
    stack: tuple[str, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    pending_outputs: dict[str, ast.OutputDecl] = field(default_factory=dict)
    assigned: set[str] = field(default_factory=set)  # pending outputs assigned at least once
    output_order: list[str] = field(default_factory=list)
    returned: Tensor | None = None
    bodies: list[tuple[list[ast.Stmt], int]] = field(
        default_factory=list
    )  # statement lists being run, and where

    def instance_name(self, kind: str, wanted: str | None = None) -> str:
        base = wanted
        if base is None or base in self.taken:
            n = self.counters.get(kind, 0)
            while True:
                n += 1
                base = f"{kind}_{n}"
                if base not in self.taken:
                    break
            self.counters[kind] = n
        self.taken.add(base)
        return f"{self.prefix}/{base}" if self.prefix else base


@dataclass
class SummaryRow:
    name: str
    kind: str
    node: str
    params: int
    depth: int


def build_graph(prog: Program, model: str | None = None, seed: int = 0) -> tuple[Graph, list[SummaryRow]]:
    return Builder(prog, seed).build(pick_model(prog, model))


#: PyTorch and Keras names users bring with them, lower-cased, and nngraph's word for each.
FOREIGN_LAYERS = {
    "linear": "dense",
    "fc": "dense",
    "conv": "conv2d",
    "maxpool2d": "maxpool",
    "avgpool2d": "avgpool",
    "max_pool2d": "maxpool",
    "avg_pool2d": "avgpool",
    "maxpooling2d": "maxpool",
    "averagepooling2d": "avgpool",
    "batchnorm1d": "batchnorm",
    "batchnorm2d": "batchnorm",
    "batchnormalization": "batchnorm",
    "layernormalization": "layernorm",
    "multiheadattention": "attention",
    "transformerencoderlayer": "transformer_encoder",
    "logsoftmax": "log_softmax",
    "leakyrelu": "leaky_relu",
    "crossentropyloss": "cross_entropy",
    "mseloss": "mse",
    "bcewithlogitsloss": "binary_cross_entropy",
}
FOREIGN_ARGS = {
    "dim": "axis",
    "out_features": "units",
    "out_channels": "channels",
    "filters": "channels",
    "kernel_size": "kernel",
    "strides": "stride",
    "num_heads": "heads",
    "negative_slope": "alpha",
    "use_bias": "bias",
    "rate": "p",
    "num_embeddings": "num",
    "embedding_dim": "dim",
    "hidden_size": "hidden",
    "num_layers": "layers",
}


class Builder:
    def __init__(self, prog: Program, seed: int = 0, training: bool = False):
        self.prog = prog
        self.seed = seed
        self.training = training  # batchnorm on batch statistics, dropout on noise inputs
        self.state_updates: dict[str, str] = {}  # buffer -> its new value after a training step
        self.noise: dict[str, float] = {}  # dropout noise input -> drop probability
        self.targets: set[str] = set()
        self.param_elements = 0  # elements of the trainable parameters made so far, for the summary's column
        self.layers = all_layers()
        self.graph = Graph("")
        self.dims: set[str] = set()
        self.rows: list[SummaryRow] = []
        self.order = 0
        for b in prog.blocks.values():
            self._check_block(b)

    # ---- entry -------------------------------------------------------------------

    def build(self, m: ast.ModelDef) -> tuple[Graph, list[SummaryRow]]:
        self.start(m)
        return self.finish()

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

    # ---- statements ----------------------------------------------------------------

    def run(self, stmts: list[ast.Stmt], scope: Scope) -> None:
        scope.bodies.append((stmts, 0))
        try:
            for i, st in enumerate(stmts):
                scope.bodies[-1] = (stmts, i)
                if scope.returned is not None:
                    raise NNError(
                        "statement after 'return' is never reached",
                        st.span,
                        expected="'return' as the last statement of a block",
                    )
                self.statement(st, scope)
        finally:
            scope.bodies.pop()

    def statement(self, st: ast.Stmt, scope: Scope) -> None:
        if isinstance(st, ast.InputDecl):
            self.input_decl(st, scope)
        elif isinstance(st, ast.Assign):
            self.bind(st.name, st.span, self.eval(st.value, scope), scope)
        elif isinstance(st, ast.OutputDecl):
            self.output_decl(st, scope)
        elif isinstance(st, ast.Return):
            if scope.block is None:
                raise NNError(
                    "'return' belongs in a block; a model names its results with 'output'",
                    st.span,
                    expected="output name = expression",
                )
            scope.returned = self.tensor(
                self.eval(st.value, scope), st.value.span, "the value a block returns"
            )
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
            for _ in range(n):
                self.run(st.body, scope)

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
            if isinstance(d.value, str):
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
            self.undefined(value, scope)
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

    # ---- expressions -----------------------------------------------------------------

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
                    self.unknown_layer(e.stage.id, e.stage.span, scope)
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
        self.bind_args(lv, [], [], {}, span, scope)  # defaults; a missing required argument is reported here
        return lv

    def tensor(self, v: Any, span: Span, what: str, scope: Scope | None = None) -> Tensor:
        if isinstance(v, Tensor):
            return v
        if isinstance(v, Symbol):
            self.undefined(v, scope)
        if isinstance(v, LayerValue):
            n, _ = self.signature(v)
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

    def undefined(self, sym: Symbol, scope: Scope | None, what: str = "tensor") -> None:
        names = list(scope.vars) if scope else []
        if scope is not None:
            self.used_before_assigned(sym, scope)
        err = NNError(
            f"undefined {what} '{sym.name}'", sym.span, expected="a name assigned or declared above"
        )
        if sym.name in ("True", "False", "TRUE", "FALSE"):  # Python's spelling
            err.hint = f"did you mean '{sym.name.lower()}'? (.nn writes true and false in lower case)"
            raise err
        if sym.name in self.dims and sym.name not in names:  # reshape([batch * 2, 4])
            raise NNError(
                f"'{sym.name}' is a dim name, not a value: it cannot take part in arithmetic",
                sym.span,
                expected="a dim name alone in a reshape list, as in reshape([batch, 4])",
                hint="for a dim computed from others write -1 (inferred), e.g. reshape([-1, 4])",
            )
        raise err.suggest(sym.name, names)

    def used_before_assigned(self, sym: Symbol, scope: Scope) -> None:
        """A name assigned further down: report it, and call it a cycle when that assignment needs this one."""
        for stmts, i in reversed(scope.bodies):
            target = getattr(stmts[i], "name", None)
            if target == sym.name and isinstance(stmts[i], (ast.Assign, ast.OutputDecl)):
                raise NNError(
                    f"'{sym.name}' is used in its own definition (a cycle)",
                    sym.span,
                    expected=f"'{sym.name}' to be assigned before this line",
                )
            for later in stmts[i + 1 :]:
                if isinstance(later, (ast.Assign, ast.OutputDecl)) and later.name == sym.name:
                    if target is not None and later.value is not None and target in _names_in(later.value):
                        raise NNError(
                            f"cycle: '{target}' needs '{sym.name}', which is assigned at line {later.span.line} from '{target}'",
                            sym.span,
                            expected="tensors that do not depend on themselves",
                        )
                    raise NNError(
                        f"'{sym.name}' is used before it is assigned (at line {later.span.line})",
                        sym.span,
                        expected="statements in order: assign a tensor before using it",
                    )

    def unknown_layer(self, name: str, span: Span, scope: Scope) -> None:
        if name in scope.vars and isinstance(scope.vars[name], Tensor):
            raise NNError(f"'{name}' is a tensor, not a layer", span, expected="a layer or block name")
        candidates = (
            list(self.layers)
            + list(self.prog.blocks)
            + [k for k, v in scope.vars.items() if isinstance(v, LayerValue)]
        )
        err = NNError(
            f"unknown layer '{name}'", span, expected="a built-in layer, a block, or a layer assigned above"
        )
        if name.lower() in FOREIGN_LAYERS and FOREIGN_LAYERS[name.lower()] in self.layers:
            err.hint = f"did you mean '{FOREIGN_LAYERS[name.lower()]}'? (nngraph's name for {name})"
            raise err
        raise err.suggest(name, candidates)

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
                self.undefined(v, scope)
            if not isinstance(v, (Tensor, int, float)) or isinstance(v, bool):
                raise NNError(
                    f"'{op}' works on tensors and numbers, not on {describe(v)}",
                    e.span,
                    expected="tensors or numbers on both sides",
                )
        ta = a if isinstance(a, Tensor) else None
        tb = b if isinstance(b, Tensor) else None
        like = self.graph.type((ta or tb).node)
        xa = ta.node if ta else self.const(a, like, e.span)
        xb = tb.node if tb else self.const(b, like, e.span)
        opname = {"+": "add", "-": "sub", "*": "mul", "/": "div"}[op]
        name = scope.instance_name(opname)
        node = self.emitter(e.span, name).op(opname, [xa, xb])
        self.rows.append(SummaryRow(name, opname, node, 0, name.count("/")))
        return Tensor(node)

    def const(self, value: float, like: TensorType, span: Span) -> str:
        if like.dtype == "bool":
            raise NNError(
                f"arithmetic on a bool tensor {like}",
                span,
                expected="a numeric tensor",
                hint="cast it first, e.g. cast(mask, to=f32)",
            )
        if like.dtype in ("i32", "i64") and float(value) != int(value):
            raise NNError(
                f"the number {value} would be truncated to combine it with the integer tensor {like}",
                span,
                expected="an integer, or a float tensor",
                hint="cast it first, e.g. cast(x, to=f32)",
            )
        return self.emitter(span).const(value, like)

    # ---- calls and application ---------------------------------------------------------

    def call(self, e: ast.Call, piped: list[Tensor], scope: Scope) -> Any:
        target = scope.vars.get(e.func)
        if target is None:
            callee = self.layers.get(e.func) or self.find_block(e.func, e.func_span, scope)
            target = LayerValue(callee, e.func, e.func_span) if callee else Symbol(e.func, e.func_span)
        if not isinstance(target, LayerValue):
            if isinstance(target, Symbol):
                self.unknown_layer(e.func, e.func_span, scope)
            raise NNError(
                f"'{e.func}' is {describe(target)}, not a layer",
                e.func_span,
                expected="a layer or block to call",
            )
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
        if e.func in scope.vars:  # an assigned layer instance: only tensors may be added
            if kws or any(not isinstance(v, Tensor) for v in pos):
                raise NNError(
                    f"'{e.func}' is a layer instance with its arguments already set",
                    e.span,
                    expected=f"only input tensors, e.g. {e.func}(x) or x | {e.func}",
                )
            return self.apply(
                target,
                [self.tensor(v, s, "an input", scope) for v, s in zip(pos, spans, strict=True)],
                e.span,
                scope,
            )
        lv = LayerValue(target.callee, target.kind, e.span)
        self.bind_args(lv, pos, spans, kws, e.span, scope, name_spans)
        if self._ready(lv):
            return self.apply(lv, [], e.span, scope)
        return lv

    def signature(self, lv: LayerValue) -> tuple[int | None, list[ArgSpec]]:
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

    def _ready(self, lv: LayerValue) -> bool:
        n, _ = self.signature(lv)
        return len(lv.tensors) >= 1 if n is None else len(lv.tensors) == n

    def bind_args(
        self,
        lv: LayerValue,
        pos: list,
        spans: list[Span],
        kws: dict,
        span: Span,
        scope: Scope,
        name_spans: dict[str, Span] | None = None,
    ) -> None:
        n, specs = self.signature(lv)
        owner = f"'{lv.kind}'"
        i = 0
        while i < len(pos) and isinstance(pos[i], Tensor) and (n is None or i < n):
            lv.tensors.append(pos[i])
            i += 1
        if i < len(pos) and isinstance(pos[i], list) and any(isinstance(v, Tensor) for v in pos[i]):
            raise NNError(
                f"{owner} takes its tensors as separate arguments, not a list",
                spans[i],
                expected=f"{lv.kind}(a, b, ...)",
            )
        if (
            n is not None
            and i < min(n, len(pos))
            and isinstance(pos[i], Symbol)
            and any(isinstance(v, Tensor) for v in pos[i + 1 :])
        ):  # a misspelled tensor before other tensors: cross_entropy(logitz, label)
            self.undefined(pos[i], scope)
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
                raise NNError(
                    f"argument '{spec.name}' of {owner} must be {_kind(spec)}, got a tensor",
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
                err = NNError(f"{owner} has no argument '{k}'", where, expected=_sig_words(lv.kind, specs))
                if FOREIGN_ARGS.get(k) in names:
                    err.hint = f"did you mean '{FOREIGN_ARGS[k]}'? (nngraph's name for {k})"
                    raise err
                raise err.suggest(k, names)
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
                    self.undefined(v, scope)
                lv.args[spec.name] = self.convert_arg(spec, v, s, owner, scope)
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
                    else self.convert_arg(
                        spec, self.eval(spec.default, Scope("")), spec.default.span, owner, scope
                    )
                )

    def convert_arg(self, spec: ArgSpec, v: Any, span: Span, owner: str, scope: Scope) -> Any:
        if (
            isinstance(v, Symbol)
            and spec.kind not in ("padding", "shape", "str", "init")
            and not spec.kind.startswith("choice:")
        ):
            self.undefined(v, scope, "name")
        return convert(spec, v, span, owner)

    def apply(
        self, lv: LayerValue, more: list[Tensor], span: Span, scope: Scope, piped: bool = False
    ) -> Tensor:
        # the piped tensor comes first, as in `x | sub(y)`, also when the layer was held in a name
        tensors = more + lv.tensors if piped else lv.tensors + more
        n, _ = self.signature(lv)
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
        ctx = _Ctx(self, lv, span, scope)
        before = self.param_elements
        out = lv.callee.build(ctx, [t.node for t in tensors], lv.args)
        self.rows.append(SummaryRow(lv.name, lv.kind, out, self.param_elements - before, lv.name.count("/")))
        return Tensor(out)

    def apply_block(self, lv: LayerValue, tensors: list[Tensor], span: Span, scope: Scope) -> Tensor:
        b: ast.BlockDef = lv.callee
        if b.name in scope.stack:
            chain = " -> ".join([*scope.stack[scope.stack.index(b.name) :], b.name])
            raise NNError(
                f"block '{b.name}' calls itself ({chain}); blocks cannot be recursive",
                span,
                expected="a block that does not call itself",
                hint="use 'repeat N { ... }' to stack layers",
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
            err.notes.append(f"in block '{b.name}' applied at {span}")
            raise
        if inner.returned is None:
            raise NNError(
                f"block '{b.name}' never returns a tensor",
                b.close_span,
                expected="'return expression' at its end",
            )
        return inner.returned

    # ---- blocks are checked where they are defined ------------------------------------------

    def _check_block(self, b: ast.BlockDef) -> None:
        if b.name in self.layers:
            raise NNError(
                f"block '{b.name}' has the name of a built-in layer", b.span, expected="another name"
            )
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
                    self.eval(p.default, Scope("")),
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

    # ---- nodes -------------------------------------------------------------------------

    def tick(self) -> int:
        self.order += 1
        return self.order

    def emitter(self, span: Span | None, scope_name: str = "", kind: str | None = None) -> LayerEmitter:
        return LayerEmitter(self, span, scope_name, kind)


class LayerEmitter(Emitter):
    """Forward nodes at a call site: one layer application, or one arithmetic node. A node is named
    after the layer instance (`dense_1`, or `dense_1/matmul` for a layer's inner ops); a shape
    error becomes a positioned NNError; an empty result is refused."""

    def __init__(self, b: Builder, span: Span | None, scope_name: str, kind: str | None):
        super().__init__(b.graph, registry.get, span, scope_name, "forward")
        self.b, self.kind = b, kind

    def node_id(self, op: str) -> str:
        if op == "const" and not self.scope:
            return "const"
        return self.scope if (self.kind or op) == op else f"{self.scope}/{op}"

    def fields(self) -> dict:
        return {"order": self.b.tick()}

    def failed(self, err: ShapeError, op: str, inputs: list[str]) -> NoReturn:
        raise NNError(err.message, self.span, expected=err.expected, hint=err.hint) from None

    def made(self, op: str, inputs: list[str], t: TensorType) -> None:
        if 0 in t.shape and not any(0 in self.graph.type(i).shape for i in inputs):
            # Python's clamping makes x[5:] of 4 elements valid, but nothing after it has data
            got = ", ".join(str(self.graph.type(i)) for i in inputs)
            raise NNError(
                f"'{self.kind or op}' of {got} gives an empty tensor {t}",
                self.span,
                expected="a result with at least one element along every dim",
            )


class _Ctx:
    """What a built-in layer sees while it builds: ops, parameters and errors at its call site."""

    def __init__(self, b: Builder, lv: LayerValue, span: Span, scope: Scope, prefix: str | None = None):
        self.b, self.lv, self.span, self.scope = b, lv, span, scope
        self.prefix = lv.name if prefix is None else prefix  # parameter names: PREFIX.local

    def call(self, kind: str, xs: list[str], name: str | None = None, **args: Any) -> str:
        """Build the built-in layer `kind` inside this one (layers compose): its nodes are this
        layer's, its parameters `THIS.NAME.param` (`THIS.param` without a name), its arguments
        the layer's defaults updated by `args`."""
        d = self.b.layers[kind]
        full = {}
        for spec in d.params:
            if spec.name in args:
                full[spec.name] = args.pop(spec.name)
            elif spec.required:
                raise TypeError(f"ctx.call({kind!r}) needs argument {spec.name!r}")
            else:
                full[spec.name] = spec.default
        if args:
            raise TypeError(f"layer {kind!r} has no argument {sorted(args)[0]!r}")
        sub = _Ctx(self.b, self.lv, self.span, self.scope, f"{self.prefix}.{name}" if name else self.prefix)
        return d.build(sub, list(xs), full)

    def op(self, name: str, inputs: list[str], **attrs: Any) -> str:
        return self.b.emitter(self.span, self.lv.name, self.lv.kind).op(name, inputs, **attrs)

    def param(
        self,
        local: str,
        shape: tuple[int, ...],
        init: str,
        fan_in: int = 0,
        fan_out: int = 0,
        trainable: bool = True,
        like: str | None = None,
    ) -> str:
        g = self.b.graph
        pid = f"{self.prefix}.{local}"
        dtype = (
            g.type(like).dtype if like is not None and g.type(like).dtype in ("f16", "f32", "f64") else "f32"
        )
        t = TensorType(dtype, tuple(shape))
        if pid in g.g:
            if g.type(pid) != t:
                self.fail(
                    f"shared layer '{self.lv.name}' was built with {local} {g.type(pid)} but is now applied "
                    f"to an input that needs {t}",
                    expected="the same input shape at every application",
                )
            return pid
        n = int(np.prod(shape, dtype=np.float64))
        if n > 2**31:
            self.fail(
                f"parameter {local} of shape {list(shape)} has {n:,} elements, more than nngraph can hold",
                expected="a layer size that fits in memory",
            )
        value = initialize(pid, tuple(shape), init, fan_in, fan_out, self.b.seed, DTYPES[dtype])
        if trainable:  # buffers (running statistics) are counted apart, as PyTorch's are
            self.b.param_elements += n
        return g.add(
            pid, "param", [], t, self.span, value=value, trainable=trainable, init=init, order=self.b.tick()
        )

    def type(self, node: str) -> TensorType:
        return self.b.graph.type(node)

    def fail(self, message: str, expected: str | None = None, hint: str | None = None) -> None:
        raise NNError(message, self.span, expected=expected, hint=hint)

    def dims(self) -> set[str]:
        return self.b.dims

    @property
    def training(self) -> bool:
        return self.b.training

    def shared(self, instance: str, local: str) -> str:
        """Another layer's parameter (weight tying): `local` of the layer instance `instance`."""
        pid = f"{instance}.{local}"
        if pid not in self.b.graph.g:
            self.fail(
                f"layer '{instance}' has no parameter '{local}' to share",
                expected="an embedding layer that was applied before this line",
            )
        return pid

    def scalar(self, value: float, like: str) -> str:
        return self.b.const(value, self.b.graph.type(like), self.span)

    def update(self, buffer: str, value: str) -> None:
        """Record a buffer's value after a training step (batchnorm running statistics)."""
        self.b.state_updates[buffer] = value

    def latest(self, buffer: str) -> str:
        """A buffer's value so far in this step: its update by an earlier application, or itself."""
        return self.b.state_updates.get(buffer, buffer)

    def noise(self, like: str, p: float) -> str:
        """A fresh input of uniform [0, 1) noise shaped like `like`, fed anew at every training step."""
        g = self.b.graph
        nid = g.add(f"{self.prefix}.noise", "input", [], g.type(like), self.span, order=self.b.tick())
        g.inputs.append(nid)
        self.b.noise[nid] = p
        return nid


def _kind(spec: ArgSpec) -> str:
    from nngraph.graph.values import kind_words

    return kind_words(spec.kind)


def _sig_words(kind: str, specs: list[ArgSpec]) -> str:
    parts = [s.name if s.required else f"{s.name}={_fmt(s.default)}" for s in specs]
    return f"{kind}({', '.join(parts)})"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, ast.Node) or v is None:  # None: optional, nothing by default
        return "..."
    return str(v)


def _names_in(e: ast.Expr) -> set[str]:
    out: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, ast.Name):
            out.add(x.id)
        elif isinstance(x, ast.Node):
            for v in vars(x).values():
                if isinstance(v, list):
                    for i in v:
                        walk(i)
                else:
                    walk(v)

    walk(e)
    return out


def _returns_in_repeats(stmts: list[ast.Stmt]) -> list[ast.Return]:
    """Every 'return' nested in a repeat body, outermost first."""
    out: list[ast.Return] = []
    for st in stmts:
        if isinstance(st, ast.Repeat):
            out += [s for s in st.body if isinstance(s, ast.Return)] + _returns_in_repeats(st.body)
    return out
