"""The `nngraph` command line: check, summary, graph, compile, run."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from pathlib import Path

from nngraph.errors import NNError, deep_nesting
from nngraph.fileio import atomic_write_bytes
from nngraph.version import __version__


def _count(minimum: int):
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


def compile_args(args):
    """The model of the command's file, --model and --seed (0 when not given)."""
    from nngraph.compiler import compile_file

    return compile_file(args.file, model=args.model, seed=0 if args.seed is None else args.seed)


def cmd_check(args) -> int:
    from nngraph.frontend import load_file

    prog = load_file(args.file)
    own = [b for b in prog.blocks.values() if b.span.file == prog.main]
    if not any(m.span.file == prog.main for m in prog.models.values()) and own and args.model is None:
        names = ", ".join(b.name for b in own)
        print(f"{args.file}: ok: blocks {names} parsed (a block's shapes are checked where a model uses it)")
        return 0
    m = compile_args(args)
    trained = ""
    if m.name in m.program.trains:  # its settings, loss and metrics too, without training
        from nngraph.runtime.data import need_samples_first
        from nngraph.training.spec import data_file

        data_file(m.train_spec())
        m.training("eval", level=0)
        step = m.training("step", level=0)  # what training builds: e.g. an lstm needs a fixed length
        for role, names in (("input", step.interface.inputs), ("target", step.interface.targets)):
            for name in names:
                t = step.graph.type(name)
                need_samples_first(role, name, t.shape, t.dtype)
        trained = "; train section ok"
    print(f"{args.file}: ok: model {m.name}, {m.param_count:,} parameters{trained}")
    return 0


def cmd_summary(args) -> int:
    m = compile_args(args)
    print(json.dumps(m.summary_dict()) if args.json else m.summary())
    return 0


def cmd_graph(args) -> int:
    print(compile_args(args))
    return 0


def _runner(args):
    from nngraph.passes.manager import Runner

    return Runner(disabled=set(args.disable), dump_after=args.dump_after)


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


def cmd_compile(args) -> int:
    m = compile_args(args)
    if args.output == "":
        raise NNError("-o needs a file name", expected="e.g. -o model.onnx")
    out = Path(args.output or Path(args.file).with_suffix(".onnx").name)
    runner = _runner(args)
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


def _why_not_run(args) -> str:
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


def cmd_train(args) -> int:
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


def _train(args, m, out: Path) -> int:
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


def cmd_eval(args) -> int:
    from nngraph.runtime.evaluate import evaluate_file

    result = evaluate_file(args.model_file, args.data, device=args.device, everything=args.all)
    print(
        json.dumps(result)
        if args.json
        else "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items())
    )
    return 0


def cmd_gradcheck(args) -> int:
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


ONNX_TOL = 1e-3  # float32 execution against the float64 symbolic gradient


def _parse_feeds(items: list[str]) -> dict:
    import numpy as np

    feeds = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name:
            raise NNError(f"bad --input '{item}'", expected="name=file.npy")
        if name in feeds:
            raise NNError(f"--input {name} given twice", expected="each input once")
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            why = "it is not a .npy array" if "pickle" in str(e) else str(e)
            raise NNError(f"cannot read input '{name}' from {path}: {why}", expected="a .npy file") from None
        if not isinstance(arr, np.ndarray):  # an .npz archive
            arr.close()
            raise NNError(
                f"input '{name}': {path} is an .npz archive, not one array", expected="a .npy file per input"
            )
        feeds[name] = arr
    return feeds


