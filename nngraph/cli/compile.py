"""`nngraph compile FILE`: write the inference, training-step or gradients model as ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from nngraph.cli.common import add_opt_level, add_pass_options, compile_args, pass_runner
from nngraph.errors import NNError
from nngraph.fileio import atomic_write_bytes

NAME = "compile"
HELP = "write the inference model as ONNX"
SOURCE = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="the .onnx file to write")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--train", action="store_true", help="write the training-step model (and its initial state .npz)"
    )
    kind.add_argument(
        "--grads", action="store_true", help="write the gradients-only model (and its initial state .npz)"
    )
    add_opt_level(p, default=2, help="optimization level (default 2)")
    add_pass_options(p)


def run(args: argparse.Namespace) -> int:
    m = compile_args(args)
    if args.output == "":
        raise NNError("-o needs a file name", expected="e.g. -o model.onnx")
    out = Path(args.output or Path(args.file).with_suffix(".onnx").name)
    runner = pass_runner(args)
    kind = "grads" if args.grads else "step" if args.train else None
    if not kind and out.suffix.lower() in (".npz", ".npy", ".nn"):
        raise NNError(
            f"-o {out}: an ONNX model under a {out.suffix} name would be taken for "
            + ("nngraph source" if out.suffix.lower() == ".nn" else "arrays"),
            expected="an .onnx file name",
        )
    if kind and out.suffix.lower() == ".npz":
        raise NNError(
            f"-o {out}: the {kind} model's initial state is written beside it as {out.with_suffix('.npz')}, "
            "so the model itself needs another name",
            expected="an .onnx path such as step.onnx (its state goes to step.npz)",
        )
    if args.dump_after:
        (m.training(kind, args.O, runner) if kind else m).to_onnx(args.O, runner)
        if args.report:
            _print_report(runner)
        if runner.dumped is None:
            raise NNError(
                f"pass {args.dump_after} did not run, so there is nothing to dump: {_why_not_run(args)}"
            )
        print(runner.dumped)
        return 0
    if kind:
        from nngraph.runtime.checkpoint import save_checkpoint

        c = m.training(kind, args.O, runner)
        model = c.to_onnx(args.O, runner)
        atomic_write_bytes(out, model.SerializeToString())
        init = out.with_suffix(".npz")
        save_checkpoint(init, c.initial, {"step": 0, "epoch": 0, "interface": c.interface.to_json()})
        print(
            f"wrote {out} ({kind} model of {m.name}, {len(model.graph.node)} ONNX nodes) and its initial state {init}"
        )
    else:
        m.save(out, args.O, runner)
        print(f"wrote {out} (model {m.name}, {m.param_count:,} parameters, -O{args.O})")
    if args.report:
        _print_report(runner)
    return 0


def _print_report(runner) -> None:
    w = max([16, *(len(r.name) for r in runner.report)])
    print(f"{'pass':{w}s} {'nodes before':>12s} {'after':>6s} {'ms':>8s}")
    prev = None
    for r in runner.report:
        if prev is not None and r.nodes_before != prev.nodes_after:  # between passes: autodiff ran
            print(f"{'(autodiff)':{w}s} {prev.nodes_after:12d} {r.nodes_before:6d}")
        mark = "" if r.changed else "  (no change)"
        print(f"{r.name:{w}s} {r.nodes_before:12d} {r.nodes_after:6d} {r.seconds * 1000:8.2f}{mark}")
        prev = r


def _why_not_run(args: argparse.Namespace) -> str:
    from nngraph.passes.manager import names
    from nngraph.passes.pipeline import BEFORE_AUTODIFF, PIPELINES

    name = args.dump_after
    if name in args.disable:
        return f"--disable {name} turned it off"
    if not (args.train or args.grads) and name in names(BEFORE_AUTODIFF[2]):
        return "it rewrites training graphs before autodiff: add --train"
    if name not in {*names(PIPELINES[args.O]), *names(BEFORE_AUTODIFF[args.O])}:
        return f"-O{args.O} does not include it (-O2 does)"
    return "this graph never reached it"
