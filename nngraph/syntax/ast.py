"""The .nn abstract syntax tree: plain dataclasses, every node with its span."""

from __future__ import annotations

from dataclasses import dataclass, field

from nngraph.errors import Span


@dataclass
class Node:
    span: Span


# ---- expressions -------------------------------------------------------------


@dataclass
class Name(Node):
    id: str


@dataclass
class Number(Node):
    value: int | float


@dataclass
class String(Node):
    value: str


@dataclass
class Bool(Node):
    value: bool


@dataclass
class ListExpr(Node):
    items: list[Expr]


@dataclass
class KwArg(Node):
    name: str
    value: Expr


@dataclass
class Call(Node):
    func: str
    func_span: Span
    args: list[Expr]
    kwargs: list[KwArg]


@dataclass
class BinOp(Node):
    op: str  # "+", "-", "*", "/", "//"
    left: Expr
    right: Expr


@dataclass
class Compare(Node):
    """`a == b` and the other comparisons: decided at compile time."""

    op: str  # "==", "!=", "<", "<=", ">", ">="
    left: Expr
    right: Expr
    op_span: Span


@dataclass
class BoolOp(Node):
    op: str  # "and", "or"
    left: Expr
    right: Expr


@dataclass
class Not(Node):
    operand: Expr


@dataclass
class Attr(Node):
    """`x.shape`: an attribute of a value."""

    value: Expr
    name: str
    name_span: Span


@dataclass
class Index(Node):
    """`x.shape[1]`, `skips[-1]`: an item of a list or of several results."""

    value: Expr
    index: Expr


@dataclass
class Spread(Node):
    """`concat(skips...)`: a list's items as arguments of a call."""

    value: Expr


@dataclass
class Neg(Node):
    operand: Expr


@dataclass
class Pipe(Node):
    """`value | stage`: the stage (a call or a name) applied to value as its first argument."""

    value: Expr
    stage: Call | Name


Expr = (
    Name
    | Number
    | String
    | Bool
    | ListExpr
    | Call
    | BinOp
    | Neg
    | Pipe
    | Compare
    | BoolOp
    | Not
    | Attr
    | Index
)


# ---- statements --------------------------------------------------------------


@dataclass
class Dim(Node):
    value: int | str | float


@dataclass
class TensorTypeExpr(Node):
    dtype: str
    dtype_span: Span
    dims: list[Dim]


@dataclass
class InputDecl(Node):
    name: str
    type: TensorTypeExpr


@dataclass
class OutputDecl(Node):
    name: str
    value: Expr | None


@dataclass
class Assign(Node):
    name: str
    value: Expr


@dataclass
class TargetName(Node):
    name: str


@dataclass
class TargetTuple(Node):
    items: list[Target]


Target = TargetName | TargetTuple


@dataclass
class Unpack(Node):
    """`a, b = expr` and `out, (h, c) = expr`: several results bound to names."""

    targets: list[Target]
    value: Expr

    def names(self) -> list[str]:
        out: list[str] = []

        def walk(t: Target) -> None:
            if isinstance(t, TargetName):
                out.append(t.name)
            else:
                for i in t.items:
                    walk(i)

        for t in self.targets:
            walk(t)
        return out


@dataclass
class Return(Node):
    values: list[Expr]  # `return a, b` gives several results

    @property
    def value(self) -> Expr:
        return self.values[0]


@dataclass
class Repeat(Node):
    count: Expr
    body: list[Stmt]
    var: str | None = None  # `repeat i in 4`: i counts 0, 1, 2, 3
    var_span: Span | None = None


@dataclass
class For(Node):
    """`for s in skips { ... }`: the body once per item of a list, in order."""

    var: str
    var_span: Span
    items: Expr
    body: list[Stmt]


@dataclass
class If(Node):
    """`if cond { ... } else { ... }`: one branch chosen at compile time."""

    cond: Expr
    body: list[Stmt]
    orelse: list[Stmt] | None


Stmt = InputDecl | OutputDecl | Assign | Unpack | Return | Repeat | For | If


# ---- top level ---------------------------------------------------------------


@dataclass
class Param(Node):
    name: str
    type: str | None
    type_span: Span | None
    default: Expr | None


@dataclass
class BlockDef(Node):
    name: str
    params: list[Param]
    body: list[Stmt]
    close_span: Span  # the closing brace, where a missing `return` is reported


@dataclass
class ModelDef(Node):
    name: str
    body: list[Stmt]


@dataclass
class TargetDecl(Node):
    name: str
    type: TensorTypeExpr


@dataclass
class TrainDef(Node):
    """`train Model { ... }`: target declarations and `field = expression` settings."""

    name: str
    targets: list[TargetDecl]
    settings: list[Assign]


@dataclass
class Import(Node):
    path: str


@dataclass
class Module:
    file: str
    imports: list[Import] = field(default_factory=list)
    blocks: list[BlockDef] = field(default_factory=list)
    models: list[ModelDef] = field(default_factory=list)
    trains: list[TrainDef] = field(default_factory=list)
