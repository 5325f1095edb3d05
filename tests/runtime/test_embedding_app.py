"""Embedding: the digits classifier example and the text generator on a trained bundle, and
imports that pull in no compiler."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from nngraph.runtime import Session, write_bundle

APP = ROOT / "examples" / "classify_digits.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """examples/digits_cnn.nn trained for 2 epochs by the CLI, and its bundle."""
    out = tmp_path_factory.mktemp("digits")
    r = subprocess.run(
        [sys.executable, "-m", "nngraph.cli", "train", str(ROOT / "examples" / "digits_cnn.nn")]
        + ["--epochs", "2", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    bundle = write_bundle(
        out / "model.onnx",
        out / "digits.onnx",
        labels=list(range(10)),
        scale=1 / 16,
        description="digits CNN",
    )
    return out / "model.onnx", bundle


def digits(n=6):
    d = np.load(ROOT / "nngraph" / "data" / "digits.npz")
    idx = np.arange(0, 1797, 1797 // n)[:n]
    return d["images"][idx, 0].astype(np.float32), d["labels"][idx]  # pixel counts 0..16


def write_pgm(path: Path, img: np.ndarray) -> None:
    px = np.rint(img * 255 / 16).astype(np.uint8)
    path.write_bytes(b"P5\n# a digit\n8 8\n255\n" + px.tobytes())


def write_png(path: Path, img: np.ndarray, filt: int) -> None:
    px = np.rint(img * 255 / 16).astype(np.uint8)
    rows = b""
    prev = np.zeros(8, np.int32)
    for row in px.astype(np.int32):
        enc = row if filt == 0 else (row - prev) & 0xFF  # 0 None, 2 Up
        rows += bytes([filt]) + enc.astype(np.uint8).tobytes()
        prev = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# ---- import isolation --------------------------------------------------------------------

HEAVY = ("lark", "networkx", "onnx")


def test_runtime_import_pulls_in_no_lark_networkx_or_onnx():
    code = (
        "import sys, nngraph.runtime, nngraph.runtime.bundle, nngraph.runtime.evaluate, nngraph.runtime.stepper;"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]; print(bad); sys.exit(bool(bad))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_loading_a_bundle_imports_no_onnx(trained):
    _, bundle = trained
    code = (
        "import sys; from nngraph.runtime import Session; s = Session(sys.argv[1]); assert s.bundle.labels;"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]; print(bad); sys.exit(bool(bad))"
    )
    r = subprocess.run([sys.executable, "-c", code, str(bundle)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- the trained digits bundle --------------------------------------------------------------


def test_training_on_digits_writes_a_bundle(trained):
    """nngraph train on the bundled digits leaves a model that classifies raw pixel counts."""
    model, _ = trained
    s = Session(model)
    assert s.bundle is not None and s.bundle.labels == [str(d) for d in range(10)]
    images, want = digits(10)
    labels, probs = s.classify(images[:, None])
    logits = s(image=(images[:, None] / 16).astype(np.float32))["logits"]
    assert labels == [str(v) for v in logits.argmax(-1)]
    np.testing.assert_allclose(probs.sum(-1), 1, rtol=1e-5)


# ---- the example application ---------------------------------------------------------------


def run_app(args: list[str]) -> subprocess.CompletedProcess:
    """The example in a subprocess that reports which heavy modules it imported."""
    code = (
        "import json, runpy, sys\n"
        "sys.argv = sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "finally:\n"
        f"    bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "    print('HEAVY ' + json.dumps(bad), file=sys.stderr)\n"
    )
    return subprocess.run([sys.executable, "-c", code, str(APP), *args], capture_output=True, text=True)


def test_classify_digits_end_to_end(trained, tmp_path):
    model, bundle = trained
    images, labels = digits(6)
    files = []
    for i, img in enumerate(images):
        np.save(tmp_path / f"d{i}.npy", img)
        write_pgm(tmp_path / f"d{i}.pgm", img)
        write_png(tmp_path / f"d{i}.png", img, filt=2 * (i % 2))
        files += [str(tmp_path / f"d{i}.{ext}") for ext in ("npy", "pgm", "png")]
    r = run_app([str(bundle), *files, "--json"])
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stderr, r.stderr  # no lark, networkx or onnx in the application
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["image"] for row in rows] == files
    # the same predictions as the trained model run directly through nngraph.runtime.Session
    logits = Session(model)(image=(images[:, None] / 16).astype(np.float32))["logits"]
    want = logits.argmax(-1)
    for k, row in enumerate(rows):
        i = k // 3
        assert row["label"] == str(want[i]), (row, want[i])
        p = np.exp(logits[i] - logits[i].max())
        # PGM and PNG round pixel counts to 255 levels: the same probabilities within that rounding
        np.testing.assert_allclose(row["probabilities"], p / p.sum(), atol=2e-2 if k % 3 else 1e-5)
    assert (want == labels).mean() >= 0.5  # two epochs already classify most digits


def test_classify_digits_plain_model_and_text_output(trained, tmp_path):
    model, _ = trained
    images, _ = digits(2)
    np.save(tmp_path / "a.npy", images[0])
    np.save(tmp_path / "big.npy", np.kron(images[1], np.ones((4, 4), np.float32)))  # 32x32, averaged to 8x8
    r = run_app([str(model), str(tmp_path / "a.npy"), str(tmp_path / "big.npy")])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{tmp_path / 'a.npy'}: ") and "top 3:" in lines[0]
    logits = Session(model)(image=(images[:, None] / 16).astype(np.float32))["logits"]
    assert [line.split(": ")[1].split()[0] for line in lines] == [str(v) for v in logits.argmax(-1)]


def test_classify_digits_errors(trained, tmp_path):
    _, bundle = trained
    (tmp_path / "x.bmp").write_bytes(b"BM")
    r = run_app([str(bundle), str(tmp_path / "x.bmp")])
    assert r.returncode == 1 and "unknown image type '.bmp'" in r.stderr
    np.save(tmp_path / "odd.npy", np.zeros((7, 7)))
    r = run_app([str(bundle), str(tmp_path / "odd.npy")])
    assert r.returncode == 1 and "expected: 8x8" in r.stderr
    r = run_app([str(bundle), str(tmp_path / "missing.npy")])
    assert r.returncode == 1 and "image file not found" in r.stderr
    # damaged or mislabelled files: one line each, no traceback
    write_png(tmp_path / "ok.png", np.zeros((8, 8), np.float32), filt=0)
    (tmp_path / "trunc.png").write_bytes((tmp_path / "ok.png").read_bytes()[:40])
    (tmp_path / "short.pgm").write_bytes(b"P5 8 8 255\n\x00\x01")
    (tmp_path / "words.pgm").write_bytes(b"P2 8 8 16 1 2 x")
    (tmp_path / "text.npy").write_text("not an array")
    for name in ("trunc.png", "short.pgm", "words.pgm", "text.npy"):
        r = run_app([str(bundle), str(tmp_path / name)])
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert f"{tmp_path / name}: not a readable {name.split('.')[1]} image" in r.stderr, r.stderr
    (tmp_path / "text.pgm").write_text("hello, a text file")  # named .pgm, but no P2/P5 magic
    r = run_app([str(bundle), str(tmp_path / "text.pgm")])
    assert r.returncode == 1 and "not a grey PGM (it starts b'he')" in r.stderr, r.stderr


def test_generate_text_reports_user_mistakes(trained, tmp_path, capsys, monkeypatch):
    model, _ = trained
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import generate_text as gt

    assert gt.main(["score", str(tmp_path / "nope.onnx")]) == 1
    assert "model file not found" in capsys.readouterr().err
    assert gt.main(["score", str(model)]) == 1  # the digits model: no 'tokens' input
    assert "not char_lm.nn's model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gt.main(["sample", str(model), "--chars", "-5"])
    assert "--chars: -5 is negative" in capsys.readouterr().err
