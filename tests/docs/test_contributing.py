"""CONTRIBUTING.md's "how to add" examples, run as written: each adds its piece in one file's
namespace (in a fresh interpreter, so the registry of this test session stays as it is) and the
result compiles, runs in onnxruntime and differentiates like a NumPy reference."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from conftest import ROOT


def example(heading: str) -> str:
    """The first python block under the CONTRIBUTING.md heading that starts with `heading`."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text[text.index(f"## {heading}") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_in(module: str, code: str, check: str) -> None:
    """Exec `code` inside `module`'s namespace (as if written in that file), then run `check`."""
    script = (
        "import importlib\n"
        f"mod = importlib.import_module({module!r})\n"
        f"exec(compile({code!r}, {module!r}, 'exec'), mod.__dict__)\n" + textwrap.dedent(check)
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "OK" in r.stdout, r.stdout


def test_adding_an_activation_takes_its_one_record():
    """The example is softsign's own record, as it stands in activation.py: the check takes that
    record out of the registry, and the example adds it back."""
    record = example("How to add an activation")
    assert record in (ROOT / "nngraph" / "ops" / "activation.py").read_text()
    run_in(
        "nngraph.ops.activation",
        "import nngraph.ops.registry as _registry\n_registry.OPS.pop('softsign')\n" + record,
        """
        import numpy as np, onnxruntime as ort
        import nngraph as ng
        from nngraph.autodiff.backward import backward
        from nngraph.core.emit import Emitter
        from nngraph.ops import reference, registry

        for dt in ("f32", "f64"):
            m = ng.compile_source(f"model M {{ input x: {dt}[batch, 5]\\n output y = x | softsign }}")
            x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.dtype(dt.replace("f", "float")))
            sess = ort.InferenceSession(m.onnx.SerializeToString(), providers=["CPUExecutionProvider"])
            (y,) = sess.run(None, {"x": x})
            np.testing.assert_allclose(y, x / (1 + np.abs(x)), rtol=1e-6)
        g = m.graph  # f64: the gradient rule against the derivative 1 / (1 + |x|)^2
        r = np.random.default_rng(1).standard_normal((3, 5))
        rn = g.add("r", "const", [], g.type(g.outputs["y"]), None, value=r)
        e = Emitter(g, registry.get)
        loss = e.op("reduce_sum", [e.op("mul", [g.outputs["y"], rn])], axes=None, keepdims=0)
        (gx,) = backward(g, loss, ["x"]).values()
        g.outputs = {"gx": gx}
        got = reference.evaluate(g, {"x": x})["gx"]
        np.testing.assert_allclose(got, r / (1 + np.abs(x)) ** 2, rtol=1e-10)
        print("OK")
        """,
    )


def test_adding_a_layer_that_composes_layers_takes_one_function():
    run_in(
        "nngraph.layers.norm",
        example("How to add a layer that composes existing layers"),
        """
        import numpy as np, onnxruntime as ort
        import nngraph as ng

        m = ng.compile_source("model M { input x: f32[batch, 4]\\n output y = x | dense_norm(3) }")
        params = {p: m.graph.node(p)["value"] for p in m.graph.params()}
        assert sorted(params) == [
            "dense_norm_1.norm.bias", "dense_norm_1.norm.scale", "dense_norm_1.proj.bias", "dense_norm_1.proj.weight"
        ], sorted(params)
        x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
        sess = ort.InferenceSession(m.to_onnx(0).SerializeToString(), providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"x": x})
        h = x.astype(np.float64) @ params["dense_norm_1.proj.weight"] + params["dense_norm_1.proj.bias"]
        want = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
        print("OK")
        """,
    )