def _random_feeds(sess, batch: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    feeds = {}
    for name, (shape, dtype) in sess.inputs.items():
        dims = [d if isinstance(d, int) else batch for d in shape]
        if np.issubdtype(dtype, np.integer):
            feeds[name] = rng.integers(0, 2, dims).astype(dtype)
        else:
            feeds[name] = rng.standard_normal(dims).astype(dtype)
    return feeds


def cmd_run(args) -> int:
    import numpy as np

    from nngraph.runtime import Session

    if args.random and args.input:
        raise NNError(
            "--random and --input both given", expected="either --random BATCH or --input NAME=FILE.npy"
        )
    sess = Session(args.model_file, device=args.device)
    feeds = _random_feeds(sess, args.random) if args.random else _parse_feeds(args.input)
    outs = sess.run(feeds)
    print(f"ran {args.model_file} on {sess.device}")
    for name, arr in outs.items():
        print(f"{name}: {arr.dtype}{list(arr.shape)}")
        print(np.array2string(arr, threshold=20, precision=4))
    if args.output:
        buf = io.BytesIO()
        np.savez(buf, **outs)
        atomic_write_bytes(args.output, buf.getvalue())
        print(f"wrote {args.output}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nngraph", description="Compile .nn neural networks to plain ONNX.")
    p.add_argument("--version", action="version", version=f"nngraph {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def source_cmd(name: str, fn, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("file", help="a .nn file")
        s.add_argument("--model", help="which model, when the file defines several")
        s.add_argument(
            "--seed",
            type=_count(0),
            help="seed of the parameter initialization (default 0; train: the train section's)",
        )
        s.set_defaults(fn=fn)
        return s

    source_cmd("check", cmd_check, "parse and check shapes; exit 1 with a positioned error")
    source_cmd("summary", cmd_summary, "layer table: layer, op, output shape, params").add_argument(
        "--json", action="store_true"
    )
    source_cmd("graph", cmd_graph, "print the graph, one line per node")
    c = source_cmd("compile", cmd_compile, "write the inference model as ONNX")
    c.add_argument("-o", "--output", help="the .onnx file to write")
    kind = c.add_mutually_exclusive_group()
    kind.add_argument(
        "--train", action="store_true", help="write the training-step model (and its initial state .npz)"
    )
    kind.add_argument(
        "--grads", action="store_true", help="write the gradients-only model (and its initial state .npz)"
    )
    c.add_argument("-O", type=int, default=2, choices=[0, 1, 2], help="optimization level (default 2)")
    c.add_argument("--report", action="store_true", help="per pass: nodes before and after, time")
    c.add_argument("--dump-after", metavar="PASS", help="print the graph after this pass instead of writing")
    c.add_argument(
        "--disable", action="append", default=[], metavar="PASS", help="turn a pass off (repeatable)"
    )

    t = source_cmd("train", cmd_train, "train the model of the file's train section")
    t.add_argument("--epochs", type=_count(1), help="override the section's epochs")
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    t.add_argument("--out", default="out", help="folder for model.onnx, checkpoint.npz, history.json")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    t.add_argument("--json", action="store_true", help="end with one JSON line of results")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    gc = source_cmd("gradcheck", cmd_gradcheck, "symbolic gradients vs finite differences")
    gc.add_argument("--batch", type=_count(1), default=8)
    gc.add_argument("--per-param", type=_count(1), default=6)
    gc.add_argument("--tol", type=_positive_float, default=1e-4)

    from nngraph.viz.cli_draw import add_parser as add_draw

    add_draw(sub)

    e = sub.add_parser("eval", help="evaluate an inference model on a data set")
    e.add_argument("model_file")
    e.add_argument("--data", default="digits", help="digits, or a .npz/.csv file")
    e.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    e.add_argument("--json", action="store_true")
    e.add_argument(
        "--all", action="store_true", help="every sample, not only the held-out split used in training"
    )
    e.set_defaults(fn=cmd_eval)

    r = sub.add_parser("run", help="run an ONNX model on .npy inputs")
    r.add_argument("model_file")
    r.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    r.add_argument(
        "--random", type=_count(1), metavar="BATCH", help="feed random inputs with this batch size"
    )
    r.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    r.add_argument("-o", "--output", help="write the outputs to this .npz")
    r.set_defaults(fn=cmd_run)
    return p


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return v


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


if __name__ == "__main__":
    sys.exit(main())
