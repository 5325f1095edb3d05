"""`nngraph draw FILE -o OUT`: the architecture, or the training step, as SVG, HTML, DOT or PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from nngraph.cli.common import add_opt_level, compile_args
from nngraph.errors import NNError

NAME = "draw"
HELP = "draw the architecture as SVG, HTML, DOT or PNG"
SOURCE = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, help="the diagram to write: .svg, .html, .dot or .png")
    p.add_argument(
        "--depth",
        type=int,
        help="collapse blocks nested deeper than N into one box (0: every top-level block is a box)",
    )
    p.add_argument("--train", action="store_true", help="draw the training step: forward, backward, update")
    p.add_argument("--rankdir", choices=["TB", "LR"], default="TB", help="top to bottom, or left to right")
    p.add_argument(
        "--no-shapes",
        action="store_true",
        help="no tensor shapes on edges and layer boxes (the model's inputs and outputs keep theirs)",
    )
    p.add_argument("--ops", action="store_true", help="one box per primitive operator")
    add_opt_level(p, default=0, help="draw the graph after the passes of this level")


def run(args: argparse.Namespace) -> int:
    from nngraph.viz import FORMATS, draw

    out = Path(args.output)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise NNError(
            f"cannot tell the diagram format from '{out.name}'",
            expected="-o with a name ending in .svg, .html, .dot or .png",
        )
    if args.depth is not None and args.depth < 0:
        raise NNError(f"--depth must be 0 or more, not {args.depth}")
    m = compile_args(args)
    opts = dict(depth=args.depth, rankdir=args.rankdir, shapes=not args.no_shapes, ops=args.ops)
    if args.train:
        graph = m.training("step", level=args.O or 0).graph  # the pre-autodiff passes of that level only
    else:
        graph = m.graph
        opts["rows"] = m.rows
    if args.O:
        from nngraph.passes.pipeline import optimize

        graph = optimize(graph, args.O)
    draw(graph, out, **opts)
    what = "training-step graph" if args.train else "model"
    print(f"wrote {out} ({what} {m.name})")
    return 0
