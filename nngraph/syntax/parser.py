"""Parse .nn text into the AST, keeping a span on every node."""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from nngraph.errors import SOURCES, NNError, Span
from nngraph.syntax import ast
from nngraph.syntax.syntax_errors import classify


def grammar_path() -> Path:
    """The grammar: a copy inside an installed wheel, else grammar/nn.lark of the checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "nn.lark", here.parents[1] / "grammar" / "nn.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("grammar nn.lark not found beside nngraph/syntax nor in grammar/")


@functools.lru_cache(maxsize=1)
def lark_parser() -> Lark:
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        propagate_positions=True,
        maybe_placeholders=True,
    )


def parse(text: str, file: str = "<string>") -> ast.Module:
    """Parse one file's text; syntax errors become a positioned NNError."""
    SOURCES[file] = text
    try:
        tree = lark_parser().parse(text)
    except UnexpectedInput as e:
        raise classify(e, text, file, lark_parser()) from None
    try:
        return _ToAst(file).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, NNError):
            raise e.orig_exc from None
        raise


#: what a binary file given as source probably is, by its suffix
_NOT_SOURCE = {
    ".onnx": "an .onnx file is a compiled model: 'nngraph run', 'nngraph eval' and nngraph.runtime "
    "take it; the commands that read source take the .nn it was compiled from",
    ".npz": "an .npz holds arrays (data or a checkpoint); give the .nn model file",
    ".npy": "an .npy holds an array; give the .nn model file",
}


