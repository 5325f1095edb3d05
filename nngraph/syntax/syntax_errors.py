"""Turn Lark's parse errors into messages that say what is wrong in words.

Each rule in RULES looks at the error and the tokens before it and returns an
NNError for a typical mistake, or None; the first hit wins, and a generic
"unexpected X, expected Y" message is the fallback.
"""

from __future__ import annotations

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from nngraph.errors import NNError, Span, nearest

KEYWORDS = {
    "import",
    "block",
    "model",
    "train",
    "target",
    "input",
    "output",
    "return",
    "repeat",
    "true",
    "false",
    "if",
    "else",
    "for",
    "in",
    "and",
    "or",
    "not",
}
STATEMENT_KEYWORDS = ("input", "output", "return", "repeat", "for", "if")

_WORDS = {
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "VBAR": "'|'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "_FLOORDIV": "'//'",
    "_ELLIPSIS": "'...'",
    "DOT": "'.'",
    "CMP": "a comparison (==, !=, <, <=, >, >=)",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "$END": "the end of the file",
}
_OPEN = {"LBRACE": "RBRACE", "LPAR": "RPAR", "LSQB": "RSQB"}
_CHAR = {"LBRACE": "{", "LPAR": "(", "LSQB": "[", "RBRACE": "}", "RPAR": ")", "RSQB": "]"}


def words(term: str) -> str:
    if term in _WORDS:
        return _WORDS[term]
    if term.lower() in KEYWORDS:
        return f"'{term.lower()}'"
    return term


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the file"
    if tok.type == "NAME":
        return f"name '{tok}'"
    return f"'{tok}'"


class _Ctx:
    def __init__(self, e: UnexpectedInput, text: str, file: str, lark: Lark):
        self.e = e
        self.file = file
        self.text = text
        self.expected = set(getattr(e, "expected", None) or getattr(e, "allowed", None) or ())
        self.token: Token | None = getattr(e, "token", None)
        self.before = self._tokens_before(lark)

    def _tokens_before(self, lark: Lark) -> list[Token]:
        out = []
        at_end = self.token is not None and self.token.type == "$END"  # Lark places $END on the last token
        try:
            for t in lark.lex(self.text):
                if not at_end and (t.line, t.column) >= (self.e.line, self.e.column):
                    break
                out.append(t)
        except UnexpectedInput:
            pass
        return out

    def span_of(self, tok: Token | None) -> Span:
        if tok is None or tok.type == "$END" or tok.line is None:
            line, col = self._end()
            return Span(self.file, line, col, line, col + 1)
        return Span(
            self.file, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1
        )

    def _end(self) -> tuple[int, int]:
        lines = self.text.splitlines() or [""]
        return len(lines), len(lines[-1]) + 1

    def here(self) -> Span:
        return (
            self.span_of(self.token)
            if self.token is not None
            else Span(self.file, self.e.line, self.e.column, self.e.line, self.e.column + 1)
        )

    def unclosed(self) -> list[Token]:
        """Open brackets not yet closed at the error, innermost last."""
        stack: list[Token] = []
        for t in self.before:
            if t.type in _OPEN:
                stack.append(t)
            elif t.type in _OPEN.values() and stack and _OPEN[stack[-1].type] == t.type:
                stack.pop()
        return stack

    @property
    def prev(self) -> Token | None:
        return self.before[-1] if self.before else None

    def expected_words(self) -> str:
        names = sorted(words(t) for t in self.expected)
        return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")


def _bad_character(c: _Ctx) -> NNError | None:
    if not isinstance(c.e, UnexpectedCharacters):
        return None
    ch = c.e.char
    span = Span(c.file, c.e.line, c.e.column, c.e.line, c.e.column + 1)
    if ch == '"':
        return NNError("unterminated string", span, expected="a closing '\"' on the same line")
    hint = {
        "'": 'strings take double quotes: "file.npz"',
        "@": "a matrix product is matmul(a, b)",
        ";": "statements end at the end of the line; no ';' is needed",
    }.get(ch)
    return NNError(
        f"unexpected character '{ch}'",
        span,
        expected="names, numbers, brackets and the operators = : , . | + - * / // == != < <= > >=",
        hint=hint,
    )


def _c_comment(c: _Ctx) -> NNError | None:
    """`// note` or `/* note */` where no operator may stand: comments in .nn start with '#'
    (`//` is integer division, `7 // 2`)."""
    t = c.token
    if t is None or getattr(t, "end_pos", None) is None:
        return None
    if t.type == "_FLOORDIV":
        return NNError(
            "'//' does not start a comment",
            c.span_of(t),
            expected="a comment starting with '#'",
            hint="'//' is integer division between two values, as in h // 2",
        )
    if t.type != "SLASH" or c.text[t.end_pos : t.end_pos + 1] != "*":
        return None
    return NNError("'/*' does not start a comment", c.span_of(t), expected="a comment starting with '#'")


