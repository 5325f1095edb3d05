"""batchnorm: its running statistics are buffers, and a shared batchnorm updates them once per
application, as PyTorch does."""

from __future__ import annotations

import numpy as np
from conftest import ort_session

import nngraph as ng


def test_batchnorm_running_statistics_are_buffers_not_parameters():
    m = ng.compile_source("model M {\n input x: f32[batch, 3, 4, 4]\n output o = x | batchnorm\n}")
    assert m.param_count == 6
    assert m.graph.param_count(False) == 6


def test_a_shared_batchnorm_updates_its_statistics_once_per_application():
    """bn applied to a and then to b: running = blend(blend(running, stats(a)), stats(b)), as PyTorch.

    Regression: only the last application updated the running statistics."""
    src = (
        "model S {\n    input x: f32[batch, 4]\n    bn = batchnorm(momentum=0.1)\n"
        "    a = x | bn\n    b = (x * 2) | bn\n    output y = (a + b) | dense(3)\n}\n"
        "train S {\n    data = digits\n    target label: i64[batch]\n"
        "    loss = cross_entropy(y, label)\n    optimizer = sgd(lr=0.1)\n}\n"
    )
    c = ng.compile_source(src, "s.nn").training("grads")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    feeds = {"x": x, "label": rng.integers(0, 3, 16)}
    feeds.update({p: c.initial[p] for p in c.interface.params + c.interface.buffers})
    sess = ort_session(c.to_onnx())
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()}), strict=True))
    m0, v0 = c.initial["bn.running_mean"], c.initial["bn.running_var"]
    mean1 = 0.9 * m0 + 0.1 * x.mean(0)
    var1 = 0.9 * v0 + 0.1 * x.var(0, ddof=1)
    mean2 = 0.9 * mean1 + 0.1 * (2 * x).mean(0)
    var2 = 0.9 * var1 + 0.1 * (2 * x).var(0, ddof=1)
    np.testing.assert_allclose(out["next/bn.running_mean"], mean2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["next/bn.running_var"], var2, rtol=1e-5, atol=1e-6)
