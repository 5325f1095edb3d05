"""`nngraph run MODEL.onnx`: run an ONNX model on .npy inputs, or random ones."""

from __future__ import annotations

import argparse
import io

from nngraph.cli.common import add_device, count
from nngraph.errors import NNError
from nngraph.fileio import atomic_write_bytes

NAME = "run"
HELP = "run an ONNX model on .npy inputs"
SOURCE = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_file")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--random", type=count(1), metavar="BATCH", help="feed random inputs with this batch size")
    add_device(p)
    p.add_argument("-o", "--output", help="write the outputs to this .npz")


def run(args: argparse.Namespace) -> int:
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
