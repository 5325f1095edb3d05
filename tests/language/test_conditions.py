"""Issue 16, item 3: compile-time conditions (`if ... { } else if ... { } else { }` with
comparisons, and, or, not on numbers, bools, words and static dims), `repeat i in N` with its
index, and a block that calls itself inside an `if`; a condition on a symbolic dim, and each
other misuse, a positioned error."""

from __future__ import annotations

import numpy as np
import pytest
from test_shapes_in_expressions import assert_positioned, compile_error

import nngraph as ng
from nngraph.core.types import TensorType

INVERTED = """
block inverted(x, out: int, stride: int = 1, expand: int = 6) {
    inp = x.shape[1]
    hidden = inp * expand
    h = x
    if expand != 1 {
        h = h | conv2d(hidden, kernel=1, bias=false) | batchnorm | relu6
    }
    h = h | conv2d(hidden, kernel=3, stride=stride, padding=1, groups=hidden, bias=false) | batchnorm | relu6
    h = h | conv2d(out, kernel=1, bias=false) | batchnorm
    if stride == 1 and inp == out {
        return x + h
    }
    return h
}
"""


def kinds(m) -> list[str]:
    return [m.graph.node(n)["op"] for n in m.graph.topo()]


@pytest.mark.parametrize(
    "call,convs,residual",
    [("inverted(8, expand=1)", 2, True), ("inverted(8)", 3, True), ("inverted(16, stride=2)", 3, False)],
)
def test_one_inverted_residual_block_makes_the_three_kinds(call, convs, residual):
    m = ng.compile_source(INVERTED + f"model M {{\n input x: f32[batch, 8, 8, 8]\n output o = x | {call}\n}}")
    ops = kinds(m)
    assert ops.count("conv") == convs
    assert ("add" in ops) == residual


@pytest.mark.parametrize(
    "cond,taken",
    [
        ("n > 2 and not flag", "a"),
        ("n >= 4 or flag", "b"),
        ("n == 3 and flag", "c"),
        ('act == "gelu"', "d"),
        ("act == relu", "e"),
    ],
)
def test_chains_of_conditions_pick_one_branch(cond, taken):
    values = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    first = {
        "n > 2 and not flag": dict(n=3, flag="false", act="relu"),
        "n >= 4 or flag": dict(n=1, flag="true", act="relu"),
        "n == 3 and flag": dict(n=3, flag="true", act="relu"),
        'act == "gelu"': dict(n=0, flag="false", act="gelu"),
        "act == relu": dict(n=0, flag="false", act="relu"),
    }[cond]
    conds = {
        "a": "n > 2 and not flag",
        "b": "n >= 4 or flag",
        "c": "n == 3 and flag",
        "d": 'act == "gelu"',
        "e": "act == relu",
    }
    chain = " else ".join(f"if {conds[k]} {{ w = {values[k]} }}" for k in conds if k >= taken)
    src = f"""
block pick(x, n: int, flag: bool, act: str) {{
    w = 0
    {chain} else {{ w = 9 }}
    return x | dense(w)
}}
model M {{
    input x: f32[batch, 4]
    output o = x | pick(n={first["n"]}, flag={first["flag"]}, act={first["act"]})
}}"""
    m = ng.compile_source(src)
    assert m.graph.type(m.graph.outputs["o"]) == TensorType("f32", ("batch", values[taken]))


def test_if_in_a_model_and_repeat_index_grows_widths():
    src = """
model M {
    input x: f32[batch, 4]
    h = x
    repeat i in 3 {
        h = h | dense(8 * (i + 1))
        if i < 2 { h = h | relu }
    }
    deep = true
    if deep { h = h | dense(5) } else { h = h | dense(6) }
    output o = h
}"""
    m = ng.compile_source(src)
    widths = [m.graph.type(p).shape[1] for p in m.graph.params() if p.endswith(".weight")]
    assert widths == [8, 16, 24, 5]
    assert kinds(m).count("relu") == 2


def test_recursive_block_inside_an_if():
    src = """
block tower(x, depth: int) {
    if depth == 0 {
        return x
    }
    return x | dense(4) | relu | tower(depth - 1)
}
model M {
    input x: f32[batch, 4]
    output o = x | tower(3)
}"""
    m = ng.compile_source(src)
    assert len(m.graph.params()) == 6
    x = np.ones((2, 4), np.float32)
    assert m.graph.type(m.graph.outputs["o"]).shape == ("batch", 4) and x.shape == (2, 4)


HEAD = "model M {\n    input x: f32[batch, 16]\n"

# (id, source, line, caret token, message part, hint part or None)
# fmt: off
MISTAKES = [
    ("condition_on_symbolic_dim", HEAD + "    if x.shape[0] == 2 { x = x }\n    output o = x\n}", 3, "x.shape", "symbolic dim 'batch' cannot be decided", "known only when the model runs"),
    ("condition_not_a_bool", HEAD + "    if 3 { h = x }\n    output o = x\n}", 3, "3", "must be true or false, got the integer 3", "n != 0"),
    ("condition_on_a_tensor", HEAD + "    if x > 0 { h = x }\n    output o = x\n}", 3, "x >", "not on a tensor", None),
    ("compare_number_with_word", HEAD + '    if 3 == "a" { h = x }\n    output o = x\n}', 3, "==", "cannot compare the integer 3 with the string", None),
    ("order_of_bools", HEAD + "    if true < false { h = x }\n    output o = x\n}", 3, "<", "cannot compare", None),
    ("and_of_a_number", HEAD + "    if true and 1 { h = x }\n    output o = x\n}", 3, "1 {", "the right side of 'and' must be true or false", None),
    ("undefined_in_condition", HEAD + "    if strid == 1 { h = x }\n    output o = x\n}", 3, "strid", "undefined name 'strid'", None),
    ("repeat_index_not_a_number", HEAD + "    h = x\n    repeat i in x { h = h }\n    output o = h\n}", 4, "x {", "repeat count must be a positive integer", None),
    ("recursion_without_if", "block f(x) {\n    return x | f\n}\n" + HEAD + "    output o = x | f\n}", 2, "f\n", "calls itself", "if depth > 0"),
    ("recursion_never_stops", "block f(x, d: int) {\n    if d > 0 {\n        return x | f(d + 1)\n    }\n    return x\n}\n" + HEAD + "    output o = x | f(1)\n}", 3, "f(d", "more than 64 deep", None),
    ("statement_after_return_in_if", "block f(x) {\n    if true {\n        return x\n        y = x\n    }\n    return x\n}\n" + HEAD + "    output o = x | f\n}", 4, "y", "never reached", None),
    ("return_in_repeat_inside_if", "block f(x) {\n    repeat 2 {\n        if true { return x }\n    }\n    return x\n}\n" + HEAD + "    output o = x | f\n}", 3, "return", "'return' inside 'repeat'", None),
    ("if_without_return_on_one_path", "block f(x, n: int) {\n    if n > 1 {\n        return x\n    }\n}\n" + HEAD + "    output o = x | f(0)\n}", 5, "}", "never returns", None),
    ("keyword_in_as_name", HEAD + "    in = x | relu\n    output o = in\n}", 3, "in", "'in' is a keyword", None),
]
# fmt: on


@pytest.mark.parametrize("case", MISTAKES, ids=[c[0] for c in MISTAKES])
def test_mistake_is_positioned(case):
    _, src, line, token, message, hint = case
    assert_positioned(compile_error(src), src, line, token, message, hint)
