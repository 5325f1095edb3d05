"""Reading a .nn source: missing files, UTF-16 and other encodings, a byte order mark, invisible
characters, binary files and directories, each accepted or a positioned error."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import HEAD

import nngraph as ng
from nngraph.errors import NNError


def test_missing_file_suggests_a_near_name_only(tmp_path):
    (tmp_path / "digits_model.nn").write_text(HEAD + "    output o = x\n}")
    with pytest.raises(NNError) as info:
        ng.compile_file(tmp_path / "digit_model.nn")
    assert info.value.hint == "did you mean 'digits_model.nn'?"
    with pytest.raises(NNError) as info:  # sharing '.nn' makes no name near
        ng.compile_file(tmp_path / "nope.nn")
    assert info.value.hint is None


def test_invisible_characters_are_named(tmp_path: Path):
    f = tmp_path / "nb.nn"
    f.write_text("model M {\n    input x: f32[batch,\u00a016]\n    output o = x\n}\n", encoding="utf-8")
    with pytest.raises(NNError) as info:
        ng.compile_file(f)
    assert "U+00A0" in info.value.render()


def test_byte_order_mark_is_accepted(tmp_path: Path):
    f = tmp_path / "bom.nn"
    f.write_bytes(b"\xef\xbb\xbf" + (HEAD + "    output o = x | relu\n}\n").encode())
    assert ng.compile_file(f).name == "M"


@pytest.mark.parametrize(
    "raw, says",
    [
        ("model M {\n".encode("utf-16"), "UTF-16 text, not UTF-8"),
        ("model M {\n  caf\u00e9\n".encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_non_utf8_source_is_positioned(tmp_path: Path, raw: bytes, says: str):
    f = tmp_path / "x.nn"
    f.write_bytes(raw)
    with pytest.raises(NNError) as info:
        ng.compile_file(f)
    assert says in info.value.message
    assert info.value.span is not None and info.value.span.line >= 1


@pytest.mark.parametrize(
    "name, hint", [("x.nn", None), ("m.onnx", "compiled model"), ("d.npz", "holds arrays")]
)
def test_binary_source_shows_no_bytes_and_says_what_it_is(tmp_path: Path, name: str, hint: str | None):
    """A binary file has no source line worth showing: its bytes would reach the terminal raw."""
    f = tmp_path / name
    f.write_bytes(b"\x08\x08\x12\x07nngraph\x1a\x05\x00\xff\xfe binary")
    with pytest.raises(NNError) as info:
        ng.compile_file(f)
    text = info.value.render()
    assert "is not a .nn source file (it is binary)" in text
    assert not any(ord(ch) < 32 and ch != "\n" for ch in text), repr(text)
    assert hint is None or hint in (info.value.hint or "")


def test_directory_as_source(tmp_path: Path):
    with pytest.raises(NNError) as info:
        ng.compile_file(tmp_path)
    assert "is a directory" in info.value.message
