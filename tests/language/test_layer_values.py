"""Issue 16, item 4: layers and blocks as values. A block parameter `proj: layer` holds the layer
instance it is given, so a layer made in the model and applied inside blocks shares one set of
weights, and a GPT-2-style head inside a block ties to the token embedding; each misuse a
positioned error."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from test_shapes_in_expressions import assert_positioned, compile_error

import nngraph as ng

X = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)


def params(m) -> dict[str, np.ndarray]:
    return {p: m.graph.node(p)["value"] for p in m.graph.params()}


def run(m, **feeds) -> dict[str, np.ndarray]:
    s = ort.InferenceSession(m.onnx.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(m.graph.outputs, s.run(None, feeds), strict=True))


def test_a_shared_layer_passed_to_two_blocks_is_one_set_of_weights():
    src = """
block head(x, proj: layer) {
    return x | proj | relu
}
block twice(x, f: layer) {
    return x | f | f
}
model M {
    input x: f32[batch, 8]
    enc = dense(8)
    a = head(x, enc)
    output o = a | twice(enc)
}"""
    m = ng.compile_source(src)
    p = params(m)
    assert sorted(p) == ["enc.bias", "enc.weight"]
    w, b = p["enc.weight"], p["enc.bias"]
    a = np.maximum(X @ w + b, 0)
    np.testing.assert_allclose(run(m, x=X)["o"], (a @ w + b) @ w + b, rtol=1e-5)


def test_a_layer_argument_may_be_a_fresh_layer_a_block_or_a_bare_name():
    src = """
block ffn(x, width: int) {
    return x | dense(width) | gelu
}
block apply(x, f: layer, act: layer = relu) {
    return x | f | act
}
model M {
    input x: f32[batch, 8]
    a = x | apply(dense(4))              # a fresh layer, named inside the block
    b = x | apply(ffn(4), act=tanh)      # a block as a layer
    output o = a + b
}"""
    m = ng.compile_source(src)
    assert sorted(params(m)) == [
        "apply_1/dense_1.bias",
        "apply_1/dense_1.weight",
        "apply_2/ffn_1/dense_1.bias",
        "apply_2/ffn_1/dense_1.weight",
    ]
    ops = [m.graph.node(n)["op"] for n in m.graph.topo()]
    assert "relu" in ops and "tanh" in ops and "gelu" in ops


GPT = """
block lm_head(x, wte: layer, vocab: int) {
    return x | layernorm | dense(vocab, bias=false, tie=wte)
}

block gpt(tokens, vocab: int, width: int) {
    wte = embedding(vocab, width)
    h = tokens | wte | positional(kind=learned, max_len=16)
    h = h | transformer_encoder(2, causal=true, norm_first=true, dropout=0.0)
    return h | lm_head(wte, vocab)              # tied to the token embedding, inside blocks
}

model LM {
    input tokens: i64[batch, 8]
    output logits = tokens | gpt(50, 16)
}
"""


def test_gpt_head_tied_to_the_embedding_inside_a_block():
    m = ng.compile_source(GPT)
    names = list(params(m))
    assert "gpt_1/wte.table" in names
    assert not any("lm_head_1/dense_1.weight" in n for n in names)  # the head's weight is the table
    ids = np.random.default_rng(0).integers(0, 50, (2, 8))
    (logits,) = run(m, tokens=ids).values()
    assert logits.shape == (2, 8, 50)


HEAD = "model M {\n    input x: f32[batch, 16]\n"
APPLY = "block apply(x, f: layer) {\n    return x | f\n}\n"

# (id, source, line, caret token, message part, hint part or None)
# fmt: off
MISTAKES = [
    ("tensor_for_a_layer", APPLY + HEAD + "    output o = apply(x, x)\n}", 6, "x)", "must be a layer, got a tensor", None),
    ("number_for_a_layer", APPLY + HEAD + "    output o = apply(x, 3)\n}", 6, "3", "must be a layer, got the integer 3", None),
    ("applied_layer_for_a_layer", APPLY + HEAD + "    output o = apply(x, dense(x, 4))\n}", 6, "dense", "must be a layer, got a tensor", None),
    ("undefined_layer_argument", APPLY + HEAD + "    enc = dense(4)\n    output o = apply(x, ecn)\n}", 7, "ecn", "undefined name 'ecn'", "'enc'"),
    ("layer_parameter_default_not_a_layer", "block apply(x, f: layer = 3) {\n    return x | f\n}\n" + HEAD + "    output o = apply(x)\n}", 1, "3", "must be a layer", None),
    ("unknown_parameter_type", "block apply(x, f: layr) {\n    return x | f\n}\n" + HEAD + "    output o = apply(x, relu)\n}", 1, "layr", "unknown parameter type 'layr'", "'layer'"),
    ("tie_to_a_layer_not_applied", "block head(x, emb: layer) {\n    return x | dense(16, tie=emb)\n}\n" + HEAD + "    e = embedding(10, 16)\n    output o = head(x, e)\n}", 2, "dense", "has no parameter 'table' to share", None),
]
# fmt: on


@pytest.mark.parametrize("case", MISTAKES, ids=[c[0] for c in MISTAKES])
def test_mistake_is_positioned(case):
    _, src, line, token, message, hint = case
    assert_positioned(compile_error(src), src, line, token, message, hint)
