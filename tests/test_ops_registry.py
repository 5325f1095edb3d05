"""Walks the operator registry: every op has every rule, and its ONNX lowering
run by onnxruntime matches its NumPy reference."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from nngraph.onnx.single_op import single_op_model
from nngraph.ops.registry import all_ops

OPS = all_ops()


def run_sample(op, sample):
    model, out_type = single_op_model(op, list(sample.inputs), sample.attrs)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {f"x{i}": a for i, a in enumerate(sample.inputs)})
    return got, out_type


@pytest.mark.parametrize("name", sorted(OPS))
def test_record_is_complete(name):
    op = OPS[name]
    for part in ("infer", "lower", "reference", "samples", "style"):
        assert getattr(op, part) is not None, f"{name} has no {part}"
    assert len(op.samples(np.random.default_rng(0))) >= 2, f"{name} needs several sample shapes"


@pytest.mark.parametrize("name", sorted(OPS))
def test_lowering_matches_reference(name):
    op = OPS[name]
    for sample in op.samples(np.random.default_rng(1)):
        got, out_type = run_sample(op, sample)
        want = op.reference(list(sample.inputs), op.full_attrs(sample.attrs))
        assert tuple(got.shape) == tuple(out_type.shape), (
            f"{name}: shape rule says {out_type}, ORT gave {got.shape}"
        )
        assert got.dtype == out_type.np_dtype
        tol = 1e-5 if got.dtype != np.float16 else 1e-2
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"{name} {sample.attrs}")