def _unclosed_at_end(c: _Ctx) -> NNError | None:
    if c.token is None or c.token.type != "$END":
        return None
    stack = c.unclosed()
    if not stack:
        return None
    t = stack[-1]
    close = _CHAR[_OPEN[t.type]]
    return NNError(
        f"'{t}' is never closed: the file ends first",
        c.span_of(t),
        expected=f"a matching '{close}'",
    )


def _unclosed_paren(c: _Ctx) -> NNError | None:
    """`relu(x` followed by a new statement: report the open '(' or '['."""
    stack = c.unclosed()
    if not stack or stack[-1].type == "LBRACE" or c.token is None:
        return None
    close = _OPEN[stack[-1].type]
    if close in c.expected and c.token.line != stack[-1].line and c.token.type != close:
        return NNError(
            f"'{stack[-1]}' is never closed",
            c.span_of(stack[-1]),
            expected=f"'{_CHAR[close]}' before {_describe(c.token)} on line {c.token.line}",
        )
    return None


def _unmatched_close(c: _Ctx) -> NNError | None:
    t = c.token
    if t is None or t.type not in _OPEN.values() or t.type in c.expected:
        return None
    return NNError(
        f"unmatched '{t}'",
        c.here(),
        expected=c.expected_words() or None,
        hint="there is no bracket for it to close",
    )


def _unclosed_before_item(c: _Ctx) -> NNError | None:
    """A block or model missing its '}' runs into the next top-level item."""
    t = c.token
    stack = c.unclosed()
    if t is None or t.type == "$END" or not stack or str(t) not in ("model", "block", "train", "import"):
        return None
    if t.column != 1:
        return None
    o = stack[-1]
    return NNError(
        f"'{o}' is never closed",
        c.span_of(o),
        expected=f"'{_CHAR[_OPEN[o.type]]}' before '{t}' on line {t.line}",
    )


def _dangling_pipe(c: _Ctx) -> NNError | None:
    """`x | dense(4) |` with nothing after the last '|'."""
    p, t = c.prev, c.token
    if p is None or p.type != "VBAR" or t is None or t.type == "NAME":
        return None
    return NNError(
        f"'|' needs a layer after it, but {_describe(t)} follows",
        c.span_of(p),
        expected="a layer after '|', e.g. x | relu",
    )


def _missing_value(c: _Ctx) -> NNError | None:
    """`dense(units=)`: a '=' with no value after it."""
    p, t = c.prev, c.token
    if (
        p is None
        or p.type != "EQUAL"
        or t is None
        or t.type not in ("RPAR", "COMMA", "RSQB", "RBRACE", "$END")
    ):
        return None
    name = c.before[-2] if len(c.before) > 1 else None
    what = f"'{name}='" if name is not None and name.type == "NAME" else "'='"
    return NNError(f"{what} has no value", c.here(), expected="a value after '=', e.g. units=64")


def _empty_brackets(c: _Ctx) -> NNError | None:
    """`f32[]`: a bracket closed right after it opens where something must go inside."""
    p, t = c.prev, c.token
    if p is None or t is None or p.type not in _OPEN or _OPEN[p.type] != t.type or t.type in c.expected:
        return None
    return NNError(
        f"'{p}{t}' is empty here",
        c.here(),
        expected=(c.expected_words() or "something") + f" inside '{p}{t}'",
    )


def _keyword_as_name(c: _Ctx) -> NNError | None:
    p = c.prev
    if p is None or str(p) not in KEYWORDS or c.token is None:
        return None
    if c.token.type in ("EQUAL", "COLON", "LPAR") and "NAME" not in c.expected:
        return None
    if c.token.type == "EQUAL" and p.type != "NAME":
        return NNError(
            f"'{p}' is a keyword and cannot be used as a name",
            c.span_of(p),
            expected="a name that is not one of: " + ", ".join(sorted(KEYWORDS)),
            hint=f"rename it, e.g. '{p}_'",
        )
    return None


def _keyword_where_name(c: _Ctx) -> NNError | None:
    """`model = x | relu` or `relu(input)`: a keyword where a name was expected."""
    t = c.token
    if t is None or str(t) not in KEYWORDS or t.type == "NAME" or t.type in c.expected:
        return None
    if "NAME" not in c.expected:
        return None
    return NNError(
        f"'{t}' is a keyword and cannot be used as a name",
        c.here(),
        expected="a name that is not one of: " + ", ".join(sorted(KEYWORDS)),
        hint=f"rename it, e.g. '{t}_'",
    )


