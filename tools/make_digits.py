"""Make nngraph/data/digits.npz from scikit-learn's bundled copy of the 8x8 digits.

Run once (needs scikit-learn, a dev dependency); the result is committed so that
installs need neither scikit-learn nor SciPy:

    python tools/make_digits.py [--out nngraph/data/digits.npz]

The file holds ``images`` float32 [1797, 1, 8, 8] with the raw pixel counts 0..16
and ``labels`` int64 [1797] with the digits 0..9, in scikit-learn's order.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "nngraph" / "data" / "digits.npz"


def digits_arrays() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.asarray(d.images, dtype=np.float64)
    if not np.array_equal(images, np.round(images)) or images.min() < 0 or images.max() > 16:
        raise SystemExit("unexpected pixel values in scikit-learn's digits")
    return {
        "images": images.astype(np.float32).reshape(-1, 1, 8, 8),
        "labels": np.asarray(d.target, dtype=np.int64),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    arrays = digits_arrays()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(
        f"wrote {args.out}: images {arrays['images'].dtype}{list(arrays['images'].shape)}, "
        f"labels {arrays['labels'].dtype}{list(arrays['labels'].shape)}, "
        f"{args.out.stat().st_size} bytes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