def parse_file(path: str | Path) -> ast.Module:
    path = Path(path)
    if path.is_dir():
        raise NNError(f"{path} is a directory, not a .nn file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NNError(f"file not found: {path}") from None
    except OSError as e:
        raise NNError(f"cannot read {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as Windows editors write, is dropped
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            why = "is UTF-16 text, not UTF-8"
        elif b"\0" in raw[:1024] or path.suffix.lower() in _NOT_SOURCE:
            # binary: no source line to show (its bytes would go to the terminal as they are)
            raise NNError(
                f"{path} is not a .nn source file (it is binary)",
                expected="a .nn source file saved as UTF-8",
                hint=_NOT_SOURCE.get(path.suffix.lower()),
            ) from None
        else:
            why = "is not UTF-8 text"
        raise NNError(
            f"the file {why}",
            Span(str(path), line, col, line, col + 1),
            expected="a .nn source file saved as UTF-8",
        ) from None
    return parse(text, str(path))


def _span(file: str, x) -> Span:
    if isinstance(x, Token):
        return Span(file, x.line, x.column, x.end_line, x.end_column)
    return Span(file, x.line, x.column, x.end_line, x.end_column)


@v_args(meta=True)
class _ToAst(Transformer):
    """Lark tree -> AST dataclasses."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def s(self, x) -> Span:
        return _span(self.file, x)

    # top level
    def start(self, meta, items):
        mod = ast.Module(self.file)
        for it in items:
            if isinstance(it, ast.Import):
                mod.imports.append(it)
            elif isinstance(it, ast.BlockDef):
                mod.blocks.append(it)
            elif isinstance(it, ast.TrainDef):
                mod.trains.append(it)
            else:
                mod.models.append(it)
        return mod

    def import_stmt(self, meta, c):
        return ast.Import(self.s(meta), c[0][1:-1])

    def block_def(self, meta, c):
        name, params, body = c
        body_stmts, close = body
        return ast.BlockDef(self.s(name), str(name), params or [], body_stmts, close)

    def params(self, meta, c):
        return list(c)

    def param(self, meta, c):
        name, typ, default = c
        return ast.Param(
            self.s(name), str(name), str(typ) if typ else None, self.s(typ) if typ else None, default
        )

    def model_def(self, meta, c):
        name, (stmts, _close) = c
        return ast.ModelDef(self.s(name), str(name), stmts)

    def train_def(self, meta, c):
        name, *stmts = c
        targets = [x for x in stmts if isinstance(x, ast.TargetDecl)]
        settings = [x for x in stmts if isinstance(x, ast.Assign)]
        return ast.TrainDef(self.s(name), str(name), targets, settings)

    def target_decl(self, meta, c):
        return ast.TargetDecl(self.s(c[0]), str(c[0]), c[1])

    def body(self, meta, c):
        end = Span(self.file, meta.end_line, meta.end_column - 1, meta.end_line, meta.end_column)
        return list(c), end

    # statements
    def input_decl(self, meta, c):
        return ast.InputDecl(self.s(c[0]), str(c[0]), c[1])

    def tensor_type(self, meta, c):
        return ast.TensorTypeExpr(self.s(meta), str(c[0]), self.s(c[0]), list(c[1:]))

    def dim_int(self, meta, c):
        return ast.Dim(self.s(c[0]), int(c[0]))

    def dim_name(self, meta, c):
        return ast.Dim(self.s(c[0]), str(c[0]))

    def dim_neg(self, meta, c):
        return ast.Dim(self.s(meta), -int(c[0]))

    def dim_scaled(self, meta, c):
        name, factor = (c[1], c[0]) if c[0].type == "INT" else (c[0], c[1])
        return ast.Dim(self.s(meta), f"{name}*{int(factor)}")

    def dim_float(self, meta, c):
        return ast.Dim(self.s(c[0]), float(c[0]))

    def output_decl(self, meta, c):
        return ast.OutputDecl(self.s(c[0]), str(c[0]), c[1])

    def assign(self, meta, c):
        return ast.Assign(self.s(c[0]), str(c[0]), c[1])

    def unpack(self, meta, c):
        *targets, value = c
        return ast.Unpack(self.s(meta), targets, value)

    def target_name(self, meta, c):
        return ast.TargetName(self.s(c[0]), str(c[0]))

    def target_tuple(self, meta, c):
        return ast.TargetTuple(self.s(meta), list(c))

    def return_stmt(self, meta, c):
        return ast.Return(self.s(meta), list(c))

    def repeat_stmt(self, meta, c):
        var, count, (stmts, _close) = c
        return ast.Repeat(self.s(meta), count, stmts, str(var) if var else None, self.s(var) if var else None)

    def for_stmt(self, meta, c):
        var, items, (stmts, _close) = c
        return ast.For(self.s(meta), str(var), self.s(var), items, stmts)

    def if_stmt(self, meta, c):
        cond, (stmts, _close), *rest = c
        orelse = None
        if rest:
            orelse = [rest[0]] if isinstance(rest[0], ast.If) else rest[0][0]
        return ast.If(self.s(meta), cond, stmts, orelse)

    # expressions
    def pipe(self, meta, c):
        return ast.Pipe(self.s(meta), c[0], c[1])

    def _bin(op):  # noqa: N805 - a rule factory used in the class body
        return lambda self, meta, c: ast.BinOp(self.s(meta), op, c[0], c[1])

    add, sub, mul, div, floordiv = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("//")

    def compare(self, meta, c):
        return ast.Compare(self.s(meta), str(c[1]), c[0], c[2], self.s(c[1]))

    def and_(self, meta, c):
        return ast.BoolOp(self.s(meta), "and", c[0], c[1])

    def or_(self, meta, c):
        return ast.BoolOp(self.s(meta), "or", c[0], c[1])

    def not_(self, meta, c):
        return ast.Not(self.s(meta), c[0])

    def attr(self, meta, c):
        return ast.Attr(self.s(meta), c[0], str(c[1]), self.s(c[1]))

    def index(self, meta, c):
        return ast.Index(self.s(meta), c[0], c[1])

    def spread(self, meta, c):
        return ast.Spread(self.s(meta), c[0])

    def neg(self, meta, c):
        return ast.Neg(self.s(meta), c[0])

    def name(self, meta, c):
        return ast.Name(self.s(c[0]), str(c[0]))

    def int(self, meta, c):
        return ast.Number(self.s(c[0]), int(c[0]))

    def float(self, meta, c):
        return ast.Number(self.s(c[0]), float(c[0]))

    def string(self, meta, c):
        return ast.String(self.s(c[0]), c[0][1:-1])

    def true(self, meta, c):
        return ast.Bool(self.s(meta), True)

    def false(self, meta, c):
        return ast.Bool(self.s(meta), False)

    def list(self, meta, c):
        return ast.ListExpr(self.s(meta), [x for x in c if x is not None])

    def call(self, meta, c):
        name, *args = c
        args = [a for a in args if a is not None]
        pos = [a for a in args if not isinstance(a, ast.KwArg)]
        kws = [a for a in args if isinstance(a, ast.KwArg)]
        seen_kw = False
        for a in args:
            if isinstance(a, ast.KwArg):
                seen_kw = True
            elif seen_kw:
                raise NNError(
                    f"positional argument after a keyword argument in call to '{name}'",
                    a.span,
                    expected="positional arguments first, then name=value arguments",
                )
        return ast.Call(self.s(meta), str(name), self.s(name), pos, kws)

    def kwarg(self, meta, c):
        return ast.KwArg(self.s(c[0]), str(c[0]), c[1])
