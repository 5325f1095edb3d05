"""conv(x, w) and its weight gradient conv_grad_weight(x, g) -> patches P of x, taken once, and two
GEMMs over them (ops/conv_gemm.py). Only training graphs have a weight gradient; inference keeps
Conv, which onnxruntime runs in its blocked layout when the weights are constants."""

from __future__ import annotations

import math

from nngraph.graph.ir import Graph
from nngraph.ops.common import window_attrs
from nngraph.passes.rewrite import new_op
from nngraph.passes.rule import Match, Rule

NAME = "conv_as_gemm"
#: The patches live from the forward conv to its weight gradient: kernel-taps times the input's
#: size. Small images gain most (one GEMM instead of many small products); on large ones the
#: GEMM form is no faster than Conv and the patches would multiply training memory, so they keep Conv.
MAX_PATCHES_PER_SAMPLE = 1 << 16


def _window(attrs: dict, n: int):
    return window_attrs(attrs, n, "conv")


def match(graph: Graph, n: str) -> Match | None:
    d = graph.node(n)
    if d["op"] != "conv_grad_weight":
        return None
    x, g = d["inputs"]
    kernel = tuple(d["attrs"]["kernel"])
    same = [
        c
        for c in graph.consumers(x)
        if graph.node(c)["op"] == "conv"
        and graph.node(c)["inputs"][0] == x
        and (graph.consumers(c) or c in graph.outputs.values())  # not one this pass already replaced
        and tuple(graph.type(graph.node(c)["inputs"][1]).shape[2:]) == kernel
        and graph.node(c)["attrs"]["groups"] == d["attrs"]["groups"]
        and _window(graph.node(c)["attrs"], len(kernel)) == _window(d["attrs"], len(kernel))
    ]
    # the forward conv of this gradient: the one whose source span the backward node carries
    at = _where(d.get("span"))
    fwd = next((c for c in same if _where(graph.node(c).get("span")) == at), same[0] if same else None)
    return {"gw": n, "x": x, "g": g, "kernel": kernel, "fwd": fwd}


def _where(span) -> tuple | None:
    return None if span is None else (span.file, span.line, span.column, span.end_line, span.end_column)


def check(graph: Graph, m: Match) -> str | None:
    d = graph.node(m["gw"])
    if d["attrs"]["groups"] != 1:
        return "grouped convolutions keep Conv"
    x = graph.type(m["x"])
    if len(m["kernel"]) not in (1, 2):
        return "only 1-D and 2-D convolutions become GEMMs"
    if not all(isinstance(s, int) for s in x.shape[1:]):
        return f"the input {x} has symbolic channel or spatial dims"
    per_sample = math.prod(graph.type(m["g"]).shape[2:]) * x.shape[1] * math.prod(m["kernel"])
    if per_sample > MAX_PATCHES_PER_SAMPLE:
        return (
            f"the patches would hold {per_sample:,} values per sample, kept from the forward pass to the "
            f"backward (the limit is {MAX_PATCHES_PER_SAMPLE:,}: beyond it memory grows more than speed)"
        )
    return None


def rewrite(graph: Graph, m: Match) -> str:
    d = graph.node(m["gw"])
    n = len(m["kernel"])
    stride, pads, dilation = _window(d["attrs"], n)
    window = {"kernel": m["kernel"], "stride": stride, "pads": pads, "dilation": dilation}
    like = m["fwd"] or m["gw"]
    p = new_op(graph, "conv_patches", [m["x"]], window, like, rule=NAME, replaced=[like])
    if m["fwd"] is not None:
        y = new_op(
            graph,
            "conv_gemm",
            [p, *graph.node(m["fwd"])["inputs"][1:]],
            {},
            m["fwd"],
            rule=NAME,
            replaced=[m["fwd"]],
        )
        graph.replace_uses(m["fwd"], y)
    return new_op(
        graph,
        "conv_gemm_grad_weight",
        [p, m["g"]],
        {"kernel": m["kernel"]},
        m["gw"],
        rule=NAME,
        replaced=[m["gw"]],
    )


RULE = Rule(
    NAME,
    match,
    check,
    rewrite,
    "Conv and its weight gradient -> patches once, then one GEMM each (training graphs)",
)
