"""The segmentation set of examples/unet.nn: shapes drawn on 32x32 images, labelled per pixel.

    python examples/make_shapes.py                    # writes examples/shapes.npz
    nngraph train examples/unet.nn --out out/unet     # the .nn file reads shapes.npz

Each image holds one to three shapes, discs and squares of random size and position, on a noisy
background, drawn in random grey levels; a disc and a square of the same brightness differ only
in their outline, so a model has to look at a neighbourhood, not at a pixel. The labels give
each pixel its class: 0 background, 1 disc, 2 square (a later shape covers an earlier one).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "shapes.npz"
SIZE = 32
CLASSES = 3  # background, disc, square


def make(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` images f32[n, 1, SIZE, SIZE] and their labels i64[n, SIZE, SIZE]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = rng.normal(0.0, 0.1, (n, 1, SIZE, SIZE)).astype(np.float32)
    labels = np.zeros((n, SIZE, SIZE), dtype=np.int64)
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            r = int(rng.integers(4, 9))  # radius, or half the side
            cy, cx = rng.integers(r, SIZE - r, size=2)
            if rng.random() < 0.5:
                mask, cls = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r, 1
            else:
                mask, cls = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r), 2
            images[i, 0][mask] = rng.uniform(0.5, 1.0) + rng.normal(0.0, 0.1, int(mask.sum()))
            labels[i][mask] = cls
    return images, labels


def make_data(n: int = 512, out: Path = DATA, seed: int = 0) -> Path:
    """Write `n` images and their labels to `out` as an .npz with the names unet.nn reads."""
    images, labels = make(n, seed)
    tmp = Path(out).with_suffix(".tmp.npz")
    np.savez(tmp, image=images, mask=labels)
    tmp.replace(out)  # atomically: a killed run leaves the old file or none
    return Path(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="how many images (default 512)")
    ap.add_argument("--out", type=Path, default=DATA)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(make_data(a.n, a.out, a.seed))
