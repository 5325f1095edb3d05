"""Issue 16, item 2: several results (`return skip, down`; `a, b = x | blk(...)`, nested
`out, (h, c) = ...`), lists of tensors (`skips + [h]`, `skips[-1]`, `concat(skips...)`,
`for s in skips { ... }`), checked by the numbers they compute; each misuse a positioned error."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from test_shapes_in_expressions import assert_positioned, compile_error

import nngraph as ng

X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


def run(src: str, **feeds) -> dict[str, np.ndarray]:
    m = ng.compile_source(src)
    s = ort.InferenceSession(m.onnx.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(m.graph.outputs, s.run(None, feeds), strict=True))


def test_block_returns_several_results_destructured_nested():
    src = """
block pair(x) {
    return x * 2, x - 1
}
block split(x) {
    return x | relu, pair(x)
}
model M {
    input x: f32[batch, 4]
    a, (b, c) = x | split
    output o = a + b + c
}"""
    np.testing.assert_allclose(run(src, x=X)["o"], np.maximum(X, 0) + 2 * X + X - 1, rtol=1e-6)


def test_several_results_held_in_one_name_and_indexed():
    src = """
block two(x) {
    return x + 1, x * 3
}
model M {
    input x: f32[batch, 4]
    r = two(x)
    output o = r[1] - r[0]
}"""
    np.testing.assert_allclose(run(src, x=X)["o"], 3 * X - (X + 1), rtol=1e-6)


def test_lists_join_index_spread_and_iterate():
    src = """
model M {
    input x: f32[batch, 4]
    xs = []
    h = x
    repeat 3 {
        h = h * 2
        xs = xs + [h]
    }
    total = x
    for t in xs {
        total = total + t
    }
    output cat = concat(xs..., axis=1)       # [2x, 4x, 8x]
    output last = xs[-1]
    output sum = total                        # x + 2x + 4x + 8x
}"""
    got = run(src, x=X)
    np.testing.assert_allclose(got["cat"], np.concatenate([2 * X, 4 * X, 8 * X], axis=1), rtol=1e-6)
    np.testing.assert_allclose(got["last"], 8 * X, rtol=1e-6)
    np.testing.assert_allclose(got["sum"], 15 * X, rtol=1e-6)


def test_a_block_takes_and_returns_a_list_of_tensors():
    src = """
block encode(x, depth: int) {
    skips = []
    h = x
    repeat depth {
        h = h | dense(4)
        skips = skips + [h]
    }
    return h, skips
}
block decode(x, skips: tensors) {
    h = x
    for s in skips {
        h = h + s
    }
    return h
}
model M {
    input x: f32[batch, 4]
    h, skips = x | encode(3)
    output o = decode(h, skips)
}"""
    m = ng.compile_source(src)
    assert len(m.graph.params()) == 6


def test_layer_with_several_outputs_in_a_pipeline_expression():
    src = """
model M {
    input x: f32[batch, 5, 3]
    out, h = x | gru(4, return_state=true)
    output o = out
    output hn = h
}"""
    m = ng.compile_source(src)
    assert [str(m.graph.type(n)) for n in m.graph.outputs.values()] == ["f32[batch,5,4]", "f32[1,batch,4]"]


HEAD = "model M {\n    input x: f32[batch, 16]\n"
TWO = "block two(x) {\n    return x, x\n}\n"

# (id, source, line, caret token, message part, hint part or None)
# fmt: off
MISTAKES = [
    ("unpack_a_tensor", HEAD + "    a, b = x | relu\n    output o = a\n}", 3, "x |", "2 names take 2 results, but this is a tensor", None),
    ("unpack_wrong_count", TWO + HEAD + "    a, b, c = two(x)\n    output o = a\n}", 6, "two", "3 names for 2 results", None),
    ("nested_unpack_of_a_tensor", TWO + HEAD + "    a, (b, c) = two(x)\n    output o = a\n}", 6, "(b", "2 names take 2 results", None),
    ("results_into_a_pipeline", TWO + HEAD + "    output o = x | two | relu\n}", 6, "x | two", "is 2 results, not a tensor", "a, b = ..."),
    ("results_as_output", TWO + HEAD + "    output o = two(x)\n}", 6, "two", "is 2 results, not a tensor", None),
    ("list_as_output", HEAD + "    xs = [x, x]\n    output o = xs\n}", 4, "xs", "is a list of 2 tensors, not a tensor", "concat(xs..., axis=1)"),
    ("list_arithmetic", HEAD + "    xs = [x, x]\n    output o = xs * 2\n}", 4, "xs *", "'*' works on tensors and numbers", "[i]"),
    ("spread_of_a_tensor", HEAD + "    output o = concat(x..., axis=1)\n}", 3, "x...", "'...' spreads a list into arguments, but this is a tensor", None),
    ("concat_of_a_list", HEAD + "    xs = [x, x]\n    output o = concat(xs, axis=1)\n}", 4, "xs", "takes its tensors as separate arguments", "concat(xs...)"),
    ("for_over_a_number", HEAD + "    h = x\n    for i in 3 { h = h | relu }\n    output o = h\n}", 4, "3", "'for' runs over a list", "repeat i in N"),
    ("return_in_for", "block b(x) {\n    for t in [x] {\n        return t\n    }\n}\n" + HEAD + "    output o = b(x)\n}", 3, "return", "'return' inside 'for'", None),
    ("tensors_parameter_given_a_tensor", "block b(x, xs: tensors) {\n    return x\n}\n" + HEAD + "    output o = b(x, x)\n}", 6, "x)", "must be a list of tensors", None),
    ("lstm_state_without_fixed_length", "model M {\n    input x: f32[batch, seq, 3]\n    out, (h, c) = x | lstm(4, return_state=true)\n    output o = c\n}", 3, "lstm", "final cell state", None),
]
# fmt: on


@pytest.mark.parametrize("case", MISTAKES, ids=[c[0] for c in MISTAKES])
def test_mistake_is_positioned(case):
    _, src, line, token, message, hint = case
    assert_positioned(compile_error(src), src, line, token, message, hint)
