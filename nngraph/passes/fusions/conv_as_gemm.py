"""conv_grad_weight(x, g) -> conv_gemm_grad_weight(conv_patches(x), g): the weight gradient as
one GEMM over x's patches, gathered in one copy, instead of the rule's Conv-built patches, a
product per image and a sum over the batch (ops/conv_gemm.py). Only training graphs have a
weight gradient. Two gradients of convolutions that read one input alike share its patches (cse)."""

from __future__ import annotations

import math

from nngraph.core.ir import Graph
from nngraph.ops.common import window_attrs
from nngraph.passes.rewrite import new_op
from nngraph.passes.rule import Match, Rule, pass_name

NAME = pass_name(__name__)
#: The patches hold kernel-taps times the input's size. Small images gain most (one GEMM instead of
#: many small products); on large ones (ResNet-18 at 224 x 224) the gathered form measured no
#: faster than the rule's, so they keep it.
MAX_PATCHES_PER_SAMPLE = 1 << 16


def _window(attrs: dict, n: int):
    return window_attrs(attrs, n, "conv")


def match(graph: Graph, n: str) -> Match | None:
    d = graph.node(n)
    if d["op"] != "conv_grad_weight":
        return None
    x, g = d["inputs"]
    return {"gw": n, "x": x, "g": g, "kernel": tuple(d["attrs"]["kernel"])}


def check(graph: Graph, m: Match) -> str | None:
    d = graph.node(m["gw"])
    if d["attrs"]["groups"] != 1:
        return "grouped convolutions keep the rule's per-group products"
    x = graph.type(m["x"])
    if len(m["kernel"]) not in (1, 2):
        return "only 1-D and 2-D convolutions' weight gradients become GEMMs"
    if not all(isinstance(s, int) for s in x.shape[1:]):
        return f"the input {x} has symbolic channel or spatial dims"
    per_sample = math.prod(graph.type(m["g"]).shape[2:]) * x.shape[1] * math.prod(m["kernel"])
    if per_sample > MAX_PATCHES_PER_SAMPLE:
        return (
            f"the patches would hold {per_sample:,} values per sample (the limit is "
            f"{MAX_PATCHES_PER_SAMPLE:,}: on larger inputs the rule's form is as fast)"
        )
    return None


def rewrite(graph: Graph, m: Match) -> str:
    d = graph.node(m["gw"])
    n = len(m["kernel"])
    stride, pads, dilation = _window(d["attrs"], n)
    window = {"kernel": m["kernel"], "stride": stride, "pads": pads, "dilation": dilation}
    p = new_op(graph, "conv_patches", [m["x"]], window, m["gw"], rule=NAME)
    return new_op(graph, "conv_gemm_grad_weight", [p, m["g"]], {"kernel": m["kernel"]}, m["gw"], rule=NAME)


RULE = Rule(
    NAME,
    match,
    check,
    rewrite,
    "a convolution's weight gradient -> one GEMM over its input's gathered patches (training graphs)",
)
