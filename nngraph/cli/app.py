"""The `nngraph` parser, assembled from the command modules, and main(): NNError and OS errors
become a message on stderr and exit status 1.

Named app, not main, so that `nngraph.cli.main` stays the function the script entry calls."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Protocol

from nngraph.cli.common import add_source_arguments
from nngraph.errors import NNError, deep_nesting
from nngraph.version import __version__

# One module of nngraph/cli per command, in the order `nngraph --help` lists them.
COMMANDS = ("check", "summary", "graph", "compile", "train", "gradcheck", "draw", "eval", "run")


class Command(Protocol):
    """What a command module defines. SOURCE: it takes FILE, --model and --seed (common.py)."""

    NAME: str
    HELP: str
    SOURCE: bool

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def commands() -> list[Command]:
    """The modules named in COMMANDS."""
    return [import_module(f"nngraph.cli.{name}") for name in COMMANDS]  # type: ignore[misc]


def add_command(subparsers, command: Command) -> argparse.ArgumentParser:
    """The command's subparser: the shared source arguments first where it has them, then its own."""
    s = subparsers.add_parser(command.NAME, help=command.HELP)
    if command.SOURCE:
        add_source_arguments(s)
    command.add_arguments(s)
    s.set_defaults(fn=command.run)
    return s


def parser(extra: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    """The whole parser: the commands of COMMANDS, then `extra` (a test's)."""
    p = argparse.ArgumentParser(prog="nngraph", description="Compile .nn neural networks to plain ONNX.")
    p.add_argument("--version", action="version", version=f"nngraph {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in [*commands(), *(extra or ())]:
        add_command(sub, command)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with deep_nesting(getattr(args, "file", None) or getattr(args, "model_file", None) or "the model"):
            return args.fn(args)
    except NNError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except BrokenPipeError:  # `nngraph graph f.nn | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, MemoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
