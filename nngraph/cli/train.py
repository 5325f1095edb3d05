"""`nngraph train FILE`: train the model of the file's train section into --out."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nngraph.cli.common import add_device, add_json, compile_args, count
from nngraph.errors import NNError

NAME = "train"
HELP = "train the model of the file's train section"
SOURCE = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=count(1), help="override the section's epochs")
    add_device(p)
    p.add_argument("--out", default="out", help="folder for model.onnx, checkpoint.npz, history.json")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    add_json(p, help="end with one JSON line of results")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    m = compile_args(args)
    out = Path(args.out)
    created = not out.exists()
    try:  # before training, not after it
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".nngraph-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise NNError(
            f"cannot write into --out {out}: {e.strerror}", expected="a folder you can write to"
        ) from None
    try:
        return _train(args, m, out)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):  # a run that failed before writing
            out.rmdir()
        raise


def _train(args: argparse.Namespace, m, out: Path) -> int:
    tr = m.trainer(device=args.device, seed=args.seed, out=out, progress=not args.quiet)
    if args.resume:
        ck = out / "checkpoint.npz"
        if not ck.is_file():
            raise NNError(f"--resume: no checkpoint at {ck}")
        tr.resume(ck)
    try:
        result = tr.fit(epochs=args.epochs)
    except KeyboardInterrupt:
        ck = out / "checkpoint.npz"
        left = (
            f"{ck} holds epoch {tr.epoch}; --resume continues from there"
            if tr.epoch and ck.is_file()
            else "no epoch finished, so no checkpoint was written"
        )
        print(f"\ninterrupted at step {tr.step}: {left}", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.summary()))
    else:
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
        print(
            f"trained {m.name}: {result.steps} steps in {result.seconds:.1f} s on {result.device} "
            f"({result.samples_per_second:,.0f} samples/s); final loss {result.final_loss:.4f}"
            + (f"; {result.metrics_on} {metrics}" if metrics else "")
            + (f" (stopped early {result.stopped_early})" if result.stopped_early else "")
        )
        print(f"wrote {result.model}, {out / 'checkpoint.npz'}, {out / 'history.json'}")
    return 0
