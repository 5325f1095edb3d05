"""View -> Graphviz DOT text, for people who have Graphviz (nngraph itself never runs it)."""

from __future__ import annotations

from nngraph.viz.model_view import View, shape_text
from nngraph.viz.svg import COLORS


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(view: View, rankdir: str = "TB", shapes: bool = True) -> str:
    out = [
        f"digraph {quote(view.title)} {{",
        f"  rankdir={rankdir};",
        f"  label={quote(f'{view.title} — {view.params:,} parameters')};",
        "  labelloc=t;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9, color="#64748b"];',
    ]
    children: dict[str | None, list[str]] = {}
    for gid, grp in view.groups.items():
        children.setdefault(grp.parent, []).append(gid)
    members: dict[str | None, list[str]] = {}
    for key, b in sorted(view.boxes.items(), key=lambda kv: kv[1].order):
        members.setdefault(b.groups[-1] if b.groups else None, []).append(key)

    def node_line(key: str, indent: str) -> str:
        b = view.boxes[key]
        fill, stroke = COLORS.get(b.category, COLORS["elementwise"])
        shape = ', shape=box, style="rounded,filled,bold"' if b.kind in ("input", "output") else ""
        label = "\n".join(b.lines(shapes))
        return f'{indent}{quote(key)} [label={quote(label)}, fillcolor="{fill}", color="{stroke}"{shape}];'

    def emit(gid: str | None, indent: str) -> None:
        for key in members.get(gid, []):
            out.append(node_line(key, indent))
        for sub in sorted(children.get(gid, [])):
            out.append(f"{indent}subgraph {quote('cluster_' + sub)} {{")
            out.append(
                f'{indent}  label={quote(view.groups[sub].label)}; style="rounded,dashed"; color="#94a3b8";'
            )
            emit(sub, indent + "  ")
            out.append(f"{indent}}}")

    emit(None, "  ")
    for e in view.edges:
        label = f" [label={quote(shape_text(e.type))}]" if shapes and e.type is not None else ""
        out.append(f"  {quote(e.src)} -> {quote(e.dst)}{label};")
    out.append("}")
    return "\n".join(out) + "\n"
