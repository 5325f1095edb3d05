from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.nn"))


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


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """nngraph's main() in this process: (exit status, stdout, stderr); argparse's exits too."""
    from nngraph.cli import main

    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err