def _pipe_stage_operator(c: _Ctx) -> NNError | None:
    t = c.token
    if (
        t is None
        or t.type not in ("PLUS", "MINUS", "STAR", "SLASH", "_FLOORDIV", "DOT", "LSQB")
        or t.type in c.expected
        or "VBAR" not in c.expected
    ):
        return None
    return NNError(
        f"'{t}' cannot follow a pipeline stage",
        c.here(),
        expected="'|' and another layer, or the end of the statement",
        hint="each stage of a '|' pipeline is one layer call; to combine its result, wrap the pipeline in "
        + (
            f"parentheses: (x | layer(...)) {t} y"
            if t.type not in ("DOT", "LSQB")
            else f"parentheses: (x | layer(...)){'.shape' if t.type == 'DOT' else '[0]'}"
        ),
    )


def _unknown_statement(c: _Ctx) -> NNError | None:
    """`outptu y = ...`: a name followed by another name where '=' was expected."""
    p, t = c.prev, c.token
    if p is None or t is None or p.type != "NAME" or "EQUAL" not in c.expected or t.type == "EQUAL":
        return None
    if len(c.before) >= 2 and c.before[-2].type not in (
        "LBRACE",
        "RBRACE",
        "RPAR",
        "RSQB",
        "NAME",
        "INT",
        "FLOAT",
        "STRING",
    ):
        return None
    best = nearest(str(p), STATEMENT_KEYWORDS)
    if best is not None and t.type == "NAME":
        return NNError(
            f"unknown statement '{p}'",
            c.span_of(p),
            expected="a statement: name = expression, input, output, return, repeat, for or if",
            hint=f"did you mean '{best}'?",
        )
    if len(c.before) >= 3 and str(c.before[-3]) == "output" and c.before[-2].type == "NAME":
        name = c.before[-2]  # `output y x | dense(4)`: the '=' belongs between y and x
        return NNError(
            f"expected '=' after 'output {name}', found {_describe(p)}",
            c.span_of(p),
            expected=f"output {name} = expression",
        )
    return NNError(
        f"expected '=' after '{p}', found {_describe(t)}",
        c.here(),
        expected=f"'=' to assign to '{p}'",
    )


def _input_with_equals(c: _Ctx) -> NNError | None:
    t = c.token
    if t is None or t.type != "EQUAL" or "COLON" not in c.expected:
        return None
    return NNError(
        "an input is declared with ':' and a type, not '='",
        c.here(),
        expected="':' then a type, e.g. input image: f32[batch, 1, 28, 28]",
    )


def _missing_comma(c: _Ctx) -> NNError | None:
    t = c.token
    if t is None or "COMMA" not in c.expected or t.type not in ("NAME", "INT", "FLOAT", "STRING", "LSQB"):
        return None
    stack = c.unclosed()
    if not stack or stack[-1].type == "LBRACE" or t.line != stack[-1].line:
        return None
    return NNError(
        f"missing ',' before {_describe(t)}",
        c.here(),
        expected="',' between arguments or list items",
    )


def _statement_outside(c: _Ctx) -> NNError | None:
    t = c.token
    if (
        t is None
        or c.unclosed()
        or not ({"MODEL", "BLOCK", "IMPORT", "TRAIN"} & c.expected)
        or "RBRACE" in c.expected
    ):
        return None
    if t.type == "NAME" or str(t) in STATEMENT_KEYWORDS:
        hint = None
        if t.type == "NAME":
            best = nearest(str(t), ("model", "block", "import", "train"))
            hint = f"did you mean '{best}'?" if best else None
        return NNError(
            f"{_describe(t)} cannot start a top-level item",
            c.here(),
            expected="'model', 'block', 'train' or 'import' at the top level; statements go inside a model or block",
            hint=hint,
        )
    return None


RULES = [
    _bad_character,
    _c_comment,
    _unclosed_at_end,
    _unclosed_before_item,
    _dangling_pipe,
    _missing_value,
    _empty_brackets,
    _unclosed_paren,
    _unmatched_close,
    _keyword_as_name,
    _keyword_where_name,
    _input_with_equals,
    _pipe_stage_operator,
    _statement_outside,
    _missing_comma,
    _unknown_statement,
]


def classify(e: UnexpectedInput, text: str, file: str, lark: Lark) -> NNError:
    c = _Ctx(e, text, file, lark)
    for rule in RULES:
        err = rule(c)
        if err is not None:
            return err
    if isinstance(e, UnexpectedToken):
        return NNError(f"unexpected {_describe(e.token)}", c.here(), expected=c.expected_words() or None)
    return NNError(str(e).splitlines()[0], c.here())
