"""MatMul (+ Add of a bias) -> Gemm, with transposes of either operand folded into transA/transB.
The backward graph of every dense layer is full of `matmul(transpose(x), g)`."""

from __future__ import annotations

from nngraph.core.ir import Graph
from nngraph.core.types import FLOATS
from nngraph.passes.rewrite import new_op, only_consumer
from nngraph.passes.rule import Match, Rule, pass_name

NAME = pass_name(__name__)


def _operand(graph: Graph, x: str, mm: str) -> tuple[str, int]:
    d = graph.node(x)
    if d["op"] == "transpose" and d["attrs"]["perm"] == (1, 0) and only_consumer(graph, x, mm):
        return d["inputs"][0], 1
    return x, 0


def match(graph: Graph, n: str) -> Match | None:
    d = graph.node(n)
    if d["op"] == "add":
        for i, other in ((0, 1), (1, 0)):
            mm = d["inputs"][i]
            if graph.node(mm)["op"] == "matmul":
                return {"mm": mm, "bias": d["inputs"][other], "root": n}
        return None
    if d["op"] == "matmul":
        return {"mm": n, "bias": None, "root": n}
    return None


def check(graph: Graph, m: Match) -> str | None:
    a, b = graph.node(m["mm"])["inputs"]
    if graph.type(a).rank != 2 or graph.type(b).rank != 2:
        return "Gemm takes 2-D operands only"
    if graph.type(a).dtype not in FLOATS:
        return "onnxruntime has no integer Gemm (MatMul has one)"
    if m["bias"] is not None:
        if not only_consumer(graph, m["mm"], m["root"]):
            return "the product is used elsewhere too"
        out, bias = graph.type(m["root"]), graph.type(m["bias"])
        if graph.type(m["mm"]).shape != out.shape or bias.rank > 2:
            return "the bias broadcasts the product to a larger shape"
    elif not any(graph.node(x)["op"] == "transpose" for x in (a, b)):
        return "a plain matmul gains nothing as Gemm"
    return None


def rewrite(graph: Graph, m: Match) -> str:
    a, b = graph.node(m["mm"])["inputs"]
    a, ta = _operand(graph, a, m["mm"])
    b, tb = _operand(graph, b, m["mm"])
    ins = [a, b] + ([m["bias"]] if m["bias"] is not None else [])
    replaced = [m["mm"]] + ([m["root"]] if m["root"] != m["mm"] else [])
    return new_op(graph, "gemm", ins, {"transA": ta, "transB": tb}, m["root"], rule=NAME, replaced=replaced)


RULE = Rule(NAME, match, check, rewrite, "MatMul + Add -> Gemm, transposes folded into transA/transB")
