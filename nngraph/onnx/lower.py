"""Graph -> ONNX ModelProto: each node lowered by its operator record, parameters as initializers."""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from nngraph.graph.ir import Graph
from nngraph.graph.types import TensorType
from nngraph.onnx.context import IR_VERSION, OPSET, LowerContext
from nngraph.onnx.dtypes import onnx_elem_type
from nngraph.ops import registry
from nngraph.version import __version__


def value_info(name: str, t: TensorType, doc: str = "") -> onnx.ValueInfoProto:
    dims = [d if isinstance(d, int) or d.isidentifier() else None for d in t.shape]
    return helper.make_tensor_value_info(name, onnx_elem_type(t.dtype), dims, doc_string=doc)


def lower(
    graph: Graph, inputs: list[str] | None = None, metadata: dict[str, str] | None = None
) -> onnx.ModelProto:
    """Graph -> ONNX. `inputs` lists the graph inputs in order (default: graph.inputs); a
    parameter listed there becomes an input instead of an initializer (the training step)."""
    inputs = list(graph.inputs) if inputs is None else inputs
    as_input = set(inputs)
    ctx = LowerContext(reserved=set(graph.inputs) | set(graph.outputs) | set(graph.g))
    names: dict[str, str] = {}
    for n in graph.topo():
        d = graph.node(n)
        if d["op"] == "input" or n in as_input:
            names[n] = n
        elif d["op"] in ("param", "const"):
            ctx.initializers.append(numpy_helper.from_array(d["value"], n))
            names[n] = n
        else:
            op = registry.get(d["op"])
            ctx.source = n
            ins = [names[i] for i in d["inputs"]]
            names[n] = op.lower(ctx, ins, d["attrs"], [graph.type(i) for i in d["inputs"]], d["type"])
    _name_outputs(graph, ctx, names)
    outputs = [value_info(o, graph.type(nid), graph.docs.get(o, "")) for o, nid in graph.outputs.items()]
    infos = [value_info(i, graph.type(i), graph.docs.get(i, str(graph.type(i)))) for i in inputs]
    g = helper.make_graph(ctx.nodes, graph.name, infos, outputs, ctx.initializers)
    model = helper.make_model(
        g,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="nngraph",
        producer_version=__version__,
        doc_string=f"{graph.name}, compiled by nngraph {__version__}",
    )
    props = {"nngraph_version": __version__, "source_sha256": graph.source_hash, "model": graph.name}
    helper.set_model_props(model, {**props, **(metadata or {})})
    return model


def _name_outputs(graph: Graph, ctx: LowerContext, names: dict[str, str]) -> None:
    """Give each graph output its user name: rename the producing tensor, or add an Identity."""
    produced = {o: node for node in ctx.nodes for o in node.output}
    taken: set[str] = set()
    for out, nid in graph.outputs.items():
        src = names[nid]
        if src in produced and src not in taken and src not in graph.outputs:
            for node in ctx.nodes:
                for i, v in enumerate(node.input):
                    if v == src:
                        node.input[i] = out
                for i, v in enumerate(node.output):
                    if v == src:
                        node.output[i] = out
            for other, n2 in names.items():
                if n2 == src:
                    names[other] = out
            taken.add(out)
        elif src != out:
            ctx.source = nid
            ctx.emit("Identity", [src], out=out)


def check(model: onnx.ModelProto) -> None:
    """The ONNX checker with full check, and strict shape inference: run on every model nngraph writes."""
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
