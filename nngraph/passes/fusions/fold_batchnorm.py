"""Inference only: batchnorm(conv(x, w, b)) -> conv(x, w * s, (b - mean) * s + shift), s = scale / sqrt(var + eps)."""

from __future__ import annotations

import numpy as np

from nngraph.core.ir import Graph
from nngraph.core.types import TensorType
from nngraph.passes.rewrite import const_value, new_const, new_op, only_consumer
from nngraph.passes.rule import Match, Rule, pass_name

NAME = pass_name(__name__)


def match(graph: Graph, n: str) -> Match | None:
    d = graph.node(n)
    if d["op"] != "batchnorm" or graph.node(d["inputs"][0])["op"] != "conv":
        return None
    return {"bn": n, "conv": d["inputs"][0]}


def check(graph: Graph, m: Match) -> str | None:
    if not graph.params_fixed:
        return "parameters are inputs (a training graph): nothing to fold into"
    if not only_consumer(graph, m["conv"], m["bn"]):
        return "the convolution's output is used elsewhere too"
    conv = graph.node(m["conv"])
    for i in graph.node(m["bn"])["inputs"][1:] + conv["inputs"][1:]:
        if const_value(graph, i) is None:
            return f"{i} is not a constant"
    return None


def rewrite(graph: Graph, m: Match) -> str:
    bn, conv = graph.node(m["bn"]), graph.node(m["conv"])
    scale, shift, mean, var = (const_value(graph, i).astype(np.float64) for i in bn["inputs"][1:])
    s = scale / np.sqrt(var + bn["attrs"]["eps"])
    w_id = conv["inputs"][1]
    w = const_value(graph, w_id)
    b = const_value(graph, conv["inputs"][2]).astype(np.float64) if len(conv["inputs"]) == 3 else 0.0
    new_w = (w.astype(np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
    new_b = ((b - mean) * s + shift).astype(w.dtype)
    if graph.node(w_id)["op"] == "param":
        # new names: a folded value under the old name (conv2d_1.weight) would mislead anyone
        # copying weights by name; the bias takes the layer's name too
        layer = w_id.rsplit(".", 1)[0]
        w_node = _folded(graph, f"{layer}.folded_weight", new_w, w_id)
        b_node = _folded(graph, f"{layer}.folded_bias", new_b, w_id)
    else:
        w_node = new_const(graph, new_w, m["conv"])
        b_node = new_const(graph, new_b, m["conv"])
    return new_op(
        graph,
        "conv",
        [conv["inputs"][0], w_node, b_node],
        conv["attrs"],
        m["bn"],
        rule=NAME,
        replaced=[m["conv"], m["bn"]],
    )


def _folded(graph: Graph, name: str, value: np.ndarray, like: str) -> str:
    """A parameter holding a folded value, named for what it is (the original is left to DCE)."""
    d = graph.node(like)
    t = TensorType(d["type"].dtype, tuple(value.shape))
    return graph.add(
        name,
        "param",
        [],
        t,
        d.get("span"),
        value=value,
        trainable=True,
        init="folded",
        order=d.get("order", 0),
    )


RULE = Rule(NAME, match, check, rewrite, "fold inference batchnorm into the convolution before it")
