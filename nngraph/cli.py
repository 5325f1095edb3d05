"""The `nngraph` command line: check, summary, graph, compile, run."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from nngraph.errors import NNError
from nngraph.version import __version__


def _compile(args):
    from nngraph.compiler import compile_file

    return compile_file(args.file, model=args.model, seed=args.seed)


def cmd_check(args) -> int:
    m = _compile(args)
    print(f"{args.file}: ok: model {m.name}, {m.param_count:,} parameters")
    return 0


def cmd_summary(args) -> int:
    m = _compile(args)
    print(json.dumps(m.summary_dict()) if args.json else m.summary())
    return 0


def cmd_graph(args) -> int:
    print(_compile(args))
    return 0


def cmd_compile(args) -> int:
    m = _compile(args)
    out = Path(args.output or Path(args.file).with_suffix(".onnx").name)
    m.save(out)
    print(f"wrote {out} (model {m.name}, {m.param_count:,} parameters, {len(m.onnx.graph.node)} ONNX nodes)")
    return 0


def _parse_feeds(items: list[str]) -> dict:
    import numpy as np

    feeds = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name:
            raise NNError(f"bad --input '{item}'", expected="name=file.npy")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise NNError(f"cannot read input '{name}' from {path}: {e}", expected="a .npy file") from None
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

    from nngraph.fileio import atomic_write_bytes
    from nngraph.runtime import Session

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
        s.add_argument("--seed", type=int, default=0, help="seed of the parameter initialization")
        s.set_defaults(fn=fn)
        return s

    source_cmd("check", cmd_check, "parse and check shapes; exit 1 with a positioned error")
    source_cmd("summary", cmd_summary, "layer table: layer, op, output shape, params").add_argument(
        "--json", action="store_true"
    )
    source_cmd("graph", cmd_graph, "print the graph, one line per node")
    c = source_cmd("compile", cmd_compile, "write the inference model as ONNX")
    c.add_argument("-o", "--output", help="the .onnx file to write")

    r = sub.add_parser("run", help="run an ONNX model on .npy inputs")
    r.add_argument("model_file")
    r.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    r.add_argument("--random", type=int, metavar="BATCH", help="feed random inputs with this batch size")
    r.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    r.add_argument("-o", "--output", help="write the outputs to this .npz")
    r.set_defaults(fn=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except NNError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except (OSError, MemoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
