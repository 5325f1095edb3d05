"""grammar/README.md documents the .nn language by example: keep every example true.

Fenced blocks marked ```nn are whole files and must compile; ```nn-fragment blocks
(a block with no model, say) must parse; the ```nn-error block must fail with exactly
the message shown in the ```text block after it. Each construct has its own section
with at least one example.
"""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

import nngraph
from nngraph.errors import NNError
from nngraph.syntax.parser import parse

README = ROOT / "grammar" / "README.md"
TEXT = README.read_text(encoding="utf-8")

# The constructs the README must cover: one "## " section each.
SECTIONS = [
    "Comments",
    "Models, inputs and outputs",
    "Assignments and rebinding",
    "Pipelines",
    "Calls and arguments",
    "Arithmetic",
    "Built-in layers",
    "Blocks",
    "Shared weights",
    "Repeat",
    "Import",
    "Symbolic dims in reshape",
    "Shapes in expressions",
    "Several results and lists",
    "Conditions",
    "Layers as values",
    "Parameter initialization",
    "Keywords",
    "Errors",
]

_FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(text: str) -> list[tuple[str, str, int]]:
    """(language, code, line of the opening fence) for every fenced block."""
    return [(m[1], m[2], text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]


def sections(text: str) -> dict[str, str]:
    """'## Title' -> the text up to the next '## ' heading."""
    parts = re.split(r"^## +(.+?)[ \t]*$", text, flags=re.M)
    return {title: body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


ALL = blocks(TEXT)
NN = [(code, line) for lang, code, line in ALL if lang == "nn"]
FRAGMENTS = [(code, line) for lang, code, line in ALL if lang == "nn-fragment"]


@pytest.fixture
def in_grammar_dir(monkeypatch):
    """Compile as the file README.md in grammar/, so imports resolve relative to the README."""
    monkeypatch.chdir(README.parent)


@pytest.mark.parametrize("code,line", NN, ids=[f"line{line}" for _, line in NN])
def test_example_compiles(code, line, in_grammar_dir):
    try:
        model = nngraph.compile_source(code, "README.md")
    except NNError as e:
        pytest.fail(f"the ```nn example at grammar/README.md:{line} does not compile:\n{e.render()}")
    assert model.graph.outputs


@pytest.mark.parametrize("code,line", FRAGMENTS, ids=[f"line{line}" for _, line in FRAGMENTS])
def test_fragment_parses(code, line):
    try:
        parse(code, "README.md")
    except NNError as e:
        pytest.fail(f"the ```nn-fragment at grammar/README.md:{line} does not parse:\n{e.render()}")


def test_error_example_matches_its_message():
    """The Errors section shows a source (nn-error) and the message it really gives (text)."""
    body = sections(TEXT)["Errors"]
    found = blocks(body)
    langs = [lang for lang, _, _ in found]
    assert "nn-error" in langs and "text" in langs[langs.index("nn-error") :], langs
    source = found[langs.index("nn-error")][1]
    shown = found[langs.index("text", langs.index("nn-error"))][1]
    file = re.match(r"(\S+?):\d+:\d+: error: ", shown)
    assert file, f"the message should start with file:line:col: error:, got {shown!r}"
    with pytest.raises(NNError) as info:
        nngraph.compile_source(source, file[1])
    assert info.value.render() == shown.rstrip("\n")


def test_every_construct_has_a_section_with_an_example():
    found = sections(TEXT)
    missing = [s for s in SECTIONS if s not in found]
    assert not missing, f"grammar/README.md lacks the sections {missing}"
    for title in SECTIONS:
        langs = {lang for lang, _, _ in blocks(found[title])}
        assert langs & {"nn", "nn-fragment", "nn-error"}, f"section '{title}' has no .nn example"


def test_examples_are_found_and_fences_are_known():
    assert len(NN) >= len(SECTIONS) - 2
    unknown = {lang for lang, _, _ in ALL} - {"nn", "nn-fragment", "nn-error", "text"}
    assert not unknown, f"unknown fence languages {unknown}: mark .nn code as nn or nn-fragment"
    # an unmarked or misspelt fence would silently escape the checks above
    assert TEXT.count("```") == 2 * len(ALL), "an unbalanced ``` fence in grammar/README.md"
