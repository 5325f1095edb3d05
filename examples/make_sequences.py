"""The data of examples/seq2seq.nn: digit sequences and their reversal, for teacher forcing.

    python examples/make_sequences.py                  # writes examples/reverse.npz
    nngraph train examples/seq2seq.nn --out out/seq2seq

Tokens 0-9 are digits and 10 starts a sequence (BOS). For each `source` of LENGTH digits the
target `reversed` is the digits in reverse order, and the decoder's input `prev` is the target
shifted right by one behind BOS: the decoder predicts position t from the source (through
cross-attention) and the target before t. `greedy` decodes without the target, one token at a
time, the way the trained model is used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "reverse.npz"
LENGTH = 8
BOS = 10


def make(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`n` source sequences, their reversals, and the decoder inputs (all i64[n, LENGTH])."""
    src = np.random.default_rng(seed).integers(0, 10, (n, LENGTH))
    rev = src[:, ::-1].copy()
    prev = np.concatenate([np.full((n, 1), BOS), rev[:, :-1]], axis=1)
    return {"source": src, "prev": prev, "reversed": rev}


def make_data(n: int = 4096, out: Path = DATA, seed: int = 0) -> Path:
    """Write `n` examples to `out` as an .npz with the names seq2seq.nn reads, atomically."""
    tmp = Path(out).with_suffix(".tmp.npz")
    np.savez(tmp, **make(n, seed))
    tmp.replace(out)
    return Path(out)


def greedy(model_path: str, source: np.ndarray) -> np.ndarray:
    """Decode i64[n, LENGTH] sources with the trained model, feeding back its own argmax."""
    import nngraph as ng

    sess = ng.runtime.Session(model_path)
    prev = np.full_like(source, BOS)
    for t in range(LENGTH):
        (logits,) = sess(source=source, prev=prev).values()
        token = logits[:, t].argmax(-1)
        if t + 1 < LENGTH:
            prev[:, t + 1] = token
    return np.concatenate([prev[:, 1:], token[:, None]], axis=1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096, help="how many sequences (default 4096)")
    ap.add_argument("--out", type=Path, default=DATA)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(make_data(a.n, a.out, a.seed))
