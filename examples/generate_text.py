"""The character-level language model of examples/char_lm.nn: make its data, score it, sample from it.

    python examples/generate_text.py data                      # char_lm.txt -> char_lm.npz (+ held-out tail)
    nngraph train examples/char_lm.nn --out out/char_lm         # train (the .nn file reads char_lm.npz)
    python examples/generate_text.py score out/char_lm/model.onnx
    python examples/generate_text.py sample out/char_lm/model.onnx --prompt "The keeper" --chars 300

Characters are printable ASCII (ids 0..94 for ' '..'~') and newline (id 95); anything else is
dropped. The last tenth of the text is never trained on: `score` reports the model's loss on it
(nats per character) next to the unigram entropy of the text, the loss of the best model that
ignores context. The model's input is a window of SEQ characters, so sampling slides a window of
the last SEQ characters; the LSTM is causal, so the logits at position p see only the first p + 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TEXT = HERE / "char_lm.txt"
DATA = HERE / "char_lm.npz"
SEQ = 32  # the model's window: tokens i64[batch, 32] in char_lm.nn
VOCAB = 96
HELD_OUT = 0.1


def encode(text: str) -> np.ndarray:
    ids = [95 if c == "\n" else ord(c) - 32 for c in text if c == "\n" or 32 <= ord(c) < 127]
    return np.asarray(ids, dtype=np.int64)


def decode(ids) -> str:
    return "".join("\n" if i == 95 else chr(int(i) + 32) for i in ids)


def split_text(text: str) -> tuple[np.ndarray, np.ndarray]:
    ids = encode(text)
    cut = int(len(ids) * (1 - HELD_OUT))
    return ids[:cut], ids[cut:]


def windows(ids: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of SEQ characters and the SEQ characters that follow each one, one step later."""
    starts = range(0, len(ids) - SEQ - 1 + 1, stride)
    x = np.stack([ids[s : s + SEQ] for s in starts])
    y = np.stack([ids[s + 1 : s + SEQ + 1] for s in starts])
    return x, y


def unigram_entropy(ids: np.ndarray) -> float:
    """Entropy in nats of the character frequencies: the loss of the best context-free model."""
    p = np.bincount(ids, minlength=VOCAB) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def make_data(text_path: Path = TEXT, out: Path = DATA, stride: int = 2) -> Path:
    train, _ = split_text(text_path.read_text())
    x, y = windows(train, stride)
    np.savez_compressed(out, tokens=x, next=y)
    return out


def _session(model: str):
    """nngraph.runtime's Session: a missing or wrong file is one clear error, not a traceback."""
    from nngraph.errors import NNError
    from nngraph.runtime import Session

    sess = Session(model)
    if "tokens" not in sess.inputs:
        raise NNError(
            f"{model} takes {', '.join(sess.inputs)}, not 'tokens': it is not char_lm.nn's model",
            expected="the model.onnx that 'nngraph train examples/char_lm.nn' wrote",
        )
    return sess


def _logits(sess, x: np.ndarray) -> np.ndarray:
    return sess.run({"tokens": x})[sess.outputs[0]]


def score(model: str, text_path: Path = TEXT) -> dict[str, float]:
    """Mean loss (nats per character) on the held-out tail, each character predicted from the up to
    SEQ - 1 characters before it within its window; and the unigram entropy of the whole text."""
    sess = _session(model)
    _, tail = split_text(text_path.read_text())
    x, y = windows(tail, SEQ)
    logits = _logits(sess, x)
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    loss = float(-np.take_along_axis(logp, y[..., None], -1).mean())
    return {"held_out_loss": loss, "unigram_entropy": unigram_entropy(encode(text_path.read_text()))}


def sample(model: str, prompt: str, chars: int, temperature: float = 0.8, seed: int = 0) -> str:
    sess = _session(model)
    rng = np.random.default_rng(seed)
    ids = list(encode(prompt)) or [encode("\n")[0]]
    for _ in range(chars):
        window = ids[-SEQ:]
        x = np.zeros((1, SEQ), np.int64)  # positions after the window are padding, never looked at
        x[0, : len(window)] = window
        logits = _logits(sess, x)
        z = logits[0, len(window) - 1].astype(np.float64) / max(temperature, 1e-6)
        p = np.exp(z - z.max())
        ids.append(int(rng.choice(VOCAB, p=p / p.sum())))
    return decode(ids)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("data", help="write char_lm.npz from char_lm.txt")
    s = sub.add_parser("score", help="held-out loss against the unigram entropy")
    s.add_argument("model")
    g = sub.add_parser("sample", help="generate text")
    g.add_argument("model")
    g.add_argument("--prompt", default="The ")
    g.add_argument("--chars", type=_count, default=200, help="characters to generate (>= 0)")
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from nngraph.errors import NNError

    try:
        return _run(a)
    except NNError as e:
        print(e.render(), file=sys.stderr)
        return 1


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} is negative")
    return n


def _run(a) -> int:
    if a.cmd == "data":
        print(make_data())
    elif a.cmd == "score":
        r = score(a.model)
        print(
            f"held-out loss {r['held_out_loss']:.3f} nats/char, unigram entropy {r['unigram_entropy']:.3f} "
            f"(margin {r['unigram_entropy'] - r['held_out_loss']:.3f})"
        )
    else:
        print(sample(a.model, a.prompt, a.chars, a.temperature, a.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
