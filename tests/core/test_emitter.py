"""The one emitter every stage adds nodes with: lookup, attribute defaults, the shape rule, the
node's phase and scope, and the V algebra, checked on small graphs against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from nngraph.core.emit import Emitter
from nngraph.core.ir import Graph
from nngraph.core.types import TensorType
from nngraph.errors import ShapeError
from nngraph.ops import reference, registry


def graph_with(*shapes) -> tuple[Graph, list[str]]:
    g = Graph("t")
    xs = []
    for i, s in enumerate(shapes):
        xs.append(g.add(f"x{i}", "input", [], TensorType("f32", s), None))
        g.inputs.append(xs[-1])
    return g, xs


def test_op_fills_defaults_runs_the_shape_rule_and_records_phase_and_scope():
    g, (x,) = graph_with((2, 3))
    e = Emitter(g, registry.get, scope="blk", phase="backward")
    y = e.op("reduce_sum", [x], axes=(1,))
    d = g.node(y)
    assert y == "blk/reduce_sum" and d["phase"] == "backward" and d["scope"] == "blk"
    assert d["attrs"] == registry.get("reduce_sum").full_attrs({"axes": (1,)})
    assert d["type"] == TensorType("f32", (2,))


def test_a_refused_shape_goes_to_the_stage_hook():
    g, (a, b) = graph_with((2, 3), (4, 5))

    class Strict(Emitter):
        def failed(self, err, op, inputs):
            raise RuntimeError(f"{op} refused {inputs}: {err.message}")

    with pytest.raises(ShapeError):
        Emitter(g, registry.get).op("add", [a, b])
    with pytest.raises(RuntimeError, match=r"add refused \['x0', 'x1'\]"):
        Strict(g, registry.get).op("add", [a, b])
    assert not any(d["op"] == "add" for _, d in g.g.nodes(data=True))


def test_the_op_table_is_given_not_imported():
    """core knows no operator: an emitter over another table builds that table's nodes."""
    g, (x,) = graph_with((3,))
    seen = []

    def table(name):
        seen.append(name)
        return registry.get("neg")

    Emitter(g, table).op("anything", [x])
    assert seen == ["anything"]


def test_v_algebra_builds_nodes_that_evaluate_like_numpy():
    g, (x, w) = graph_with((2, 3), (3,))
    e = Emitter(g, registry.get)
    vx, vw = e.v(x), e.v(w)
    y = (vx * vw + 1.0) / 2.0 - vx.mean([1], keepdims=1)
    s = (-y).sum([0, 1])
    g.outputs = {"y": str(y), "s": str(s)}
    rng = np.random.default_rng(0)
    xv, wv = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    out = reference.evaluate(g, {x: xv, w: wv})
    want = (xv * wv + 1.0) / 2.0 - xv.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(out["y"], want, rtol=1e-6)
    np.testing.assert_allclose(out["s"], -want.sum(), rtol=1e-5)
    assert all(g.node(n)["phase"] == "forward" for n in g.g if g.node(n)["op"] != "input")


def test_unbroadcast_sums_back_to_the_operand_shape():
    g, (gr, b) = graph_with((4, 2, 3), (2, 1))
    e = Emitter(g, registry.get)
    r = e.unbroadcast(gr, b)
    assert g.type(r).shape == (2, 1)
    g.outputs = {"r": r}
    gv = np.random.default_rng(1).standard_normal((4, 2, 3)).astype(np.float32)
    out = reference.evaluate(g, {gr: gv, b: np.zeros((2, 1), np.float32)})
    np.testing.assert_allclose(out["r"], gv.sum(axis=(0, 2)).reshape(2, 1), rtol=1e-5)
