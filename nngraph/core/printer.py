"""A text listing of the graph, one line per node, for debugging:
``conv2d_1: f32[batch,32,8,8] = conv(image, conv2d_1.weight, conv2d_1.bias) stride=(1,1) @ cnn.nn:7:9``."""

from __future__ import annotations

from nngraph.core.ir import Graph


def format_graph(graph: Graph) -> str:
    lines = [f"# model {graph.name}"]
    for n in graph.topo():
        d = graph.node(n)
        t = d["type"]
        where = f" @ {d['span']}" if d.get("span") else ""
        if d["op"] == "input":
            rhs = "input"
        elif d["op"] == "param":
            rhs = f"param({d['init']}{'' if d['trainable'] else ', buffer'})"
        elif d["op"] == "const":
            rhs = f"const({d['value'].tolist()})" if d["value"].size <= 8 else "const(...)"
        else:
            attrs = " ".join(f"{k}={_fmt(v)}" for k, v in d["attrs"].items())
            rhs = f"{d['op']}({', '.join(d['inputs'])}){' ' + attrs if attrs else ''}"
        fused = f" [fused by {d['fused_by']} from {len(d['spans'])} nodes]" if d.get("fused_by") else ""
        lines.append(f"{n}: {t} = {rhs}{where}{fused}")
    for o, nid in graph.outputs.items():
        lines.append(f"output {o} = {nid}")
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return "(" + ",".join(str(i) for i in v) + ")"
    return str(v)
