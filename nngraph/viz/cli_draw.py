"""`nngraph draw FILE -o OUT`: the CLI hook; nngraph.cli calls add_parser(subparsers)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_draw(args) -> int:
    from nngraph.cli import compile_args
    from nngraph.errors import NNError
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


def add_parser(subparsers) -> argparse.ArgumentParser:
    s = subparsers.add_parser("draw", help="draw the architecture as SVG, HTML, DOT or PNG")
    s.add_argument("file", help="a .nn file")
    s.add_argument("-o", "--output", required=True, help="the diagram to write: .svg, .html, .dot or .png")
    s.add_argument(
        "--depth",
        type=int,
        help="collapse blocks nested deeper than N into one box (0: every top-level block is a box)",
    )
    s.add_argument("--train", action="store_true", help="draw the training step: forward, backward, update")
    s.add_argument("--rankdir", choices=["TB", "LR"], default="TB", help="top to bottom, or left to right")
    s.add_argument(
        "--no-shapes",
        action="store_true",
        help="no tensor shapes on edges and layer boxes (the model's inputs and outputs keep theirs)",
    )
    s.add_argument("--ops", action="store_true", help="one box per primitive operator")
    s.add_argument(
        "-O", type=int, default=0, choices=[0, 1, 2], help="draw the graph after the passes of this level"
    )
    s.add_argument("--model", help="which model, when the file defines several")
    s.add_argument("--seed", type=int, default=0, help="seed of the parameter initialization")
    s.set_defaults(fn=cmd_draw)
    return s
