"""Checkpoints: bit-exact round trips, no pickle, clear errors, and survival of SIGKILL (and of
the temporary files a killed writer leaves)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli

from nngraph.errors import NNError
from nngraph.runtime.checkpoint import META_KEY, checkpoint_bytes, load_checkpoint, save_checkpoint


def sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    nan_payload = np.array([0x7FC00001, 0xFFC12345], dtype=np.uint32).view(np.float32)
    return {
        "conv1.weight": rng.standard_normal((8, 1, 3, 3)).astype(np.float32),
        "fc/bias": rng.standard_normal(10),
        "half": rng.standard_normal(5).astype(np.float16),
        "nan": np.concatenate([nan_payload, [np.inf, -0.0]]).astype(np.float32),
        "step": np.array(17, dtype=np.int64),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 3), np.int32),
        "fortran": np.asfortranarray(rng.standard_normal((3, 4))),
        "file": np.arange(3),  # names that clash with np.savez's own parameters are fine
    }


META = {
    "step": 17,
    "epoch": 2,
    "loss": 0.125,
    "lr": [0.1, 0.01],
    "source_sha256": "ab" * 32,
    "note": "ünïcode",
    "x": None,
}


def test_round_trip_bit_exact(tmp_path):
    arrays = sample_arrays()
    path = tmp_path / "sub" / "ck.npz"  # the directory is made
    save_checkpoint(path, arrays, META)
    got, meta = load_checkpoint(path)
    assert meta == META
    assert set(got) == set(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape, k
        assert (
            np.ascontiguousarray(got[k]).view(np.uint8).tobytes()
            == np.ascontiguousarray(a).view(np.uint8).tobytes()
        ), k
    # the same content gives the same bytes
    assert checkpoint_bytes(arrays, META) == path.read_bytes()
    assert [p.name for p in path.parent.iterdir()] == ["ck.npz"]  # no temporary left behind


def test_plain_npz_without_pickle(tmp_path):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"w": np.ones(3, np.float32)}, {"k": 1})
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(["w", META_KEY])
        assert z[META_KEY].dtype == np.uint8
        assert b'"k": 1' in z[META_KEY].tobytes()
    with zipfile.ZipFile(path) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(NNError, match="reserved"):
        save_checkpoint(tmp_path / "a.npz", {META_KEY: np.zeros(1)}, {})
    with pytest.raises(NNError, match="without pickling"):
        save_checkpoint(tmp_path / "a.npz", {"o": np.array([object()])}, {})
    with pytest.raises(NNError, match="not JSON-serialisable"):
        save_checkpoint(tmp_path / "a.npz", {"w": np.zeros(1)}, {"bad": object()})
    assert not (tmp_path / "a.npz").exists()


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(NNError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.npz")
    good = tmp_path / "good.npz"
    save_checkpoint(good, {"w": np.arange(1000, dtype=np.float32)}, {"step": 1})
    data = good.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(NNError, match="corrupt"):
        load_checkpoint(truncated)

    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside the array's bytes: the zip CRC catches it
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    with pytest.raises(NNError, match="corrupt"):
        load_checkpoint(tmp_path / "flipped.npz")

    (tmp_path / "garbage.npz").write_bytes(os.urandom(300))
    with pytest.raises(NNError, match="corrupt"):
        load_checkpoint(tmp_path / "garbage.npz")

    np.savez(tmp_path / "plain.npz", w=np.zeros(2))
    with pytest.raises(NNError, match="not an nngraph checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")

    with pytest.raises(NNError) as e:
        load_checkpoint(tmp_path / "god.npz")
    assert "did you mean 'good.npz'?" in str(e.value)


# ---- the kill test ------------------------------------------------------------------------

WRITER = """
import sys
import numpy as np
from nngraph.runtime.checkpoint import save_checkpoint

path, version = sys.argv[1], int(sys.argv[2])
n = 12_500_000  # 50 MB of int32
while True:
    save_checkpoint(path, {"w": np.full(n, version, dtype=np.int32), "v": np.array(version)}, {"version": version})
    print(version, flush=True)
    version += 1
"""


def test_sigkill_while_writing_leaves_a_complete_checkpoint(tmp_path):
    target = tmp_path / "checkpoint.npz"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rnd = random.Random(1234)
    delays = [0.0] + [rnd.uniform(0.01, 0.3) for _ in range(3)]
    for round_, delay in enumerate(delays):
        first = 1000 * (round_ + 1)
        before = target.stat().st_ino if target.exists() else None
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), str(first)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            # wait until this writer has replaced the file at least once
            while not target.exists() or target.stat().st_ino == before:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "the writer never wrote a checkpoint"
                time.sleep(0.002)
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        finished = [int(s) for s in out.split()]
        last_done = finished[-1] if finished else first - 1

        arrays, meta = load_checkpoint(target)
        v = meta["version"]
        # the last version reported done, or the next one if the kill came between rename and print
        assert last_done <= v <= last_done + 1 and v >= first, (v, finished)
        assert int(arrays["v"]) == v
        assert arrays["w"].shape == (12_500_000,) and arrays["w"].dtype == np.int32
        assert int(arrays["w"].min()) == v == int(arrays["w"].max())

        for p in tmp_path.iterdir():  # anything else is a temporary, never a partial target
            assert p == target or (p.name.startswith(".checkpoint.npz.") and p.name.endswith(".tmp")), p.name


# ---- what is not a checkpoint, and what a killed run left ----------------------------------


def test_one_npy_array_under_an_npz_name_is_a_clear_error(tmp_path, capsys):
    """Regression: one .npy array under an .npz name, and an empty .npy for nngraph run, were not NNErrors."""
    np.save(tmp_path / "arr.npy", np.zeros((4, 64), np.float32))
    (tmp_path / "arr.npy").rename(tmp_path / "arr.npz")
    with pytest.raises(NNError, match="is one .npy array, not an .npz archive"):
        load_checkpoint(tmp_path / "arr.npz")
    assert run_cli(capsys, "compile", ROOT / "examples" / "digits_mlp.nn", "-o", tmp_path / "m.onnx")[0] == 0
    rc, _, err = run_cli(capsys, "eval", tmp_path / "m.onnx", "--data", tmp_path / "arr.npz")
    assert rc == 1 and "is one .npy array" in err and "Traceback" not in err
    (tmp_path / "empty.npy").write_bytes(b"")
    rc, _, err = run_cli(capsys, "run", tmp_path / "m.onnx", "--input", f"image={tmp_path / 'empty.npy'}")
    assert rc == 1 and "cannot read input 'image'" in err and "Traceback" not in err


def test_a_write_clears_temporary_files_a_killed_run_left(tmp_path: Path):
    """Regression: temporary files a killed run left for the same file were never cleared."""
    from nngraph.fileio import atomic_write_bytes

    stale = tmp_path / ".checkpoint.npz.abc123.tmp"
    stale.write_bytes(b"half")
    other = tmp_path / ".model.onnx.abc123.tmp"  # another file's: left alone
    other.write_bytes(b"half")
    atomic_write_bytes(tmp_path / "checkpoint.npz", b"whole")
    assert (tmp_path / "checkpoint.npz").read_bytes() == b"whole"
    assert not stale.exists() and other.exists()
