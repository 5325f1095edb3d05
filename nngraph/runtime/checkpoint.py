"""Checkpoints: named arrays plus JSON metadata in one .npz file, written atomically.

The file is a plain, uncompressed .npz that ``np.load(path, allow_pickle=False)``
reads: one ``.npy`` member per array, and the metadata as UTF-8 JSON bytes in a uint8
array under the reserved key ``__meta__``. Nothing is pickled. A write goes to a
temporary file beside the target (``.<name>.<random>.tmp``), is flushed and fsynced,
renamed over the target, and the directory is fsynced: a run killed at any moment
leaves either the previous checkpoint or the new one, never a partial file under the
target's name (a stray temporary file may remain).

Members carry a fixed timestamp, so the same arrays and metadata give the same bytes.

Only numpy and the standard library: this module belongs to the embeddable runtime.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nngraph.errors import NNError
from nngraph.fileio import atomic_write_bytes

__all__ = ["META_KEY", "FORMAT", "save_checkpoint", "load_checkpoint", "checkpoint_bytes"]

#: The reserved array name that holds the metadata.
META_KEY = "__meta__"
#: Written into the metadata record; a file without it is not an nngraph checkpoint.
FORMAT = "nngraph-checkpoint"
VERSION = 1

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip member can carry


def checkpoint_bytes(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file (what `save_checkpoint` writes)."""
    if META_KEY in arrays:
        raise NNError(f"'{META_KEY}' is reserved for the checkpoint's metadata; rename that array")
    try:
        record = json.dumps({"format": FORMAT, "version": VERSION, "meta": meta}, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise NNError(f"the checkpoint's metadata is not JSON-serialisable: {e}") from e
    members = dict(arrays)
    members[META_KEY] = np.frombuffer(record.encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in members.items():
            if not isinstance(name, str) or not name:
                raise NNError(f"checkpoint array names must be non-empty strings, not {name!r}")
            a = np.asarray(value)
            if a.dtype.hasobject:
                raise NNError(
                    f"array '{name}' has dtype {a.dtype}, which a checkpoint cannot store without pickling"
                )
            info = zipfile.ZipInfo(name + ".npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, a, allow_pickle=False)
    return buf.getvalue()


def save_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write ``arrays`` and the JSON-serialisable ``meta`` to ``path`` atomically."""
    atomic_write_bytes(path, checkpoint_bytes(arrays, meta))


def open_npz(path: Path, what: str):
    """np.load of an .npz archive, as a context manager; a lone .npy array under an .npz name is an
    NNError, where np.load would hand back the array and `with` fail on it."""
    z = np.load(path, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise NNError(f"{what} '{path}' is one .npy array, not an .npz archive of named arrays")
    return z


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, meta)`` from a checkpoint written by `save_checkpoint`.

    A missing, truncated or corrupt file (the zip CRCs are checked), or an .npz that is
    not an nngraph checkpoint, raises NNError.
    """
    path = Path(path)
    if not path.is_file():
        err = NNError(f"no checkpoint at '{path}'")
        if path.parent.is_dir():
            err.suggest(path.name, [p.name for p in path.parent.iterdir() if p.suffix == ".npz"])
        raise err
    try:
        with open_npz(path, "the checkpoint") as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise NNError(
            f"the checkpoint '{path}' is corrupt or not an .npz file ({type(e).__name__}: {e})",
            hint="an interrupted write never leaves a partial file under this name; was it copied or edited?",
        ) from e
    raw = arrays.pop(META_KEY, None)
    if raw is None:
        raise NNError(f"'{path}' is an .npz file but not an nngraph checkpoint: it has no '{META_KEY}' entry")
    try:
        record = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise NNError(f"the metadata of checkpoint '{path}' is not valid JSON: {e}") from e
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise NNError(f"'{path}' is not an nngraph checkpoint (its '{META_KEY}' entry is not one of ours)")
    if not isinstance(record.get("version"), int) or record["version"] > VERSION:
        raise NNError(
            f"the checkpoint '{path}' has format version {record.get('version')!r}; "
            f"this nngraph reads versions up to {VERSION}",
            hint="upgrade nngraph",
        )
    return arrays, record.get("meta", {})
