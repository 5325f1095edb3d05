"""What several commands share, declared once: the source arguments (FILE, --model, --seed),
-O, --json, --device, the pass options, and the argparse value types."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

DEVICES = ["cpu", "cuda", "auto"]


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least `minimum` (argparse then says what is wrong)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {v}")
        return v

    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return v


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """FILE, --model and --seed: every command that compiles a .nn file takes them (see compile_args)."""
    p.add_argument("file", help="a .nn file")
    p.add_argument("--model", help="which model, when the file defines several")
    p.add_argument(
        "--seed",
        type=count(0),
        help="seed of the parameter initialization (default 0; train: the train section's)",
    )


def compile_args(args: argparse.Namespace) -> Any:
    """The model of the command's file, --model and --seed (0 when not given)."""
    from nngraph.compiler import compile_file

    return compile_file(args.file, model=args.model, seed=0 if args.seed is None else args.seed)


def add_opt_level(p: argparse.ArgumentParser, default: int, help: str) -> None:
    """-O: which pass pipeline (0, 1 or 2); the default and its meaning are the command's."""
    p.add_argument("-O", type=int, default=default, choices=[0, 1, 2], help=help)


def add_json(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """--json: print one JSON value instead of text."""
    p.add_argument("--json", action="store_true", help=help)


def add_device(p: argparse.ArgumentParser) -> None:
    """--device: where onnxruntime runs the model."""
    p.add_argument("--device", default="cpu", choices=DEVICES)


def add_pass_options(p: argparse.ArgumentParser) -> None:
    """--report, --dump-after and --disable: watch or steer the pass pipeline (see pass_runner)."""
    p.add_argument("--report", action="store_true", help="per pass: nodes before and after, time")
    p.add_argument("--dump-after", metavar="PASS", help="print the graph after this pass instead of writing")
    p.add_argument(
        "--disable", action="append", default=[], metavar="PASS", help="turn a pass off (repeatable)"
    )


def pass_runner(args: argparse.Namespace) -> Any:
    """The pass runner that the pass options ask for."""
    from nngraph.passes.manager import Runner

    return Runner(disabled=set(args.disable), dump_after=args.dump_after)
