"""The one error class every user-facing mistake derives from.

It renders ``file:line:col: error: ...``, the source line and a caret, what
was expected, and a hint such as the nearest valid name. It imports nothing
heavy, so the runtime can use it too.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Source texts by file name, registered by the parser so errors can quote lines.
SOURCES: dict[str, str] = {}


@dataclass(frozen=True)
class Span:
    """A source range: 1-based line and column, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    backward: bool = False

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def source_line(self) -> str | None:
        text = SOURCES.get(self.file)
        if text is None:
            try:
                with open(self.file, encoding="utf-8-sig", errors="replace") as f:
                    text = f.read()
            except OSError:
                return None
        lines = text.splitlines()
        return lines[self.line - 1] if 0 < self.line <= len(lines) else None


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt name, or None when nothing is close."""
    options = sorted(set(candidates))
    hits = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if hits:
        return hits[0]
    stems = [
        c for c in options if len(c) >= 2 and len(name) >= 2 and (name.startswith(c) or c.startswith(name))
    ]
    if stems:  # 'lrate' -> 'lr', 'conv' -> 'conv2d'
        return min(stems, key=lambda c: abs(len(c) - len(name)))
    lowered = {c.lower(): c for c in options}
    return lowered.get(name.lower())


@dataclass
class NNError(Exception):
    """A mistake of the user's, with where it is and what would be right."""

    message: str
    span: Span | None = None
    expected: str | None = None
    hint: str | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def with_span(self, span: Span | None) -> NNError:
        if self.span is None:
            self.span = span
        return self

    def suggest(self, name: str, candidates: Iterable[str]) -> NNError:
        best = nearest(name, candidates)
        if best is not None and best != name:
            self.hint = f"did you mean '{best}'?"
        return self

    def suggest_file(self, path: Path, pattern: str = "*.nn") -> NNError:
        """The nearest file beside `path`, matched on the name without its suffix (every
        candidate shares '.nn', which would make any short name look close)."""
        if path.parent.is_dir():
            files = {p.stem: p.name for p in path.parent.glob(pattern)}
            best = nearest(path.stem, files)
            if best is not None and files[best] != path.name:
                self.hint = f"did you mean '{files[best]}'?"
        return self

    def render(self) -> str:
        where = f"{self.span}: " if self.span else ""
        out = [f"{where}error: {_visible(self.message)}"]
        if self.span is not None:
            line = self.span.source_line()
            if line is not None:
                col = max(self.span.column, 1)
                width = 1
                if self.span.end_line == self.span.line and self.span.end_column > col:
                    width = self.span.end_column - col
                width = max(1, min(width, len(line) - col + 1))
                lineno = str(self.span.line)
                out.append(f" {lineno} | {line}")
                pad = "".join("\t" if ch == "\t" else " " for ch in line[: col - 1])  # tabs line up as tabs
                out.append(f" {' ' * len(lineno)} | {pad}{'^' * width}")
        if self.expected:
            out.append(f"  expected: {self.expected}")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        out.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


def _visible(text: str) -> str:
    """Invisible or look-alike characters named by code point (a BOM, a no-break space)."""
    out = []
    for ch in text:
        if ch in "\ufeff\u00a0\u200b\u200c\u200d\u2028\u2029\u00ad" or (ord(ch) < 32 and ch not in "\n\t"):
            out.append(f"U+{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


class ShapeError(Exception):
    """Raised by shape rules, which know no positions; the builder adds the span."""

    def __init__(self, message: str, expected: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.hint = hint


#: Python's default of 1000 frames stops at a pipeline of ~300 stages; 10000 still ends in a
#: RecursionError (not a crash of the interpreter) on an 8 MB stack, measured on 20000 stages.
RECURSION_LIMIT = 10_000


def too_deep(where: str) -> NNError:
    return NNError(
        f"{where} nests too deeply to compile (a pipeline or expression thousands of steps deep)",
        hint="split the longest pipelines or sums into several statements: h = ...; then h | ...",
    )


@contextmanager
def deep_nesting(where: str) -> Iterator[None]:
    """Room for long pipelines (parsing and building recurse once per stage), and an NNError
    instead of a RecursionError past it."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, RECURSION_LIMIT))
    try:
        yield
    except RecursionError:
        raise too_deep(where) from None
    finally:
        sys.setrecursionlimit(old)
