"""`nngraph gradcheck FILE`: symbolic gradients against finite differences and onnxruntime."""

from __future__ import annotations

import argparse

from nngraph.cli.common import compile_args, count, positive_float

NAME = "gradcheck"
HELP = "symbolic gradients vs finite differences"
SOURCE = True

ONNX_TOL = 1e-3  # float32 execution against the float64 symbolic gradient


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=count(1), default=8)
    p.add_argument("--per-param", type=count(1), default=6)
    p.add_argument("--tol", type=positive_float, default=1e-4)


def run(args: argparse.Namespace) -> int:
    from nngraph.training.gradcheck import gradcheck

    m = compile_args(args)
    c = m.training("grads")
    tr = m.trainer()
    ds = tr.dataset()
    batch = next(ds.batches(args.batch, 0, epoch=0, shuffle=False))
    rows = gradcheck(c, batch, per_param=args.per_param)
    print(f"{'parameter':40s} {'checked':>7s} {'vs finite diff':>15s} {'onnx vs symbolic':>17s}")
    for r in rows:
        print(f"{r.param:40s} {r.checked:7d} {r.max_rel_fd:15.2e} {r.max_rel_onnx:17.2e}")
    worst = max([r.max_rel_fd for r in rows] + [0.0])
    worst_onnx = max([r.max_rel_onnx for r in rows] + [0.0])
    ok = worst < args.tol and worst_onnx < ONNX_TOL
    print(
        ("ok" if ok else "FAILED")
        + f": worst relative error vs finite differences {worst:.2e} (tolerance {args.tol:g}), "
        f"onnxruntime vs symbolic {worst_onnx:.2e} (tolerance {ONNX_TOL:g})"
    )
    return 0 if ok else 1
