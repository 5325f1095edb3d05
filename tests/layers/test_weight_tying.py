"""Weight tying: an output layer that reuses an embedding's table (transposed)."""

from __future__ import annotations

import numpy as np
import pytest

import nngraph as ng
from nngraph.errors import NNError
from nngraph.ops.reference import evaluate_nodes

SRC = """
model LM {
    input  tokens: i64[batch, 6]
    emb = embedding(50, 16)
    h = tokens | emb | dense(16) | tanh
    output logits = h | dense(50, tie=emb)
}
train LM {
    data = digits
    target next_tokens: i64[batch, 6]
    loss = cross_entropy(logits, next_tokens)
}
"""


def test_tied_output_uses_the_embedding_table():
    m = ng.compile_source(SRC, "lm.nn")
    params = {p: m.graph.node(p)["value"] for p in m.graph.params()}
    assert "dense_2.weight" not in params and m.param_count == 50 * 16 + 16 * 16 + 16 + 50
    tokens = np.random.default_rng(0).integers(0, 50, (3, 6))
    out = ng.runtime.Session(m.onnx.SerializeToString())(tokens=tokens)["logits"]
    table = params["emb.table"]
    h = np.tanh(table[tokens] @ params["dense_1.weight"] + params["dense_1.bias"])
    np.testing.assert_allclose(out, h @ table.T + params["dense_2.bias"], rtol=1e-5, atol=1e-6)


def test_tied_table_gets_both_gradients():
    c = ng.compile_source(SRC, "lm.nn").training("grads", level=0)
    g = c.graph
    rng = np.random.default_rng(1)
    feeds = {
        "tokens": rng.integers(0, 50, (4, 6)),
        "next_tokens": rng.integers(0, 50, (4, 6)),
        **{p: c.initial[p].astype(np.float64) for p in c.interface.params},
    }
    for n in g.g:
        if g.node(n)["op"] == "const" and n not in feeds:
            feeds[n] = (
                g.node(n)["value"].astype(np.float64)
                if g.node(n)["value"].dtype.kind == "f"
                else g.node(n)["value"]
            )
    (grad,) = evaluate_nodes(g, feeds, [g.outputs["grad/emb.table"]])
    loss = lambda t: float(evaluate_nodes(g, {**feeds, "emb.table": t}, [g.outputs["loss"]])[0])
    table = feeds["emb.table"]
    used_as_output_only = sorted(set(range(50)) - set(feeds["tokens"].ravel()))[0]
    for row, col in ((int(feeds["tokens"][0, 0]), 3), (used_as_output_only, 5)):
        hi, lo = table.copy(), table.copy()
        hi[row, col] += 1e-6
        lo[row, col] -= 1e-6
        fd = (loss(hi) - loss(lo)) / 2e-6
        assert grad[row, col] == pytest.approx(fd, rel=1e-4, abs=1e-8)


def test_tie_mistakes_are_positioned():
    bad = SRC.replace("dense(50, tie=emb)", "dense(40, tie=emb)")
    with pytest.raises(NNError, match="cannot tie to 'emb'") as e:
        ng.compile_source(bad, "lm.nn")
    assert e.value.span.line == 6
    with pytest.raises(NNError, match="must be a named layer"):
        ng.compile_source(SRC.replace("tie=emb", "tie=3"), "lm.nn")
