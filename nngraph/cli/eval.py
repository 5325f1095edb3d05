"""`nngraph eval MODEL.onnx`: an inference model's metrics on a data set."""

from __future__ import annotations

import argparse
import json

from nngraph.cli.common import add_device, add_json

NAME = "eval"
HELP = "evaluate an inference model on a data set"
SOURCE = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_file")
    p.add_argument("--data", default="digits", help="digits, or a .npz/.csv file")
    add_device(p)
    add_json(p)
    p.add_argument(
        "--all", action="store_true", help="every sample, not only the held-out split used in training"
    )


def run(args: argparse.Namespace) -> int:
    from nngraph.runtime.evaluate import evaluate_file

    result = evaluate_file(args.model_file, args.data, device=args.device, everything=args.all)
    print(
        json.dumps(result)
        if args.json
        else "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items())
    )
    return 0
