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
    return cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=scale)
