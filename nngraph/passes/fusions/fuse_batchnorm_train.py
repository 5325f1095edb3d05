"""Batch norm on batch statistics, as the batchnorm layer writes it in primitives (mean, centre,
variance, 1/sqrt, scale, shift), -> batchnorm_train(x, scale, bias, mean, var): one ONNX
BatchNormalization in inference form over the batch's own mean and variance forward and,
because this pass runs before autodiff, the closed-form gradient backward instead of the chain
rule through the mean and the variance (70 ONNX nodes per batchnorm of the digits CNN's step
-> 43). The mean and variance stay (the running-statistics update reads them too), so x is
reduced once; ops/norm.py says why not training mode."""

from __future__ import annotations

from nngraph.core.ir import Graph
from nngraph.passes.rewrite import const_value, new_op, only_consumer
from nngraph.passes.rule import Match, Rule, pass_name

NAME = pass_name(__name__)


def _split(graph: Graph, n: str, op: str, want) -> tuple[str, str] | None:
    """(a, b) with n = op(a, b) in either order and want(a) true."""
    d = graph.node(n)
    if d["op"] != op:
        return None
    a, b = d["inputs"]
    if want(a):
        return a, b
    if want(b):
        return b, a
    return None


def _is(graph: Graph, op: str):
    return lambda n: graph.node(n)["op"] == op


def _channel_col(graph: Graph, n: str) -> str | None:
    """p when n = reshape(p) lifts a [C] vector to [1, C, 1, ...]."""
    d = graph.node(n)
    if d["op"] != "reshape" or graph.type(d["inputs"][0]).rank != 1:
        return None
    c = graph.type(d["inputs"][0]).shape[0]
    shape = graph.type(n).shape
    return (
        d["inputs"][0]
        if len(shape) >= 2 and shape[1] == c and all(s == 1 for i, s in enumerate(shape) if i != 1)
        else None
    )


def match(graph: Graph, n: str) -> Match | None:
    m: Match = {"y": n}
    top = _split(graph, n, "add", _is(graph, "mul"))
    if top is None or _channel_col(graph, top[1]) is None:
        return None
    m["scaled"], m["bias_col"] = top
    mid = _split(graph, m["scaled"], "mul", _is(graph, "mul"))
    if mid is None or _channel_col(graph, mid[1]) is None:
        return None
    m["normed"], m["scale_col"] = mid
    norm = _split(graph, m["normed"], "mul", _is(graph, "sub"))
    if norm is None:
        return None
    m["xc"], m["inv"] = norm
    x, mu = graph.node(m["xc"])["inputs"]
    if graph.node(mu)["op"] != "reduce_mean" or graph.node(mu)["inputs"] != [x]:
        return None
    m["x"], m["mu"] = x, mu
    d = graph.node(m["inv"])
    if d["op"] != "div" or graph.node(d["inputs"][1])["op"] != "sqrt":
        return None
    m["one"], m["sqrt"] = d["inputs"]
    m["shifted"] = graph.node(m["sqrt"])["inputs"][0]
    veps = _split(graph, m["shifted"], "add", _is(graph, "reduce_mean"))
    if veps is None:
        return None
    m["var"], m["eps"] = veps
    sq = graph.node(m["var"])["inputs"][0]
    if graph.node(sq)["op"] != "mul" or graph.node(sq)["inputs"] != [m["xc"], m["xc"]]:
        return None
    m["sq"] = sq
    return m


def check(graph: Graph, m: Match) -> str | None:
    x = graph.type(m["x"])
    if x.rank not in (2, 3, 4):
        return f"batchnorm_train takes 2-D to 4-D inputs, got {x}"
    axes = tuple(i for i in range(x.rank) if i != 1)
    for k in ("mu", "var"):
        a = graph.node(m[k])["attrs"]
        if tuple(ax % x.rank for ax in a["axes"] or ()) != axes or not a["keepdims"]:
            return f"the {'mean' if k == 'mu' else 'variance'} is not over every axis but the channels"
    one, eps = const_value(graph, m["one"]), const_value(graph, m["eps"])
    if one is None or one.size != 1 or float(one.reshape(-1)[0]) != 1.0:
        return "the normalizer is not 1 / sqrt(variance + eps)"
    if eps is None or eps.size != 1:
        return "eps is not a constant"
    if set(graph.consumers(m["xc"])) != {m["sq"], m["normed"]} or m["xc"] in graph.outputs.values():
        return "the centred input is used elsewhere too"
    for k, user in (("normed", "scaled"), ("scaled", "y"), ("inv", "normed")):
        if not only_consumer(graph, m[k], m[user]):
            return f"the {k} value is used elsewhere too"
    return None


def rewrite(graph: Graph, m: Match) -> str:
    scale = _channel_col(graph, m["scale_col"])
    bias = _channel_col(graph, m["bias_col"])
    eps = float(str(const_value(graph, m["eps"]).reshape(-1)[0]))  # as written: f32 1e-05 -> 1e-05
    replaced = [m[k] for k in ("xc", "sq", "shifted", "sqrt", "inv", "normed", "scaled", "y")]
    c = graph.type(m["x"]).shape[1]
    stats = [new_op(graph, "reshape", [m[k]], {"shape": (c,)}, m[k]) for k in ("mu", "var")]
    return new_op(
        graph,
        "batchnorm_train",
        [m["x"], scale, bias, *stats],
        {"eps": eps},
        m["y"],
        rule=NAME,
        replaced=replaced,
    )


RULE = Rule(
    NAME,
    match,
    check,
    rewrite,
    "batch norm from primitives -> BatchNormalization (training mode), with its closed-form gradient",
)
