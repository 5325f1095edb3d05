"""Helpers shared by test files of several subjects: paths, running the CLI, small .nn sources,
running compiled models. The test files live in subfolders by subject and import these as
`from conftest import ...` (the folders have no __init__.py, so every basename is unique)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.nn"))
#: ImageNet-sized examples: too big for the NumPy reference evaluation and every-pass sweeps.
IMAGENET = {"resnet18", "resnet50", "mobilenetv2"}
SMALL_EXAMPLES = [p for p in EXAMPLES if p.stem not in IMAGENET]

# ---- small .nn sources ---------------------------------------------------------------------

#: The first lines of a model with one input x: f32[batch, 16]; a test adds its body and "}".
HEAD = "model M {\n    input x: f32[batch, 16]\n"

TINY = "model Tiny {\n    input image: f32[batch, 64]\n    output logits = image | dense(10)\n}\n"

#: A correct train section for TINY, one setting a line; tests swap or add lines.
OK_LINES = [
    "data = digits",
    "target label: i64[batch]",
    "loss = cross_entropy(logits, label)",
    "optimizer = sgd(lr=0.1)",
    "epochs = 1",
]

#: The first lines of a train section for TINY on the bundled digits (no closing "}").
DIGITS_TRAIN = (
    "train Tiny {\n    data = digits\n    target label: i64[batch]\n    loss = cross_entropy(logits, label)\n"
)


def tiny(*lines: str, model: str = TINY) -> str:
    """`model` and a train section for it made of `lines`."""
    name = model.split()[1]
    return model + f"\ntrain {name} {{\n" + "".join(f"    {ln}\n" for ln in lines) + "}\n"


def tiny_digits(*lines: str) -> str:
    """TINY trained on the digits, with `lines` added to DIGITS_TRAIN."""
    return TINY + DIGITS_TRAIN + "".join(f"    {ln}\n" for ln in lines) + "}\n"


REG = "model R {\n    input x: f32[batch, 7]\n    output p = x | dense(4)\n}\n"


def regression_data(path: Path, n: int = 80) -> None:
    """A linear regression data set for REG, with a little noise, as an .npz at `path`."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 7)).astype(np.float32)
    w = rng.standard_normal((7, 4)).astype(np.float32)
    y = (x @ w + 0.1 * rng.standard_normal((n, 4))).astype(np.float32)
    np.savez(path, x=x, y=y)


def regression(*extra: str) -> str:
    """REG trained with mse on reg.npz (see regression_data), measuring mae, a quarter held out."""
    return tiny(
        'data = npz("reg.npz")',
        "target y: f32[batch, 4]",
        "loss = mse(p, y)",
        "batch = 16",
        "metrics = [mae]",
        "validation = 0.25",
        *extra,
        model=REG,
    )


def small_run(tmp_path, body: str, data: dict, extra: str = "") -> str:
    """A .nn file training `body` on an .npz of `data`; returns its path."""
    np.savez(tmp_path / "d.npz", **data)
    (tmp_path / "m.nn").write_text(body.replace("DATA", f'npz("{tmp_path / "d.npz"}")') + extra)
    return str(tmp_path / "m.nn")


def random_feeds(model, batch: int, seq: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for a compiled model: symbolic dims set to batch (or seq for any other name)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in model.graph.inputs:
        t = model.graph.type(name)
        dims = [d if isinstance(d, int) else (batch if d == "batch" else seq) for d in t.shape]
        if t.dtype.startswith("i"):
            feeds[name] = rng.integers(0, 10, dims).astype(t.np_dtype)
        else:
            feeds[name] = rng.standard_normal(dims).astype(t.np_dtype)
    return feeds


@pytest.fixture
def root() -> Path:
    return ROOT


PLAIN = "model M {\n input image: f32[batch, 1, 8, 8]\n output logits = image | flatten | dense(10)\n}"


@pytest.fixture(scope="session")
def plain(tmp_path_factory) -> Path:
    """PLAIN compiled and saved once: an 8x8 image in, 10 logits out, no bundle."""
    import nngraph as ng

    return ng.compile_source(PLAIN).save(tmp_path_factory.mktemp("app") / "m.onnx")


# ---- running models ------------------------------------------------------------------------


def ort_session(model):
    """A CPU onnxruntime session on a ModelProto or its bytes."""
    import onnxruntime as ort

    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def run_model(m, **feeds) -> dict[str, np.ndarray]:
    """A compiled model's ONNX run by nngraph.runtime.Session on `feeds`."""
    import nngraph as ng

    return ng.runtime.Session(m.onnx.SerializeToString())(**feeds)


def param_values(m) -> dict[str, np.ndarray]:
    """A compiled model's parameters by name."""
    return {p: m.graph.node(p)["value"] for p in m.graph.params()}


# ---- the command line ----------------------------------------------------------------------


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """nngraph's main() in this process: (exit status, stdout, stderr); argparse's exits too."""
    from nngraph.cli import main

    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def nngraph(*args, cwd=None) -> subprocess.CompletedProcess:
    """`python -m nngraph.cli ARGS` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "nngraph.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def assert_caret(text: str, file: str, src_line: str, line: int, token: str) -> None:
    """`text` is positioned at `file:line:col`, col being where `token` starts on the line,
    quotes the line and puts the caret under that column."""
    col = src_line.index(token) + 1
    assert f"{file}:{line}:{col}: error: " in text, text
    rendered = text[text.index(f"{file}:{line}:") :].splitlines()
    assert rendered[1].endswith(src_line), text
    caret = rendered[2]
    assert caret.index("^") - caret.index("|") - 2 == col - 1, text
