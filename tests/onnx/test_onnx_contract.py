"""What every model nngraph writes promises: plain ONNX, pinned opset, old-enough IR,
symbolic batch, initializers, metadata, atomic writes, and writes that cannot be made."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from conftest import ROOT, TINY, run_cli

import nngraph as ng
from nngraph.errors import NNError
from nngraph.onnx.context import OPSET


@pytest.fixture(scope="module")
def cnn():
    return ng.compile_file(ROOT / "examples" / "digits_cnn.nn")


def test_opset_ir_and_domain(cnn):
    m = cnn.onnx
    assert m.ir_version <= 10
    assert [(o.domain, o.version) for o in m.opset_import] == [("", OPSET)] and OPSET >= 17
    assert all(n.domain == "" for n in m.graph.node)


def test_inference_form(cnn):
    m0 = cnn.to_onnx(level=0)  # as written: batchnorm with its running statistics
    ops = {n.op_type for n in m0.graph.node}
    assert "Dropout" not in ops and "BatchNormalization" in ops
    assert set(cnn.graph.params()) <= {i.name for i in m0.graph.initializer}
    m = cnn.onnx  # -O2: batchnorm folded into the convolutions before it
    ops = {n.op_type for n in m.graph.node}
    assert "Dropout" not in ops and "BatchNormalization" not in ops
    inits = {i.name for i in m.graph.initializer}
    folded = {i for i in inits if ".folded_" in i}
    assert folded, "cnn.nn has a conv followed by a batchnorm"
    for p in (p for p in cnn.graph.params() if p.endswith(".weight")):
        layer = p.rsplit(".", 1)[0]
        # a weight with a batchnorm folded in is renamed: its old name would hold another value
        assert (p in inits) != (f"{layer}.folded_weight" in inits), p
        assert (f"{layer}.folded_weight" in inits) == (f"{layer}.folded_bias" in inits)
    (inp,) = m.graph.input
    assert inp.name == "image"
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [o.name for o in m.graph.output] == ["logits"]


def test_metadata(cnn):
    props = {p.key: p.value for p in cnn.onnx.metadata_props}
    assert props["nngraph_version"] == ng.__version__
    assert len(props["source_sha256"]) == 64 and props["model"] == "DigitsCNN"


def test_onnx_node_names_lead_back_to_graph_nodes(cnn):
    from nngraph.passes.pipeline import optimize

    g = optimize(cnn.graph)
    for n in cnn.onnx.graph.node:
        assert n.name.split(":")[0] in g.g, n.name
    fused = [d for _, d in g.g.nodes(data=True) if d.get("fused_by")]
    assert {d["fused_by"] for d in fused} == {"fold_batchnorm", "fuse_gemm"}
    for d in fused:  # a fused node remembers every source span it replaced
        assert len(d["spans"]) >= 2 and all(s.file.endswith("digits_cnn.nn") for s in d["spans"])


def test_source_hash_changes_with_source():
    a = ng.compile_source("model M {\n input x: f32[batch, 2]\n output o = x | relu\n}")
    b = ng.compile_source("model M {\n input x: f32[batch, 2]\n output o = x | relu  # changed\n}")
    assert a.graph.source_hash != b.graph.source_hash


def test_save_is_atomic(cnn, tmp_path, monkeypatch):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous good model")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the run dies between writing and renaming

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        cnn.save(target)
    assert target.read_bytes() == b"previous good model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    monkeypatch.undo()
    cnn.save(target)
    onnx.checker.check_model(onnx.load(target), full_check=True)


def test_check_still_catches_broken_models(cnn):
    import onnx.checker

    from nngraph.onnx.lower import check

    bad = onnx.ModelProto()
    bad.CopyFrom(cnn.onnx)
    w = next(t for t in bad.graph.initializer if t.name == "conv2d_1.weight")
    w.raw_data = w.raw_data[:-4]  # a weight one element short
    with pytest.raises(onnx.checker.ValidationError):
        check(bad)
    bad = onnx.ModelProto()
    bad.CopyFrom(cnn.onnx)
    big = next(t for t in bad.graph.initializer if t.name == "dense_1.weight")
    big.dims[0] += 1  # a large weight whose shape no longer fits its MatMul
    with pytest.raises(Exception):  # noqa: B017 - onnx raises InferenceError or ValidationError
        check(bad)


def test_write_errors_name_the_file_asked_for(tmp_path: Path):
    """Regression: write errors named the temporary file, not the one asked for."""
    m = ng.compile_source(TINY)
    target = tmp_path / "a_file"
    target.write_text("")
    with pytest.raises(ng.NNError) as info:
        m.save(target / "model.onnx")  # its folder is a file
    assert "model.onnx" in info.value.message and ".tmp" not in info.value.message


def test_save_onto_a_directory(tmp_path, capsys):
    """Regression: saving onto a directory was not a clear error, and could leave a temporary file."""
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(NNError, match="is a directory"):
        ng.compile_source(TINY, "m.nn").save(d)
    (tmp_path / "f.nn").write_text(TINY)
    rc, out, err = run_cli(capsys, "compile", tmp_path / "f.nn", "-o", d)
    assert rc == 1 and err.startswith("error:") and "is a directory" in err
    assert ".tmp" not in err and "wrote" not in out
    assert d.is_dir() and list(d.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.nn"]  # no temporary file left
