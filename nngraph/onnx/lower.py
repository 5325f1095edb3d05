"""Graph -> ONNX ModelProto: each node lowered by its operator record, parameters as initializers."""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from nngraph.core.ir import Graph
from nngraph.core.types import TensorType, onnx_elem_type
from nngraph.onnx.context import IR_VERSION, OPSET, LowerContext
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
            # an output may carry this node's id as its name (`output const = x * 2`): then the
            # initializer takes another
            name = n if graph.outputs.get(n, n) == n else ctx.fresh(f"{n}_value")
            ctx.initializers.append(numpy_helper.from_array(d["value"], name))
            names[n] = name
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
    """Give each graph output its user name: rename the producing tensor, or add an Identity.

    Renames are collected first and applied in one pass over the nodes (a training graph has an
    output per parameter: renaming through every node per output was quadratic)."""
    produced = {o for node in ctx.nodes for o in node.output}
    renamed: dict[str, str] = {}

    def current(name: str) -> str:
        while name in renamed:
            name = renamed[name]
        return name

    taken: set[str] = set()
    for out, nid in graph.outputs.items():
        src = current(names[nid])
        if src in produced and src not in taken and src not in graph.outputs:
            renamed[src] = out
            taken.add(out)
        elif src != out:
            ctx.source = nid
            ctx.emit("Identity", [src], out=out)
    for node in ctx.nodes:
        for i, v in enumerate(node.input):
            node.input[i] = current(v)
        for i, v in enumerate(node.output):
            node.output[i] = current(v)
    for other, n2 in names.items():
        names[other] = current(n2)


def check(model: onnx.ModelProto) -> None:
    """The ONNX checker with full check, and strict shape inference: run on every model nngraph writes.

    Large initializers (weights) are checked as typed graph inputs: shape inference needs their
    types, not their values, and copying 100 MB of weights through the checker costs seconds."""
    light = _without_large_initializers(model)
    onnx.checker.check_model(light, full_check=True)
    onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=True)
    for t in model.graph.initializer:  # what the light copy skipped: every weight is well formed
        if len(t.raw_data) and len(t.raw_data) != onnx.helper.tensor_dtype_to_np_dtype(
            t.data_type
        ).itemsize * _numel(t):
            raise onnx.checker.ValidationError(
                f"initializer {t.name} holds {len(t.raw_data)} bytes for shape {list(t.dims)}"
            )


def _numel(t: onnx.TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n


def _without_large_initializers(model: onnx.ModelProto, limit: int = 4096) -> onnx.ModelProto:
    g = model.graph
    big = [t for t in g.initializer if _numel(t) > limit]
    if not big:
        return model
    small = [t for t in g.initializer if _numel(t) <= limit]
    stubs = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in big]
    graph = helper.make_graph(
        list(g.node), g.name, list(g.input) + stubs, list(g.output), small, value_info=list(g.value_info)
    )
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
