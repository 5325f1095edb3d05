"""The `nngraph` command line: one module per command (app.COMMANDS), on the shared
arguments of common.py."""

from nngraph.cli.app import main

__all__ = ["main"]
