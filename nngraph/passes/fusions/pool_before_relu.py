"""maxpool(relu(x)) -> relu(maxpool(x)) in a training step's forward graph (before autodiff).

relu is monotone, so the two agree; and a window's first maximum is the same position in both
wherever that maximum is positive (elsewhere the gradient is 0 either way), so the gradient is
unchanged too. The ReLU and its backward mask then run on the pooled tensor: a quarter of the
size for 2x2 windows. Inference keeps the order, where onnxruntime fuses the ReLU into the Conv
before it for free."""

from __future__ import annotations

from nngraph.core.ir import Graph
from nngraph.passes.rewrite import new_op, only_consumer
from nngraph.passes.rule import Match, Rule, pass_name

NAME = pass_name(__name__)


def match(graph: Graph, n: str) -> Match | None:
    d = graph.node(n)
    if d["op"] != "maxpool" or graph.node(d["inputs"][0])["op"] != "relu":
        return None
    relu = d["inputs"][0]
    return {"pool": n, "relu": relu, "x": graph.node(relu)["inputs"][0]}


def check(graph: Graph, m: Match) -> str | None:
    if not only_consumer(graph, m["relu"], m["pool"]):
        return "the relu's output is used elsewhere too"
    return None


def rewrite(graph: Graph, m: Match) -> str:
    pool = graph.node(m["pool"])
    pooled = new_op(graph, "maxpool", [m["x"]], pool["attrs"], m["pool"], rule=NAME, replaced=[m["pool"]])
    relu = graph.node(m["relu"])["attrs"]
    return new_op(graph, "relu", [pooled], relu, m["relu"], rule=NAME, replaced=[m["relu"]])


RULE = Rule(NAME, match, check, rewrite, "maxpool of a relu -> relu of the maxpool (training graphs)")
