"""`nngraph graph FILE`: the graph as text, one line per node."""

from __future__ import annotations

import argparse

from nngraph.cli.common import compile_args

NAME = "graph"
HELP = "print the graph, one line per node"
SOURCE = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print(compile_args(args))
    return 0
