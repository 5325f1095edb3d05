"""Architecture diagrams (issue #5): layout in Python, SVG / HTML / DOT / PNG output.

    render(graph, "svg")            -> str    (also "html", "dot"; "png" -> bytes)
    draw(graph, "model.svg")        -> Path   (format from the suffix; written atomically)

Options: depth (None = one box per layer, blocks as groups; N = blocks nested
deeper than N levels collapse into one box, 0 = every top-level layer or block is
one box; see nngraph.viz.model_view), rankdir ("TB" or "LR"), shapes (shape
labels on edges and boxes), rows (the model's SummaryRow list, for layer kinds),
title, ops (one box per primitive operator).
"""

from __future__ import annotations

from pathlib import Path

from nngraph.errors import NNError

FORMATS = ("svg", "html", "dot", "png")


def _check(fmt: str, depth, rankdir: str) -> None:
    if fmt not in FORMATS:
        raise NNError(f"unknown diagram format '{fmt}'", expected="one of " + ", ".join(FORMATS)).suggest(
            fmt, FORMATS
        )
    if rankdir not in ("TB", "LR"):
        raise NNError(f"unknown rankdir '{rankdir}'", expected="TB (top to bottom) or LR (left to right)")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise NNError(f"bad depth {depth!r}", expected="an integer >= 0, or None for every layer")


def render(
    graph,
    fmt: str = "svg",
    depth: int | None = None,
    rankdir: str = "TB",
    shapes: bool = True,
    rows=None,
    title: str | None = None,
    ops: bool = False,
) -> str | bytes:
    """The diagram of `graph` (an nngraph Graph) as SVG/HTML/DOT text, or PNG bytes."""
    fmt = fmt.lower().lstrip(".")
    _check(fmt, depth, rankdir)
    from nngraph.viz.model_view import build_view

    if fmt == "html":
        from nngraph.viz.html import render_html

        return render_html(graph, depth, rankdir, shapes, rows, title, ops)
    view = build_view(graph, depth, rows, ops, title)
    if fmt == "dot":
        from nngraph.viz.dot import render_dot

        return render_dot(view, rankdir, shapes)
    from nngraph.viz.svg import render_svg

    svg = render_svg(view, rankdir, shapes)
    if fmt == "png":
        from nngraph.viz.png import svg_to_png

        return svg_to_png(svg)
    return svg


def draw(graph, path, **opts) -> Path:
    """Write the diagram to `path`; the suffix (.svg, .html, .dot, .png) picks the format."""
    from nngraph.fileio import atomic_write_bytes

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        raise NNError(
            f"cannot tell the diagram format from '{path.name}'",
            expected="a file name ending in .svg, .html, .dot or .png",
        )
    out = render(graph, fmt, **opts)
    atomic_write_bytes(path, out if isinstance(out, bytes) else out.encode("utf-8"))
    return path


__all__ = ["render", "draw", "FORMATS"]
