"""conv(x, w) + b -> conv(x, w, b) when b is a per-channel constant: ONNX Conv adds its bias for free."""

from __future__ import annotations

from nngraph.core.ir import Graph
from nngraph.passes.rewrite import const_value, new_const, new_op, only_consumer
from nngraph.passes.rule import Match, Rule, pass_name

NAME = pass_name(__name__)


def match(graph: Graph, n: str) -> Match | None:
    d = graph.node(n)
    if d["op"] != "add":
        return None
    for i, other in ((0, 1), (1, 0)):
        c = d["inputs"][i]
        if graph.node(c)["op"] == "conv" and len(graph.node(c)["inputs"]) == 2:
            return {"add": n, "conv": c, "bias": d["inputs"][other]}
    return None


def check(graph: Graph, m: Match) -> str | None:
    if not only_consumer(graph, m["conv"], m["add"]):
        return "the convolution's output is used elsewhere too"
    v = const_value(graph, m["bias"])
    if v is None:
        return "the bias is not a constant"
    ch = graph.type(m["conv"]).shape[1]
    want = (ch,) + (1,) * (graph.type(m["conv"]).rank - 2)
    if v.shape not in (want, (1, *want)):
        return f"the bias {v.shape} is not one value per channel {want}"
    return None


def rewrite(graph: Graph, m: Match) -> str:
    conv = graph.node(m["conv"])
    b = new_const(graph, const_value(graph, m["bias"]).reshape(-1), m["conv"])
    return new_op(
        graph,
        "conv",
        [*conv["inputs"], b],
        conv["attrs"],
        m["add"],
        rule=NAME,
        replaced=[m["conv"], m["add"]],
    )


RULE = Rule(NAME, match, check, rewrite, "Conv + per-channel Add -> Conv with bias")
