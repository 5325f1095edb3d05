"""The clean-up passes (-O1): simplify's identities, cse and constant folding."""

from __future__ import annotations

import numpy as np
from pass_helpers import ops, run

import nngraph as ng


def test_simplify_cse_and_folding():
    src = "model M {\n input x: f32[batch, 4]\n a = (x * 1 + 0) | relu\n b = x | relu\n output o = a + b * (2 * 3)\n}"
    m = ng.compile_source(src)
    o2 = ops(m.to_onnx(2))
    assert o2.get("Relu") == 1  # relu(x) computed once
    assert o2.get("Mul", 0) == 1 and o2.get("Add") == 1  # x*1 and +0 gone, 2*3 folded
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(run(m.to_onnx(2), {"x": x})["o"], np.maximum(x, 0) * 7, rtol=1e-6)
