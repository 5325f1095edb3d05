"""A command-line digits classifier that embeds a compiled model with nngraph.runtime alone.

It needs numpy and onnxruntime only: no compiler, no lark, networkx or onnx. Train a model
once; trained on the bundled digits, its model.onnx is a bundle (it carries the class labels
and the pixel scale):

    nngraph train examples/digits_cnn.nn --out out/digits_cnn

then classify 8x8 images, white ink on black as in the training set:

    python examples/classify_digits.py out/digits_cnn/model.onnx seven.npy three.pgm four.png [--json]

An image is a .npy array (8x8, or 1x8x8, of pixel counts 0..16 as in the UCI digits), a
.pgm (P2 or P5) or an 8-bit .png (grey, grey+alpha, RGB or RGBA; not interlaced), whose
0..maxval values are mapped to 0..16. An image whose sides are multiples of 8 (e.g. 32x32)
is averaged down to 8x8; --invert flips dark ink on a light background. A plain model
(not a bundle) is fed the pixels times --scale (default 1/16) and its outputs read as the
logits of the digits 0..9.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

from nngraph.errors import NNError
from nngraph.runtime import Session


def read_pgm(path: Path) -> np.ndarray:
    """A PGM image (P2 text or P5 binary, 8 or 16 bit) as floats in 0..16."""
    data = path.read_bytes()
    if data[:2] not in (b"P2", b"P5"):
        raise NNError(f"{path}: not a grey PGM (it starts {data[:2]!r})", expected="P2 or P5")
    tokens: list[bytes] = []
    pos = 0
    while len(tokens) < 4:  # magic, width, height, maxval; '#' starts a comment
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace():
            pos += 1
        if start == pos:
            raise NNError(f"{path}: truncated PGM header")
        tokens.append(data[start:pos])
    magic, w, h, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic == b"P5":
        dtype = np.uint8 if maxval < 256 else np.dtype(">u2")
        pixels = np.frombuffer(data, dtype, w * h, pos + 1)
    elif magic == b"P2":
        pixels = np.array(data[pos:].split()[: w * h], dtype=np.int64)
    else:
        raise NNError(f"{path}: not a grey PGM (magic {magic!r})", expected="P2 or P5")
    if pixels.size != w * h:
        raise NNError(f"{path}: {pixels.size} pixels for a {w}x{h} image")
    return pixels.reshape(h, w).astype(np.float32) * (16.0 / maxval)


def read_png(path: Path) -> np.ndarray:
    """An 8-bit, non-interlaced PNG (grey, grey+alpha, RGB, RGBA) as grey floats in 0..16."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise NNError(f"{path}: not a PNG file")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if header is None:
        raise NNError(f"{path}: PNG without a header")
    w, h, depth, color, _, _, interlace = header
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise NNError(
            f"{path}: PNG with bit depth {depth}, colour type {color}, interlace {interlace}",
            expected="an 8-bit grey, grey+alpha, RGB or RGBA PNG, not interlaced (or a .pgm / .npy)",
        )
    raw = zlib.decompress(idat)
    stride = w * channels
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 0xFF
        else:  # Sub, Average, Paeth depend on the pixel to the left: decode byte by byte
            cur = np.zeros(stride, np.int32)
            for i in range(stride):
                a = cur[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                if f == 1:
                    pred = a
                elif f == 3:
                    pred = (a + b) // 2
                elif f == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                else:
                    raise NNError(f"{path}: PNG filter type {f} is not valid")
                cur[i] = (line[i] + pred) & 0xFF
        out[y], prev = cur, cur
    px = out.reshape(h, w, channels).astype(np.float32)
    grey = px[..., :3].mean(-1) if channels >= 3 else px[..., 0]
    return grey * (16.0 / 255.0)


def _read_npy(path: Path) -> np.ndarray:
    img = np.load(path, allow_pickle=False).astype(np.float32)
    return img.reshape(img.shape[-2:]) if img.ndim == 3 and img.shape[0] == 1 else img


def read_image(path: str | Path, invert: bool = False) -> np.ndarray:
    """An image file as an 8x8 float array of pixel counts in 0..16."""
    path = Path(path)
    if not path.is_file():
        raise NNError(f"image file not found: {path}")
    suffix = path.suffix.lower()
    readers = {".npy": _read_npy, ".pgm": read_pgm, ".pnm": read_pgm, ".png": read_png}
    if suffix not in readers:
        raise NNError(f"unknown image type '{suffix}' ({path})", expected=".npy, .pgm or .png")
    try:
        img = readers[suffix](path)
    except (ValueError, IndexError, OverflowError, struct.error, zlib.error) as e:
        # a damaged or mislabelled file: the decoders' own errors, as one line
        raise NNError(f"{path}: not a readable {suffix[1:]} image ({e})") from None
    if img.ndim != 2 or img.shape[0] % 8 or img.shape[1] % 8:
        raise NNError(
            f"{path}: an image of shape {list(img.shape)}", expected="8x8 (or a multiple of 8 per side)"
        )
    h, w = img.shape
    img = img.reshape(8, h // 8, 8, w // 8).mean(axis=(1, 3))
    return 16.0 - img if invert else img


def classify(session: Session, images: np.ndarray, scale: float) -> tuple[list[str], np.ndarray]:
    """Predicted labels and probabilities for a batch of 8x8 images of pixel counts 0..16."""
    name, (shape, _) = next(iter(session.inputs.items()))
    batch = images.reshape(len(images), 64) if len(shape) == 2 else images.reshape(len(images), 1, 8, 8)
    if session.bundle is not None and session.bundle.labels:
        return session.classify(batch, input=name)
    logits = session.run({name: (batch * scale).astype(np.float32)})[session.outputs[0]]
    z = logits - logits.max(-1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    return [str(i) for i in probs.argmax(-1)], probs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a compiled digits model (.onnx) or a bundle")
    ap.add_argument("images", nargs="+", help=".npy, .pgm or .png files")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--scale", type=float, default=1 / 16, help="pixel scale for a plain model (default 1/16)"
    )
    ap.add_argument("--invert", action="store_true", help="dark ink on a light background")
    ap.add_argument("--json", action="store_true", help="one JSON object per image")
    args = ap.parse_args(argv)
    try:
        session = Session(args.model, device=args.device, threads=args.threads)
        images = np.stack([read_image(p, args.invert) for p in args.images])
        labels, probs = classify(session, images, args.scale)
    except NNError as e:
        print(e, file=sys.stderr)
        return 1
    names = session.bundle.labels if session.bundle and session.bundle.labels else [str(i) for i in range(10)]
    for path, label, p in zip(args.images, labels, probs, strict=True):
        if args.json:
            print(json.dumps({"image": path, "label": label, "probabilities": [float(v) for v in p]}))
        else:
            top = np.argsort(p)[::-1][:3]
            others = ", ".join(f"{names[i]} {p[i]:.3f}" for i in top)
            print(f"{path}: {label}  (p={p.max():.3f}; top 3: {others})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
