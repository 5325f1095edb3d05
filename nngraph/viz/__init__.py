"""Architecture diagrams (issue #5): layout in Python, SVG / HTML / DOT / PNG output."""
