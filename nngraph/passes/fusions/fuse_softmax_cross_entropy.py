"""neg(mean(sum(log_softmax(x) * one_hot(y)))) -> softmax_cross_entropy(x, y): ONNX's
SoftmaxCrossEntropyLoss forward, and, because this pass runs on the forward graph before
autodiff, the closed-form gradient (softmax(x) - one_hot(y)) / rows backward."""

from __future__ import annotations

from nngraph.core.ir import Graph
from nngraph.passes.rewrite import new_op, only_consumer
from nngraph.passes.rule import Match, Rule, pass_name

NAME = pass_name(__name__)


def _single(graph: Graph, n: str, op: str) -> str | None:
    """n's only input if it is produced by `op`."""
    d = graph.node(n)
    return d["inputs"][0] if d["inputs"] and graph.node(d["inputs"][0])["op"] == op else None


def match(graph: Graph, n: str) -> Match | None:
    if graph.node(n)["op"] != "neg":
        return None
    mean = _single(graph, n, "reduce_mean")
    total = mean and _single(graph, mean, "reduce_sum")
    prod = total and _single(graph, total, "mul")
    if not prod:
        return None
    a, b = graph.node(prod)["inputs"]
    if graph.node(a)["op"] == "one_hot":
        a, b = b, a
    if graph.node(a)["op"] != "log_softmax" or graph.node(b)["op"] != "one_hot":
        return None
    return {"neg": n, "mean": mean, "sum": total, "mul": prod, "logp": a, "onehot": b}


def check(graph: Graph, m: Match) -> str | None:
    x_rank = graph.type(m["logp"]).rank
    if graph.node(m["logp"])["attrs"]["axis"] % x_rank != x_rank - 1:
        return "the softmax is not over the last axis"
    axes = graph.node(m["sum"])["attrs"]["axes"]
    if (
        graph.node(m["sum"])["attrs"]["keepdims"]
        or axes is None
        or [a % x_rank for a in axes] != [x_rank - 1]
    ):
        return "the sum is not over the class axis alone"
    if graph.node(m["mean"])["attrs"]["axes"] is not None:
        return "the mean is not over every row"
    for k in ("mean", "sum", "mul", "logp", "onehot"):
        if not only_consumer(
            graph, m[k], {"mean": m["neg"], "sum": m["mean"], "mul": m["sum"]}.get(k, m["mul"])
        ):
            return f"the {k} is used elsewhere too"
    return None


def rewrite(graph: Graph, m: Match) -> str:
    logits = graph.node(m["logp"])["inputs"][0]
    labels = graph.node(m["onehot"])["inputs"][0]
    return new_op(
        graph,
        "softmax_cross_entropy",
        [logits, labels],
        {},
        m["neg"],
        rule=NAME,
        replaced=[m["neg"], m["mean"], m["sum"], m["mul"], m["logp"], m["onehot"]],
    )


RULE = Rule(
    NAME,
    match,
    check,
    rewrite,
    "log_softmax + one_hot + sum + mean -> SoftmaxCrossEntropyLoss, with its closed-form gradient",
)
