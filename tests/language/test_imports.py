"""import: blocks resolve in their own file and its imports; cycles and missing files are
positioned errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nngraph as ng
from nngraph.errors import NNError


def test_an_imported_block_cannot_call_a_block_of_its_importer(tmp_path):
    """Blocks resolve in their own file and its imports: lib.nn used from main.nn must not lean
    on main.nn's blocks (elsewhere it would not compile); through an import chain it may."""
    (tmp_path / "lib.nn").write_text("block wrap(x) {\n    return x | helper\n}\n")
    (tmp_path / "main.nn").write_text(
        'import "lib.nn"\nblock helper(x) {\n    return x | relu\n}\n'
        "model M {\n    input x: f32[batch, 4]\n    output y = x | wrap\n}\n"
    )
    with pytest.raises(NNError) as e:
        ng.compile_file(tmp_path / "main.nn")
    text = e.value.render()
    assert (
        "lib.nn:2:16" in text and "block 'helper' is defined in main.nn, which lib.nn does not import" in text
    )
    (tmp_path / "helpers.nn").write_text("block helper(x) {\n    return x | relu\n}\n")
    (tmp_path / "lib.nn").write_text('import "helpers.nn"\nblock wrap(x) {\n    return x | helper\n}\n')
    (tmp_path / "main.nn").write_text(
        'import "lib.nn"\nmodel M {\n    input x: f32[batch, 4]\n    output y = x | wrap | helper\n}\n'
    )
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    y = ng.runtime.Session(ng.compile_file(tmp_path / "main.nn").to_onnx().SerializeToString()).run({"x": x})
    np.testing.assert_array_equal(y["y"], np.maximum(x, 0))


def test_import_cycle(tmp_path: Path):
    (tmp_path / "a.nn").write_text(
        'import "b.nn"\nmodel M {\n    input x: f32[batch, 4]\n    output o = x\n}\n'
    )
    (tmp_path / "b.nn").write_text('import "a.nn"\n')
    with pytest.raises(NNError) as info:
        ng.compile_file(tmp_path / "a.nn")
    assert "import cycle: a.nn -> b.nn -> a.nn" in info.value.message
    assert info.value.span.file.endswith("b.nn") and info.value.span.line == 1


def test_import_not_found_suggests_nearby_file(tmp_path: Path):
    (tmp_path / "layers.nn").write_text("block b(x) {\n    return x\n}\n")
    (tmp_path / "m.nn").write_text(
        'import "layer.nn"\nmodel M {\n    input x: f32[batch, 4]\n    output o = x | b\n}\n'
    )
    with pytest.raises(NNError) as info:
        ng.compile_file(tmp_path / "m.nn")
    assert "layers.nn" in (info.value.hint or "")
