"""SVG -> PNG through CairoSVG, an optional dependency (`pip install cairosvg`)."""

from __future__ import annotations

from nngraph.errors import NNError


def svg_to_png(svg: str, scale: float = 2.0) -> bytes:
    try:
        import cairosvg
    except (ImportError, OSError) as e:  # OSError: the package is there but the Cairo library is not
        raise NNError(
            f"PNG output needs the 'cairosvg' package and the Cairo library ({e.__class__.__name__}: {e})",
            expected="pip install cairosvg (and the system package libcairo2), or draw to .svg or .html",
        ) from None
    import re

    # Cairo draws at most 32767 pixels a side: scale a tall diagram down rather than fail
    size = re.search(r'<svg[^>]*\bwidth="([\d.]+)(?:pt|px)?"[^>]*\bheight="([\d.]+)(?:pt|px)?"', svg)
    if size:
        biggest = max(float(size.group(1)), float(size.group(2))) * 4 / 3  # points -> pixels
        scale = min(scale, 32000 / max(biggest, 1.0))
    try:
        return cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=scale)
    except Exception as e:  # cairocffi.CairoError and the like: the diagram is too large for a bitmap
        raise NNError(
            f"cannot draw this diagram as PNG ({e})", expected="draw to .svg or .html instead"
        ) from None
