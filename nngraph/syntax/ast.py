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
    op: str  # "+", "-", "*", "/"
    left: Expr
    right: Expr


@dataclass
class Neg(Node):
    operand: Expr


@dataclass
class Pipe(Node):
    """`value | stage`: the stage (a call or a name) applied to value as its first argument."""

    value: Expr
    stage: Call | Name


Expr = Name | Number | String | Bool | ListExpr | Call | BinOp | Neg | Pipe


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
class Return(Node):
    value: Expr


@dataclass
class Repeat(Node):
    count: Expr
    body: list[Stmt]


Stmt = InputDecl | OutputDecl | Assign | Return | Repeat


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
