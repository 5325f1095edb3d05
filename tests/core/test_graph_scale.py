"""Big graphs: pipelines past Python's recursion limit compile, deeper ones are an error with a
message, and a 250-layer model trains (every stage stays linear in the graph)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_cli

import nngraph as ng
from nngraph.errors import NNError


def pipeline(stages: int, layer: str = "relu") -> str:
    return "model M {\n    input x: f32[batch, 4]\n    output y = x" + f" | {layer}" * stages + "\n}\n"


def test_a_pipeline_past_pythons_default_recursion_limit_compiles():
    """Regression: pipelines past Python's recursion limit raised RecursionError."""
    m = ng.compile_source(pipeline(1500))
    model = m.to_onnx()
    assert [n.op_type for n in model.graph.node] == ["Relu"] * 1500
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    y = ng.runtime.Session(model.SerializeToString()).run({"x": x})["y"]
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_a_pipeline_too_deep_for_the_stack_is_an_error(tmp_path, capsys):
    """Regression: a pipeline too deep for the stack was not an NNError."""
    f = tmp_path / "deep.nn"
    f.write_text(pipeline(20000))
    with pytest.raises(NNError) as e:
        ng.compile_file(f)
    assert "nests too deeply" in str(e.value) and "deep.nn" in str(e.value)
    rc, _, err = run_cli(capsys, "compile", f, "-o", tmp_path / "m.onnx")
    assert rc == 1 and "Traceback" not in err and "nests too deeply" in err
    assert "split the longest pipelines" in err


def test_a_deep_model_trains_and_writes_its_weights(tmp_path, capsys):
    """250 dense layers: autodiff, passes and lowering stay linear in the graph (the training
    graph's hundreds of outputs once made pruning and output naming quadratic).

    Regression: the training graph's compile was quadratic in its size."""
    src = pipeline(250, "dense(4)") + (
        f'train M {{\n data = npz("{tmp_path / "d.npz"}")\n target t: f32[batch, 4]\n loss = mse(y, t)\n'
        " optimizer = sgd(lr=0.01)\n epochs = 1\n}\n"
    )
    (tmp_path / "deep.nn").write_text(src)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(8, 4)).astype(np.float32), t=np.zeros((8, 4), np.float32))
    rc, _, err = run_cli(capsys, "train", tmp_path / "deep.nn", "--out", tmp_path / "out")
    assert rc == 0, err
    model = onnx.load(tmp_path / "out" / "model.onnx")
    assert len(model.graph.initializer) == 500
