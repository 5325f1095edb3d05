"""Datasets for training: the bundled 8x8 digits, .npz and .csv files, and a check of
data against a model's inputs and targets.

Only numpy and the standard library: this module belongs to the embeddable runtime.

Reproducibility: ``Dataset.split(fraction, seed)`` and ``Dataset.batches(size, seed,
epoch)`` draw from numpy Generators seeded with ``seed`` and, for batches, the epoch
number (``np.random.default_rng([seed, epoch])``). An epoch's order is therefore a
function of ``(seed, epoch)`` alone: a run resumed at epoch ``e`` sees exactly the
batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nngraph.dtypes import DTYPES
from nngraph.errors import NNError, Span
from nngraph.runtime.checkpoint import open_npz

__all__ = [
    "DTYPES",
    "Dataset",
    "check_against",
    "load_csv",
    "load_digits",
    "load_npz",
]


# The split draws from a stream of its own, never equal to an epoch's [seed, epoch].
_SPLIT_STREAM = (0x73706C74, 1)

Spec = tuple[tuple, str]  # (shape with int or symbolic str dims, dtype name)


def _short(dt: np.dtype) -> str:
    """numpy dtype -> a short name in the .nn style: f32, i64, u8, bool, ..."""
    dt = np.dtype(dt)
    if dt == np.bool_:
        return "bool"
    if dt.kind in "fiu":
        return f"{dt.kind}{dt.itemsize * 8}"
    return str(dt)


def _describe(a: np.ndarray) -> str:
    return f"{_short(a.dtype)}{list(a.shape)}"


def _spec_str(shape: Sequence, dtype: str) -> str:
    return f"{dtype}[{', '.join(str(d) for d in shape)}]"


def _check_seed(seed: int, what: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise NNError(f"{what}: the seed must be a non-negative integer, not {seed!r}")
    return int(seed)


@dataclass
class Dataset:
    """Named arrays, one row per sample along dim 0: the model's inputs and its targets.

    Every array has the same length; ``len(dataset)`` is that length.
    """

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    name: str = "data"

    def __post_init__(self) -> None:
        self.inputs = {k: np.asarray(v) for k, v in self.inputs.items()}
        self.targets = {k: np.asarray(v) for k, v in self.targets.items()}
        both = set(self.inputs) & set(self.targets)
        if both:
            raise NNError(f"dataset '{self.name}' names {sorted(both)} both as inputs and as targets")
        lengths = {}
        for k, v in self.arrays().items():
            if v.ndim == 0:
                raise NNError(
                    f"data '{k}' of '{self.name}' is a scalar; a dataset holds one row per sample along dim 0"
                )
            lengths[k] = v.shape[0]
        if len(set(lengths.values())) > 1:
            listing = ", ".join(f"'{k}' {n}" for k, n in lengths.items())
            raise NNError(
                f"the arrays of dataset '{self.name}' differ in length: {listing}",
                expected="the same number of samples (dim 0) in every array",
            )

    def arrays(self) -> dict[str, np.ndarray]:
        """Inputs and targets in one dict (names are unique across the two)."""
        return {**self.inputs, **self.targets}

    def __len__(self) -> int:
        for v in self.arrays().values():
            return int(v.shape[0])
        return 0

    def subset(self, index: np.ndarray, name: str | None = None) -> Dataset:
        """The samples at ``index`` (an integer array), in that order."""
        return Dataset(
            {k: v[index] for k, v in self.inputs.items()},
            {k: v[index] for k, v in self.targets.items()},
            self.name if name is None else name,
        )

    def split(self, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
        """``(train, held_out)``: a seeded random ``fraction`` of the samples is held out.

        The held-out count is ``round(fraction * len)``, kept to at least one sample for
        each part when ``0 < fraction < 1`` and there are two or more samples. Both parts
        keep the original order of their samples. Not stratified.
        """
        if not 0.0 <= fraction < 1.0:
            raise NNError(f"the held-out fraction must lie in [0, 1), not {fraction!r}")
        seed = _check_seed(seed, "split")
        n = len(self)
        k = int(round(fraction * n))
        if fraction > 0 and n >= 2:
            k = min(max(k, 1), n - 1)
        order = np.random.default_rng([seed, *_SPLIT_STREAM]).permutation(n)
        held, train = np.sort(order[:k]), np.sort(order[k:])
        return self.subset(train, f"{self.name}[train]"), self.subset(held, f"{self.name}[held-out]")

    def batches(
        self,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = False,
        epoch: int = 0,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Mini-batches for one epoch: dicts of every input and target array, each batch
        C-contiguous. With ``shuffle`` the order is ``default_rng([seed, epoch]).permutation``,
        a function of ``(seed, epoch)`` only, so a resumed run sees the same batches; every
        sample appears once per epoch (the last batch is smaller unless ``drop_last``).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise NNError(f"the batch size must be a positive integer, not {batch_size!r}")
        seed = _check_seed(seed, "batches")
        epoch = _check_seed(epoch, "batches (epoch)")
        n = len(self)
        arrays = self.arrays()
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else None
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, n)
            if order is None:
                yield {k: np.ascontiguousarray(v[start:end]) for k, v in arrays.items()}
            else:
                idx = order[start:end]
                yield {k: v[idx] for k, v in arrays.items()}

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        n = len(self)
        return n // batch_size if drop_last else -(-n // batch_size)

    def __repr__(self) -> str:
        ins = ", ".join(f"{k}: {_describe(v)}" for k, v in self.inputs.items())
        tgs = ", ".join(f"{k}: {_describe(v)}" for k, v in self.targets.items())
        return f"Dataset({self.name!r}, {len(self)} samples, inputs {{{ins}}}, targets {{{tgs}}})"


# ---- loaders -----------------------------------------------------------------------


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


# ---- checking data against a model --------------------------------------------------


def _convert(a: np.ndarray, want: np.dtype) -> np.ndarray | None:
    """``a`` as dtype ``want`` where that keeps its values, else None.

    Converted silently: floats to a wider or narrower float (rounding to nearest, as any
    f64 -> f32 does; an error if a finite value would overflow), integers (signed or
    unsigned) to i32/i64 when every value fits, integers to a float dtype when every value
    is exactly representable (e.g. u8 pixels to f32), and bool to bool. Never silently:
    floats to integers, bools to or from numbers.
    """
    have = a.dtype
    if have == want:
        return a
    if have.kind == "b" or want.kind == "b":
        return None
    if want.kind == "f" and have.kind == "f":
        with np.errstate(over="ignore"):
            out = a.astype(want)
        if np.any(np.isinf(out) & np.isfinite(a)):
            return None
        return out
    if have.kind in "iu" and want.kind == "i":
        if a.size == 0:
            return a.astype(want)
        info = np.iinfo(want)
        if int(a.min()) < info.min or int(a.max()) > info.max:
            return None
        return a.astype(want)
    if have.kind in "iu" and want.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            out = a.astype(want)
            back = out.astype(np.float64)
            if not np.all(np.isfinite(back)) or not np.array_equal(back.astype(have), a):
                return None
        return out
    return None


def need_samples_first(role: str, name: str, shape: tuple, dtype: str) -> None:
    """Training data holds its samples along the first dim, so each input and target must too."""
    if not shape or isinstance(shape[0], str):
        return
    model = f"the model's {role} '{name}' is {_spec_str(shape, dtype)}"
    named = [i for i, d in enumerate(shape) if isinstance(d, str)]
    if not named:
        rest = ", ".join(["batch", *map(str, shape[1:])])
        raise NNError(
            f"{model}: its first dim counts the samples of a batch, so it cannot be {shape[0]}",
            expected=f"a dim name there, e.g. {dtype}[{rest}]",
        )
    i = named[0]
    perm = [i, *(j for j in range(len(shape)) if j != i)]
    back = [perm.index(j) for j in range(len(shape))]
    first = ", ".join(str(shape[j]) for j in perm)
    raise NNError(
        f"{model}: training data holds the samples along the first dim, and this {role} has them "
        f"along dim {i} ('{shape[i]}')",
        hint=f"declare it as {dtype}[{first}] and move the axis inside the model: "
        f"{name} | transpose({back}) is {_spec_str(shape, dtype)} again",
    )


def check_against(
    dataset: Dataset,
    inputs: dict[str, Spec],
    targets: dict[str, Spec],
    num_classes: dict[str, int] | None = None,
) -> Dataset:
    """Check ``dataset`` against a model's ``inputs`` and ``targets``, each a
    ``(shape, dtype)`` with int or symbolic (str) dims and a dtype name in
    f16/f32/f64/i32/i64/bool; return the dataset with exactly those arrays, in the
    model's dtypes, under the model's input/target roles.

    Checked, per array: present (looked up among the dataset's inputs and targets), a
    symbolic dim 0 in the model (batches vary in size), the rank, every static dim but dim 0
    (the samples), a symbolic dim other than dim 0 bound to the same size wherever it
    appears, and the dtype, converted silently only
    where values survive (see ``_convert``: f64 -> f32 rounds, integers -> i64/i32 when
    they fit, integers -> floats when exact). With ``num_classes``, integer labels must
    lie in ``[0, classes)``. Data is never reshaped silently: a shape that would fit
    after a reshape gets a hint that says which. Every error names the data array and
    the model's input or target.
    """
    have = dataset.arrays()
    out_in: dict[str, np.ndarray] = {}
    out_tg: dict[str, np.ndarray] = {}
    bound: dict[str, tuple[int, str]] = {}
    for role, specs, out in (("input", inputs, out_in), ("target", targets, out_tg)):
        for name, (shape, dtype) in specs.items():
            shape = tuple(shape)
            model = f"the model's {role} '{name}' is {_spec_str(shape, dtype)}"
            if dtype not in DTYPES:
                raise NNError(f"{model}, and '{dtype}' is not a dtype the runtime knows").suggest(
                    dtype, DTYPES
                )
            if name not in have:
                listed = ", ".join(f"'{k}' {_describe(v)}" for k, v in have.items()) or "no arrays"
                raise NNError(
                    f"the data '{dataset.name}' has no array '{name}' for the model's {role} "
                    f"'{name}' ({_spec_str(shape, dtype)})",
                    expected=f"an array named '{name}'; the data has {listed}",
                ).suggest(name, have)
            a = have[name]
            where = f"data '{name}' has shape {list(a.shape)} but {model}"
            need_samples_first(role, name, shape, dtype)
            if a.ndim != len(shape) or any(
                isinstance(d, int) and d != n for d, n in zip(shape[1:], a.shape[1:], strict=False)
            ):
                raise NNError(where, hint=_reshape_hint(a, shape, dataset.name))
            for i, (d, n) in enumerate(zip(shape[1:], a.shape[1:], strict=True), start=1):
                if isinstance(d, str):
                    prev = bound.setdefault(d, (n, f"dim {i} of '{name}'"))
                    if prev[0] != n:
                        raise NNError(
                            f"{where}: its dim {i} ('{d}') is {n}, but '{d}' is {prev[0]} at {prev[1]}",
                            expected=f"the same size for '{d}' wherever the model uses it",
                        )
            want = DTYPES[dtype]
            conv = _convert(a, want)
            if conv is None:
                raise NNError(
                    f"data '{name}' is {_describe(a)} but {model}",
                    expected=f"{dtype} data, or data that converts to {dtype} without changing its values",
                    hint=_dtype_hint(a, want),
                )
            out[name] = conv

    for name, classes in (num_classes or {}).items():
        arrays = {**out_in, **out_tg}
        if name not in arrays:
            raise NNError(f"num_classes names '{name}', which is neither an input nor a target of the model")
        a = arrays[name]
        role = "input" if name in out_in else "target"
        if a.size == 0:
            continue
        lo, hi = a.min(), a.max()
        if a.dtype.kind == "f" and not np.all(a == np.round(a)):
            raise NNError(
                f"labels of '{name}' are not all whole numbers, but the model's {role} '{name}' "
                f"is a class number in 0..{classes - 1}"
            )
        if (lo < 0 or hi >= classes) and role == "input":  # ids into an embedding table
            raise NNError(
                f"ids of '{name}' range over {lo:g}..{hi:g} but the embedding they index has {classes} rows "
                f"(0..{classes - 1})",
                expected=f"ids in 0..{classes - 1}",
                hint=f"give the embedding {int(hi) + 1} rows (num={int(hi) + 1})" if lo >= 0 else None,
            )
        if lo < 0 or hi >= classes:
            raise NNError(
                f"labels of '{name}' range over {lo:g}..{hi:g} but the model has {classes} classes "
                f"(0..{classes - 1})",
                expected=f"labels in 0..{classes - 1}",
                hint=(
                    "the labels look 1-based: subtract 1"
                    if lo >= 1 and hi == classes
                    else f"give the model {int(hi) + 1} classes, or drop the samples out of range"
                ),
            )
    for name, a in {**out_in, **out_tg}.items():  # a NaN trains to a NaN loss, far from its cause
        need_finite(name, a, dataset.name, "training")
    return Dataset(out_in, out_tg, dataset.name)


def need_finite(name: str, a: np.ndarray, dataset_name: str, use: str) -> None:
    """A NaN or infinity in the data: an error that says where, before it turns into a NaN score."""
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise NNError(
            f"data '{name}' of '{dataset_name}' holds {a[tuple(bad)]} at sample {bad[0]} "
            f"(index {list(map(int, bad))}): {use} needs finite numbers",
            hint="drop or fill the missing values first",
        )


def _reshape_hint(a: np.ndarray, shape: tuple, dataset_name: str) -> str | None:
    rest = shape[1:]
    if not all(isinstance(d, int) for d in rest):
        return None
    want = int(np.prod(rest, dtype=np.int64))
    have = int(np.prod(a.shape[1:], dtype=np.int64))
    if want != have:
        return f"each sample has {have} values, and the model wants {want}"
    dims = "".join(f", {d}" for d in rest)
    hint = f"the values per sample agree: reshape the data with .reshape(-1{dims})"
    if dataset_name == "digits":
        hint += f" (or load_digits(flat={len(rest) == 1}))"
    return hint


def _dtype_hint(a: np.ndarray, want: np.dtype) -> str | None:
    if a.dtype.kind == "f" and want.kind in "iu":
        if a.size and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            return f"the values are whole numbers: save them converted, as a.astype(np.{want.name})"
        return "floats are never converted to integers silently"
    if a.dtype.kind == "f" and want.kind == "f":
        return f"some values overflow {_short(want)}"
    if a.dtype.kind in "iu" and want.kind == "i":
        return f"some values do not fit in {_short(want)}"
    if a.dtype.kind in "iu" and want.kind == "f":
        return f"some integers are not exactly representable in {_short(want)}"
    if a.dtype.kind == "b" or want.kind == "b":
        return f"convert explicitly with .astype(np.{want.name}) if that is meant"
    return None
