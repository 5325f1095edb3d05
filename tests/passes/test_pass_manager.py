"""The pass manager: a disabled pass does not run, the report says what each pass did, a fixed
point stops when nothing changes, a rule's pass rewrites every match, and the invariants name
the pass after which a graph went wrong."""

from __future__ import annotations

import pytest

from nngraph.core.ir import Graph
from nngraph.core.types import TensorType
from nngraph.passes.cleanup import DCE
from nngraph.passes.manager import FixedPoint, Pass, Runner, Sequence, check_invariants, names
from nngraph.passes.rule import Rule

F32 = TensorType("f32", ("batch", 4))


def chain() -> Graph:
    """x -> relu -> relu -> y, and a dead neg of x."""
    g = Graph("t")
    x = g.add("x", "input", [], F32, None)
    g.inputs.append(x)
    a = g.add("a", "relu", [x], F32, None, {})
    b = g.add("b", "relu", [a], F32, None, {})
    g.add("dead", "neg", [x], F32, None, {})
    g.outputs["y"] = b
    return g


def test_a_disabled_pass_does_not_run_and_the_report_has_a_row_per_run():
    g, runner = chain(), Runner(disabled={"dce"})
    assert Sequence([DCE]).run(g, runner) is False and "dead" in g.g and runner.report == []
    runner = Runner(check=True)
    assert Sequence([DCE]).run(g, runner) is True and "dead" not in g.g
    (row,) = runner.report
    assert (row.name, row.nodes_before, row.nodes_after, row.changed) == ("dce", 4, 3, True)


def test_a_fixed_point_stops_when_a_round_changes_nothing():
    calls = []
    step = Pass("count", lambda g: calls.append(1) or len(calls) < 3)
    assert FixedPoint([step], limit=8).run(chain(), Runner()) is True
    assert len(calls) == 3  # two rounds changed something, the third did not
    calls.clear()
    FixedPoint([step], limit=2).run(chain(), Runner())
    assert len(calls) == 2
    assert names(Sequence([FixedPoint([step, DCE]), DCE])) == ["count", "dce", "dce"]


def test_a_rules_pass_rewrites_every_match_and_why_not_says_why_the_others_stay():
    """relu(relu(x)) -> relu(x): the outer relu matches; the check refuses the inner one."""
    g = chain()
    rule = Rule(
        "relu_twice",
        lambda graph, n: {"outer": n} if graph.node(n)["op"] == "relu" else None,
        lambda graph, m: (
            None
            if graph.node(graph.node(m["outer"])["inputs"][0])["op"] == "relu"
            else "its input is no relu"
        ),
        lambda graph, m: graph.node(m["outer"])["inputs"][0],
    )
    assert rule.why_not(g, "x") == "no match"
    assert rule.why_not(g, "a") == "its input is no relu"
    assert rule.why_not(g, "b") is None
    p = rule.as_pass()
    assert p.name == "relu_twice" and p(g) == (g, True)
    assert g.outputs["y"] == "a" and "b" not in g.g and "dead" not in g.g  # pruned after rewriting


def test_invariants_name_the_pass_after_which_a_type_went_stale():
    g = chain()
    check_invariants(g)
    g.node("b")["type"] = TensorType("f32", ("batch", 5))
    with pytest.raises(AssertionError, match="b: relu says .* after pass broken"):
        check_invariants(g, after="broken")
