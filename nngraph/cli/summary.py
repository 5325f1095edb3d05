"""`nngraph summary FILE`: the layer table, or its JSON."""

from __future__ import annotations

import argparse
import json

from nngraph.cli.common import add_json, compile_args

NAME = "summary"
HELP = "layer table: layer, op, output shape, params"
SOURCE = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)


def run(args: argparse.Namespace) -> int:
    m = compile_args(args)
    print(json.dumps(m.summary_dict()) if args.json else m.summary())
    return 0
