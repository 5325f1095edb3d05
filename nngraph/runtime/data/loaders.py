"""Loaders: the bundled 8x8 digits, .npz and .csv files, each as a Dataset."""

from __future__ import annotations

import csv
import functools
import importlib.resources
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nngraph.errors import NNError, Span
from nngraph.runtime.checkpoint import open_npz
from nngraph.runtime.data.dataset import Dataset


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    res = importlib.resources.files("nngraph") / "data" / "digits.npz"
    with res.open("rb") as f, np.load(f, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digits(
    input_name: str = "image",
    target_name: str = "label",
    flat: bool = False,
    scale: float = 1 / 16,
) -> Dataset:
    """The 8x8 hand-written digits bundled with nngraph (UCI, CC BY 4.0; see
    nngraph/data/README.md): 1,797 samples, ``input_name`` f32 [N, 1, 8, 8] (or [N, 64]
    with ``flat``) with the raw 0..16 pixel counts times ``scale`` (so in [0, 1] by
    default), ``target_name`` i64 [N] with the digits 0..9.
    """
    images, labels = _digits_raw()
    x = images * np.float32(scale)
    if flat:
        x = x.reshape(len(x), 64)
    return Dataset({input_name: x}, {target_name: labels.copy()}, "digits")


def _names(names: str | Sequence[str], what: str) -> list[str]:
    out = [names] if isinstance(names, str) else list(names)
    if len(set(out)) != len(out):
        raise NNError(f"the {what} names {out} repeat a name")
    return out


def _missing_file(path: Path, what: str) -> NNError:
    err = NNError(f"no {what} file at '{path}'")
    if path.parent.is_dir():
        others = [p.name for p in path.parent.iterdir() if p.is_file()]
        err.suggest(path.name, others)
    return err


def load_npz(
    path: str | os.PathLike, input_names: str | Sequence[str], target_names: str | Sequence[str]
) -> Dataset:
    """The arrays named ``input_names`` and ``target_names`` from an .npz file (no pickled
    objects). A name the file lacks is an error that lists the names it has."""
    path = Path(path)
    ins, tgs = _names(input_names, "input"), _names(target_names, "target")
    if not path.is_file():
        raise _missing_file(path, ".npz")
    try:
        with open_npz(path, "the data") as z:
            have = list(z.files)
            for name in ins + tgs:
                if name not in have:
                    role = "input" if name in ins else "target"
                    listed = ", ".join(f"'{h}'" for h in have)
                    raise NNError(
                        f"'{path}' has no array '{name}' for the model's {role} '{name}'",
                        expected=f"one of the arrays in the file: {listed}"
                        if have
                        else "arrays (the file holds none)",
                    ).suggest(name, have)
            inputs = {name: z[name] for name in ins}
            targets = {name: z[name] for name in tgs}
    except NNError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        why = "it is not an .npz archive" if "pickle" in str(e) else str(e)
        raise NNError(f"cannot read '{path}' as an .npz file: {why}") from e
    return Dataset(inputs, targets, path.name)


def _float_or_none(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def load_csv(
    path: str | os.PathLike,
    input_names: str | Sequence[str],
    target_names: str | Sequence[str],
    label_column: int | str | None = None,
    delimiter: str = ",",
    float_labels: bool = False,
) -> Dataset:
    """A numeric CSV file: one row per sample, an optional header row (detected when the
    first row is not all numbers), one label column and the rest features.

    Gives one input, ``input_names[0]`` f32 [N, F] with every column but the label, and
    one target, ``target_names[0]`` i64 [N] with the label column (f64 with ``float_labels``,
    for regression targets). ``label_column`` is a column index (negative counts from the
    end) or, with a header, a column name; by default the header's column named like the
    target, else the last column. Empty lines are skipped.
    """
    path = Path(path)
    ins, tgs = _names(input_names, "input"), _names(target_names, "target")
    if len(ins) != 1 or len(tgs) != 1:
        raise NNError(
            f"a CSV file gives one input (the feature columns) and one target (the label column), "
            f"but the model asks for inputs {ins} and targets {tgs}",
            hint="save the arrays with numpy.savez and use an .npz file instead",
        )
    if not path.is_file():
        raise _missing_file(path, ".csv")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [
                (i, r)
                for i, r in enumerate(csv.reader(f, delimiter=delimiter), start=1)
                if any(c.strip() for c in r)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise NNError(f"cannot read '{path}' as a CSV file: {e}") from e
    if not rows:
        raise NNError(f"'{path}' holds no rows")

    def at(line: int, msg: str, **kw) -> NNError:
        return NNError(msg, span=Span(str(path), line, 1, line, 1), **kw)

    header: list[str] | None = None
    if all(_float_or_none(c) is None for c in rows[0][1]):  # a header names every column
        header = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
        if not rows:
            raise NNError(f"'{path}' holds a header row and no data")
    width = len(header) if header is not None else len(rows[0][1])
    if width < 2:
        other = any(sep in rows[0][1][0] for sep in ";\t")
        raise at(
            rows[0][0],
            f"'{path}' has {width} column; a CSV dataset needs features and a label column",
            hint="only commas separate columns" if other else None,
        )

    if label_column is None:
        label_column = tgs[0] if header is not None and tgs[0] in header else -1
    if isinstance(label_column, str):
        if header is None:
            raise NNError(
                f"label_column '{label_column}' names a column, but '{path}' has no header row",
                hint="give the label column by index (e.g. -1 for the last)",
            )
        if label_column not in header:
            raise NNError(
                f"'{path}' has no column '{label_column}' for the labels",
                expected="one of the header's columns: " + ", ".join(f"'{h}'" for h in header),
            ).suggest(label_column, header)
        col = header.index(label_column)
    else:
        if not -width <= label_column < width:
            raise NNError(
                f"label_column {label_column} is out of range for '{path}', which has {width} columns"
            )
        col = label_column % width

    data = np.empty((len(rows), width), dtype=np.float64)
    for r, (line, row) in enumerate(rows):
        if len(row) != width:
            raise at(line, f"'{path}' line {line} has {len(row)} columns, but the file has {width}")
        for c, cell in enumerate(row):
            v = _float_or_none(cell)
            if v is None:
                raise at(line, f"'{path}' line {line}, column {c + 1}: '{cell.strip()}' is not a number")
            data[r, c] = v
    labels = data[:, col]
    features = np.delete(data, col, axis=1)
    with np.errstate(over="ignore"):
        small = features.astype(np.float32)
    over = np.argwhere(np.isfinite(features) & ~np.isfinite(small))
    if over.size:
        r, c = over[0]
        line = rows[int(r)][0]
        raise at(line, f"'{path}' line {line}: the value {features[r, c]:g} overflows float32")
    if float_labels:
        return Dataset({ins[0]: small}, {tgs[0]: labels}, path.name)
    bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)) | (np.abs(labels) >= 2.0**62))
    if bad.size:
        line = rows[int(bad[0])][0]
        raise at(
            line,
            f"'{path}' line {line}: the label {labels[bad[0]]:g} is not an integer",
            hint=f"labels are the class numbers 0, 1, 2, ...; is column {col + 1} the label column?",
        )
    return Dataset({ins[0]: small}, {tgs[0]: labels.astype(np.int64)}, path.name)
