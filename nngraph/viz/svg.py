"""View + Layout -> SVG text (crisp, self-contained, no external fonts or scripts)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from nngraph.viz.layout import Layout, layout
from nngraph.viz.model_view import Box, View, human, shape_text

#: colour family -> (fill, stroke); the operator families come from Style.category in the registry.
COLORS: dict[str, tuple[str, str]] = {
    "input": ("#ecfccb", "#4d7c0f"),
    "output": ("#fee2e2", "#b91c1c"),
    "conv": ("#ede9fe", "#7c3aed"),
    "linear": ("#dbeafe", "#2563eb"),
    "embed": ("#cffafe", "#0891b2"),
    "norm": ("#fef3c7", "#d97706"),
    "pool": ("#ccfbf1", "#0d9488"),
    "activation": ("#dcfce7", "#16a34a"),
    "reduce": ("#ffedd5", "#c2410c"),
    "regularize": ("#fce7f3", "#db2777"),
    "elementwise": ("#f1f5f9", "#64748b"),
    "shape": ("#f8fafc", "#94a3b8"),
    "block": ("#e0e7ff", "#4338ca"),
    "backward": ("#ffe4e6", "#e11d48"),
    "update": ("#fef9c3", "#a16207"),
}
LEGEND_NAMES = {"block": "collapsed block", "backward": "backward (gradient)", "update": "optimizer update"}

FONT = 12.0
LINE = 15.0
CHAR = 0.6 * FONT  # a generous average advance for sans-serif text
HEADER = 64.0


def text_width(s: str, size: float = FONT, bold: bool = False) -> float:
    return len(s) * size * (0.62 if bold else 0.58)


def box_size(box: Box, shapes: bool) -> tuple[float, float]:
    lines = box.lines(shapes)
    w = max(text_width(line, FONT, i == 0) for i, line in enumerate(lines)) + 20
    return max(w, 72.0), LINE * len(lines) + 10


@dataclass
class Diagram:
    view: View
    layout: Layout
    shapes: bool
    ids: dict[str, str]  # box id -> SVG element id


def make_diagram(view: View, rankdir: str = "TB", shapes: bool = True) -> Diagram:
    sizes = {k: box_size(b, shapes) for k, b in sorted(view.boxes.items(), key=lambda kv: kv[1].order)}
    nest = max((len(b.groups) for b in view.boxes.values()), default=0)
    tb = rankdir == "TB"
    rank_gap = (44.0 if shapes else 32.0) + nest * 26.0
    if not tb:
        rank_gap += 40.0 if shapes else 0.0  # room for shape labels written along the edge
    lay = layout(
        sizes,
        [(e.src, e.dst) for e in view.edges],
        {k: b.groups for k, b in view.boxes.items()},
        rankdir=rankdir,
        rank_gap=rank_gap,
    )
    ids = {k: f"n{i}" for i, k in enumerate(sizes)}
    return Diagram(view, lay, shapes, ids)


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def edge_path(points: list[tuple[float, float]], tb: bool) -> str:
    """Straight stubs, cubic curves across the gaps (their control points stay inside the gap)."""
    out = [f"M{_f(points[0][0])},{_f(points[0][1])}"]
    for i in range(1, len(points)):
        (x0, y0), (x1, y1) = points[i - 1], points[i]
        if i % 2 == 0:  # a gap crossing: points[i-1] -> points[i]
            if tb:
                my = (y0 + y1) / 2
                out.append(f"C{_f(x0)},{_f(my)} {_f(x1)},{_f(my)} {_f(x1)},{_f(y1)}")
            else:
                mx = (x0 + x1) / 2
                out.append(f"C{_f(mx)},{_f(y0)} {_f(mx)},{_f(y1)} {_f(x1)},{_f(y1)}")
        else:
            out.append(f"L{_f(x1)},{_f(y1)}")
    return " ".join(out)


STYLE = """
.nn text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#1f2937}
.nn .title{font-size:16px;font-weight:bold}
.nn .subtitle{font-size:12px;fill:#4b5563}
.nn .name{font-weight:bold}
.nn .small{font-size:10px;fill:#4b5563}
.nn .group rect{fill:#f8fafc;fill-opacity:.55;stroke:#94a3b8;stroke-dasharray:4 3}
.nn .group.phase rect{fill:#fff7ed;fill-opacity:.35}
.nn .group text{font-size:11px;fill:#475569;font-style:italic}
.nn .edge path{fill:none;stroke:#64748b;stroke-width:1.2}
.nn .edge.back path{stroke-dasharray:5 3}
.nn .edge text{font-size:10px;fill:#64748b}
.nn .node rect{stroke-width:1.3}
.nn .node.input rect,.nn .node.output rect{stroke-width:2}
.nn .node.backward rect{stroke-dasharray:5 2}
"""


def svg_document(d: Diagram, title: str | None = None, interactive: bool = False) -> str:
    view, lay = d.view, d.layout
    tb = lay.rankdir == "TB"
    heading = title if title is not None else view.title
    sub = (
        f"{view.params:,} trainable parameters · {human(view.flops)}FLOPs forward at batch 1 (matmul + conv)"
    )
    cats = []
    for b in sorted(view.boxes.values(), key=lambda b: b.order):
        if b.category not in cats:
            cats.append(b.category)
    legend: list[str] = []
    lx = 10.0
    for c in cats:
        fill, stroke = COLORS.get(c, COLORS["elementwise"])
        name = LEGEND_NAMES.get(c, c)
        legend.append(
            f'<rect x="{_f(lx)}" y="0" width="14" height="12" rx="3" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{_f(lx + 18)}" y="10" class="small">{escape(name)}</text>'
        )
        lx += 18 + text_width(name, 10) + 14
    width = max(lay.width, text_width(heading, 16, True) + 20, text_width(sub) + 20, lx + 10)
    height = lay.height + HEADER
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="nn" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}">',
        f"<style>{STYLE}</style>",
        '<defs><marker id="nn-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#64748b"/></marker></defs>',
        f'<rect x="0" y="0" width="{_f(width)}" height="{_f(height)}" fill="#ffffff"/>',
        f'<text x="10" y="20" class="title">{escape(heading)}</text>',
        f'<text x="10" y="37" class="subtitle">{escape(sub)}</text>',
        f'<g class="legend" transform="translate(0,46)">{"".join(legend)}</g>',
        f'<g class="scene" transform="translate(0,{_f(HEADER)})">',
        '<g class="groups">',
    ]
    for gid in sorted(lay.groups, key=lambda g: (view.groups[g].depth if g in view.groups else 0, g)):
        x, y, w, h = lay.groups[gid]
        grp = view.groups.get(gid)
        label = grp.label if grp else gid
        phase = " phase" if gid in ("grad", "update") else ""
        out.append(
            f'<g class="group{phase}" data-id="{escape(gid)}"><rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" '
            f'height="{_f(h)}" rx="8"/><text x="{_f(x + 8)}" y="{_f(y + 13)}">{escape(label)}</text></g>'
        )
    out.append("</g>")
    out.append('<g class="edges">')
    types = {(e.src, e.dst): e.type for e in view.edges}
    labelled: set[str] = set()
    for r in lay.routes:
        e_type = types.get((r.src, r.dst))
        cls = "edge back" if r.reversed else "edge"
        piece = (
            f'<g class="{cls}" data-src="{d.ids[r.src]}" data-dst="{d.ids[r.dst]}">'
            f'<path d="{edge_path(r.points, tb)}" marker-end="url(#nn-arrow)"/>'
        )
        if d.shapes and e_type is not None and view.boxes[r.dst].kind != "output" and r.src not in labelled:
            labelled.add(r.src)  # every edge out of a box carries the same tensor: label it once
            # the label sits at the start of the first gap crossing, beside the edge
            (x0, y0) = r.points[1] if not r.reversed else r.points[-2]
            if tb:
                piece += f'<text x="{_f(x0 + 4)}" y="{_f(y0 + 11)}">{escape(shape_text(e_type))}</text>'
            else:
                piece += f'<text x="{_f(x0 + 3)}" y="{_f(y0 - 4)}">{escape(shape_text(e_type))}</text>'
        out.append(piece + "</g>")
    out.append("</g>")
    out.append('<g class="nodes">')
    for key, (x, y, w, h) in lay.boxes.items():
        b = view.boxes[key]
        fill, stroke = COLORS.get(b.category, COLORS["elementwise"])
        rx = h / 2 if b.kind in ("input", "output") else 6
        tip = f"{b.name} — {b.op}"
        if b.type is not None:
            tip += f"\n{b.type}"
        if b.params:
            tip += f"\nparams {b.params:,}"
        if b.spans:
            tip += "\n" + b.spans[0]
        parts = [
            f'<g class="node {b.kind}" id="{d.ids[key]}" data-id="{escape(key)}" data-name="{escape(b.name)}">',
            f"<title>{escape(tip)}</title>",
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" rx="{_f(min(rx, 14))}" '
            f'fill="{fill}" stroke="{stroke}"/>',
        ]
        for i, line in enumerate(b.lines(d.shapes)):
            cls = ' class="name"' if i == 0 else (' class="small"' if i > 1 else "")
            parts.append(
                f'<text x="{_f(x + w / 2)}" y="{_f(y + 5 + LINE * (i + 1) - 3)}" text-anchor="middle"{cls}>'
                f"{escape(line)}</text>"
            )
        parts.append("</g>")
        out.append("".join(parts))
    out.append("</g></g></svg>")
    return "\n".join(out)


def render_svg(view: View, rankdir: str = "TB", shapes: bool = True, title: str | None = None) -> str:
    return svg_document(make_diagram(view, rankdir, shapes), title)
